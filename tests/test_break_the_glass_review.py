"""The privacy officer's review of break-the-glass accesses: the queue (oldest first),
one access with everything its holder did during it, the finding that closes it, and
the home-page panel."""

import datetime as dt

import pytest
import time_machine

from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from patients.access import access_patient
from patients.actions import do_break_the_glass, do_review_break_the_glass, do_set_restriction
from patients.models import AccessGrant, Restriction
from recordroom.testing import make_user, register_patient, sign_in

pytestmark = pytest.mark.django_db
NOON = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
REASON = "Unresponsive in the emergency department, need allergies"


def _restricted(personas, **names):
    patient = register_patient(personas, **names)
    do_set_restriction(
        patient, Restriction.VIP, reason="public figure", acting_user=personas.administrator
    )
    return patient


def _glass(patient, user, at, reason=REASON):
    with time_machine.travel(at, tick=False):
        return do_break_the_glass(patient, reason=reason, acting_user=user)


@pytest.fixture
def vip(personas):
    return _restricted(personas)


@pytest.fixture
def grant(personas, vip):
    return _glass(vip, personas.other_clinician, NOON)


@pytest.fixture
def officer(client, personas):
    return sign_in(client, personas.privacy_officer)


def _review(grant):
    return f"/patients/break-the-glass/{grant.public_id}/"


# --- the queue ---------------------------------------------------------------------------


def test_the_queue_lists_pending_accesses_oldest_first(officer, personas, vip, audit_rows):
    later = _glass(vip, personas.technician, NOON + dt.timedelta(hours=2))
    first = _glass(vip, personas.other_clinician, NOON)
    reviewed = _glass(vip, personas.coder, NOON - dt.timedelta(days=1))
    do_review_break_the_glass(
        reviewed, status="appropriate", note="", acting_user=personas.privacy_officer
    )

    response = officer.get("/patients/break-the-glass/")
    assert response.status_code == 200
    queue = response.context["queue"]
    assert [g.public_id for g in queue.grants] == [first.public_id, later.public_id]
    assert queue.count == 2
    page = response.content.decode()
    mrn = vip.identifiers.get(kind="MR").value
    assert f"MRN {mrn}" in page
    assert "dr.olga" in page and "tina.tech" in page
    assert "Unresponsive in the emergency department" in page
    assert "QUILLFEATHER" not in page  # the queue names the record, not the person
    (event,) = audit_rows(action=Action.SEARCH, object_type="access_grant")
    assert event.actor == personas.privacy_officer
    assert event.purpose == Purpose.COMPLIANCE
    assert event.detail == {
        "queue": "pending",
        "page": 1,
        "grants": [str(first.public_id), str(later.public_id)],
    }


def test_the_reviewed_tab_lists_closed_accesses_latest_review_first(officer, personas, vip):
    older = _glass(vip, personas.technician, NOON)
    newer = _glass(vip, personas.coder, NOON + dt.timedelta(minutes=5))
    _glass(vip, personas.roi_specialist, NOON + dt.timedelta(minutes=10))  # still pending
    with time_machine.travel(NOON + dt.timedelta(days=1), tick=False):
        do_review_break_the_glass(
            older, status="appropriate", note="", acting_user=personas.privacy_officer
        )
    with time_machine.travel(NOON + dt.timedelta(days=2), tick=False):
        do_review_break_the_glass(
            newer, status="inappropriate", note="no emergency", acting_user=personas.privacy_officer
        )
    response = officer.get("/patients/break-the-glass/", {"tab": "reviewed"})
    assert response.status_code == 200
    assert [g.public_id for g in response.context["queue"].grants] == [
        newer.public_id,
        older.public_id,
    ]
    assert b"Inappropriate" in response.content


def test_the_queue_pages(officer, personas, vip):
    for minute in range(30):
        _glass(vip, personas.technician, NOON + dt.timedelta(minutes=minute))
    first = officer.get("/patients/break-the-glass/").context["queue"]
    assert (len(first.grants), first.count, first.pages, first.has_next) == (25, 30, 2, True)
    second = officer.get("/patients/break-the-glass/", {"page": "2"}).context["queue"]
    assert (len(second.grants), second.number, second.has_previous) == (5, 2, True)
    assert second.grants[-1].granted_at == NOON + dt.timedelta(minutes=29)
    assert officer.get("/patients/break-the-glass/", {"page": "zz"}).status_code == 200


def test_the_queue_does_not_grow_queries_with_its_rows(
    officer, personas, vip, django_assert_max_num_queries
):
    for minute in range(3):
        _glass(vip, personas.technician, NOON + dt.timedelta(minutes=minute))
    with django_assert_max_num_queries(30) as few:
        officer.get("/patients/break-the-glass/")
    for minute in range(3, 20):
        _glass(vip, personas.technician, NOON + dt.timedelta(minutes=minute))
    with django_assert_max_num_queries(len(few.captured_queries)):
        officer.get("/patients/break-the-glass/")


