"""The demographics screen, the correction form, the version history with its field
diff, and unmasking a national identifier."""

import datetime as dt

import pytest

from audit.models import Action, Outcome
from patients.actions import do_set_restriction, mrn_of
from patients.models import Restriction
from recordroom.testing import register_patient, sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(personas):
    return register_patient(personas)


def _demographics(p):
    return f"/patients/{p.public_id}/demographics/"


def _edit(p):
    return f"/patients/{p.public_id}/demographics/edit/"


def _versions(p):
    return f"/patients/{p.public_id}/demographics/versions/"


def _reveal(p, identifier):
    return f"/patients/{p.public_id}/identifiers/{identifier.pk}/reveal/"


def _formset(prefix, rows=(), extra=1):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows) + extra),
        f"{prefix}-INITIAL_FORMS": str(len(rows)),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{i}-{key}"] = value
    return data


def correction(patient, **fields):
    """The correction form as the screen fills it for the registered test patient."""
    data = {
        "family": "Quillfeather",
        "given": "Marigold",
        "middle": "June",
        "suffix": "",
        "birth_date": "1968-04-12",
        "sex_at_birth": "F",
        "gender_identity": "",
        "preferred_language": "",
        "race": "",
        "ethnicity": "",
        "deceased_on": "",
        "line1": "12 Lantern Way",
        "line2": "",
        "city": "Springfield",
        "state": "MA",
        "postal_code": "01103",
        "phone_home": "",
        "phone_mobile": "(413) 555-0142",
        "phone_work": "",
        "email": "",
        "ssn": "",
        "drivers_license": "",
        "drivers_license_state": "",
        "keep_identifiers": [str(i.pk) for i in patient.identifiers.exclude(kind="MR")],
        "reason": "patient corrected their details at the desk",
        "version": str(patient.version),
        **_formset("names"),
        **_formset("addresses"),
        **_formset("identifiers"),
        **_formset("contacts"),
    }
    data.update(fields)
    return data


# --- demographics -------------------------------------------------------------------------


def test_the_demographics_screen_shows_the_mpi_elements_masked(
    client, personas, patient, audit_rows
):
    sign_in(client, personas.technician)
    response = client.get(_demographics(patient))
    assert response.status_code == 200
    page = response.content.decode()
    assert "QUILLFEATHER, Marigold June" in page
    assert "1968-04-12" in page
    assert mrn_of(patient) in page
    assert "***-**-6789" in page and "123-45-6789" not in page
    assert "12 Lantern Way" in page
    assert f"/patients/{patient.public_id}/" in page  # the chart
    assert "Correct demographics" in page
    assert "Show</button>" not in page  # a technician may not unmask
    (event,) = audit_rows(action=Action.VIEW)
    assert event.patient_id == patient.public_id and event.outcome == Outcome.ALLOWED


def test_the_demographics_screen_offers_unmasking_to_allowed_roles(client, personas, patient):
    sign_in(client, personas.roi_specialist)
    page = client.get(_demographics(patient)).content.decode()
    assert _reveal(patient, patient.identifiers.get(kind="SS")) in page
    assert "Correct demographics" not in page


def test_demographics_requires_login(client, patient):
    assert client.get(_demographics(patient))["Location"].startswith("/accounts/login/")


def test_demographics_denies_a_patient_role_and_audits(client, personas, patient, audit_rows):
    sign_in(client, personas.patient)
    assert client.get(_demographics(patient)).status_code == 403
    assert audit_rows(outcome=Outcome.DENIED)


def test_demographics_hides_the_patient_from_an_outsider(client, personas, patient, audit_rows):
    sign_in(client, personas.outsider)
    assert client.get(_demographics(patient)).status_code == 404
    assert audit_rows(outcome=Outcome.DENIED)


def test_a_restricted_patient_leads_to_the_notice(client, personas, patient):
    do_set_restriction(patient, Restriction.VIP, reason="vip", acting_user=personas.administrator)
    sign_in(client, personas.technician)
    response = client.get(_demographics(patient))
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{patient.public_id}/restricted/"


# --- correction -------------------------------------------------------------------------------


def test_the_correction_form_is_filled_from_the_record(client, personas, patient):
    sign_in(client, personas.technician)
    response = client.get(_edit(patient))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="Quillfeather"' in page
    assert 'value="12 Lantern Way"' in page
    assert "Social Security number ***-**-6789" in page
    assert 'name="version" value="1"' in page


