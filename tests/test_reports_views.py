"""The statistics dashboard and the bed counts: log-in, refusals audited, the access
audited, filters in the query string, and what each role's dashboard shows."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from audit.models import Action, Outcome
from recordroom.testing import register_patient, sign_in
from reports.models import BedCapacity
from tests.test_completion_queue import NOW, discharged, make_record

pytestmark = pytest.mark.django_db

DASHBOARD = "/reports/dashboard/"
BEDS = "/reports/beds/"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def test_every_page_requires_log_in(client, personas):
    for path in (DASHBOARD, "/reports/export/?format=pdf", BEDS):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/"), path


@pytest.mark.parametrize("who", ["clinician", "patient"])
def test_the_dashboard_refuses_other_roles_and_audits(client, personas, audit_rows, who):
    sign_in(client, getattr(personas, who))
    response = client.get(DASHBOARD)
    assert response.status_code == 403
    denied = audit_rows(outcome=Outcome.DENIED, object_type="reports.dashboard")
    assert len(denied) == 1


def test_the_administrator_sees_every_section_and_the_view_is_audited(client, personas, audit_rows):
    patient = register_patient(personas)
    make_record(discharged(personas, patient, days_ago=40, service="surgery"))
    sign_in(client, personas.administrator)
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    body = response.content.decode()
    for title in (
        "Hospital statistics",
        "Chart completion",
        "Coding",
        "Release of information",
        "Master patient index",
        "Audit trail and break-the-glass",
    ):
        assert title in body, title
    assert "<svg" in body and "<desc" in body and "<table" in body
    assert "No encounter has been coded at these facilities yet." in body
    assert "format=csv" in body and "format=xlsx" in body and "format=pdf" in body
    assert "<script" not in body.split("<main", 1)[1]
    views = audit_rows(object_type="reports.department", action=Action.VIEW)
    assert len(views) == 1 and views[0].outcome == Outcome.ALLOWED


def test_the_coder_sees_coding_but_not_audit_or_hospital(client, personas):
    sign_in(client, personas.coder)
    body = client.get(DASHBOARD).content.decode()
    assert 'id="section-coding"' in body
    assert 'id="section-audit"' not in body and 'id="section-roi"' not in body
    assert "Hospital statistics" not in body


def test_the_privacy_officer_sees_audit_and_roi(client, personas):
    sign_in(client, personas.privacy_officer)
    body = client.get(DASHBOARD).content.decode()
    assert 'id="section-audit"' in body and 'id="section-roi"' in body
    assert 'id="section-coding"' not in body


def test_filters_come_from_the_query_string(client, personas, audit_rows):
    sign_in(client, personas.administrator)
    facility = personas.facility.public_id
    response = client.get(
        DASHBOARD,
        {"start": "2024-02-01", "end": "2024-03-01", "facility": facility, "service": "surgery"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "start=2024-02-01&amp;end=2024-03-01" in body
    detail = audit_rows(object_type="reports.department")[0].detail["filters"]
    assert detail == {
        "start": "2024-02-01",
        "end": "2024-03-01",
        "facility": str(facility),
        "service": "surgery",
    }


def test_the_default_range_is_twelve_months_to_today(client, personas, audit_rows):
    sign_in(client, personas.coder)
    client.get(DASHBOARD)
    detail = audit_rows(object_type="reports.department")[0].detail["filters"]
    assert detail == {"start": "2024-04-01", "end": "2025-03-20"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2025-03-02", "end": "2025-03-01"}, "before its start"),
        ({"start": "2020-01-01", "end": "2025-03-01"}, "at most three years"),
        ({"start": "yesterday"}, "Enter a valid date"),
        ({"service": "<script>"}, "Give a service name"),
        ({"population": "martians"}, "Select a valid choice"),
    ],
)
def test_bad_filters_get_a_message_and_no_statistics(client, personas, audit_rows, query, message):
    sign_in(client, personas.administrator)
    response = client.get(DASHBOARD, query)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not audit_rows(object_type="reports.department")


def test_another_facility_is_not_offered(client, personas, audit_rows):
    sign_in(client, personas.administrator)
    response = client.get(DASHBOARD, {"facility": personas.other_facility.public_id})
    assert response.status_code == 400
    assert not audit_rows(object_type="reports.department")


def test_the_dashboard_refuses_post(client, personas):
    sign_in(client, personas.administrator)
    assert client.post(DASHBOARD).status_code == 405


# --- bed counts ----------------------------------------------------------------------------


def bed_post(personas, **overrides):
    data = {
        "facility": str(personas.facility.public_id),
        "unit": "4 West",
        "beds": "24",
        "effective_from": "2025-01-01",
        "reason": "Unit opened",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("who", ["technician", "coder", "privacy_officer"])
def test_bed_counts_refuse_other_roles_and_audit(client, personas, audit_rows, who):
    sign_in(client, getattr(personas, who))
    assert client.get(BEDS).status_code == 403
    assert client.post(BEDS, bed_post(personas)).status_code == 403
    assert not BedCapacity.objects.exists()
    denied = audit_rows(outcome=Outcome.DENIED, object_type="reports.bed_capacity")
    assert [d.action for d in denied] == [Action.VIEW, Action.UPDATE]


def test_bed_counts_are_versioned_rows(client, personas, audit_rows):
    sign_in(client, personas.administrator)
    assert client.get(BEDS).status_code == 200
    assert audit_rows(object_type="reports.bed_capacity", action=Action.VIEW)
    response = client.post(BEDS, bed_post(personas))
    assert response.status_code == 302
    response = client.post(
        BEDS, bed_post(personas, beds="30", effective_from="2025-03-01", reason="Expansion")
    )
    assert response.status_code == 302
    first, second = BedCapacity.objects.order_by("effective_from")
    assert (first.beds, first.effective_to) == (24, dt.date(2025, 2, 28))
    assert (second.beds, second.effective_to) == (30, None)
    assert second.created_by == personas.administrator and second.change_reason == "Expansion"
    updates = audit_rows(object_type="reports.bed_capacity", action=Action.UPDATE)
    assert [u.detail["beds"] for u in updates] == [24, 30]
    assert updates[1].detail["previous_beds"] == 24
    body = client.get(BEDS).content.decode()
    assert "4 West" in body and "2025-02-28" in body


def test_a_row_inserted_before_a_later_one_ends_before_it(client, personas):
    sign_in(client, personas.administrator)
    client.post(BEDS, bed_post(personas, effective_from="2025-03-01"))
    client.post(BEDS, bed_post(personas, beds="20", effective_from="2025-01-01"))
    early, late = BedCapacity.objects.order_by("effective_from")
    assert early.effective_to == dt.date(2025, 2, 28) and late.effective_to is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"beds": "-1"}, "greater than or equal to 0"),
        ({"unit": "   "}, "This field is required"),
        ({"reason": ""}, "This field is required"),
        ({"effective_from": "soon"}, "Enter a valid date"),
    ],
)
def test_bad_bed_counts_change_nothing(client, personas, overrides, message):
    sign_in(client, personas.administrator)
    response = client.post(BEDS, bed_post(personas, **overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not BedCapacity.objects.exists()


def test_the_same_unit_and_date_twice_is_refused(client, personas):
    sign_in(client, personas.administrator)
    client.post(BEDS, bed_post(personas))
    response = client.post(BEDS, bed_post(personas, beds="99"))
    assert response.status_code == 400
    assert "already has a bed count from that date" in response.content.decode()
    assert BedCapacity.objects.get().beds == 24
