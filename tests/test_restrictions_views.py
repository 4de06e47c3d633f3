"""The restriction notice (what a user without a relationship sees) and the restriction
page (where the privacy officer or HIM administrator sets VIP, employee, confidential)."""

import pytest

from audit.models import Action, Outcome, Purpose
from encounters.models import Encounter, EncounterClass, EncounterStatus
from patients.actions import do_break_the_glass, do_set_restriction
from patients.models import Patient, Restriction
from recordroom import clock
from recordroom.testing import make_user, register_patient, sign_in

pytestmark = pytest.mark.django_db
REASON = "Unresponsive in the emergency department, need allergies"


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def vip(personas, patient):
    do_set_restriction(
        patient, Restriction.VIP, reason="public figure", acting_user=personas.privacy_officer
    )
    return patient


def _notice(vip):
    return f"/patients/{vip.public_id}/restricted/"


def _restriction(patient):
    return f"/patients/{patient.public_id}/restriction/"


# --- the notice --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "restriction, words",
    [
        (Restriction.VIP, "person of public interest"),
        (Restriction.EMPLOYEE, "works for this organisation"),
        (Restriction.CONFIDENTIAL, "extra confidentiality"),
    ],
)
def test_the_notice_says_why_and_that_access_is_monitored(
    client, personas, patient, audit_rows, restriction, words
):
    do_set_restriction(patient, restriction, reason="flagged", acting_user=personas.administrator)
    sign_in(client, personas.technician)
    response = client.get(_notice(patient))
    assert response.status_code == 200
    page = response.content.decode()
    assert str(patient.public_id) in page
    assert words in page
    assert "monitored" in page
    assert "Break the glass" in page
    assert 'name="reason_code"' in page and 'name="details"' in page
    assert 'type="password"' in page
    assert f'action="/patients/{patient.public_id}/break-the-glass/"' in page
    (event,) = audit_rows(object_type="patient.restriction_notice")
    assert event.actor == personas.technician
    assert event.outcome == Outcome.ALLOWED
    assert event.patient_id == patient.public_id
    assert event.detail == {"restriction": restriction.value, "may_open": False}


def test_the_notice_shows_no_name_date_of_birth_or_mrn(client, personas, vip):
    sign_in(client, personas.other_clinician)
    page = client.get(_notice(vip)).content.decode()
    mrn = vip.identifiers.get(kind="MR").value
    for secret in ["Quillfeather", "QUILLFEATHER", "Marigold", "1968", "6789", mrn]:
        assert secret not in page


def test_a_user_who_cannot_break_the_glass_sees_the_notice_without_the_form(client, personas, vip):
    # No role of the department reads demographics without break-the-glass; a local
    # group granting only the read shows the notice's other branch.
    from django.contrib.auth.models import Group, Permission

    readers = Group.objects.create(name="demographics readers")
    readers.permissions.add(
        Permission.objects.get(codename="read_demographics", content_type__app_label="patients")
    )
    user = make_user("rita.reader", "patient")
    user.groups.add(readers)
    user.facilities.add(personas.facility)
    sign_in(client, user)
    response = client.get(_notice(vip))
    assert response.status_code == 200
    assert b"cannot open restricted records" in response.content
    assert b'name="password"' not in response.content


def test_a_user_who_may_open_the_record_goes_to_the_chart(client, personas, vip):
    now = clock.now()
    Encounter.objects.create(
        patient=vip,
        facility=personas.facility,
        visit_number="V000001",
        encounter_class=EncounterClass.EMERGENCY,
        status=EncounterStatus.IN_PROGRESS,
        started_at=now,
        attending=personas.clinician,
        created_at=now,
        updated_at=now,
    )
    sign_in(client, personas.clinician)
    response = client.get(_notice(vip))
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{vip.public_id}/"


def test_an_unrestricted_record_goes_to_the_chart(client, personas, patient):
    sign_in(client, personas.technician)
    assert client.get(_notice(patient))["Location"] == f"/patients/{patient.public_id}/"


def test_after_breaking_the_glass_the_notice_sends_to_the_chart(client, personas, vip):
    do_break_the_glass(vip, reason=REASON, acting_user=personas.technician)
    sign_in(client, personas.technician)
    assert client.get(_notice(vip))["Location"] == f"/patients/{vip.public_id}/"


def test_the_notice_requires_login(client, vip):
    assert client.get(_notice(vip))["Location"].startswith("/accounts/login/")


def test_the_notice_refuses_post(client, personas, vip):
    sign_in(client, personas.technician)
    assert client.post(_notice(vip)).status_code == 405


@pytest.mark.parametrize("persona", ["patient", "no_role"])
def test_the_notice_is_refused_to_a_user_without_the_permission_and_audited(
    client, personas, vip, audit_rows, persona
):
    user = getattr(personas, persona)
    sign_in(client, user)
    response = client.get(_notice(vip))
    assert response.status_code == 403
    assert str(vip.public_id).encode() not in response.content
    (event,) = audit_rows(actor=user, outcome=Outcome.DENIED)
    assert event.action == Action.VIEW
    assert not audit_rows(object_type="patient.restriction_notice")


