"""Coding figures for the department's statistics: the backlog by status, DNFB by days
since discharge, abstracts finalised per day — aggregates worked out by hand below."""

from __future__ import annotations

import datetime as dt

import pytest

from coding import statistics as cs
from coding.models import Abstract, AbstractStatus
from encounters.models import EncounterStatus
from recordroom.testing import register_patient
from tests.test_completion_queue import NOW, discharged, make_encounter

pytestmark = pytest.mark.django_db


def abstract(encounter, status, *, finalised_at=None):
    return Abstract.objects.create(
        encounter=encounter,
        patient=encounter.patient,
        status=status,
        finalised_at=finalised_at,
        created_at=encounter.ended_at or NOW,
        updated_at=NOW,
    )


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def ids(personas):
    return [personas.facility.pk]


def test_nothing_coded_yet_is_reported_as_no_data(personas, patient, ids):
    discharged(personas, patient, days_ago=2)
    assert cs.abstracts_exist(ids) is False


def test_backlog_counts_each_status_and_encounters_without_an_abstract(personas, patient, ids):
    # Backlog = discharged, not final: 2 with no abstract + 1 not started = 3 not started,
    # 1 in progress, 1 on hold; the final, rebilled, in-house and cancelled ones are out.
    discharged(personas, patient, days_ago=1)
    discharged(personas, patient, days_ago=2)
    abstract(discharged(personas, patient, days_ago=3), AbstractStatus.NOT_STARTED)
    abstract(discharged(personas, patient, days_ago=4), AbstractStatus.IN_PROGRESS)
    abstract(discharged(personas, patient, days_ago=5), AbstractStatus.ON_HOLD)
    abstract(discharged(personas, patient, days_ago=6), AbstractStatus.FINAL, finalised_at=NOW)
    abstract(discharged(personas, patient, days_ago=7), AbstractStatus.REBILLED, finalised_at=NOW)
    make_encounter(personas, patient, started=NOW - dt.timedelta(days=1))
    discharged(personas, patient, days_ago=1, status=EncounterStatus.CANCELLED)
    rows = {r.status: r.count for r in cs.backlog_by_status(ids)}
    assert rows == {"not_started": 3, "in_progress": 1, "on_hold": 1}
    assert cs.abstracts_exist(ids) is True


def test_backlog_is_per_facility_and_service(personas, patient, ids):
    discharged(personas, patient, days_ago=1, service="surgery")
    discharged(personas, patient, days_ago=1, service="medicine")
    discharged(personas, patient, days_ago=1, facility=personas.other_facility)
    assert sum(r.count for r in cs.backlog_by_status(ids)) == 2
    assert sum(r.count for r in cs.backlog_by_status(ids, service="Surgery")) == 1
    assert sum(r.count for r in cs.backlog_by_status([personas.other_facility.pk])) == 1


def test_dnfb_buckets_by_whole_days_since_discharge(personas, patient, ids):
    # Days since discharge 0.5, 3, 3.5, 4, 14, 15, 31 → 0–3: 3 (0.5, 3, 3.5 are 0, 3, 3
    # whole days), 4–7: 1, 8–14: 1, 15–30: 1, over 30: 1; oldest 31 days.
    for days in (0.5, 3, 3.5, 4, 14, 15, 31):
        discharged(personas, patient, days_ago=days)
    abstract(discharged(personas, patient, days_ago=2), AbstractStatus.FINAL, finalised_at=NOW)
    result = cs.dnfb(ids, now=NOW)
    assert result.total == 7
    assert [b.count for b in result.by_age] == [3, 1, 1, 1, 1]
    assert result.oldest_days == 31


def test_dnfb_with_nothing_waiting(ids):
    result = cs.dnfb(ids, now=NOW)
    assert result.total == 0
    assert result.oldest_days is None
    assert [b.count for b in result.by_age] == [0, 0, 0, 0, 0]


def test_finalised_per_day_uses_local_days_and_fills_gaps(personas, patient, ids):
    # New York is UTC-4 on 18 March 2025: 03:30 UTC on the 18th is the 17th locally.
    a = discharged(personas, patient, days_ago=5)
    b = discharged(personas, patient, days_ago=5)
    c = discharged(personas, patient, days_ago=5)
    d = discharged(personas, patient, days_ago=5)
    abstract(a, AbstractStatus.FINAL, finalised_at=dt.datetime(2025, 3, 18, 3, 30, tzinfo=dt.UTC))
    abstract(b, AbstractStatus.FINAL, finalised_at=dt.datetime(2025, 3, 18, 14, 0, tzinfo=dt.UTC))
    abstract(c, AbstractStatus.REBILLED, finalised_at=dt.datetime(2025, 3, 19, 14, tzinfo=dt.UTC))
    abstract(d, AbstractStatus.IN_PROGRESS)
    days = cs.finalised_per_day(ids, dt.date(2025, 3, 16), dt.date(2025, 3, 19))
    assert [(x.day.isoformat(), x.count) for x in days] == [
        ("2025-03-16", 0),
        ("2025-03-17", 1),
        ("2025-03-18", 1),
        ("2025-03-19", 1),
    ]
    assert cs.finalised_total(ids, dt.date(2025, 3, 18), dt.date(2025, 3, 18)) == 1


def test_finalised_per_day_refuses_a_reversed_range(ids):
    with pytest.raises(ValueError, match="before its start"):
        cs.finalised_per_day(ids, dt.date(2025, 3, 2), dt.date(2025, 3, 1))
