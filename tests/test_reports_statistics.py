"""Hospital statistics against a worked example, with the arithmetic written out.

January 2026 (31 days) at a hospital of 10 beds, times in the hospital's zone
(America/New York). Adults and children:

| stay | admitted | discharged | nights in January | LOS | notes |
| --- | --- | --- | --- | --- | --- |
| E1 | 30 Dec 2025 | 3 Jan | 1, 2 Jan = 2 | 3 Jan − 30 Dec = 4 | spans the start; consult note |
| E2 | 5 Jan | 5 Jan | same day = 1 | 1 | same-day stay |
| E3 | 10 Jan | 15 Jan | 10–14 Jan = 5 | 5 | transferred between units; operated 11 Jan |
| E4 | 20 Jan 08:00 | 21 Jan 10:00, died | 20 Jan = 1 | 1 | death within 48 hours |
| E5 | 25 Jan | 3 Feb, died | 25–31 Jan = 7 | — | spans the end; E3's patient again |
| E6 | 28 Jan | in house | 28–31 Jan = 4 | — | |
| E8 | 8 Jan | 12 Jan, died | 8–11 Jan = 4 | 4 | operated 9 Jan, died 3 days later |
| E10 | 29 Jan | 30 Jan | 29 Jan = 1 | 1 | E2's patient; planned (chemotherapy, Z51.11) |

Newborn: E7 born here 7 Jan, home 9 Jan (7, 8 Jan = 2 nights; LOS 2).
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from clinical.models import ClinicalEntry, ResourceType
from coding.models import Abstract, AbstractDiagnosis, AbstractStatus
from documents.models import Document, DocumentType
from encounters.models import AdmitSource, Disposition, Encounter, EncounterLocation
from recordroom.testing import register_patient
from reports import statistics as st
from reports.models import BedCapacity, ReadmissionRule

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")
JAN = (dt.date(2026, 1, 1), dt.date(2026, 1, 31))
_visit = itertools.count(1)


def at(day: dt.date, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=NY)


def stay(personas, patient, admitted, discharged=None, **fields):
    values = {
        "patient": patient,
        "facility": personas.facility,
        "visit_number": f"V{next(_visit):06d}",
        "encounter_class": "IMP",
        "status": "finished" if discharged else "in-progress",
        "service": "medicine",
        "started_at": admitted if isinstance(admitted, dt.datetime) else at(admitted),
        "ended_at": (
            discharged
            if isinstance(discharged, dt.datetime) or discharged is None
            else at(discharged)
        ),
        "disposition": Disposition.HOME if discharged else "",
        "created_at": at(dt.date(2026, 1, 1)),
        "updated_at": at(dt.date(2026, 1, 1)),
    }
    values.update(fields)
    return Encounter.objects.create(**values)


def surgery(personas, encounter, day):
    return ClinicalEntry.objects.create(
        patient=encounter.patient,
        encounter=encounter,
        resource_type=ResourceType.PROCEDURE,
        category=st.SURGICAL_CATEGORY,
        code_system="http://snomed.info/sct",
        code="80146002",
        display="Appendectomy",
        effective_at=at(day, 9),
        resource={"resourceType": "Procedure"},
        source="recorded",
        recorded_at=at(day, 9),
        recorded_by=personas.clinician,
    )


@pytest.fixture
def january(personas):
    d = dt.date
    p1, p2, p3, p4, p6, p7, p8 = (
        register_patient(personas, family=f"Statistic {'ABCDEFG'[n]}") for n in range(7)
    )
    BedCapacity.objects.create(
        facility=personas.facility,
        unit="4 West",
        beds=10,
        effective_from=d(2025, 1, 1),
        created_at=at(d(2025, 1, 1)),
    )
    ReadmissionRule.objects.create(
        effective_from=d(2000, 1, 1),
        window_days=30,
        planned_diagnosis_prefixes=["Z511"],
        exclude_dispositions=[
            Disposition.EXPIRED,
            Disposition.AMA,
            Disposition.SHORT_TERM_HOSPITAL,
        ],
        created_at=at(d(2025, 1, 1)),
    )
    e1 = stay(personas, p1, d(2025, 12, 30), d(2026, 1, 3))
    consult = DocumentType.objects.get(loinc_code=st.CONSULT_NOTE)
    Document.objects.create(
        patient=p1,
        encounter=e1,
        doc_type=consult,
        title="Cardiology consult",
        author=personas.clinician,
        service_at=at(d(2026, 1, 2)),
        entered_at=at(d(2026, 1, 2)),
        status="final",
        created_at=at(d(2026, 1, 2)),
        updated_at=at(d(2026, 1, 2)),
    )
    stay(personas, p2, d(2026, 1, 5), d(2026, 1, 5))
    e3 = stay(personas, p3, d(2026, 1, 10), d(2026, 1, 15))
    EncounterLocation.objects.create(
        encounter=e3, unit="4 West", started_at=at(d(2026, 1, 10)), ended_at=at(d(2026, 1, 12))
    )
    EncounterLocation.objects.create(
        encounter=e3, unit="ICU", started_at=at(d(2026, 1, 12)), ended_at=at(d(2026, 1, 15))
    )
    surgery(personas, e3, d(2026, 1, 11))
    stay(
        personas,
        p4,
        at(d(2026, 1, 20), 8),
        at(d(2026, 1, 21), 10),
        disposition=Disposition.EXPIRED,
        service="surgery",
    )
    stay(personas, p3, d(2026, 1, 25), d(2026, 2, 3), disposition=Disposition.EXPIRED)
    stay(personas, p6, d(2026, 1, 28))
    stay(personas, p7, d(2026, 1, 7), d(2026, 1, 9), admit_source=AdmitSource.NEWBORN)
    e8 = stay(
        personas,
        p8,
        d(2026, 1, 8),
        d(2026, 1, 12),
        disposition=Disposition.EXPIRED,
        service="surgery",
    )
    surgery(personas, e8, d(2026, 1, 9))
    e10 = stay(personas, p2, d(2026, 1, 29), d(2026, 1, 30))
    abstract = Abstract.objects.create(
        encounter=e10,
        patient=p2,
        status=AbstractStatus.FINAL,
        created_at=at(d(2026, 2, 1)),
        updated_at=at(d(2026, 2, 1)),
    )
    AbstractDiagnosis.objects.create(abstract=abstract, sequence=1, code="Z5111", poa="Y")
    return st.Scope((personas.facility.pk,))


def test_service_days_and_average_daily_census(january):
    # Nights in January: E1 2 + E2 1 + E3 5 + E4 1 + E5 7 + E6 4 + E8 4 + E10 1 = 25.
    assert st.service_days(january, *JAN) == 25
    stats = st.hospital_statistics(january, *JAN)
    assert stats.service_days == 25 and stats.days == 31
    # ADC = 25 / 31 = 0.806… → 0.81
    assert stats.average_daily_census == Decimal("0.81")


def test_the_daily_census_sums_to_the_service_days(january):
    census = dict(st.census_by_day(january, *JAN))
    assert census[dt.date(2026, 1, 1)] == 1  # E1 at midnight
    assert census[dt.date(2026, 1, 3)] == 0  # E1 left on the 3rd
    assert census[dt.date(2026, 1, 5)] == 1  # E2 admitted and discharged the same day
    assert census[dt.date(2026, 1, 10)] == 2  # E8 and E3 (E3 changed units: counted once)
    assert census[dt.date(2026, 1, 20)] == 1  # E4
    assert census[dt.date(2026, 1, 29)] == 3  # E5, E6, E10
    assert census[dt.date(2026, 1, 31)] == 2  # E5, E6
    assert sum(census.values()) == 25


def test_admissions_discharges_and_length_of_stay(january):
    stats = st.hospital_statistics(january, *JAN)
    # Admitted in January: E2, E3, E4, E5, E6, E8, E10 = 7 (E1 came in December).
    assert stats.admissions == 7
    # Discharged in January (deaths included): E1, E2, E3, E4, E8, E10 = 6.
    assert stats.discharges == 6
    # LOS: E1 4 + E2 1 (same day) + E3 5 + E4 1 + E8 4 + E10 1 = 16; ALOS 16 / 6 = 2.67.
    assert stats.total_los == 16
    assert stats.alos == Decimal("2.67")


def test_occupancy_and_turnover(january):
    stats = st.hospital_statistics(january, *JAN)
    # Bed-days 10 × 31 = 310; occupancy 25 / 310 × 100 = 8.06 %.
    assert stats.bed_days == 310
    assert stats.occupancy == Decimal("8.06")
    # Average beds 310 / 31 = 10; turnover 6 / 10 = 0.6.
    assert stats.bed_turnover == Decimal("0.60")


def test_bed_days_follow_a_change_of_bed_count(january, personas):
    BedCapacity.objects.filter(unit="4 West").update(effective_to=dt.date(2026, 1, 15))
    BedCapacity.objects.create(
        facility=personas.facility,
        unit="4 West",
        beds=20,
        effective_from=dt.date(2026, 1, 16),
        created_at=at(dt.date(2026, 1, 15)),
    )
    # 10 beds × 15 days (1–15 Jan) + 20 beds × 16 days (16–31 Jan) = 150 + 320 = 470.
    assert st.bed_days(january, *JAN) == 470


def test_death_rates(january):
    stats = st.hospital_statistics(january, *JAN)
    # Deaths discharged in January: E4 and E8 (E5 died in February) = 2 of 6.
    assert (stats.deaths, stats.deaths_under_48h) == (2, 1)  # E4 lived 26 hours
    assert stats.gross_death_rate == Decimal("33.33")  # 2 / 6 × 100
    assert stats.net_death_rate == Decimal("20.00")  # (2 − 1) / (6 − 1) × 100


def test_post_operative_death_and_consultation_rates(january):
    stats = st.hospital_statistics(january, *JAN)
    # Operated on: E3 (survived) and E8 (died 3 days after) → 1 / 2 × 100 = 50.
    assert (stats.operated, stats.postop_deaths) == (2, 1)
    assert stats.postop_death_rate == Decimal("50.00")
    # Consult notes: E1 only → 1 / 6 × 100 = 16.67.
    assert stats.consultation_rate == Decimal("16.67")


def test_thirty_day_readmissions_count_the_first_unplanned_one(january):
    stats = st.hospital_statistics(january, *JAN)
    # Index stays: discharged alive in January = E1, E2, E3, E10 = 4.
    # E3 (15 Jan) → E5 (25 Jan, unplanned): counted. E2 (5 Jan) → E10 (29 Jan): planned
    # (principal diagnosis Z51.11, chemotherapy), not counted. Rate 1 / 4 = 25 %.
    assert (stats.index_stays, stats.readmitted) == (4, 1)
    assert stats.readmission_rate == Decimal("25.00")


def test_newborns_are_reported_apart(january):
    newborns = st.Scope(january.facility_ids, population=st.NEWBORN)
    stats = st.hospital_statistics(newborns, *JAN)
    # E7: 7 and 8 January = 2 service days; one discharge, LOS 9 − 7 = 2.
    assert (stats.service_days, stats.discharges, stats.total_los) == (2, 1, 2)
    everyone = st.hospital_statistics(st.Scope(january.facility_ids, population=st.ALL), *JAN)
    assert everyone.service_days == 27 and everyone.discharges == 7


def test_a_service_filter_and_the_breakdown_by_service(january):
    surgery_only = st.Scope(january.facility_ids, service="surgery")
    stats = st.hospital_statistics(surgery_only, *JAN)
    # Surgery: E4 (1 night) and E8 (4 nights); both died.
    assert (stats.service_days, stats.discharges, stats.deaths) == (5, 2, 2)
    rows = {r.service: r for r in st.by_service(january, *JAN)}
    assert (rows["surgery"].discharges, rows["medicine"].discharges) == (2, 4)
    # Medicine LOS: E1 4 + E2 1 + E3 5 + E10 1 = 11 over 4 discharges = 2.75.
    assert rows["medicine"].alos == Decimal("2.75")


def test_the_monthly_trend_cuts_months_to_the_period(january):
    (row,) = st.trend_by_month(january, *JAN)
    assert (row.month, row.days, row.service_days, row.discharges) == (
        dt.date(2026, 1, 1),
        31,
        25,
        6,
    )
    december_to_january = st.trend_by_month(january, dt.date(2025, 12, 30), dt.date(2026, 1, 2))
    # E1 was in on the nights of 30 and 31 December, 1 and 2 January.
    assert [(r.month, r.service_days, r.days) for r in december_to_january] == [
        (dt.date(2025, 12, 1), 2, 2),
        (dt.date(2026, 1, 1), 2, 2),
    ]


def test_top_diagnoses_by_final_code(january):
    rows = st.top_diagnoses(january, *JAN)
    assert [(r.code, r.title, r.count, r.system) for r in rows] == [("Z5111", "", 1, "icd10cm")]


def test_a_leap_day(personas):
    patient = register_patient(personas, family="Leap")
    stay(personas, patient, dt.date(2028, 2, 28), dt.date(2028, 3, 1))
    scope = st.Scope((personas.facility.pk,))
    # Nights of 28 and 29 February 2028 = 2 service days in February (29 days).
    stats = st.hospital_statistics(scope, dt.date(2028, 2, 1), dt.date(2028, 2, 29))
    assert stats.service_days == 2 and stats.days == 29
    # Discharged 1 March: LOS 1 Mar − 28 Feb = 2 days in a leap year.
    march = st.hospital_statistics(scope, dt.date(2028, 3, 1), dt.date(2028, 3, 31))
    assert (march.discharges, march.total_los) == (1, 2)


def test_dates_are_the_hospitals_local_dates(personas):
    patient = register_patient(personas, family="Midnight")
    # Discharged 23:30 in New York on 31 January = 04:30 UTC on 1 February.
    stay(personas, patient, at(dt.date(2026, 1, 30), 10), at(dt.date(2026, 1, 31), 23, 30))
    stats = st.hospital_statistics(st.Scope((personas.facility.pk,)), *JAN)
    assert stats.discharges == 1 and stats.total_los == 1


def test_census_by_nursing_unit(personas, january):
    """E3 spends the midnights of the 10th and 11th on 4 West, moves to the ICU at noon
    on the 12th and leaves it on the 15th (ICU: 12th, 13th, 14th). E6, admitted on the
    28th to 4 West, is still there (28th–31st). A same-day stay on the 6th in the ICU
    counts one service day there. The other stays have no unit: their service days are
    the "no unit recorded" row, so the table adds up to the hospital's 25 + 1."""
    d = dt.date
    e6 = Encounter.objects.get(started_at=at(d(2026, 1, 28)))
    EncounterLocation.objects.create(encounter=e6, unit="4 West", started_at=e6.started_at)
    same_day = stay(personas, e6.patient, at(d(2026, 1, 6), 8), at(d(2026, 1, 6), 16))
    EncounterLocation.objects.create(
        encounter=same_day, unit="ICU", started_at=same_day.started_at, ended_at=same_day.ended_at
    )
    report = st.dashboard(january, *JAN)
    units = {u.unit: u for u in report.units}
    west, icu, none = units["4 West"], units["ICU"], units[""]
    assert west.service_days == 2 + 4
    assert icu.service_days == 3 + 1
    assert none.service_days == 26 - 6 - 4
    assert sum(u.service_days for u in report.units) == report.totals.service_days == 26
    # Movements: E3 admitted to 4 West and transferred to the ICU, discharged from it;
    # E6 admitted to 4 West; the same-day stay admitted to and discharged from the ICU.
    assert (west.admissions, west.transfers_in, west.transfers_out, west.discharges) == (
        2,
        0,
        1,
        0,
    )
    assert (icu.admissions, icu.transfers_in, icu.transfers_out, icu.discharges) == (1, 1, 0, 2)
    # 4 West has 10 beds: 310 bed-days, occupancy 6 / 310 × 100 = 1.94 %; the ICU has
    # no bed count recorded.
    assert west.bed_days == 310 and west.occupancy == Decimal("1.94")
    assert icu.bed_days is None and icu.occupancy is None
    assert west.average_daily_census == Decimal("0.19")  # 6 / 31