def test_the_queue_shows_only_the_officers_facilities(client, personas, grant):
    elsewhere = make_user("priya.elsewhere", "privacy_officer")
    elsewhere.facilities.add(personas.other_facility)
    sign_in(client, elsewhere)
    response = client.get("/patients/break-the-glass/")
    assert response.status_code == 200
    assert response.context["queue"].grants == []
    assert b"Nothing waiting for review" in response.content


def test_markup_in_a_reason_is_escaped(officer, personas, vip):
    _glass(vip, personas.technician, NOON, reason="<script>alert(1)</script> in the trauma bay")
    page = officer.get("/patients/break-the-glass/").content.decode()
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_queue_requires_login(client, db):
    assert client.get("/patients/break-the-glass/")["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", ["technician", "clinician", "administrator", "patient"])
def test_other_roles_are_refused_the_queue_and_audited(
    client, personas, grant, audit_rows, persona
):
    user = getattr(personas, persona)
    sign_in(client, user)
    assert client.get("/patients/break-the-glass/").status_code == 403
    (event,) = audit_rows(actor=user)
    assert event.outcome == Outcome.DENIED
    assert event.reason == "lacks permission patients.review_break_the_glass"


def test_the_queue_refuses_post(officer):
    assert officer.post("/patients/break-the-glass/").status_code == 405


# --- one access under review ---------------------------------------------------------------


def test_the_review_page_lists_what_the_user_did_during_the_access(
    officer, personas, vip, grant, audit_rows
):
    other_patient = register_patient(personas, family="Brightwater", given="Oswin")
    expiry = grant.expires_at
    with time_machine.travel(NOON - dt.timedelta(minutes=5), tick=False):
        record_event(
            personas.other_clinician, Action.VIEW, patient_id=vip.public_id, object_type="patient"
        )
    with time_machine.travel(NOON + dt.timedelta(minutes=3), tick=False):
        access_patient(personas.other_clinician, vip.public_id)
        record_event(
            personas.other_clinician,
            Action.PRINT,
            patient_id=vip.public_id,
            object_type="document",
            object_id="d-1",
        )
        access_patient(personas.other_clinician, other_patient.public_id)  # another patient
        record_event(personas.technician, Action.VIEW, patient_id=vip.public_id)  # another user
    with time_machine.travel(expiry + dt.timedelta(minutes=1), tick=False):
        record_event(
            personas.other_clinician, Action.VIEW, patient_id=vip.public_id, object_type="patient"
        )

    response = officer.get(_review(grant))
    assert response.status_code == 200
    review = response.context["review"]
    assert [(e.action, e.object_type) for e in review.accesses] == [
        (Action.BREAK_THE_GLASS, "access_grant"),
        (Action.VIEW, "patient"),
        (Action.PRINT, "document"),
    ]
    assert review.accesses[1].detail["break_the_glass"] == str(grant.public_id)
    assert not review.own
    page = response.content.decode()
    assert REASON in page
    assert vip.identifiers.get(kind="MR").value in page
    assert 'name="status"' in page
    (event,) = audit_rows(action=Action.VIEW, object_type="access_grant")
    assert event.actor == personas.privacy_officer
    assert event.patient_id == vip.public_id
    assert event.object_id == str(grant.public_id)
    assert event.purpose == Purpose.COMPLIANCE


def test_the_review_page_counts_earlier_emergency_accesses_by_the_same_user(officer, personas, vip):
    _glass(vip, personas.technician, NOON - dt.timedelta(days=100))
    _glass(vip, personas.technician, NOON - dt.timedelta(days=10))
    _glass(vip, personas.coder, NOON - dt.timedelta(days=5))
    grant = _glass(vip, personas.technician, NOON)
    assert officer.get(_review(grant)).context["review"].earlier_grants == 1


def test_the_privacy_officer_marks_it_appropriate_and_it_leaves_the_queue(
    officer, personas, grant, audit_rows
):
    response = officer.post(_review(grant), {"status": "appropriate", "note": "ED visit on record"})
    assert response.status_code == 302
    assert response["Location"] == "/patients/break-the-glass/"
    grant.refresh_from_db()
    assert grant.review_status == AccessGrant.Review.APPROPRIATE
    assert grant.review_note == "ED visit on record"
    assert grant.reviewed_by == personas.privacy_officer
    (event,) = audit_rows(action=Action.UPDATE, object_type="access_grant")
    assert event.detail == {"status": "appropriate"}
    assert officer.get("/patients/break-the-glass/").context["queue"].grants == []
    reviewed = officer.get("/patients/break-the-glass/", {"tab": "reviewed"}).context["queue"]
    assert [g.public_id for g in reviewed.grants] == [grant.public_id]
    page = officer.get(_review(grant)).content.decode()
    assert "Reviewed by paula.privacy" in page
    assert 'name="status"' not in page


def test_a_second_review_is_refused(officer, personas, grant, audit_rows):
    officer.post(_review(grant), {"status": "appropriate", "note": ""})
    response = officer.post(_review(grant), {"status": "inappropriate", "note": "second thoughts"})
    assert response.status_code == 400
    assert b"already been reviewed" in response.content
    grant.refresh_from_db()
    assert grant.review_status == AccessGrant.Review.APPROPRIATE
    assert len(audit_rows(action=Action.UPDATE, object_type="access_grant")) == 1


