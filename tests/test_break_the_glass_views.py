"""Breaking the glass from the restriction notice: a reason from the list, the emergency
in the user's words, the password again; then the chart, for a limited time."""

import datetime as dt

import pytest
import time_machine

from audit.models import Action, Outcome, Purpose
from encounters.models import Encounter, EncounterClass, EncounterStatus
from patients.access import RestrictedRecord, access_patient
from patients.actions import do_set_restriction
from patients.models import AccessGrant, Restriction
from recordroom import clock
from recordroom.testing import PASSWORD, register_patient, sign_in

pytestmark = pytest.mark.django_db
NOON = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
FORM = {
    "reason_code": "emergency_care",
    "details": "Unresponsive in the ED, need allergies and medications",
    "password": PASSWORD,
}


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def vip(personas, patient):
    do_set_restriction(
        patient, Restriction.VIP, reason="public figure", acting_user=personas.privacy_officer
    )
    return patient


def _url(patient):
    return f"/patients/{patient.public_id}/break-the-glass/"


@pytest.mark.parametrize("persona", ["other_clinician", "technician", "roi_specialist"])
def test_breaking_the_glass_opens_the_chart_for_a_limited_time(
    client, personas, vip, audit_rows, settings, persona
):
    user = getattr(personas, persona)
    sign_in(client, user, sudo=False)  # the form asks for the password itself
    with time_machine.travel(NOON, tick=False):
        response = client.post(_url(vip), FORM)
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{vip.public_id}/"
    grant = AccessGrant.objects.get()
    assert (grant.user, grant.patient, grant.kind) == (user, vip, AccessGrant.Kind.BREAK_THE_GLASS)
    assert grant.reason == (
        "Emergency care: the patient needs treatment now — "
        "Unresponsive in the ED, need allergies and medications"
    )
    assert grant.expires_at == NOON + dt.timedelta(minutes=settings.BREAK_THE_GLASS_MINUTES)
    assert grant.review_status == AccessGrant.Review.PENDING
    (event,) = audit_rows(action=Action.BREAK_THE_GLASS)
    assert (event.actor, event.outcome, event.purpose) == (user, Outcome.ALLOWED, Purpose.EMERGENCY)
    assert event.object_id == str(grant.public_id)
    assert event.path == _url(vip)

    with time_machine.travel(NOON + dt.timedelta(minutes=1), tick=False):
        assert access_patient(user, vip.public_id) == vip
    with time_machine.travel(grant.expires_at, tick=False), pytest.raises(RestrictedRecord):
        access_patient(user, vip.public_id)


def test_the_user_is_told_the_access_is_recorded_and_until_when(client, personas, vip, settings):
    settings.TIME_ZONE = "UTC"
    sign_in(client, personas.technician)
    with time_machine.travel(NOON, tick=False):
        response = client.post(_url(vip), FORM, follow=False)
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == [
        "Emergency access granted until 18:00. It is recorded and will be reviewed by the "
        "privacy officer."
    ]


@pytest.mark.parametrize("details", ["", "   ", "urgent", "  too   short "])
def test_a_reason_that_is_too_short_is_refused(client, personas, vip, audit_rows, details):
    sign_in(client, personas.technician)
    response = client.post(_url(vip), {**FORM, "details": details})
    assert response.status_code == 400
    errors = response.context["form"].errors["details"]
    assert errors in (
        ["Describe the emergency."],
        ["Describe the emergency in at least 10 characters."],
    )
    assert not AccessGrant.objects.exists()
    assert not audit_rows(action=Action.BREAK_THE_GLASS)
    # The notice is shown again, with what the user typed and without their password.
    assert b"This record is restricted" in response.content
    assert PASSWORD.encode() not in response.content


def test_a_reason_must_be_chosen_from_the_list(client, personas, vip):
    sign_in(client, personas.technician)
    for code in ["", "because"]:
        response = client.post(_url(vip), {**FORM, "reason_code": code})
        assert response.status_code == 400
        assert "reason_code" in response.context["form"].errors
    assert not AccessGrant.objects.exists()