def test_the_outsider_gets_404_and_it_is_audited(client, personas, vip, audit_rows):
    sign_in(client, personas.outsider)
    response = client.get(_notice(vip))
    assert response.status_code == 404
    assert b"VIP" not in response.content
    (event,) = audit_rows(actor=personas.outsider)
    assert event.outcome == Outcome.DENIED
    assert event.reason == "no such patient at the user's facilities"


def test_an_unknown_record_is_404(client, personas):
    sign_in(client, personas.technician)
    assert (
        client.get("/patients/00000000-0000-4000-8000-000000000000/restricted/").status_code == 404
    )


# --- the restriction page ------------------------------------------------------------------


@pytest.fixture
def officer(client, personas):
    return sign_in(client, personas.privacy_officer, sudo=True)


def test_the_privacy_officer_sees_the_restriction_and_its_history(
    officer, personas, vip, audit_rows
):
    response = officer.get(_restriction(vip))
    assert response.status_code == 200
    page = response.content.decode()
    assert "QUILLFEATHER, Marigold June" in page
    assert vip.identifiers.get(kind="MR").value in page
    history = response.context["page"].history
    assert [(c.version, c.restriction, c.reason) for c in history] == [(2, "vip", "public figure")]
    assert history[0].changed_by == personas.privacy_officer.username
    (event,) = audit_rows(action=Action.VIEW, outcome=Outcome.ALLOWED)
    assert event.purpose == Purpose.SECURITY
    assert event.patient_id == vip.public_id


def test_the_privacy_officer_flags_a_patient_confidential(officer, personas, patient, audit_rows):
    response = officer.post(
        _restriction(patient), {"restriction": "confidential", "reason": "patient request, DV"}
    )
    assert response.status_code == 302
    assert response["Location"] == _restriction(patient)
    stored = Patient.objects.get(pk=patient.pk)
    assert stored.restriction == Restriction.CONFIDENTIAL
    assert stored.versions.get(number=2).reason == "patient request, DV"
    (event,) = audit_rows(action=Action.UPDATE)
    assert event.actor == personas.privacy_officer
    assert event.detail == {"restriction": {"from": "", "to": "confidential"}}


def test_the_administrator_lifts_a_restriction(client, personas, vip):
    sign_in(client, personas.administrator, sudo=True)
    response = client.post(_restriction(vip), {"restriction": "none", "reason": "no longer staff"})
    assert response.status_code == 302
    assert Patient.objects.get(pk=vip.pk).restriction == ""
    history = client.get(_restriction(vip)).context["page"].history
    assert [(c.version, c.restriction) for c in history] == [(3, ""), (2, "vip")]


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"restriction": "vip", "reason": "again"}, "restriction", "already has this restriction"),
        ({"restriction": "celebrity", "reason": "famous"}, "restriction", "valid choice"),
        ({"restriction": "employee", "reason": "  "}, "reason", "Say why"),
        ({"restriction": "employee", "reason": "x" * 301}, "reason", "at most 300"),
        ({"reason": "famous"}, "restriction", "Choose a restriction"),
    ],
)
def test_bad_input_is_refused_clearly_and_nothing_changes(
    officer, vip, audit_rows, data, field, message
):
    response = officer.post(_restriction(vip), data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    stored = Patient.objects.get(pk=vip.pk)
    assert (stored.restriction, stored.version) == ("vip", 2)
    assert not audit_rows(action=Action.UPDATE)


def test_the_restriction_page_asks_for_the_password_again(client, personas, vip):
    sign_in(client, personas.privacy_officer, sudo=False)
    response = client.get(_restriction(vip))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/confirm-password/")


def test_the_restriction_page_requires_login(client, vip):
    assert client.get(_restriction(vip))["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", ["technician", "clinician", "coder", "patient"])
def test_other_roles_are_refused_and_audited(client, personas, vip, audit_rows, persona):
    user = getattr(personas, persona)
    sign_in(client, user, sudo=True)
    assert client.get(_restriction(vip)).status_code == 403
    response = client.post(_restriction(vip), {"restriction": "none", "reason": "lift it"})
    assert response.status_code == 403
    assert Patient.objects.get(pk=vip.pk).restriction == "vip"
    events = audit_rows(actor=user)
    assert len(events) == 2
    assert {e.outcome for e in events} == {Outcome.DENIED}
    assert {e.reason for e in events} == {"lacks permission patients.manage_restrictions"}


def test_a_privacy_officer_of_another_facility_gets_404_and_it_is_audited(
    client, personas, vip, audit_rows
):
    elsewhere = make_user("priya.elsewhere", "privacy_officer")
    elsewhere.facilities.add(personas.other_facility)
    sign_in(client, elsewhere, sudo=True)
    assert client.get(_restriction(vip)).status_code == 404
    response = client.post(_restriction(vip), {"restriction": "none", "reason": "lift it"})
    assert response.status_code == 404
    assert Patient.objects.get(pk=vip.pk).restriction == "vip"
    events = audit_rows(actor=elsewhere, outcome=Outcome.DENIED)
    assert [e.reason for e in events] == ["no such patient at the user's facilities"] * 2
