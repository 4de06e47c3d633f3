"""do_register_patient: validation, encryption at rest, versions and audit."""

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from patients.actions import IdentifierData, NameData, do_register_patient
from patients.models import Patient, PatientIdentifier
from recordroom import crypto
from recordroom.testing import patient_data, register_patient

pytestmark = pytest.mark.django_db


def test_it_registers_with_an_mrn_a_version_and_an_audit_row(personas, audit_rows):
    patient = register_patient(personas)
    assert patient.version == 1
    version = patient.versions.get()
    assert version.changed_by == personas.technician
    assert version.snapshot["name"]["family"] == "Quillfeather"
    (event,) = audit_rows(action=Action.CREATE)
    assert event.patient_id == patient.public_id
    assert "Quillfeather" not in str(event.detail) + event.reason


def test_the_ssn_is_encrypted_at_rest_and_masked_in_versions(personas):
    patient = register_patient(personas)
    ssn = patient.identifiers.get(kind="SS")
    assert ssn.value == ""
    assert b"123456789" not in bytes(ssn.value_encrypted)
    assert crypto.decrypt(ssn.value_encrypted) == "123456789"
    assert ssn.masked == "***-**-6789"
    assert ssn.value_hash == crypto.blind_index("SS", "123456789")
    assert "123456789" not in str(patient.versions.get().snapshot)


@pytest.mark.parametrize(
    "field, data, message",
    [
        ("birth_date", {"birth_date": dt.date(2999, 1, 1)}, "in the future"),
        ("name.family", {"family": "<script>alert(1)</script>"}, "letters, spaces"),
        ("name.given", {"given": "Robert'); DROP TABLE patients_patient;--"}, "letters, spaces"),
        ("name.family", {"family": "   "}, "Required"),
        (
            "identifiers.0",
            {"identifiers": [IdentifierData(kind="SS", value="000-12-3456")]},
            "Social Security",
        ),
        (
            "identifiers.0",
            {"identifiers": [IdentifierData(kind="SS", value="12345")]},
            "Social Security",
        ),
        (
            "identifiers.0",
            {"identifiers": [IdentifierData(kind="MR", value="RG1")]},
            "assigned by RecordRoom",
        ),
        (
            "identifiers.0",
            {"identifiers": [IdentifierData(kind="ZZ", value="1")]},
            "Unknown identifier",
        ),
        ("sex_at_birth", {"sex_at_birth": "Q"}, "female, male or unknown"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(personas, field, data, message, audit_rows):
    before = Patient.objects.count(), PatientIdentifier.objects.count()
    with pytest.raises(ValidationError) as error:
        register_patient(personas, **data)
    assert message in " ".join(error.value.message_dict[field])
    assert (Patient.objects.count(), PatientIdentifier.objects.count()) == before
    assert not audit_rows(action=Action.CREATE)


def test_names_of_every_alphabet_and_punctuation_are_accepted(personas):
    for family, given in [
        ("O'Brien-Smith", "Seán"),
        ("Nguyễn", "Thị"),
        ("St. John", "Mary Ann"),
        ("Zhāng", "Wěi"),
    ]:
        register_patient(personas, name=NameData(family=family, given=given))


def test_the_day_of_birth_today_is_fine_and_tomorrow_is_not(personas):
    with time_machine.travel("2026-06-01 12:00Z", tick=False):
        register_patient(personas, birth_date=dt.date(2026, 6, 1))
        with pytest.raises(ValidationError):
            register_patient(personas, birth_date=dt.date(2026, 6, 2))


def test_a_role_without_the_permission_is_refused_and_audited(personas, audit_rows):
    with pytest.raises(AccessDenied) as error:
        do_register_patient(patient_data(), facility=personas.facility, acting_user=personas.coder)
    assert "permission" in str(error.value)
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.action == Action.CREATE and event.actor == personas.coder
    assert Patient.objects.count() == 0