def test_a_wrong_password_is_refused_and_audited(client, personas, vip, audit_rows):
    sign_in(client, personas.technician)
    response = client.post(_url(vip), {**FORM, "password": "not-my-password"})
    assert response.status_code == 400
    assert response.context["form"].errors["password"] == ["That is not your password."]
    assert not AccessGrant.objects.exists()
    (event,) = audit_rows(action=Action.BREAK_THE_GLASS)
    assert event.outcome == Outcome.DENIED
    assert event.patient_id == vip.public_id
    assert event.reason == "wrong password at break-the-glass"


def test_a_missing_password_is_refused(client, personas, vip, audit_rows):
    sign_in(client, personas.technician, sudo=True)
    response = client.post(_url(vip), {**FORM, "password": ""})
    assert response.status_code == 400
    assert response.context["form"].errors["password"] == ["Type your password to confirm."]
    assert not AccessGrant.objects.exists()


def test_it_refuses_get(client, personas, vip):
    sign_in(client, personas.technician)
    assert client.get(_url(vip)).status_code == 405


def test_it_requires_login(client, vip):
    response = client.post(_url(vip), FORM)
    assert response["Location"].startswith("/accounts/login/")
    assert not AccessGrant.objects.exists()


@pytest.mark.parametrize("persona", ["patient", "no_role"])
def test_a_user_without_the_permission_is_refused_and_audited(
    client, personas, vip, audit_rows, persona
):
    user = getattr(personas, persona)
    sign_in(client, user)
    response = client.post(_url(vip), FORM)
    assert response.status_code == 403
    assert not AccessGrant.objects.exists()
    (event,) = audit_rows(actor=user)
    assert event.outcome == Outcome.DENIED


def test_the_patient_persona_refusal_names_the_permission(client, personas, vip, audit_rows):
    sign_in(client, personas.patient)
    client.post(_url(vip), FORM)
    (event,) = audit_rows(actor=personas.patient)
    assert event.action == Action.BREAK_THE_GLASS
    assert event.reason == "lacks permission patients.break_the_glass"


def test_the_outsider_gets_404_and_it_is_audited(client, personas, vip, audit_rows):
    sign_in(client, personas.outsider)
    response = client.post(_url(vip), FORM)
    assert response.status_code == 404
    assert not AccessGrant.objects.exists()
    (event,) = audit_rows(actor=personas.outsider)
    assert (event.action, event.outcome) == (Action.BREAK_THE_GLASS, Outcome.DENIED)
    assert event.reason == "no such patient at the user's facilities"


def test_the_treating_clinician_needs_no_glass(client, personas, vip, audit_rows):
    now = clock.now()
    Encounter.objects.create(
        patient=vip,
        facility=personas.facility,
        visit_number="V000001",
        encounter_class=EncounterClass.INPATIENT,
        status=EncounterStatus.IN_PROGRESS,
        started_at=now,
        attending=personas.clinician,
        created_at=now,
        updated_at=now,
    )
    sign_in(client, personas.clinician)
    response = client.post(_url(vip), FORM)
    assert response["Location"] == f"/patients/{vip.public_id}/"
    assert not AccessGrant.objects.exists()
    assert not audit_rows(action=Action.BREAK_THE_GLASS)


def test_an_unrestricted_record_needs_no_glass(client, personas, patient):
    sign_in(client, personas.technician)
    assert client.post(_url(patient), FORM)["Location"] == f"/patients/{patient.public_id}/"
    assert not AccessGrant.objects.exists()


def test_markup_in_the_reason_is_kept_as_text(client, personas, vip):
    sign_in(client, personas.technician)
    hostile = "<script>alert(1)</script> trauma bay 2"
    client.post(_url(vip), {**FORM, "details": hostile})
    assert AccessGrant.objects.get().reason.endswith(hostile)


def test_a_second_request_while_the_grant_runs_adds_no_grant(client, personas, vip, audit_rows):
    sign_in(client, personas.technician)
    client.post(_url(vip), FORM)
    response = client.post(_url(vip), FORM)
    assert response["Location"] == f"/patients/{vip.public_id}/"
    assert AccessGrant.objects.count() == 1
    assert len(audit_rows(action=Action.BREAK_THE_GLASS)) == 1