def test_a_correction_through_the_screen(client, personas, patient, audit_rows):
    sign_in(client, personas.technician)
    response = client.post(
        _edit(patient),
        correction(
            patient,
            family="Ashgrove",
            line1="3 Ferry Road",
            city="Holyoke",
            postal_code="01040",
            **_formset("identifiers", [{"kind": "MB", "value": "QH-55", "issuer": "Acme Health"}]),
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == _demographics(patient)
    patient.refresh_from_db()
    assert (patient.family_name, patient.version) == ("Ashgrove", 2)
    assert patient.names.get(family="Quillfeather").use == "old"
    assert patient.addresses.get(line1="12 Lantern Way").use == "old"
    assert patient.identifiers.get(kind="SS").active
    assert patient.identifiers.get(kind="MB").value == "QH55"
    (event,) = audit_rows(action=Action.UPDATE, outcome=Outcome.ALLOWED, object_type="patient")
    assert event.detail["changed"] == ["addresses", "identifiers", "name"]


def test_unticking_an_identifier_deactivates_it(client, personas, patient):
    sign_in(client, personas.technician)
    response = client.post(_edit(patient), correction(patient, keep_identifiers=[]))
    assert response.status_code == 302
    assert not patient.identifiers.get(kind="SS").active


def test_a_correction_needs_a_reason(client, personas, patient):
    sign_in(client, personas.technician)
    response = client.post(_edit(patient), correction(patient, family="Ashgrove", reason=""))
    assert response.status_code == 400
    patient.refresh_from_db()
    assert patient.version == 1


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("birth_date", "2999-01-01", "in the future"),
        ("given", "<i>Mari</i>", "no digits, markup or symbols"),
        ("ssn", "666-12-3456", "cannot start with 000, 666 or 9"),
        ("deceased_on", "1950-01-01", "before the date of birth"),
    ],
)
def test_bad_corrections_are_refused_with_the_message(
    client, personas, patient, field, value, message
):
    sign_in(client, personas.technician)
    response = client.post(_edit(patient), correction(patient, **{field: value}))
    assert response.status_code == 400
    assert message.encode() in response.content
    patient.refresh_from_db()
    assert patient.version == 1


def test_nothing_changed_says_so(client, personas, patient):
    sign_in(client, personas.technician)
    response = client.post(_edit(patient), correction(patient))
    assert response.status_code == 400
    assert b"Nothing changed" in response.content


def test_a_stale_correction_is_refused(client, personas, patient):
    sign_in(client, personas.technician)
    assert client.post(_edit(patient), correction(patient, sex_at_birth="M")).status_code == 302
    response = client.post(_edit(patient), correction(patient, sex_at_birth="UNK", version="1"))
    assert response.status_code == 400
    assert b"Someone else changed" in response.content


def test_correction_requires_login(client, patient):
    assert client.get(_edit(patient))["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", ["coder", "clinician", "roi_specialist"])
def test_correction_denies_roles_without_the_permission_and_audits(
    client, personas, patient, persona, audit_rows
):
    sign_in(client, getattr(personas, persona))
    assert client.get(_edit(patient)).status_code == 403
    assert client.post(_edit(patient), correction(patient, family="Ashgrove")).status_code == 403
    denials = audit_rows(outcome=Outcome.DENIED)
    assert len(denials) == 2 and all(e.action == Action.UPDATE for e in denials)
    patient.refresh_from_db()
    assert patient.family_name == "Quillfeather"


def test_correction_hides_the_patient_from_an_outsider(client, personas, patient):
    sign_in(client, personas.outsider)
    assert client.get(_edit(patient)).status_code == 404
    assert client.post(_edit(patient), correction(patient, family="X")).status_code == 404


# --- versions ---------------------------------------------------------------------------------


def test_the_version_history_shows_who_when_why_and_the_field_diff(client, personas, patient):
    sign_in(client, personas.technician)
    client.post(
        _edit(patient),
        correction(
            patient,
            family="Ashgrove",
            phone_mobile="413-555-0100",
            reason="married; licence seen",
        ),
    )
    response = client.get(_versions(patient))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Version 2" in page and "Version 1" in page
    assert "married; licence seen" in page
    assert personas.technician.display_name in page
    assert "<del>QUILLFEATHER, Marigold June</del>" in page
    assert "<ins>ASHGROVE, Marigold June</ins>" in page
    assert "<ins>Previous name: QUILLFEATHER, Marigold June</ins>" in page
    assert "<del>Mobile phone: (413) 555-0142</del>" in page
    assert "<ins>Mobile phone: (413) 555-0142 — no longer in use</ins>" in page
    assert "123-45-6789" not in page


