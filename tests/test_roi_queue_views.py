"""The ROI work queue and the intake screens: statuses, days open and left, overdue in
red, filters by type, status and specialist from the query string; every door logs in,
refuses the wrong role or facility with an audited refusal, audits the access, and
changes nothing on GET."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from accounts.roles import Role
from audit.models import Action, Outcome
from recordroom.testing import make_user, sign_in
from roi import access, intake
from tests.test_roi_processing_support import (  # noqa: F401  (fixtures)
    make_request,
    patient_fixture,
)

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 3, 10)
STEPS = ("attach", "authorization", "identity", "check", "extend", "assign")


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def second_specialist(personas):
    user = make_user("rhea.releaser", Role.ROI_SPECIALIST, first_name="Rhea")
    user.facilities.add(personas.facility)
    return user


def _numbers(response):
    return [row.request.number for row in response.context["rows"]]


def test_days_open_and_left_for_open_and_finished_requests(personas, patient):
    late = make_request(
        personas, patient, received_on=dt.date(2026, 2, 1), due_on=dt.date(2026, 3, 3)
    )
    extended = make_request(
        personas,
        patient,
        received_on=dt.date(2026, 2, 1),
        due_on=dt.date(2026, 3, 3),
        extended_due_on=dt.date(2026, 4, 2),
    )
    released = make_request(
        personas,
        patient,
        status="released",
        received_on=dt.date(2026, 2, 1),
        released_at=dt.datetime(2026, 2, 11, 16, 0, tzinfo=dt.UTC),
    )
    rows = {r.request.pk: r for r in access.queue(personas.roi_specialist, access.QueueFilters())}
    assert rows[late.pk].days_open == 37 and rows[late.pk].days_left == -7
    assert rows[late.pk].overdue and rows[late.pk].days_overdue == 7
    assert rows[extended.pk].days_left == 23 and not rows[extended.pk].overdue
    assert released.pk not in rows  # the default view is the open requests
    done = access.queue(personas.roi_specialist, access.QueueFilters(status="released"))
    (row,) = done
    assert row.days_open == 10 and row.days_left is None and not row.overdue


def test_the_queue_filters_by_status_type_and_specialist(
    client, personas, patient, second_specialist
):
    mine = make_request(personas, patient, assigned_to=personas.roi_specialist)
    theirs = make_request(personas, patient, requester_type="payer", assigned_to=second_specialist)
    pended = make_request(personas, patient, status="pended", requester_type="attorney")
    closed = make_request(personas, patient, status="closed")
    sign_in(client, personas.roi_specialist)
    assert set(_numbers(client.get("/roi/queue/"))) == {mine.number, theirs.number, pended.number}
    assert _numbers(client.get("/roi/queue/?specialist=me")) == [mine.number]
    page = client.get(f"/roi/queue/?specialist={second_specialist.public_id}")
    assert _numbers(page) == [theirs.number]
    assert f'value="{second_specialist.public_id}" selected' in page.content.decode()
    assert _numbers(client.get("/roi/queue/?type=payer")) == [theirs.number]
    assert _numbers(client.get("/roi/queue/?status=pended")) == [pended.number]
    assert _numbers(client.get("/roi/queue/?status=closed")) == [closed.number]
    # Nonsense filters are ignored, not errors.
    odd = client.get("/roi/queue/?type=wizard&status=%3Cscript%3E&specialist=nobody")
    assert odd.status_code == 200 and _numbers(odd) == []


def test_overdue_rows_are_red_and_show_the_days(client, personas, patient):
    late = make_request(
        personas, patient, received_on=dt.date(2026, 2, 1), due_on=dt.date(2026, 3, 3)
    )
    sign_in(client, personas.roi_specialist)
    html = client.get("/roi/queue/").content.decode()
    assert f'<tr class="overdue" data-request="{late.public_id}">' in html
    assert "Days open" in html and "Days left" in html
    assert patient.display_name not in html


def test_the_queue_is_limited_to_the_users_facilities(personas, patient):
    make_request(personas, patient)
    elsewhere = make_user("ola.other", Role.ROI_SPECIALIST)
    elsewhere.facilities.add(personas.other_facility)
    assert access.queue(elsewhere, access.QueueFilters()) == []


def test_the_queue_search_is_audited_and_a_refusal_too(client, personas, audit_rows):
    sign_in(client, personas.roi_specialist)
    client.get("/roi/queue/?type=attorney")
    (row,) = audit_rows(action=Action.SEARCH, object_type="roi.request")
    assert row.outcome == Outcome.ALLOWED
    sign_in(client, personas.technician)
    assert client.get("/roi/queue/").status_code == 403
    assert audit_rows(action=Action.SEARCH, outcome=Outcome.DENIED)


def test_signed_out_users_go_to_the_log_in_page(client, personas, patient):
    request = make_request(personas, patient)
    for url in ("/roi/queue/", "/roi/dashboard/", f"/roi/requests/{request.public_id}/"):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response.url


def test_the_request_page_is_audited_with_the_patient(client, personas, patient, audit_rows):
    request = make_request(personas, patient, status="logged")
    sign_in(client, personas.roi_specialist)
    page = client.get(f"/roi/requests/{request.public_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert request.number in html and "164.508(c)(1)(i)" in html
    views = audit_rows(action=Action.VIEW, object_type="roi.request")
    assert views and str(views[0].patient_id) == str(patient.public_id)


def test_another_facilitys_specialist_gets_not_found_audited(client, personas, patient, audit_rows):
    request = make_request(personas, patient)
    elsewhere = make_user("ola.other", Role.ROI_SPECIALIST)
    elsewhere.facilities.add(personas.other_facility)
    sign_in(client, elsewhere)
    assert client.get(f"/roi/requests/{request.public_id}/").status_code == 404
    assert client.post(f"/roi/requests/{request.public_id}/check/").status_code == 404
    denied = audit_rows(outcome=Outcome.DENIED, object_type="roi.request")
    assert len(denied) >= 2
    request.refresh_from_db()
    assert request.status == "in_process" and not request.events.exists()


@pytest.mark.parametrize("step", STEPS)
def test_each_step_is_post_only(client, personas, patient, step):
    request = make_request(personas, patient, status="logged")
    sign_in(client, personas.roi_specialist)
    assert client.get(f"/roi/requests/{request.public_id}/{step}/").status_code == 405
    request.refresh_from_db()
    assert request.status == "logged" and not request.events.exists()


@pytest.mark.parametrize("step", STEPS)
def test_each_step_refuses_a_coder_and_audits(client, personas, patient, audit_rows, step):
    request = make_request(personas, patient, status="logged")
    sign_in(client, personas.coder)
    assert client.post(f"/roi/requests/{request.public_id}/{step}/").status_code == 403
    assert audit_rows(outcome=Outcome.DENIED)
    assert not request.events.exists()


def test_assigning_to_a_specialist_and_not_to_a_coder(
    client, personas, patient, second_specialist, audit_rows
):
    request = make_request(personas, patient, status="logged")
    sign_in(client, personas.roi_specialist)
    url = f"/roi/requests/{request.public_id}/assign/"
    assert client.post(url, {"assignee": str(personas.coder.public_id)}).status_code == 302
    request.refresh_from_db()
    assert request.assigned_to is None
    client.post(url, {"assignee": str(second_specialist.public_id)})
    request.refresh_from_db()
    assert request.assigned_to == second_specialist
    assert request.events.filter(kind="assigned").count() == 1
    assert audit_rows(action=Action.UPDATE, object_type="roi.request")


def test_extending_through_the_screen_needs_a_reason(client, personas, patient):
    request = make_request(
        personas, patient, status="logged", received_on=TODAY, due_on=dt.date(2026, 4, 9)
    )
    sign_in(client, personas.roi_specialist)
    url = f"/roi/requests/{request.public_id}/extend/"
    assert client.post(url, {"reason": ""}).status_code == 400
    request.refresh_from_db()
    assert request.extended_due_on is None
    assert client.post(url, {"reason": "Records held off site"}).status_code == 302
    request.refresh_from_db()
    assert request.extended_due_on == dt.date(2026, 5, 9)
    assert request.letters.filter(kind="extension").count() == 1


def test_logging_a_request_with_bad_input_shows_the_form_again(client, personas, patient):
    sign_in(client, personas.roi_specialist)
    response = client.post(
        f"/roi/requests/new/{patient.public_id}/",
        {
            "requester_type": "patient",
            "requester_name": "",
            "received_on": "2026-03-11",
            "urgency": "routine",
            "format": "electronic",
            "delivery": "portal",
        },
    )
    assert response.status_code == 400
    assert not intake.RoiRequest.objects.exists()


def test_the_dashboard_turnaround_and_refusal(client, personas, patient, audit_rows):
    for days in (3, 5, 20):
        make_request(
            personas,
            patient,
            status="released",
            received_on=dt.date(2026, 2, 1),
            received_at=dt.datetime(2026, 2, 1, 15, tzinfo=dt.UTC),
            released_at=dt.datetime(2026, 2, 1 + days, 15, tzinfo=dt.UTC),
        )
    sign_in(client, personas.roi_specialist)
    page = client.get("/roi/dashboard/")
    assert page.status_code == 200
    february = dict(page.context["board"].months)[dt.date(2026, 2, 1)]
    assert february.count == 3
    assert february.median_days == 5 and february.p90_days >= 17
    sign_in(client, personas.clinician)
    assert client.get("/roi/dashboard/").status_code == 403
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.dashboard")
