"""do_update_demographics: a correction is a new version; nothing is overwritten or
deleted (previous names and addresses kept with use=old, phones, identifiers and
contacts deactivated), a reason is required, and bad input stores nothing."""

import dataclasses
import datetime as dt
import hashlib

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from patients.actions import (
    AddressData,
    ContactData,
    IdentifierData,
    NameData,
    TelecomData,
    do_update_demographics,
)
from patients.models import Patient, PatientName, PatientVersion
from recordroom import crypto
from recordroom.testing import patient_data, register_patient

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n%%EOF\n"


@pytest.fixture
def patient(personas):
    with time_machine.travel(dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)):
        return register_patient(personas)


def _data(**overrides):
    """The registered patient's data (recordroom.testing.patient_data) with changes."""
    return patient_data(**overrides)


def _update(patient, personas, data, reason="legal name change, court order seen", **kwargs):
    return do_update_demographics(
        patient, data, reason=reason, acting_user=personas.technician, **kwargs
    )


def test_a_name_change_keeps_the_old_name_as_previous(personas, patient, audit_rows):
    with time_machine.travel(dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)):
        updated = _update(
            patient,
            personas,
            _data(name=NameData(family="Ashgrove", given="Marigold", middle="June")),
        )
    assert (updated.family_name, updated.version) == ("Ashgrove", 2)
    old = PatientName.objects.get(patient=patient, family="Quillfeather")
    assert (old.use, old.period_end) == ("old", dt.date(2026, 3, 1))
    assert PatientName.objects.get(patient=patient, use="official").family == "Ashgrove"
    version = updated.versions.get(number=2)
    assert version.reason == "legal name change, court order seen"
    assert version.changed_by == personas.technician
    assert version.snapshot["name"]["family"] == "Ashgrove"
    assert updated.versions.get(number=1).snapshot["name"]["family"] == "Quillfeather"
    (event,) = audit_rows(action=Action.UPDATE, object_type="patient")
    assert event.detail == {"changed": ["name"], "version": 2}
    assert "Ashgrove" not in str(event.detail)


def test_a_new_address_keeps_the_old_one_as_previous(personas, patient):
    _update(
        patient,
        personas,
        _data(
            addresses=[
                AddressData(line1="3 Ferry Road", city="Holyoke", state="MA", postal_code="01040")
            ]
        ),
        reason="moved",
    )
    rows = {a.line1: a for a in patient.addresses.all()}
    assert rows["12 Lantern Way"].use == "old" and rows["12 Lantern Way"].period_end
    assert rows["3 Ferry Road"].use == "home" and rows["3 Ferry Road"].period_end is None


def test_a_removed_phone_is_deactivated_not_deleted(personas, patient):
    _update(
        patient,
        personas,
        _data(telecoms=[TelecomData(system="phone", value="413-555-0111", use="home")]),
        reason="new number",
    )
    phones = {t.normalized: t.active for t in patient.telecoms.all()}
    assert phones == {"4135550142": False, "4135550111": True}


def test_a_new_ssn_replaces_the_old_which_is_kept_inactive(personas, patient):
    old = patient.identifiers.get(kind="SS")
    _update(
        patient,
        personas,
        _data(identifiers=[IdentifierData(kind="SS", value="219-09-9999")]),
        reason="SSN card seen; the first was mistyped",
        keep_identifier_ids=[old.pk],
    )
    ssns = list(patient.identifiers.filter(kind="SS").order_by("pk"))
    assert [s.active for s in ssns] == [False, True]
    assert crypto.decrypt(ssns[1].value_encrypted) == "219099999"


def test_kept_identifiers_survive_without_being_retyped(personas, patient):
    old = patient.identifiers.get(kind="SS")
    _update(
        patient,
        personas,
        _data(
            identifiers=[IdentifierData(kind="MB", value="ZX-1", issuer="Acme Health")],
            sex_at_birth="F",
            gender_identity="female",
        ),
        reason="insurance card",
        keep_identifier_ids=[old.pk],
    )
    old.refresh_from_db()
    assert old.active
    assert patient.identifiers.get(kind="MB").value == "ZX1"