def test_diff_snapshots_lists_only_what_changed():
    from patients.views import diff_snapshots

    old = {"name": {"family": "A", "given": "B"}, "birth_date": "2000-01-01", "names": []}
    new = {"name": {"family": "A", "given": "B"}, "birth_date": "2000-01-02", "names": []}
    (change,) = diff_snapshots(old, new)
    assert (change.field, change.before, change.after) == (
        "Date of birth",
        ["2000-01-01"],
        ["2000-01-02"],
    )


def test_versions_require_login(client, patient):
    assert client.get(_versions(patient))["Location"].startswith("/accounts/login/")


def test_versions_deny_a_patient_role_and_audit(client, personas, patient, audit_rows):
    sign_in(client, personas.patient)
    assert client.get(_versions(patient)).status_code == 403
    assert audit_rows(outcome=Outcome.DENIED)


def test_versions_hide_the_patient_from_an_outsider(client, personas, patient):
    sign_in(client, personas.outsider)
    assert client.get(_versions(patient)).status_code == 404


def test_viewing_versions_is_audited(client, personas, patient, audit_rows):
    sign_in(client, personas.coder)
    assert client.get(_versions(patient)).status_code == 200
    (event,) = audit_rows(action=Action.VIEW)
    assert event.patient_id == patient.public_id


# --- unmasking ----------------------------------------------------------------------------------


def test_an_allowed_role_sees_the_ssn_once_and_it_is_audited(client, personas, patient, audit_rows):
    ssn = patient.identifiers.get(kind="SS")
    sign_in(client, personas.roi_specialist)
    response = client.post(_reveal(patient, ssn), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b"123-45-6789" in response.content
    assert b"<html" not in response.content
    assert response["Cache-Control"] == "no-store"
    (event,) = audit_rows(object_type="patient_identifier")
    assert event.outcome == Outcome.ALLOWED
    assert event.detail == {"kind": "SS", "unmasked": True}
    assert event.patient_id == patient.public_id
    assert "6789" not in str(event.detail) + event.reason


def test_without_htmx_the_value_is_shown_on_a_page(client, personas, patient):
    sign_in(client, personas.administrator, sudo=True)
    response = client.post(_reveal(patient, patient.identifiers.get(kind="SS")))
    assert response.status_code == 200
    assert b"123-45-6789" in response.content
    assert b"Back to the demographics" in response.content


def test_reveal_refuses_get(client, personas, patient):
    sign_in(client, personas.roi_specialist)
    assert client.get(_reveal(patient, patient.identifiers.get(kind="SS"))).status_code == 405


def test_reveal_requires_login(client, patient):
    response = client.post(_reveal(patient, patient.identifiers.get(kind="SS")))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", ["technician", "coder", "clinician"])
def test_reveal_denies_roles_without_the_permission_and_audits(
    client, personas, patient, persona, audit_rows
):
    sign_in(client, getattr(personas, persona))
    response = client.post(_reveal(patient, patient.identifiers.get(kind="SS")))
    assert response.status_code == 403
    assert b"123-45-6789" not in response.content
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.object_type == "patient_identifier"


def test_reveal_hides_the_patient_from_an_outsider(client, personas, patient, audit_rows):
    outsider = personas.outsider
    from django.contrib.auth.models import Group

    outsider.groups.add(Group.objects.get(name="roi_specialist"))
    sign_in(client, outsider)
    response = client.post(_reveal(patient, patient.identifiers.get(kind="SS")))
    assert response.status_code == 404
    assert audit_rows(outcome=Outcome.DENIED)


def test_reveal_of_another_patients_identifier_is_404(client, personas, patient):
    other = register_patient(personas, family="Otherly", birth_date=dt.date(1990, 1, 1))
    sign_in(client, personas.roi_specialist)
    response = client.post(_reveal(patient, other.identifiers.get(kind="SS")))
    assert response.status_code == 404


def test_reveal_of_a_plain_identifier_is_404(client, personas, patient):
    sign_in(client, personas.roi_specialist)
    assert client.post(_reveal(patient, patient.identifiers.get(kind="MR"))).status_code == 404
