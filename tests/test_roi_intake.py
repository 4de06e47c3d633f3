"""ROI intake: due dates from policy at the calendar's edges, logging a request for a
patient found through the MPI, validation (pend with a letter, or on to processing),
authorizations against 164.508(c), the one extension, the queue and the request page —
each door refusing and auditing the wrong roles."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Action, Outcome
from roi import intake, policy
from roi.authorizations import CHECKLIST
from roi.models import LetterKind, RequestStatus, RoiPolicy, RoiRequest
from tests.test_roi_processing_support import (  # noqa: F401  (fixtures)
    make_request,
    media_fixture,
    patient_fixture,
)

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)
ALL_TICKED = {e.key: True for e in CHECKLIST}


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _log(personas, patient, **fields):
    values = {
        "requester_type": "patient",
        "requester_name": "Marigold Quillfeather",
        "received_on": dt.date(2026, 3, 9),
        "identity_verified": "Photo ID seen at the window",
        "scope": {"all": True},
    }
    values.update(fields)
    return intake.do_log_request(
        personas.roi_specialist, patient.public_id, intake.RequestInput(**values)
    )


def _default_policy():
    return RoiPolicy.objects.get(facility__isnull=True)


# --- the clock --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "received, requester, urgency, due",
    [
        # 31 January + 30 days = 2 March in 2026 (28-day February) …
        (dt.date(2026, 1, 31), "patient", "routine", dt.date(2026, 3, 2)),
        # … but 1 March in the leap year 2028 (29-day February).
        (dt.date(2028, 1, 31), "patient", "routine", dt.date(2028, 3, 1)),
        # Received on the leap day: 29 Feb 2028 + 30 = 30 March.
        (dt.date(2028, 2, 29), "representative", "routine", dt.date(2028, 3, 30)),
        # Year end: 15 December + 30 = 14 January.
        (dt.date(2026, 12, 15), "patient", "routine", dt.date(2027, 1, 14)),
        # Attorneys get the department's 15-day target.
        (dt.date(2026, 3, 20), "attorney", "routine", dt.date(2026, 4, 4)),
        # Urgent continuing care: the same day; routine continuing care: 1 day.
        (dt.date(2026, 3, 20), "provider", "urgent", dt.date(2026, 3, 20)),
        (dt.date(2026, 3, 20), "provider", "routine", dt.date(2026, 3, 21)),
    ],
)
def test_due_dates_follow_the_policy_across_month_and_leap_days(received, requester, urgency, due):
    rules = policy.policy_for(None, received)
    assert policy.due_date(rules, requester, received, urgency) == due


def test_the_extension_adds_the_policys_thirty_days_across_february():
    rules = policy.policy_for(None, dt.date(2028, 1, 1))
    assert policy.extended_due_date(rules, dt.date(2028, 2, 10)) == dt.date(2028, 3, 11)


def test_a_facility_policy_overrides_the_default_from_its_effective_date(personas):
    RoiPolicy.objects.create(
        facility=personas.facility,
        effective_from=dt.date(2026, 4, 1),
        due_days={"patient": 15},
        created_at=NOW,
    )
    assert (
        policy.due_days(policy.policy_for(personas.facility, dt.date(2026, 3, 31)), "patient") == 30
    )
    assert (
        policy.due_days(policy.policy_for(personas.facility, dt.date(2026, 4, 1)), "patient") == 15
    )


def test_the_received_date_is_the_local_date(personas, patient, settings):
    """Received at 23:30 in New York on 31 March = 03:30 UTC on 1 April: the local date
    (31 March) is the date of receipt."""
    settings.TIME_ZONE = "America/New_York"
    moment = dt.datetime(2026, 3, 31, 23, 30, tzinfo=ZoneInfo("America/New_York"))
    assert moment.astimezone(dt.UTC).date() == dt.date(2026, 4, 1)
    assert policy.local_date(moment) == dt.date(2026, 3, 31)


# --- logging --------------------------------------------------------------------------------


def test_logging_numbers_the_request_sets_its_clock_and_audits(personas, patient, audit_rows):
    request = _log(personas, patient)
    assert request.number == "REQ-2026-000001"
    assert request.due_on == dt.date(2026, 4, 8)  # 9 March + 30
    assert request.status == RequestStatus.LOGGED
    assert _log(personas, patient).number == "REQ-2026-000002"
    created = audit_rows(action=Action.CREATE, object_type="roi.request")
    assert created and str(created[0].patient_id) == str(patient.public_id)


def test_bad_input_is_refused_with_what_is_wrong_and_nothing_is_stored(personas, patient):
    with pytest.raises(ValidationError) as error:
        _log(personas, patient, received_on=dt.date(2026, 3, 11), requester_name=" ")
    assert "future" in str(error.value) and "name" in str(error.value)
    with pytest.raises(ValidationError, match="Paper mail needs"):
        _log(personas, patient, format="paper", delivery="mail")
    with pytest.raises(ValidationError, match="Say what is asked for"):
        _log(personas, patient, scope={})
    with pytest.raises(ValidationError, match="before its start"):
        _log(personas, patient, scope={"date_from": "2026-02-01", "date_to": "2026-01-01"})
    assert not RoiRequest.objects.exists()


def test_a_technician_may_not_log_a_request_and_it_is_audited(personas, patient, audit_rows):
    from accounts.access import AccessDenied

    with pytest.raises(AccessDenied):
        intake.do_log_request(
            personas.technician,
            patient.public_id,
            intake.RequestInput("patient", "X", dt.date(2026, 3, 9), scope={"all": True}),
        )
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.request")


# --- validation ----------------------------------------------------------------------------


def test_an_attorney_without_an_authorization_is_pended_with_a_letter(personas, patient):
    request = _log(personas, patient, requester_type="attorney", requester_name="Lex Tallow")
    checked = intake.do_check(personas.roi_specialist, request.public_id)
    assert checked.status == RequestStatus.PENDED
    assert any("authorization" in r for r in checked.pend_reasons)
    (letter,) = checked.letters.all()
    assert letter.kind == LetterKind.PEND and "authorization" in letter.body


def test_a_defective_authorization_names_what_is_missing(personas, patient):
    request = _log(personas, patient, requester_type="attorney", requester_name="Lex Tallow")
    ticked = {**ALL_TICKED, "signature": False}
    made = intake.do_record_authorization(
        personas.roi_specialist,
        request.public_id,
        intake.AuthorizationInput(
            kind="hipaa", checklist=ticked, signed_on=None, expires_on=dt.date(2026, 1, 1)
        ),
    )
    assert not made.valid
    text = " ".join(made.problems)
    assert "signature" in text and "expired on 2026-01-01" in text
    checked = intake.do_check(personas.roi_specialist, request.public_id)
    assert checked.status == RequestStatus.PENDED
    assert any("expired" in r for r in checked.pend_reasons)


def test_a_valid_authorization_lets_the_request_go_on(personas, patient):
    request = _log(personas, patient, requester_type="attorney", requester_name="Lex Tallow")
    made = intake.do_record_authorization(
        personas.roi_specialist,
        request.public_id,
        intake.AuthorizationInput(
            kind="hipaa",
            checklist=ALL_TICKED,
            signed_on=dt.date(2026, 3, 1),
            expires_on=dt.date(2026, 9, 1),
        ),
    )
    assert made.valid and made.problems == []
    assert intake.do_check(personas.roi_specialist, request.public_id).status == "in_process"


def test_a_revoked_authorization_is_defective(personas, patient):
    request = _log(personas, patient, requester_type="attorney", requester_name="Lex Tallow")
    made = intake.do_record_authorization(
        personas.roi_specialist,
        request.public_id,
        intake.AuthorizationInput(
            kind="hipaa",
            checklist=ALL_TICKED,
            signed_on=dt.date(2026, 1, 1),
            expiry_event="end of litigation",
            revoked_on=dt.date(2026, 3, 5),
        ),
    )
    assert not made.valid and "revoked on 2026-03-05" in " ".join(made.problems)


def test_a_subpoena_needs_satisfactory_assurance_or_a_court_order(personas, patient, media):
    request = _log(personas, patient, requester_type="subpoena", requester_name="Clerk")
    reasons = intake.missing(request)
    assert any("copy of the subpoena" in r for r in reasons)
    assert any("satisfactory assurance" in r for r in reasons)
    pdf = b"%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    for kind in ("subpoena", "assurance"):
        intake.do_attach(
            personas.roi_specialist,
            request.public_id,
            kind,
            SimpleUploadedFile(f"{kind}.pdf", pdf, content_type="application/pdf"),
        )
    assert intake.missing(request) == []


def test_an_attachment_that_is_not_what_it_says_is_refused(personas, patient, media):
    request = _log(personas, patient)
    with pytest.raises(ValidationError, match="not a PDF"):
        intake.do_attach(
            personas.roi_specialist,
            request.public_id,
            "request",
            SimpleUploadedFile("letter.pdf", b"<script>", content_type="application/pdf"),
        )
    assert not request.attachments.exists()


def test_the_patient_must_be_identified(personas, patient):
    request = _log(personas, patient, identity_verified="")
    assert any("identity" in r for r in intake.missing(request))
    intake.do_record_identity(personas.roi_specialist, request.public_id, "Driver's licence")
    request.refresh_from_db()
    assert intake.missing(request) == []


# --- extension -------------------------------------------------------------------------------


def test_one_extension_inside_the_first_period_with_a_notice(personas, patient):
    request = _log(personas, patient)
    extended = intake.do_extend(personas.roi_specialist, request.public_id, "records held off site")
    assert extended.extended_due_on == dt.date(2026, 5, 8)  # 8 April + 30
    assert extended.letters.filter(kind=LetterKind.EXTENSION).exists()
    with pytest.raises(ValidationError, match="already extended"):
        intake.do_extend(personas.roi_specialist, request.public_id, "again")


def test_no_extension_after_the_first_due_date(personas, patient):
    request = _log(personas, patient, received_on=dt.date(2026, 1, 2))  # due 1 February
    with pytest.raises(ValidationError, match="before the first due date"):
        intake.do_extend(personas.roi_specialist, request.public_id, "late")


# --- screens --------------------------------------------------------------------------------


def test_the_queue_shows_overdue_first_and_filters(client, personas, patient):
    from recordroom.testing import sign_in

    late = _log(personas, patient, received_on=dt.date(2026, 1, 2), requester_name="Late One")
    _log(personas, patient, requester_type="attorney", requester_name="Lex Tallow")
    sign_in(client, personas.roi_specialist)
    page = client.get("/roi/queue/")
    assert page.status_code == 200
    rows = page.context["rows"]
    assert rows[0].request == late and rows[0].overdue and rows[0].days_overdue == 37
    only = client.get("/roi/queue/?type=attorney").context["rows"]
    assert [r.request.requester_name for r in only] == ["Lex Tallow"]
    assert b'class="overdue"' in page.content


def test_logging_through_the_screens(client, personas, patient, audit_rows):
    from recordroom.testing import sign_in

    sign_in(client, personas.roi_specialist)
    assert client.get("/roi/requests/new/").status_code == 200
    response = client.post(
        f"/roi/requests/new/{patient.public_id}/",
        {
            "requester_type": "patient",
            "requester_name": "Marigold Quillfeather",
            "received_on": "2026-03-09",
            "urgency": "routine",
            "scope_all": "on",
            "format": "electronic",
            "delivery": "portal",
        },
    )
    request = RoiRequest.objects.get()
    assert response.status_code == 302 and response.url == f"/roi/requests/{request.public_id}/"
    page = client.get(response.url)
    assert page.status_code == 200 and request.number.encode() in page.content
    assert audit_rows(action=Action.VIEW, object_type="roi.request")
    response = client.post(f"/roi/requests/{request.public_id}/check/")
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDED  # identity not verified yet


def test_the_screens_refuse_other_roles_and_audit(client, personas, patient, audit_rows):
    from recordroom.testing import sign_in

    request = _log(personas, patient)
    sign_in(client, personas.coder)
    assert client.get("/roi/queue/").status_code == 403
    assert client.get(f"/roi/requests/{request.public_id}/").status_code == 403
    assert client.post(f"/roi/requests/{request.public_id}/check/").status_code == 403
    assert len(audit_rows(outcome=Outcome.DENIED)) >= 3
    sign_in(client, personas.roi_specialist)
    assert client.get(f"/roi/requests/{request.public_id}/check/").status_code == 405


def test_a_request_for_a_restricted_record_needs_a_relationship(personas, patient, audit_rows):
    from patients.access import RestrictedRecord
    from patients.actions import do_set_restriction

    do_set_restriction(
        patient, "vip", reason="public figure (test)", acting_user=personas.administrator
    )
    with pytest.raises(RestrictedRecord):
        _log(personas, patient)
    assert not RoiRequest.objects.exists()


def test_make_request_support_is_valid(personas, patient):
    assert intake.missing(make_request(personas, patient)) == []


def test_the_dashboard_counts_by_status_and_type_and_audits(client, personas, patient, audit_rows):
    from recordroom.testing import sign_in

    _log(personas, patient, received_on=dt.date(2026, 1, 2))
    _log(personas, patient, requester_type="attorney", requester_name="Lex Tallow")
    sign_in(client, personas.roi_specialist)
    page = client.get("/roi/dashboard/")
    assert page.status_code == 200
    board = page.context["board"]
    assert board.open_by_status == {"logged": 2} and board.overdue == 1
    assert {row.requester_type: row.total for row in board.by_type} == {
        "patient": 1,
        "attorney": 1,
    }
    assert len(board.months) == 12
    assert audit_rows(action=Action.VIEW, object_type="roi.dashboard")
    sign_in(client, personas.coder)
    assert client.get("/roi/dashboard/").status_code == 403


def test_the_home_page_shows_requests_due_and_pended_without_names(client, personas, patient):
    from recordroom.testing import sign_in

    due = _log(personas, patient, received_on=dt.date(2026, 1, 2))
    held = _log(personas, patient, requester_type="attorney", requester_name="Lex Tallow")
    intake.do_check(personas.roi_specialist, held.public_id)
    sign_in(client, personas.roi_specialist)
    page = client.get("/").content.decode()
    assert f"{due.number} · Patient · overdue 37 days" in page
    assert f"{held.number} · Attorney · 1 item missing" in page
    assert patient.display_name not in page


def test_closing_a_request(client, personas, patient, audit_rows):
    from recordroom.testing import sign_in

    withdrawn = _log(personas, patient)
    with pytest.raises(ValidationError, match="released or denied"):
        intake.do_close(personas.roi_specialist, withdrawn.public_id, "delivered")
    closed = intake.do_close(personas.roi_specialist, withdrawn.public_id, "withdrawn", "by phone")
    assert closed.status == RequestStatus.CLOSED and closed.closed_at == NOW
    (last,) = closed.events.filter(kind="closed")
    assert (last.from_status, last.to_status, last.detail["reason"]) == (
        "logged",
        "closed",
        "withdrawn",
    )
    with pytest.raises(ValidationError, match="already closed"):
        intake.do_close(personas.roi_specialist, withdrawn.public_id, "duplicate")
    assert audit_rows(action=Action.UPDATE, outcome=Outcome.DENIED, object_type="roi.request")
    sign_in(client, personas.roi_specialist)
    other = _log(personas, patient)
    assert client.get(f"/roi/requests/{other.public_id}/close/").status_code == 405
    client.post(f"/roi/requests/{other.public_id}/close/", {"reason": "duplicate"})
    other.refresh_from_db()
    assert other.status == RequestStatus.CLOSED
    sign_in(client, personas.coder)
    assert (
        client.post(f"/roi/requests/{withdrawn.public_id}/close/", {"reason": "x"}).status_code
        == 403
    )


def test_a_request_can_ask_for_particular_encounters(client, personas, patient):
    from encounters.models import Encounter
    from recordroom.testing import sign_in

    encounter = Encounter.objects.create(
        patient=patient,
        facility=personas.facility,
        visit_number="V-ROI-1",
        encounter_class="IMP",
        status="finished",
        started_at=NOW - dt.timedelta(days=20),
        ended_at=NOW - dt.timedelta(days=15),
        created_at=NOW,
        updated_at=NOW,
    )
    sign_in(client, personas.roi_specialist)
    form = client.get(f"/roi/requests/new/{patient.public_id}/").content.decode()
    assert "V-ROI-1" in form
    client.post(
        f"/roi/requests/new/{patient.public_id}/",
        {
            "requester_type": "patient",
            "requester_name": "Marigold Quillfeather",
            "received_on": "2026-03-09",
            "urgency": "routine",
            "encounters": [str(encounter.public_id)],
            "format": "electronic",
            "delivery": "portal",
        },
    )
    request = RoiRequest.objects.get()
    assert request.scope["encounters"] == [str(encounter.public_id)]
    assert not request.scope["all"]
