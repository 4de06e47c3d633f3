"""Registration screen: no blind registration. The form, then the likely matches with
their reasons, then open an existing patient or confirm a new one."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Action, Outcome
from patients.actions import NameData, mrn_of
from patients.models import Patient, PatientContact, PatientIdentifier
from recordroom import crypto
from recordroom.testing import register_patient, sign_in

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _formset(prefix, rows=(), extra=1):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows) + extra),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{i}-{key}"] = value
    return data


def form_data(personas, *, contacts=(), identifiers=(), names=(), addresses=(), **fields):
    data = {
        "facility": str(personas.facility.pk),
        "family": "Wrenfield",
        "given": "Cordelia",
        "middle": "Ann",
        "suffix": "",
        "birth_date": "1972-05-09",
        "sex_at_birth": "F",
        "gender_identity": "female",
        "preferred_language": "en",
        "race": "",
        "ethnicity": "",
        "line1": "41 Millbrook Lane",
        "line2": "",
        "city": "Northampton",
        "state": "MA",
        "postal_code": "01060",
        "phone_home": "",
        "phone_mobile": "(413) 555-0177",
        "phone_work": "",
        "email": "cordelia@example.invalid",
        "ssn": "219-09-9999",
        "drivers_license": "",
        "drivers_license_state": "",
        **_formset("names", names),
        **_formset("addresses", addresses),
        **_formset("identifiers", identifiers),
        **_formset("contacts", contacts),
    }
    data.update(fields)
    return data


def _check_token(response):
    match = re.search(rb'name="check" value="([^"]+)"', response.content)
    assert match, "the check page carries the token"
    return match.group(1).decode()


def _confirm(client, personas, token, *, reviewed=True, files=None, **fields):
    data = form_data(personas, **fields)
    data.update(step="confirm", check=token)
    if reviewed:
        data["reviewed"] = "yes"
    if files:
        data.update(files)
    return client.post("/patients/register/", data)


@pytest.fixture
def tech(client, personas):
    return sign_in(client, personas.technician)


def test_the_form_shows_the_core_mpi_elements(tech):
    response = tech.get("/patients/register/")
    assert response.status_code == 200
    page = response.content.decode()
    for label in [
        "Family name (legal)",
        "Date of birth",
        "Sex assigned at birth",
        "Gender identity",
        "Preferred language",
        "Race (optional)",
        "Social Security number",
        "Driver&#x27;s licence number",
        "Previous names and aliases",
        "Other and previous addresses",
        "Payer member ids",
        "Emergency contacts and personal representatives",
        "Legal authority",
    ]:
        assert label in page, label


def test_the_first_post_shows_the_check_and_saves_nothing(tech, personas, audit_rows):
    response = tech.post("/patients/register/", form_data(personas, step="check"))
    assert response.status_code == 200
    assert b"Is this person already on file?" in response.content
    assert b"No likely match at your facilities" in response.content
    # The summary masks the SSN; only the hidden re-post carries what was typed.
    assert b"<dd>***-**-9999</dd>" in response.content
    assert b"<dd>219-09-9999" not in response.content
    assert not Patient.objects.exists()
    assert audit_rows(action=Action.SEARCH)


def test_likely_matches_are_shown_with_their_reasons(tech, personas):
    existing = register_patient(
        personas, name=NameData(family="Wrenfield", given="Cordelia"), birth_date=_date()
    )
    response = tech.post(
        "/patients/register/", form_data(personas, given="Delia", ssn="", step="check")
    )
    page = response.content.decode()
    assert f'data-candidate="{existing.public_id}"' in page
    assert "Same family name" in page
    assert "Same date of birth" in page
    assert mrn_of(existing) in page
    assert f"/patients/{existing.public_id}/" in page  # open the existing chart
    assert "none of them is this person" in page


def _date():
    import datetime as dt

    return dt.date(1972, 5, 9)


def test_confirming_registers_with_an_mrn_and_goes_to_the_demographics(tech, personas, audit_rows):
    token = _check_token(tech.post("/patients/register/", form_data(personas, step="check")))
    response = _confirm(tech, personas, token, reviewed=False)
    patient = Patient.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{patient.public_id}/demographics/"
    assert mrn_of(patient, personas.facility).startswith("RR")
    version = patient.versions.get()
    assert "duplicate check (0 possible matches shown)" in version.reason
    ssn = patient.identifiers.get(kind="SS")
    assert crypto.decrypt(ssn.value_encrypted) == "219099999" and ssn.value == ""
    assert patient.telecoms.count() == 2 and patient.addresses.count() == 1
    (created,) = audit_rows(action=Action.CREATE, object_type="patient")
    assert created.patient_id == patient.public_id


def test_a_confirm_without_the_check_token_shows_the_check_again(tech, personas):
    response = _confirm(tech, personas, "forged")
    assert response.status_code == 200
    assert b"look at the matches again" in response.content
    assert not Patient.objects.exists()


def test_changing_the_details_after_the_check_needs_a_new_check(tech, personas):
    token = _check_token(tech.post("/patients/register/", form_data(personas, step="check")))
    response = _confirm(tech, personas, token, family="Wrenfeld")
    assert b"look at the matches again" in response.content
    assert not Patient.objects.exists()


def test_another_users_token_does_not_count(client, personas):
    sign_in(client, personas.administrator)
    token = _check_token(client.post("/patients/register/", form_data(personas, step="check")))
    client.logout()
    sign_in(client, personas.technician)
    _confirm(client, personas, token)
    assert not Patient.objects.exists()


def test_with_matches_the_technician_must_say_they_checked_them(tech, personas):
    register_patient(
        personas, name=NameData(family="Wrenfield", given="Cordelia"), birth_date=_date()
    )
    token = _check_token(tech.post("/patients/register/", form_data(personas, step="check")))
    response = _confirm(tech, personas, token, reviewed=False)
    assert response.status_code == 400
    assert b"Tick this box" in response.content
    assert Patient.objects.count() == 1
    response = _confirm(tech, personas, token, reviewed=True)
    assert response.status_code == 302
    assert Patient.objects.count() == 2
    assert "1 possible matches shown" in Patient.objects.latest("pk").versions.get().reason


def test_change_the_details_goes_back_to_the_filled_form(tech, personas):
    data = form_data(personas, step="edit")
    response = tech.post("/patients/register/", data)
    assert response.status_code == 200
    assert b'value="Wrenfield"' in response.content
    assert b"Check for existing patients" in response.content


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("birth_date", "2999-01-01", "in the future"),
        ("birth_date", "1972-02-30", "Enter a valid date"),
        ("family", "<b>Wrenfield</b>", "no digits, markup or symbols"),
        ("given", "Cord3lia", "no digits, markup or symbols"),
        ("ssn", "000-12-3456", "cannot start with 000"),
        ("ssn", "12-345", "9 digits"),
        ("phone_mobile", "555-01", "10 digits"),
        ("postal_code", "1106", "ZIP code"),
        ("line1", "<script>x</script>", "No markup"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_stored(
    tech, personas, field, value, message
):
    response = tech.post("/patients/register/", form_data(personas, step="check", **{field: value}))
    assert response.status_code == 400
    assert message.encode() in response.content
    assert not Patient.objects.exists()


def test_an_mrn_cannot_be_typed(tech, personas):
    response = tech.post(
        "/patients/register/",
        form_data(
            personas,
            step="check",
            identifiers=[{"kind": "MR", "value": "RR00000017", "issuer": ""}],
        ),
    )
    assert response.status_code == 400
    assert not Patient.objects.exists()


def test_a_facility_not_the_users_is_refused(tech, personas):
    response = tech.post(
        "/patients/register/",
        form_data(personas, step="check", facility=str(personas.other_facility.pk)),
    )
    assert response.status_code == 400
    assert not Patient.objects.exists()


REPRESENTATIVE = {
    "kind": "representative",
    "name": "Horace Wrenfield",
    "relationship": "son",
    "phone": "413-555-0123",
    "email": "",
    "authority": "healthcare_poa",
    "valid_from": "2020-01-01",
    "valid_until": "",
}


def test_a_representative_with_proof_of_authority(tech, personas):
    check = tech.post(
        "/patients/register/", form_data(personas, step="check", contacts=[REPRESENTATIVE])
    )
    assert b"Proof of authority for Horace Wrenfield" in check.content
    token = _check_token(check)
    upload = SimpleUploadedFile("poa-horace.pdf", PDF, content_type="application/pdf")
    response = _confirm(
        tech,
        personas,
        token,
        contacts=[REPRESENTATIVE],
        files={"contacts-0-authority_document": upload},
    )
    assert response.status_code == 302
    contact = PatientContact.objects.get()
    assert contact.authority == "healthcare_poa"
    assert contact.authority_document.name.endswith(".pdf")
    assert "horace" not in contact.authority_document.name.lower()
    import hashlib

    assert contact.authority_document_sha256 == hashlib.sha256(PDF).hexdigest()
    contact.authority_document.delete(save=False)


def test_a_document_that_is_not_a_pdf_or_image_is_refused_and_nothing_stored(tech, personas):
    token = _check_token(
        tech.post(
            "/patients/register/", form_data(personas, step="check", contacts=[REPRESENTATIVE])
        )
    )
    upload = SimpleUploadedFile("poa.exe", b"MZ\x90\x00 not a document", content_type="text/plain")
    response = _confirm(
        tech,
        personas,
        token,
        contacts=[REPRESENTATIVE],
        files={"contacts-0-authority_document": upload},
    )
    assert response.status_code == 400
    assert b"must be a PDF, PNG, JPEG or TIFF" in response.content
    assert not Patient.objects.exists()
    assert not PatientIdentifier.objects.exists()


def test_a_representative_needs_an_authority(tech, personas):
    response = tech.post(
        "/patients/register/",
        form_data(personas, step="check", contacts=[{**REPRESENTATIVE, "authority": ""}]),
    )
    assert response.status_code == 400
    assert b"acts under an authority" in response.content


def test_html_in_a_contact_name_is_refused(tech, personas):
    response = tech.post(
        "/patients/register/",
        form_data(
            personas,
            step="check",
            contacts=[{**REPRESENTATIVE, "name": "<img src=x onerror=alert(1)>"}],
        ),
    )
    assert response.status_code == 400
    assert b"<img src=x" not in response.content


def test_previous_names_addresses_and_member_ids_are_registered(tech, personas):
    extra = {
        "names": [{"use": "maiden", "family": "Oakes", "given": "Cordelia", "middle": ""}],
        "addresses": [
            {
                "use": "old",
                "line1": "9 Elm St",
                "line2": "",
                "city": "Amherst",
                "state": "MA",
                "postal_code": "01002",
            }
        ],
        "identifiers": [{"kind": "MB", "value": "XHP-3344-01", "issuer": "Acme Health Plan"}],
    }
    token = _check_token(
        tech.post("/patients/register/", form_data(personas, step="check", **extra))
    )
    assert _confirm(tech, personas, token, **extra).status_code == 302
    patient = Patient.objects.get()
    assert patient.names.filter(use="maiden", family="Oakes").exists()
    assert patient.addresses.filter(use="old", city="Amherst").exists()
    member = patient.identifiers.get(kind="MB")
    assert (member.value, member.issuer) == ("XHP334401", "Acme Health Plan")


# --- the four refusals -------------------------------------------------------------------


def test_it_requires_login(client, db):
    response = client.get("/patients/register/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", ["coder", "clinician", "roi_specialist", "patient"])
def test_it_denies_roles_that_cannot_register_and_audits(client, personas, persona, audit_rows):
    sign_in(client, getattr(personas, persona))
    assert client.get("/patients/register/").status_code == 403
    assert client.post("/patients/register/", form_data(personas, step="check")).status_code == 403
    denials = audit_rows(outcome=Outcome.DENIED)
    assert len(denials) == 2
    assert all(e.action == Action.CREATE for e in denials)
    assert not Patient.objects.exists()


def test_the_outsider_sees_no_candidates_from_another_facility(client, personas):
    register_patient(
        personas, name=NameData(family="Wrenfield", given="Cordelia"), birth_date=_date()
    )
    sign_in(client, personas.outsider)
    response = client.post(
        "/patients/register/",
        form_data(personas, step="check", facility=str(personas.other_facility.pk)),
    )
    assert response.status_code == 200
    assert b"No likely match at your facilities" in response.content


def test_a_user_without_a_facility_is_told_why(client, personas):
    personas.technician.facilities.clear()
    sign_in(client, personas.technician)
    response = client.post("/patients/register/", form_data(personas, step="check"))
    assert response.status_code == 400
    assert b"not attached to a facility" in response.content
    assert not Patient.objects.exists()