def test_an_identifier_not_kept_is_deactivated(personas, patient):
    _update(
        patient,
        personas,
        _data(identifiers=[]),
        reason="SSN was someone else's",
        keep_identifier_ids=[],
    )
    ssn = patient.identifiers.get(kind="SS")
    assert not ssn.active
    assert patient.identifiers.get(kind="MR").active  # the MRN is never touched


def test_contacts_are_deactivated_and_documents_kept(personas, patient):
    data = _data(
        contacts=[
            ContactData(
                kind="representative",
                name="Basil Quillfeather",
                relationship="son",
                authority="healthcare_poa",
            )
        ]
    )
    upload = SimpleUploadedFile("poa.pdf", PDF)
    _update(patient, personas, data, reason="POA presented", authority_documents={0: upload})
    first = patient.contacts.get()
    assert first.authority_document_sha256 == hashlib.sha256(PDF).hexdigest()
    corrected = dataclasses.replace(data.contacts[0], phone="413-555-0100")
    _update(patient, personas, dataclasses.replace(data, contacts=[corrected]), reason="new phone")
    first.refresh_from_db()
    second = patient.contacts.get(active=True)
    assert not first.active
    assert second.phone == "413-555-0100"
    assert second.authority_document.name == first.authority_document.name
    assert second.authority_document_sha256 == first.authority_document_sha256
    first.authority_document.delete(save=False)


def test_a_reason_is_required(personas, patient):
    with pytest.raises(ValidationError) as caught:
        _update(patient, personas, _data(sex_at_birth="M"), reason="  ")
    assert "reason" in caught.value.message_dict
    assert Patient.objects.get(pk=patient.pk).version == 1


def test_nothing_changed_is_refused(personas, patient):
    with pytest.raises(ValidationError, match="Nothing changed"):
        _update(
            patient, personas, _data(), keep_identifier_ids=[patient.identifiers.get(kind="SS").pk]
        )
    assert PatientVersion.objects.filter(patient=patient).count() == 1


def test_a_stale_form_is_refused(personas, patient):
    _update(patient, personas, _data(sex_at_birth="M"), reason="first", expected_version=1)
    with pytest.raises(ValidationError, match="Someone else changed"):
        _update(patient, personas, _data(sex_at_birth="F"), reason="second", expected_version=1)


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"birth_date": dt.date(2999, 1, 1)}, "birth_date"),
        ({"name": NameData(family="<script>", given="X")}, "name.family"),
        ({"identifiers": [IdentifierData(kind="SS", value="999-99-9999")]}, "identifiers.0"),
        ({"identifiers": [IdentifierData(kind="MR", value="RR0000001")]}, "identifiers.0"),
        ({"telecoms": [TelecomData(system="phone", value="12345")]}, "telecoms.0"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_half_written(personas, patient, overrides, key):
    before = (
        patient.names.count(),
        patient.addresses.count(),
        patient.telecoms.count(),
        patient.identifiers.count(),
    )
    bad = _data(
        addresses=[
            AddressData(line1="3 Ferry Road", city="Holyoke", state="MA", postal_code="01040")
        ],
        **overrides,
    )
    with pytest.raises(ValidationError) as caught:
        _update(patient, personas, bad)
    assert key in caught.value.message_dict
    patient.refresh_from_db()
    assert patient.version == 1
    after = (
        patient.names.count(),
        patient.addresses.count(),
        patient.telecoms.count(),
        patient.identifiers.count(),
    )
    assert after == before


def test_a_bad_document_stores_nothing(personas, patient, tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    data = _data(
        contacts=[
            ContactData(kind="representative", name="Basil Quillfeather", authority="guardian")
        ]
    )
    with pytest.raises(ValidationError, match="PDF, PNG, JPEG or TIFF"):
        _update(
            patient,
            personas,
            data,
            authority_documents={0: SimpleUploadedFile("x.txt", b"hello")},
        )
    assert not patient.contacts.exists()
    assert not list(tmp_path.rglob("*.*"))


def test_a_role_without_the_permission_is_refused_and_audited(personas, patient, audit_rows):
    with pytest.raises(AccessDenied):
        do_update_demographics(
            patient, _data(sex_at_birth="M"), reason="x", acting_user=personas.coder
        )
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.action == Action.UPDATE and event.patient_id == patient.public_id
    assert Patient.objects.get(pk=patient.pk).version == 1
