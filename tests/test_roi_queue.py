"""The ROI work queue and dashboard: status, days open and days left, overdue in red,
filters in the URL (status, requester type, specialist), only the user's facilities,
no patient names, a request for a restricted record, every listing audited and every
refusal audited."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from accounts.roles import Role
from audit.models import Action, Outcome
from patients.actions import do_set_restriction
from recordroom.testing import make_user, register_patient, sign_in
from roi import access, intake
from roi.models import RequestStatus, RoiRequest
from tests.test_roi_processing_support import patient_fixture  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _log(personas, patient, **fields):
    values = {
        "requester_type": "patient",
        "requester_name": "Marigold Quillfeather",
        "received_on": dt.date(2026, 3, 9),
        "identity_verified": "Photo ID",
        "scope": {"all": True},
    }
    values.update(fields)
    return intake.do_log_request(
        personas.roi_specialist, patient.public_id, intake.RequestInput(**values)
    )


def _set(request, **fields):
    RoiRequest.objects.filter(pk=request.pk).update(**fields)


@pytest.fixture(name="second")
def second_specialist(personas):
    user = make_user("sam.second", Role.ROI_SPECIALIST)
    user.facilities.add(personas.facility)
    return user


def test_days_open_and_days_left_for_each_state(personas, patient):
    late = _log(personas, patient, received_on=dt.date(2026, 1, 2))  # due 1 Feb
    fresh = _log(personas, patient)  # due 8 April
    extended = _log(personas, patient, received_on=dt.date(2026, 2, 20))  # due 22 March
    intake.do_extend(personas.roi_specialist, extended.public_id, "archive")  # 21 April
    checking = _log(personas, patient, received_on=dt.date(2026, 2, 1))  # due 3 March
    _set(checking, status=RequestStatus.QC)
    rows = {r.request.pk: r for r in access.queue(personas.roi_specialist, access.QueueFilters())}
    assert (rows[late.pk].days_open, rows[late.pk].days_left) == (67, -37)
    assert rows[late.pk].overdue and rows[late.pk].days_overdue == 37
    assert (rows[fresh.pk].days_open, rows[fresh.pk].days_left) == (1, 29)
    assert rows[extended.pk].due_on == dt.date(2026, 4, 21) and rows[extended.pk].days_left == 42
    assert rows[checking.pk].overdue and rows[checking.pk].days_left == -7  # QC: clock runs
    order = [r.request.pk for r in access.queue(personas.roi_specialist, access.QueueFilters())]
    assert order == [late.pk, checking.pk, fresh.pk, extended.pk]


def test_a_released_request_stops_its_clock(personas, patient):
    done = _log(personas, patient, received_on=dt.date(2026, 2, 1))
    _set(
        done, status=RequestStatus.RELEASED, released_at=dt.datetime(2026, 2, 11, 15, tzinfo=dt.UTC)
    )
    assert access.queue(personas.roi_specialist, access.QueueFilters()) == []
    (row,) = access.queue(personas.roi_specialist, access.QueueFilters(status="released"))
    assert row.days_open == 10 and row.days_left is None and not row.overdue


def test_filters_by_status_type_and_specialist(personas, patient, second):
    mine = _log(personas, patient)
    theirs = _log(personas, patient, requester_type="attorney", requester_name="Lex Tallow")
    intake.do_assign(personas.roi_specialist, theirs.public_id, second)
    intake.do_check(personas.roi_specialist, theirs.public_id)  # pended: no authorization
    user = personas.roi_specialist

    def found(**filters):
        return [r.request for r in access.queue(user, access.QueueFilters(**filters))]

    assert set(found()) == {mine, theirs}
    assert found(status="pended") == [theirs]
    assert found(status="logged") == [mine]
    assert found(requester_type="attorney") == [theirs]
    assert found(specialist="me") == [mine]
    assert found(specialist=str(second.public_id)) == [theirs]
    assert found(specialist="not-a-uuid") == []
    assert set(found(status="bogus", requester_type="bogus")) == {mine, theirs}


def test_only_the_users_facilities_are_listed(personas, patient):
    _log(personas, patient)
    outsider = make_user("olive.elsewhere", Role.ROI_SPECIALIST)
    outsider.facilities.add(personas.other_facility)
    assert access.queue(outsider, access.QueueFilters()) == []


def test_the_queue_page_filters_in_the_url_and_shows_overdue_in_red(client, personas, patient):
    late = _log(personas, patient, received_on=dt.date(2026, 1, 2))
    _log(personas, patient, requester_type="attorney", requester_name="Lex Tallow")
    sign_in(client, personas.roi_specialist)
    page = client.get("/roi/queue/?type=patient&status=open&specialist=me")
    html = page.content.decode()
    assert page.status_code == 200
    assert [r.request for r in page.context["rows"]] == [late]
    assert f'class="overdue" data-request="{late.public_id}"' in html
    assert '<span class="error">overdue 37 days</span>' in html
    assert '<option value="patient" selected>' in html
    assert patient.display_name not in html and "Lex Tallow" not in html


def test_listing_is_audited_and_a_refusal_too(client, personas, patient, audit_rows):
    _log(personas, patient)
    sign_in(client, personas.roi_specialist)
    client.get("/roi/queue/?type=patient")
    (row,) = audit_rows(action=Action.SEARCH, object_type="roi.request", outcome=Outcome.ALLOWED)
    assert row.detail["requester_type"] == "patient" and row.detail["count"] == 1
    for user in (personas.clinician, personas.coder, personas.technician):
        sign_in(client, user)
        assert client.get("/roi/queue/").status_code == 403
    assert len(audit_rows(action=Action.SEARCH, outcome=Outcome.DENIED)) == 3


def test_a_request_for_a_restricted_record_opens_only_with_a_relationship(
    client, personas, patient, audit_rows
):
    from patients.actions import do_break_the_glass

    request = _log(personas, patient)
    do_set_restriction(
        patient, "employee", reason="staff member (test)", acting_user=personas.administrator
    )
    sign_in(client, personas.roi_specialist)
    # The queue still lists it (numbers and requesters only, no names).
    assert [r.request for r in client.get("/roi/queue/").context["rows"]] == [request]
    response = client.get(f"/roi/requests/{request.public_id}/")
    assert (
        response.status_code == 302 and response.url == f"/patients/{patient.public_id}/restricted/"
    )
    denied = audit_rows(outcome=Outcome.DENIED, object_type="roi.request")
    assert denied and "restricted record" in denied[-1].reason
    response = client.post(f"/roi/requests/{request.public_id}/check/")
    assert response.status_code == 302 and "restricted" in response.url
    request.refresh_from_db()
    assert request.status == RequestStatus.LOGGED
    do_break_the_glass(patient, reason="Court deadline today", acting_user=personas.roi_specialist)
    assert client.get(f"/roi/requests/{request.public_id}/").status_code == 200


def test_a_restricted_record_cannot_be_logged_without_a_relationship(personas, audit_rows):
    from patients.access import RestrictedRecord

    vip = register_patient(personas, given="Vesper", family="Stormcrow")
    do_set_restriction(
        vip, "vip", reason="public figure (test)", acting_user=personas.administrator
    )
    with pytest.raises(RestrictedRecord):
        _log(personas, vip)
    assert not RoiRequest.objects.exists()
    assert audit_rows(outcome=Outcome.DENIED, object_type="patient")


def test_the_dashboard_turnaround_per_month(client, personas, patient, audit_rows):
    for days in (2, 4, 10):
        done = _log(personas, patient, received_on=dt.date(2026, 2, 1))
        received = dt.datetime(2026, 2, 1, 15, tzinfo=dt.UTC)
        released = received + dt.timedelta(days=days)
        _set(done, status=RequestStatus.RELEASED, received_at=received, released_at=released)
    _log(personas, patient, received_on=dt.date(2026, 1, 2))  # open and overdue
    board = access.dashboard(personas.roi_specialist)
    february = dict(board.months)[dt.date(2026, 2, 1)]
    assert february.count == 3 and february.median_days == 4
    assert board.overdue == 1 and board.open_by_status == {"logged": 1}
    sign_in(client, personas.roi_specialist)
    html = client.get("/roi/dashboard/").content.decode()
    assert "2026-02" in html or "February" in html
    assert audit_rows(action=Action.VIEW, object_type="roi.dashboard")