def test_an_inappropriate_finding_needs_a_note(officer, grant, audit_rows):
    response = officer.post(_review(grant), {"status": "inappropriate", "note": " "})
    assert response.status_code == 400
    assert response.context["form"].errors["note"] == ["Say what was inappropriate."]
    grant.refresh_from_db()
    assert grant.review_status == AccessGrant.Review.PENDING
    assert not audit_rows(action=Action.UPDATE)


def test_a_finding_must_be_chosen(officer, grant):
    response = officer.post(_review(grant), {"note": "looked fine"})
    assert response.status_code == 400
    assert response.context["form"].errors["status"] == ["Choose appropriate or inappropriate."]


def test_an_inappropriate_finding_is_recorded(officer, personas, grant):
    response = officer.post(
        _review(grant),
        {"status": "inappropriate", "note": "No emergency: curiosity. Referred to HR."},
    )
    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.review_status == AccessGrant.Review.INAPPROPRIATE
    assert grant.review_note == "No emergency: curiosity. Referred to HR."


def test_nobody_reviews_their_own_break_the_glass(client, personas, vip, audit_rows):
    own = _glass(vip, personas.privacy_officer, NOON)
    sign_in(client, personas.privacy_officer)
    page = client.get(_review(own))
    assert page.context["review"].own
    assert b"your own break-the-glass" in page.content
    assert b'name="status"' not in page.content
    response = client.post(_review(own), {"status": "appropriate", "note": "fine"})
    assert response.status_code == 403
    own.refresh_from_db()
    assert own.review_status == AccessGrant.Review.PENDING
    (event,) = audit_rows(action=Action.UPDATE, outcome=Outcome.DENIED)
    assert event.reason == "a user may not review their own break-the-glass access"
    assert event.object_id == str(own.public_id)


def test_the_review_requires_login(client, grant):
    assert client.get(_review(grant))["Location"].startswith("/accounts/login/")
    assert client.post(_review(grant), {"status": "appropriate"})["Location"].startswith(
        "/accounts/login/"
    )


@pytest.mark.parametrize("persona", ["technician", "other_clinician", "administrator", "patient"])
def test_other_roles_are_refused_the_review_and_audited(
    client, personas, grant, audit_rows, persona
):
    user = getattr(personas, persona)
    sign_in(client, user)
    assert client.get(_review(grant)).status_code == 403
    assert client.post(_review(grant), {"status": "appropriate", "note": ""}).status_code == 403
    grant.refresh_from_db()
    assert grant.review_status == AccessGrant.Review.PENDING
    events = audit_rows(actor=user)
    assert [e.outcome for e in events] == [Outcome.DENIED, Outcome.DENIED]
    assert {e.reason for e in events} == {"lacks permission patients.review_break_the_glass"}


def test_a_privacy_officer_of_another_facility_gets_404_and_it_is_audited(
    client, personas, grant, audit_rows
):
    elsewhere = make_user("priya.elsewhere", "privacy_officer")
    elsewhere.facilities.add(personas.other_facility)
    sign_in(client, elsewhere)
    assert client.get(_review(grant)).status_code == 404
    assert client.post(_review(grant), {"status": "appropriate", "note": ""}).status_code == 404
    grant.refresh_from_db()
    assert grant.review_status == AccessGrant.Review.PENDING
    events = audit_rows(actor=elsewhere)
    assert [e.reason for e in events] == [
        "no such break-the-glass access at the user's facilities"
    ] * 2


def test_a_grant_that_is_not_break_the_glass_is_not_reviewed_here(officer, personas, vip):
    standing = AccessGrant.objects.create(
        patient=vip,
        user=personas.coder,
        kind=AccessGrant.Kind.JOB,
        reason="assigned",
        granted_at=NOON,
        granted_by=personas.administrator,
    )
    assert officer.get(_review(standing)).status_code == 404


def test_an_unknown_grant_is_404(officer):
    assert (
        officer.get("/patients/break-the-glass/00000000-0000-4000-8000-000000000000/").status_code
        == 404
    )


# --- the home-page panel -------------------------------------------------------------------


def test_the_privacy_officers_home_lists_accesses_to_review(officer, personas, vip, grant):
    response = officer.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Break-the-glass to review" in page
    assert f'href="{_review(grant)}"' in page
    assert "dr.olga" in page
    assert 'href="/patients/break-the-glass/"' in page


def test_the_panel_says_when_nothing_waits(officer, personas, grant):
    do_review_break_the_glass(
        grant, status="appropriate", note="", acting_user=personas.privacy_officer
    )
    assert b"Nothing to review." in officer.get("/").content


def test_the_panel_shows_the_oldest_five_and_the_count(officer, personas, vip):
    grants = [_glass(vip, personas.technician, NOON + dt.timedelta(minutes=m)) for m in range(7)]
    page = officer.get("/").content.decode()
    assert "7 waiting." in page
    assert _review(grants[4]) in page
    assert _review(grants[5]) not in page
