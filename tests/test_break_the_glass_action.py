"""Break-the-glass (patients.actions): a stated reason, a time-limited grant audited as
emergency access, and a review by the privacy officer that closes it once."""

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError

from accounts.access import AccessDenied
from audit.models import Action, Outcome, Purpose
from patients.access import RestrictedRecord, Scope, access_patient, active_grant
from patients.actions import do_break_the_glass, do_review_break_the_glass, do_set_restriction
from patients.models import AccessGrant, Restriction
from recordroom.testing import register_patient

pytestmark = pytest.mark.django_db
NOON = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
REASON = "Unresponsive in the emergency department, need allergies"


@pytest.fixture
def vip(personas):
    patient = register_patient(personas)
    do_set_restriction(
        patient, Restriction.VIP, reason="public figure", acting_user=personas.privacy_officer
    )
    return patient


@pytest.fixture
def grant(personas, vip):
    with time_machine.travel(NOON, tick=False):
        return do_break_the_glass(vip, reason=REASON, acting_user=personas.other_clinician)


def test_it_grants_time_limited_access_waiting_for_review(personas, vip, audit_rows, settings):
    settings.BREAK_THE_GLASS_MINUTES = 45
    with time_machine.travel(NOON, tick=False):
        grant = do_break_the_glass(vip, reason=f"  {REASON}  ", acting_user=personas.coder)
    assert grant.kind == AccessGrant.Kind.BREAK_THE_GLASS
    assert grant.reason == REASON
    assert grant.granted_at == NOON
    assert grant.expires_at == NOON + dt.timedelta(minutes=45)
    assert grant.review_status == AccessGrant.Review.PENDING
    assert grant.user == grant.granted_by == personas.coder
    (event,) = audit_rows(action=Action.BREAK_THE_GLASS)
    assert event.outcome == Outcome.ALLOWED
    assert event.purpose == Purpose.EMERGENCY
    assert event.patient_id == vip.public_id
    assert (event.object_type, event.object_id) == ("access_grant", str(grant.public_id))
    assert event.reason == REASON
    assert event.detail == {"minutes": 45}


def test_the_grant_opens_the_record_and_each_view_names_it(personas, vip, grant, audit_rows):
    with time_machine.travel(NOON + dt.timedelta(minutes=5), tick=False):
        assert access_patient(personas.other_clinician, vip.public_id, scope=Scope.CLINICAL) == vip
    (event,) = audit_rows(action=Action.VIEW)
    assert event.outcome == Outcome.ALLOWED
    assert event.detail == {"scope": "clinical", "break_the_glass": str(grant.public_id)}


def test_the_grant_is_for_that_user_and_that_patient_only(personas, vip, grant):
    other_patient = register_patient(personas, family="Brightwater", given="Oswin")
    do_set_restriction(
        other_patient, Restriction.EMPLOYEE, reason="staff", acting_user=personas.administrator
    )
    with time_machine.travel(NOON + dt.timedelta(minutes=5), tick=False):
        with pytest.raises(RestrictedRecord):
            access_patient(personas.coder, vip.public_id)
        with pytest.raises(RestrictedRecord):
            access_patient(personas.other_clinician, other_patient.public_id)


def test_an_expired_grant_no_longer_opens_the_record(personas, vip, grant, audit_rows, settings):
    expiry = NOON + dt.timedelta(minutes=settings.BREAK_THE_GLASS_MINUTES)
    with time_machine.travel(expiry - dt.timedelta(seconds=1), tick=False):
        assert access_patient(personas.other_clinician, vip.public_id) == vip
    with time_machine.travel(expiry, tick=False):
        assert active_grant(personas.other_clinician, vip) is None
        with pytest.raises(RestrictedRecord):
            access_patient(personas.other_clinician, vip.public_id)
    denied = audit_rows(action=Action.VIEW, outcome=Outcome.DENIED)
    assert [e.occurred_at for e in denied] == [expiry]


