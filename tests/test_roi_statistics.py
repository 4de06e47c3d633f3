"""ROI figures for the department's statistics: requests by type and status, the
turnaround's median and 90th percentile, and amendment, accounting and access requests
against their deadlines — each worked out by hand in the test."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from recordroom.testing import register_patient
from roi import statistics as rs
from roi.models import (
    AccountingRequest,
    Amendment,
    AmendmentStatus,
    DeadlineStatus,
    RequestStatus,
    RoiRequest,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 20, 15, 0, tzinfo=dt.UTC)
TODAY = dt.date(2025, 3, 20)
START, END = dt.date(2025, 1, 1), dt.date(2025, 3, 31)
_numbers = itertools.count(1)


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def ids(personas):
    return [personas.facility.pk]


def request(
    personas,
    patient,
    *,
    received,
    released=None,
    kind="patient",
    status=None,
    due=None,
    extended=None,
    closed=None,
    facility=None,
):
    received_at = dt.datetime.combine(received, dt.time(14), tzinfo=dt.UTC)
    return RoiRequest.objects.create(
        number=f"REQ-T-{next(_numbers):06d}",
        patient=patient,
        facility=facility or personas.facility,
        requester_type=kind,
        requester_name="Requester Testperson",
        received_on=received,
        received_at=received_at,
        due_on=due or received + dt.timedelta(days=30),
        extended_due_on=extended,
        status=status or (RequestStatus.RELEASED if released else RequestStatus.LOGGED),
        released_at=released,
        closed_at=closed,
        logged_by=personas.roi_specialist,
        created_at=received_at,
        updated_at=received_at,
    )


def test_nothing_logged_is_no_data(ids):
    assert rs.requests_exist(ids) is False
    assert rs.amendments_exist(ids) is False
    assert rs.accounting_requests_exist(ids) is False


def test_requests_by_type_and_status_in_the_range(personas, patient, ids):
    day = dt.date(2025, 2, 3)
    request(personas, patient, received=day)
    request(personas, patient, received=day, status=RequestStatus.PENDED)
    request(personas, patient, received=day, kind="attorney", status=RequestStatus.DENIED)
    request(personas, patient, received=dt.date(2024, 12, 31))  # before the range
    request(personas, patient, received=day, facility=personas.other_facility)
    rows = {r.requester_type: r for r in rs.requests_by_type_and_status(ids, START, END)}
    assert set(rows) == {"patient", "attorney"}
    assert rows["patient"].counts["logged"] == 1
    assert rows["patient"].counts["pended"] == 1
    assert rows["patient"].counts["released"] == 0
    assert rows["patient"].total == 2
    assert rows["attorney"].counts["denied"] == 1 and rows["attorney"].total == 1
    assert rs.requests_exist(ids) is True


@pytest.mark.parametrize(
    ("count", "median_ranks", "p90"),
    [(1, (1, 1), 1), (2, (1, 2), 2), (5, (3, 3), 5), (10, (5, 6), 9), (11, (6, 6), 10)],
)
def test_percentile_ranks(count, median_ranks, p90):
    # Median of 10 values: mean of the 5th and 6th; nearest-rank p90 of 10: ceil(9) = 9th,
    # of 11: ceil(9.9) = 10th.
    assert rs.percentile_ranks(count) == (median_ranks, p90)


def test_turnaround_median_and_90th_percentile(personas, patient, ids):
    # Released after 1, 2, 3, 4, 10 days (patients) and 6 days (an attorney):
    # all six sorted 1 2 3 4 6 10 → median (3 + 4) / 2 = 3.5; p90 rank ceil(5.4) = 6 → 10.
    # Patients: 1 2 3 4 10 → median 3, p90 rank ceil(4.5) = 5 → 10.
    received = dt.date(2025, 2, 1)
    start = dt.datetime.combine(received, dt.time(14), tzinfo=dt.UTC)
    for days in (1, 2, 3, 4, 10):
        request(personas, patient, received=received, released=start + dt.timedelta(days=days))
    request(
        personas, patient, received=received, kind="attorney", released=start + dt.timedelta(days=6)
    )
    # Released after the range: not counted.
    request(personas, patient, received=received, released=dt.datetime(2025, 4, 2, tzinfo=dt.UTC))
    rows = {t.label: t for t in rs.turnaround(ids, START, END)}
    assert rows["All requests"].count == 6
    assert rows["All requests"].median_days == Decimal("3.5")
    assert rows["All requests"].p90_days == Decimal("10.0")
    assert rows["Patient"].median_days == Decimal("3.0")
    assert rows["Patient"].p90_days == Decimal("10.0")
    assert rows["Attorney"].count == 1 and rows["Attorney"].median_days == Decimal("6.0")


def test_turnaround_with_no_release_has_no_median(ids):
    rows = rs.turnaround(ids, START, END)
    assert len(rows) == 1
    assert rows[0].count == 0 and rows[0].median_days is None and rows[0].p90_days is None


def test_amendments_and_accounting_against_their_deadlines(personas, patient, ids):
    def amendment(received, due, *, status, decided=None, extended=None):
        at = dt.datetime.combine(received, dt.time(12), tzinfo=dt.UTC)
        return Amendment.objects.create(
            patient=patient,
            received_on=received,
            due_on=due,
            extended_due_on=extended,
            requested_change="Correct the allergy list",
            status=status,
            decided_at=decided,
            logged_by=personas.roi_specialist,
            created_at=at,
        )

    jan = dt.date(2025, 1, 10)
    # On time: decided on the due date (local), late: the day after, extended and decided
    # inside the extension: on time; open with the deadline ahead; open past it.
    amendment(
        jan,
        dt.date(2025, 3, 11),
        status=AmendmentStatus.ACCEPTED,
        decided=dt.datetime(2025, 3, 11, 20, tzinfo=dt.UTC),
    )
    amendment(
        jan,
        dt.date(2025, 3, 11),
        status=AmendmentStatus.DENIED,
        decided=dt.datetime(2025, 3, 12, 15, tzinfo=dt.UTC),
    )
    amendment(
        jan,
        dt.date(2025, 3, 11),
        status=AmendmentStatus.ACCEPTED,
        extended=dt.date(2025, 4, 10),
        decided=dt.datetime(2025, 3, 30, 15, tzinfo=dt.UTC),
    )
    amendment(dt.date(2025, 3, 1), dt.date(2025, 4, 30), status=AmendmentStatus.RECEIVED)
    amendment(
        jan, dt.date(2025, 3, 11), status=AmendmentStatus.EXTENDED, extended=dt.date(2025, 3, 19)
    )
    AccountingRequest.objects.create(
        patient=patient,
        received_on=jan,
        period_from=dt.date(2019, 1, 10),
        period_to=jan,
        due_on=dt.date(2025, 3, 11),
        status=DeadlineStatus.ANSWERED,
        answered_at=dt.datetime(2025, 2, 1, 15, tzinfo=dt.UTC),
        logged_by=personas.roi_specialist,
        created_at=NOW,
    )
    summaries = {s.label: s for s in rs.deadlines(ids, START, END, today=TODAY)}
    amendments = summaries["Amendment requests"]
    assert (amendments.received, amendments.on_time, amendments.late) == (5, 2, 1)
    assert (amendments.open_within, amendments.open_overdue, amendments.extended) == (1, 1, 2)
    assert amendments.on_time_percent == Decimal("66.7")  # 2 ÷ 3 × 100
    accounting = summaries["Accounting-of-disclosures requests"]
    assert (accounting.received, accounting.on_time, accounting.late) == (1, 1, 0)
    roi = summaries["Release-of-information requests"]
    assert roi.received == 0 and roi.on_time_percent is None
    assert rs.amendments_exist(ids) and rs.accounting_requests_exist(ids)
    assert not rs.amendments_exist([personas.other_facility.pk])


def test_a_denied_access_request_counts_as_answered_when_closed(personas, patient, ids):
    received = dt.date(2025, 2, 1)
    request(
        personas,
        patient,
        received=received,
        status=RequestStatus.DENIED,
        closed=dt.datetime(2025, 2, 5, 15, tzinfo=dt.UTC),
    )
    request(personas, patient, received=received, due=dt.date(2025, 3, 3))  # open, overdue
    roi = rs.deadlines(ids, START, END, today=TODAY)[0]
    assert (roi.received, roi.on_time, roi.late, roi.open_overdue) == (2, 1, 0, 1)
