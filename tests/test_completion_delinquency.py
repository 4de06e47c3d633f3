"""Delinquency and the analyst's counts, checked against a department written out by
hand below. All times are the hospital's (America/New_York); the first quarter of
2025 crosses the start of daylight saving time (9 March).

Discharges at RecordRoom General (facility of the fixture), record due 30 days after:

====  ================  =========  ============================================
id    discharged        service    record
====  ================  =========  ============================================
j05   5 Jan 12:00       medicine   incomplete (due 4 Feb) — carl ×2, olga ×1
j10   10 Jan 12:00      medicine   completed 5 Apr (due 9 Feb: late)
j15   15 Jan 12:00      medicine   completed 1 Feb (on time)
j20   20 Jan 12:00      surgery    completed 21 Jan
f03   3 Feb 12:00       surgery    completed 10 Feb
f10   10 Feb 12:00      surgery    completed 11 Feb
f15   15 Feb 12:00      medicine   completed 16 Feb
f20   20 Feb 12:00      surgery    incomplete (due 22 Mar) — carl
m02   2 Mar 12:00       medicine   completed 3 Mar
m05   5 Mar 12:00       medicine   completed 6 Mar
m11   11 Mar 12:00      surgery    incomplete (due 10 Apr 12:00, after "now") — carl
m31   31 Mar 23:30      medicine   completed 1 Apr 10:00 (a March discharge in UTC April)
d31   31 Dec 23:30      medicine   completed (December: outside the quarter)
a02   2 Apr 08:00       medicine   incomplete (due 2 May) — carl
====  ================  =========  ============================================

plus a discharge at the other facility in January and a cancelled encounter in
February, which count nowhere. "Now" is 10 April 2025, 11:00 (15:00 UTC).

- Q1: delinquent at 1 Apr 00:00 = j05, j10, f20 = 3; discharges = 12;
  3 ÷ (12 ÷ 3) × 100 = **75 %** (above the 50 % alert).
- January (measured 1 Feb): nothing due yet → 0 ÷ 4 = 0 %.
- February (measured 1 Mar): j05, j10 → 2 ÷ 4 × 100 = 50 % (not above 50 %).
- March (measured 1 Apr): j05, j10, f20 → 3 ÷ 4 × 100 = 75 %.
- April so far (measured now): j05, f20 → 2 ÷ 1 × 100 = 200 %.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from completion import access
from completion.models import CompletionPolicy, DeficiencyKind, RecordStatus
from patients.actions import IdentifierData
from recordroom.testing import register_patient
from tests.test_completion_queue import make_deficiency, make_encounter, make_record

pytestmark = pytest.mark.django_db

NY = ZoneInfo("America/New_York")
NOW = dt.datetime(2025, 4, 10, 11, 0, tzinfo=NY)


def local(month, day, hour=12, minute=0, year=2025):
    return dt.datetime(year, month, day, hour, minute, tzinfo=NY)


@pytest.fixture(autouse=True)
def new_york(settings):
    settings.TIME_ZONE = "America/New_York"


@pytest.fixture
def department(personas):
    patient = register_patient(personas)
    carl, olga = personas.clinician, personas.other_clinician

    def record(ended, service, *, completed=None, incomplete=False):
        encounter = make_encounter(
            personas, patient, started=ended - dt.timedelta(days=2), ended=ended, service=service
        )
        make_record(
            encounter,
            status=RecordStatus.INCOMPLETE if incomplete else RecordStatus.COMPLETE,
            completed_at=completed,
        )
        return encounter

    e = {
        "j05": record(local(1, 5), "medicine", incomplete=True),
        "j10": record(local(1, 10), "medicine", completed=local(4, 5)),
        "j15": record(local(1, 15), "medicine", completed=local(2, 1)),
        "j20": record(local(1, 20), "surgery", completed=local(1, 21)),
        "f03": record(local(2, 3), "surgery", completed=local(2, 10)),
        "f10": record(local(2, 10), "surgery", completed=local(2, 11)),
        "f15": record(local(2, 15), "medicine", completed=local(2, 16)),
        "f20": record(local(2, 20), "surgery", incomplete=True),
        "m02": record(local(3, 2), "medicine", completed=local(3, 3)),
        "m05": record(local(3, 5), "medicine", completed=local(3, 6)),
        "m11": record(local(3, 11), "surgery", incomplete=True),
        "m31": record(local(3, 31, 23, 30), "medicine", completed=local(4, 1, 10)),
        "d31": record(local(12, 31, 23, 30, year=2024), "medicine", completed=local(1, 2)),
        "a02": record(local(4, 2, 8), "medicine", incomplete=True),
    }
    for _ in range(2):
        make_deficiency(e["j05"], responsible=carl)
    make_deficiency(e["j05"], responsible=olga, kind=DeficiencyKind.UNSIGNED)
    make_deficiency(e["f20"], responsible=carl)
    make_deficiency(e["m11"], responsible=carl)
    make_deficiency(e["a02"], responsible=carl)
    # Count nowhere: a cancelled encounter, and a discharge at the other facility.
    make_encounter(personas, patient, started=local(2, 1), ended=local(2, 2), status="cancelled")
    elsewhere = register_patient(
        personas,
        facility=personas.other_facility,
        family="Farway",
        identifiers=[IdentifierData(kind="SS", value="234-56-7890")],
    )
    far = make_encounter(
        personas,
        elsewhere,
        started=local(1, 1),
        ended=local(1, 6),
        facility=personas.other_facility,
    )
    make_record(far, status=RecordStatus.INCOMPLETE)
    make_deficiency(far, responsible=carl)
    return e


def rate(personas, text, **kwargs):
    return access.delinquency_rate(
        personas.technician, access.Period.parse(text), facility=personas.facility, now=NOW
    )


# --- the rate ---------------------------------------------------------------------------


def test_the_quarter_rate_is_delinquent_over_average_monthly_discharges(personas, department):
    q1 = rate(personas, "2025-Q1")
    assert (q1.delinquent, q1.discharges) == (3, 12)
    assert q1.average_monthly_discharges == Decimal("4.00")
    assert q1.percent == Decimal("75.0")
    assert q1.threshold == Decimal("50") and q1.alert


@pytest.mark.parametrize(
    ("period", "delinquent", "discharges", "percent", "alert"),
    [
        ("2025-01", 0, 4, Decimal("0.0"), False),
        ("2025-02", 2, 4, Decimal("50.0"), False),
        ("2025-03", 3, 4, Decimal("75.0"), True),
        ("2025-04", 2, 1, Decimal("200.0"), True),
        ("2024-12", 0, 1, Decimal("0.0"), False),
    ],
)
def test_monthly_rates(personas, department, period, delinquent, discharges, percent, alert):
    result = rate(personas, period)
    assert (result.delinquent, result.discharges) == (delinquent, discharges)
    assert (result.percent, result.alert) == (percent, alert)


def test_a_month_without_discharges_has_no_rate(personas, department):
    result = rate(personas, "2024-06")
    assert result.discharges == 0 and result.percent is None and not result.alert


def test_the_alert_threshold_is_the_policy(personas, department):
    CompletionPolicy.objects.create(
        facility=personas.facility,
        effective_from=dt.date(2025, 1, 1),
        delinquency_alert_percent=Decimal("80"),
        created_at=NOW,
    )
    q1 = rate(personas, "2025-Q1")
    assert q1.percent == Decimal("75.0") and q1.threshold == Decimal("80") and not q1.alert


def test_the_trend_is_computed_in_two_aggregate_queries(
    personas, department, django_assert_max_num_queries
):
    periods = [access.Period.of_month(2025, 4).previous(n) for n in range(11, -1, -1)]
    with django_assert_max_num_queries(4):  # policy, discharges, delinquent (+1 spare)
        rates = access._rates(personas.facility, periods, NOW)
    assert [r.period.label for r in rates][-4:] == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert [r.percent for r in rates][-4:] == [
        Decimal("0.0"),
        Decimal("50.0"),
        Decimal("75.0"),
        Decimal("200.0"),
    ]


def test_the_trend_has_twelve_months_and_four_quarters(personas, department):
    trend = access.delinquency_trend(personas.technician, facility=personas.facility, now=NOW)
    assert len(trend["monthly"]) == 12 and trend["monthly"][-1].period.label == "2025-04"
    assert [r.period.label for r in trend["quarterly"]] == [
        "2024-Q3",
        "2024-Q4",
        "2025-Q1",
        "2025-Q2",
    ]
    assert trend["quarterly"][2].percent == Decimal("75.0")


@pytest.mark.parametrize("text", ["2025", "2025-13", "2025-Q5", "25-01", "2025-1", "x"])
def test_a_bad_period_is_refused(text):
    with pytest.raises(ValueError):
        access.Period.parse(text)


def test_periods_end_at_local_midnight_across_daylight_saving(new_york):
    march = access.Period.parse("2025-03")
    assert march.start.astimezone(dt.UTC) == dt.datetime(2025, 3, 1, 5, tzinfo=dt.UTC)
    assert march.end.astimezone(dt.UTC) == dt.datetime(2025, 4, 1, 4, tzinfo=dt.UTC)
    assert access.Period.parse("2025-q4").end == dt.datetime(2026, 1, 1, tzinfo=NY)


# --- per record, per clinician, suspension ---------------------------------------------


def test_delinquent_records_longest_first(personas, department, audit_rows):
    rows = access.delinquent_records(personas.technician, facility=personas.facility, now=NOW)
    assert [r.encounter for r in rows] == [department["j05"], department["f20"]]
    first = rows[0]
    assert first.open_count == 3
    assert first.days_delinquent == 64  # 4 Feb 12:00 EST → 10 Apr 11:00 EDT: 64 d 22 h
    assert [c.username for c in first.responsible] == ["dr.carl", "dr.olga"]
    (event,) = audit_rows(object_type="completion.record")
    assert event.detail["shown"] == [str(department["j05"].patient.public_id)]


def test_delinquency_per_clinician(personas, department):
    rows = access.delinquency_by_clinician(personas.technician, facility=personas.facility, now=NOW)
    summary = {r.clinician.username: (r.records, r.deficiencies) for r in rows}
    assert summary == {"dr.carl": (2, 3), "dr.olga": (1, 1)}


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (None, {"dr.carl": (2, 3), "dr.olga": (1, 1)}),  # policy: 14 days
        (30, {"dr.carl": (1, 2), "dr.olga": (1, 1)}),
        (70, {}),
    ],
)
def test_the_suspension_list(personas, department, days, expected):
    listed = access.suspension_list(
        personas.technician, facility=personas.facility, days=days, now=NOW
    )
    assert listed["days"] == (14 if days is None else days)
    assert {r.clinician.username: (r.records, r.deficiencies) for r in listed["rows"]} == expected


def test_the_suspension_days_come_from_the_policy(personas, department):
    CompletionPolicy.objects.create(
        facility=None, effective_from=dt.date(2025, 1, 1), suspension_days=30, created_at=NOW
    )
    listed = access.suspension_list(personas.technician, facility=personas.facility, now=NOW)
    assert listed["days"] == 30
    assert {r.clinician.username: r.records for r in listed["rows"]} == {
        "dr.carl": 1,
        "dr.olga": 1,
    }


# --- the analyst's counts ------------------------------------------------------------


def test_counts_by_service_clinician_and_age(personas, department, audit_rows):
    counts = access.completion_counts(personas.technician, facility=personas.facility, now=NOW)
    assert (counts.incomplete, counts.delinquent) == (4, 2)
    assert [(r.label, r.incomplete, r.delinquent) for r in counts.by_service] == [
        ("medicine", 2, 1),
        ("surgery", 2, 1),
    ]
    assert [(r.label, r.incomplete, r.delinquent) for r in counts.by_clinician] == [
        ("Dr.Carl Testperson", 4, 2),
        ("Dr.Olga Testperson", 1, 1),
    ]
    # Days since discharge: a02 8, m11 29, f20 48 (31–60), j05 94 (over 60).
    assert [(r.label, r.incomplete, r.delinquent) for r in counts.by_age] == [
        ("0–7 days", 0, 0),
        ("8–14 days", 1, 0),
        ("15–30 days", 1, 0),
        ("31–60 days", 1, 1),
        ("Over 60 days", 1, 1),
    ]
    (event,) = audit_rows(object_type="completion.counts")
    assert event.action == Action.VIEW and event.patient_id is None


def test_age_buckets_include_both_ends(personas):
    patient = register_patient(personas)
    now = local(6, 30)
    for days in (0, 7, 8, 14, 15, 30, 31, 60, 61):
        ended = now - dt.timedelta(days=days)
        encounter = make_encounter(
            personas, patient, started=ended - dt.timedelta(days=1), ended=ended
        )
        make_record(encounter)
    in_house = make_encounter(personas, patient, started=now - dt.timedelta(days=3))
    make_record(in_house)
    counts = access.completion_counts(personas.technician, facility=personas.facility, now=now)
    assert [(r.label, r.incomplete) for r in counts.by_age] == [
        ("0–7 days", 2),
        ("8–14 days", 2),
        ("15–30 days", 2),
        ("31–60 days", 2),
        ("Over 60 days", 1),
        ("Not yet discharged", 1),
    ]
    assert [b.label for b in access.AGE_BUCKETS] == [r.label for r in counts.by_age][:5]


def test_exports_are_audited_as_exports(personas, department, audit_rows):
    access.export_counts(personas.technician, facility=personas.facility, now=NOW)
    rows = access.export_deficiencies(personas.technician, now=NOW)
    assert len(rows) == 6  # the open ones at the user's facility
    events = audit_rows(action=Action.EXPORT)
    assert [e.object_type for e in events] == ["completion.counts", "completion.deficiency"]
    assert events[1].detail["count"] == 6


@pytest.mark.parametrize("who", ["clinician", "roi_specialist", "privacy_officer", "no_role"])
def test_the_figures_are_refused_to_other_roles_and_audited(personas, audit_rows, who):
    user = getattr(personas, who)
    for read in (
        lambda: access.completion_counts(user, facility=personas.facility),
        lambda: access.delinquency_trend(user, facility=personas.facility),
        lambda: access.suspension_list(user, facility=personas.facility),
        lambda: access.delinquent_records(user, facility=personas.facility),
        lambda: access.export_counts(user, facility=personas.facility),
    ):
        with pytest.raises(AccessDenied):
            read()
    assert len(audit_rows(outcome=Outcome.DENIED)) == 5


def test_a_coder_sees_the_figures(personas, department):
    counts = access.completion_counts(personas.coder, facility=personas.facility, now=NOW)
    assert counts.incomplete == 4