@pytest.mark.parametrize("reason", ["", "   ", "urgent", "  too short  "])
def test_a_reason_that_is_too_short_is_refused_and_nothing_is_written(
    personas, vip, audit_rows, reason
):
    with pytest.raises(ValidationError) as raised:
        do_break_the_glass(vip, reason=reason, acting_user=personas.other_clinician)
    assert "at least 10 characters" in str(raised.value)
    assert not AccessGrant.objects.exists()
    assert not audit_rows(action=Action.BREAK_THE_GLASS)


@pytest.mark.parametrize("persona", ["patient", "no_role"])
def test_a_user_without_the_permission_is_refused_and_audited(personas, vip, audit_rows, persona):
    user = getattr(personas, persona)
    with pytest.raises(AccessDenied):
        do_break_the_glass(vip, reason=REASON, acting_user=user)
    assert not AccessGrant.objects.exists()
    (event,) = audit_rows(action=Action.BREAK_THE_GLASS)
    assert event.outcome == Outcome.DENIED
    assert event.actor == user
    assert event.patient_id == vip.public_id
    assert event.reason == "lacks permission patients.break_the_glass"


# --- the review --------------------------------------------------------------------------


def test_the_privacy_officer_reviews_it_once(personas, grant, audit_rows):
    do_review_break_the_glass(
        grant,
        status="appropriate",
        note="  ED visit confirmed  ",
        acting_user=personas.privacy_officer,
    )
    grant.refresh_from_db()
    assert grant.review_status == AccessGrant.Review.APPROPRIATE
    assert grant.review_note == "ED visit confirmed"
    assert grant.reviewed_by == personas.privacy_officer
    assert grant.reviewed_at is not None
    (event,) = audit_rows(action=Action.UPDATE, object_type="access_grant")
    assert event.purpose == Purpose.COMPLIANCE
    assert event.detail == {"status": "appropriate"}
    assert event.patient_id == grant.patient.public_id

    with pytest.raises(ValidationError, match="already been reviewed"):
        do_review_break_the_glass(
            grant,
            status="inappropriate",
            note="changed my mind",
            acting_user=personas.privacy_officer,
        )
    grant.refresh_from_db()
    assert grant.review_status == AccessGrant.Review.APPROPRIATE
    assert len(audit_rows(action=Action.UPDATE, object_type="access_grant")) == 1


def test_a_second_review_from_a_stale_copy_is_refused(personas, grant):
    stale = AccessGrant.objects.get(pk=grant.pk)
    do_review_break_the_glass(
        grant, status="appropriate", note="", acting_user=personas.privacy_officer
    )
    with pytest.raises(ValidationError, match="already been reviewed"):
        do_review_break_the_glass(
            stale, status="inappropriate", note="no emergency", acting_user=personas.privacy_officer
        )
    grant.refresh_from_db()
    assert grant.review_status == AccessGrant.Review.APPROPRIATE


def test_an_inappropriate_finding_needs_a_note(personas, grant):
    with pytest.raises(ValidationError, match="what was inappropriate"):
        do_review_break_the_glass(
            grant, status="inappropriate", note="  ", acting_user=personas.privacy_officer
        )
    grant.refresh_from_db()
    assert grant.review_status == AccessGrant.Review.PENDING


@pytest.mark.parametrize("status", ["", "pending", "fine"])
def test_an_unknown_finding_is_refused(personas, grant, status):
    with pytest.raises(ValidationError, match="appropriate or inappropriate"):
        do_review_break_the_glass(
            grant, status=status, note="x", acting_user=personas.privacy_officer
        )


@pytest.mark.parametrize("persona", ["other_clinician", "technician", "administrator", "patient"])
def test_only_a_reviewer_may_review_and_refusals_are_audited(personas, grant, audit_rows, persona):
    user = getattr(personas, persona)
    with pytest.raises(AccessDenied):
        do_review_break_the_glass(grant, status="appropriate", note="", acting_user=user)
    grant.refresh_from_db()
    assert grant.review_status == AccessGrant.Review.PENDING
    (event,) = audit_rows(actor=user)
    assert event.outcome == Outcome.DENIED
    assert event.object_id == str(grant.public_id)
