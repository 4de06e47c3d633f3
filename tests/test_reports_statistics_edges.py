"""Hospital statistics at the edges, each worked out by hand: ranges that cut a stay,
the leap day, the 48-hour and 10-day limits, readmission windows and planned rules,
newborn bassinets, what is not an inpatient, the policy as data, the top codes, the
dashboard's figures agreeing with each other, and the door (permission and audit)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.http import Http404
from django.utils import timezone

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from coding.models import Abstract, AbstractDiagnosis, AbstractProcedure, AbstractStatus, Code
from documents.models import Document, DocumentType
from encounters.models import AdmitSource, Disposition
from recordroom import clock
from recordroom.testing import register_patient
from reports import access
from reports import statistics as st
from reports.models import BedCapacity, ReadmissionRule, StatisticsPolicy
from reports.tables import Filters
from tests.test_reports_statistics import at, stay, surgery

pytestmark = pytest.mark.django_db
d = dt.date


@pytest.fixture
def scope(personas):
    return st.Scope((personas.facility.pk,))


@pytest.fixture
def patient(personas):
    return register_patient(personas, family="Edge")


def final_abstract(encounter, *, diagnosis="I214", procedures=()):
    abstract = Abstract.objects.create(
        encounter=encounter,
        patient=encounter.patient,
        status=AbstractStatus.FINAL,
        created_at=encounter.ended_at,
        updated_at=encounter.ended_at,
    )
    AbstractDiagnosis.objects.create(abstract=abstract, sequence=1, code=diagnosis, poa="Y")
    for number, code in enumerate(procedures, start=1):
        AbstractProcedure.objects.create(
            abstract=abstract, sequence=number, system="icd10pcs", code=code
        )
    return abstract


# --- ranges, calendar ---------------------------------------------------------------


def test_a_stay_spanning_the_whole_range_counts_every_day_but_no_movement(personas, scope, patient):
    stay(personas, patient, d(2026, 3, 20), d(2026, 5, 2))
    stats = st.hospital_statistics(scope, d(2026, 4, 1), d(2026, 4, 30))
    # In house every night of April: 30 service days, ADC 30 / 30 = 1.00; admitted in
    # March and discharged in May: no admission, no discharge, no LOS in April.
    assert (stats.service_days, stats.average_daily_census) == (30, Decimal("1.00"))
    assert (stats.admissions, stats.discharges, stats.alos) == (0, 0, None)
    assert stats.gross_death_rate is None and stats.readmission_rate is None


def test_the_leap_day_has_its_own_census(personas, scope, patient):
    stay(personas, patient, d(2028, 2, 28), d(2028, 3, 1))
    census = st.census_by_day(scope, d(2028, 2, 27), d(2028, 3, 1))
    # 27 Feb: not yet in; 28 and 29 Feb: in house at midnight; 1 Mar: discharged.
    assert census == [
        (d(2028, 2, 27), 0),
        (d(2028, 2, 28), 1),
        (d(2028, 2, 29), 1),
        (d(2028, 3, 1), 0),
    ]
    # A year over the leap day: 366 days; ADC = 2 / 366 = 0.0054… → 0.01.
    year = st.hospital_statistics(scope, d(2028, 1, 1), d(2028, 12, 31))
    assert (year.days, year.service_days, year.average_daily_census) == (366, 2, Decimal("0.01"))


def test_a_stay_across_the_autumn_clock_change_keeps_local_dates(personas, scope, patient):
    # New York falls back on 1 November 2026: 23:30 local on 31 October is 03:30 UTC on
    # 1 November; discharged 00:30 local on 2 November (05:30 UTC). LOS 2 Nov − 31 Oct = 2.
    stay(personas, patient, at(d(2026, 10, 31), 23, 30), at(d(2026, 11, 2), 0, 30))
    census = dict(st.census_by_day(scope, d(2026, 10, 30), d(2026, 11, 2)))
    assert [census[d(2026, 10, 30) + dt.timedelta(n)] for n in range(4)] == [0, 1, 1, 0]
    assert st.hospital_statistics(scope, d(2026, 11, 1), d(2026, 11, 30)).total_los == 2


def test_the_range_must_not_end_before_it_starts(scope):
    with pytest.raises(ValueError):
        st.hospital_statistics(scope, d(2026, 2, 1), d(2026, 1, 31))
    with pytest.raises(ValueError):
        st.Scope((1,), population="martians")


# --- what counts --------------------------------------------------------------------


def test_only_inpatient_stays_that_happened_count(personas, scope, patient):
    stay(personas, patient, d(2026, 6, 1), d(2026, 6, 3))  # counted: 2 days
    stay(personas, patient, d(2026, 6, 1), d(2026, 6, 3), encounter_class="OBSENC")
    stay(personas, patient, d(2026, 6, 1), d(2026, 6, 3), encounter_class="EMER")
    stay(personas, patient, d(2026, 6, 1), d(2026, 6, 3), status="cancelled")
    stay(personas, patient, d(2026, 6, 1), d(2026, 6, 3), status="entered-in-error")
    other = register_patient(personas, family="Elsewhere", facility=personas.other_facility)
    stay(personas, other, d(2026, 6, 1), d(2026, 6, 3), facility=personas.other_facility)
    stats = st.hospital_statistics(scope, d(2026, 6, 1), d(2026, 6, 30))
    assert (stats.service_days, stats.admissions, stats.discharges) == (2, 1, 1)
    both = st.Scope((personas.facility.pk, personas.other_facility.pk))
    assert st.hospital_statistics(both, d(2026, 6, 1), d(2026, 6, 30)).discharges == 2


def test_a_baby_born_elsewhere_is_counted_with_adults_and_children(personas, patient):
    baby = register_patient(personas, family="Transferred", birth_date=d(2026, 6, 8))
    stay(personas, patient, d(2026, 6, 10), d(2026, 6, 12), admit_source=AdmitSource.NEWBORN)
    stay(personas, baby, d(2026, 6, 10), d(2026, 6, 11), admit_source=AdmitSource.TRANSFER_HOSPITAL)
    facility = (personas.facility.pk,)
    for population, days in ((st.NEWBORN, 2), (st.ADULTS_CHILDREN, 1), (st.ALL, 3)):
        stats = st.hospital_statistics(
            st.Scope(facility, population=population), d(2026, 6, 1), d(2026, 6, 30)
        )
        assert stats.service_days == days, population


def test_newborn_occupancy_uses_the_bassinets(personas, patient):
    for unit, beds, newborn in (("Nursery", 4, True), ("4 West", 20, False)):
        BedCapacity.objects.create(
            facility=personas.facility,
            unit=unit,
            beds=beds,
            newborn=newborn,
            effective_from=d(2026, 1, 1),
            created_at=at(d(2026, 1, 1)),
        )
    stay(personas, patient, d(2026, 6, 10), d(2026, 6, 13), admit_source=AdmitSource.NEWBORN)
    june = (d(2026, 6, 1), d(2026, 6, 30))
    newborns = st.hospital_statistics(
        st.Scope((personas.facility.pk,), population=st.NEWBORN), *june
    )
    # 3 bassinet-days used of 4 × 30 = 120: 3 / 120 × 100 = 2.50 %; turnover 1 / 4 = 0.25.
    assert (newborns.bed_days, newborns.occupancy) == (120, Decimal("2.50"))
    assert (newborns.average_beds, newborns.bed_turnover) == (Decimal("4.00"), Decimal("0.25"))
    everyone = st.Scope((personas.facility.pk,), population=st.ALL)
    assert st.bed_days(everyone, *june) == (4 + 20) * 30


def test_without_bed_counts_occupancy_is_not_measured(personas, scope, patient):
    stay(personas, patient, d(2026, 6, 10), d(2026, 6, 13))
    stats = st.hospital_statistics(scope, d(2026, 6, 1), d(2026, 6, 30))
    assert (stats.bed_days, stats.occupancy, stats.bed_turnover) == (0, None, None)
    assert st.NO_BEDS in stats.notes


# --- deaths -------------------------------------------------------------------------


def test_a_death_at_exactly_48_hours_stays_in_the_net_rate(personas, scope):
    people = [register_patient(personas, family=f"Net {n}") for n in "ABCD"]
    expired = {"disposition": Disposition.EXPIRED}
    stay(personas, people[0], at(d(2026, 6, 1), 8), at(d(2026, 6, 3), 8), **expired)  # 48 h
    stay(personas, people[1], at(d(2026, 6, 1), 8), at(d(2026, 6, 3), 7, 59), **expired)
    stay(personas, people[2], d(2026, 6, 1), d(2026, 6, 9))
    stay(personas, people[3], d(2026, 6, 1), d(2026, 6, 9))
    stats = st.hospital_statistics(scope, d(2026, 6, 1), d(2026, 6, 30))
    # 2 deaths of 4 discharges: gross 50 %; one under 48 h: net (2 − 1) / (4 − 1) = 33.33 %.
    assert (stats.deaths, stats.deaths_under_48h) == (2, 1)
    assert (stats.gross_death_rate, stats.net_death_rate) == (Decimal("50.00"), Decimal("33.33"))


def test_post_operative_deaths_are_within_ten_days_of_the_last_operation(personas, scope):
    a, b, c = (register_patient(personas, family=f"Op {n}") for n in "abc")
    expired = {"disposition": Disposition.EXPIRED}
    # A: operated 2 June 09:00, died 12 June 09:00 = 10 days → post-operative.
    e1 = stay(personas, a, d(2026, 6, 1), at(d(2026, 6, 12), 9), **expired)
    surgery(personas, e1, d(2026, 6, 2))
    # B: operated 1 June 09:00, died 11 June 10:00 = 10 days 1 hour → not post-operative.
    e2 = stay(personas, b, d(2026, 5, 31), at(d(2026, 6, 11), 10), **expired)
    surgery(personas, e2, d(2026, 6, 1))
    # C: the operation was not done: not operated on.
    e3 = stay(personas, c, d(2026, 6, 1), d(2026, 6, 5))
    surgery(personas, e3, d(2026, 6, 2)).__class__.objects.filter(encounter=e3).update(
        status="not-done"
    )
    stats = st.hospital_statistics(scope, d(2026, 6, 1), d(2026, 6, 30))
    # Operated on: A and B = 2; post-operative deaths: A = 1 → 1 / 2 × 100 = 50 %.
    assert (stats.operated, stats.postop_deaths, stats.postop_death_rate) == (
        2,
        1,
        Decimal("50.00"),
    )


# --- readmissions -------------------------------------------------------------------


def rule(**fields):
    values = {
        "effective_from": d(2020, 1, 1),
        "window_days": 30,
        "planned_diagnosis_prefixes": ["Z511"],
        "planned_procedure_prefixes": ["0TY0"],
        "exclude_dispositions": [Disposition.EXPIRED, Disposition.AMA],
        "first_only": True,
        "created_at": at(d(2020, 1, 1)),
    }
    values.update(fields)
    return ReadmissionRule.objects.create(**values)


def test_the_thirty_day_window_counts_calendar_days_from_discharge(personas, scope):
    rule()
    a, b = (register_patient(personas, family=f"Window {n}") for n in "ab")
    stay(personas, a, d(2026, 6, 1), d(2026, 6, 5))
    stay(personas, a, d(2026, 7, 5), d(2026, 7, 6))  # 5 Jun + 30 = 5 Jul: inside
    stay(personas, b, d(2026, 6, 1), d(2026, 6, 5))
    stay(personas, b, d(2026, 7, 6), d(2026, 7, 7))  # day 31: outside
    stats = st.hospital_statistics(scope, d(2026, 6, 1), d(2026, 6, 30))
    # Index stays discharged in June: 2; readmitted within 30 days: A only → 50 %.
    assert (stats.index_stays, stats.readmitted, stats.readmission_rate) == (
        2,
        1,
        Decimal("50.00"),
    )


def test_a_planned_transplant_and_the_first_only_rule(personas, scope):
    current = rule()
    a, b = (register_patient(personas, family=f"Planned {n}") for n in "ab")
    # A: discharged 5 June, back 10 June for a kidney transplant (0TY0…, planned), then
    # again 20 June unplanned.
    stay(personas, a, d(2026, 6, 1), d(2026, 6, 5))
    final_abstract(
        stay(personas, a, d(2026, 6, 10), d(2026, 6, 15)), diagnosis="N186", procedures=["0TY00Z0"]
    )
    stay(personas, a, d(2026, 6, 20), d(2026, 6, 22))
    # B: left against medical advice: not an index stay; back 8 June.
    stay(personas, b, d(2026, 6, 1), d(2026, 6, 3), disposition=Disposition.AMA)
    stay(personas, b, d(2026, 6, 8), d(2026, 6, 9))
    may = (d(2026, 6, 1), d(2026, 6, 5))
    stats = st.hospital_statistics(scope, *may)
    # Index stays discharged 1–5 June: A (B left AMA) = 1. First only: A's first
    # readmission is the planned transplant → not counted; 0 / 1 = 0 %.
    assert (stats.index_stays, stats.readmitted, stats.planned_readmissions) == (1, 0, 1)
    assert stats.readmission_rate == Decimal("0.00")
    # Any unplanned readmission (first_only off): A's 20 June stay counts → 1 / 1 = 100 %.
    ReadmissionRule.objects.filter(pk=current.pk).update(first_only=False)
    assert st.hospital_statistics(scope, *may).readmission_rate == Decimal("100.00")


def test_the_rule_in_force_on_the_last_day_applies(personas, scope):
    rule()
    rule(effective_from=d(2026, 7, 1), window_days=7, created_at=at(d(2026, 6, 30)))
    a = register_patient(personas, family="Versioned")
    stay(personas, a, d(2026, 6, 1), d(2026, 6, 5))
    stay(personas, a, d(2026, 6, 15), d(2026, 6, 16))  # 10 days after
    june = st.hospital_statistics(scope, d(2026, 6, 1), d(2026, 6, 30))
    june_july = st.hospital_statistics(scope, d(2026, 6, 1), d(2026, 7, 31))
    assert (june.readmitted, june.readmission_window_days) == (1, 30)
    assert (june_july.readmitted, june_july.readmission_window_days) == (0, 7)


def test_the_seeded_default_rule_marks_chemotherapy_planned(personas, scope):
    seeded = ReadmissionRule.objects.get()  # data migration 0003
    assert seeded.window_days == 30 and "Z511" in seeded.planned_diagnosis_prefixes
    a = register_patient(personas, family="Chemo")
    stay(personas, a, d(2026, 6, 1), d(2026, 6, 5))
    final_abstract(stay(personas, a, d(2026, 6, 12), d(2026, 6, 13)), diagnosis="Z5111")
    stats = st.hospital_statistics(scope, d(2026, 6, 1), d(2026, 6, 5))
    assert (stats.index_stays, stats.readmitted, stats.planned_readmissions) == (1, 0, 1)


# --- policy as data -----------------------------------------------------------------


def test_the_consultation_definition_is_policy(personas, scope, patient):
    encounter = stay(personas, patient, d(2026, 6, 1), d(2026, 6, 4))
    Document.objects.create(
        patient=patient,
        encounter=encounter,
        doc_type=DocumentType.objects.get(loinc_code="11506-3"),  # Progress note
        title="Progress",
        author=personas.clinician,
        service_at=at(d(2026, 6, 2)),
        entered_at=at(d(2026, 6, 2)),
        status="final",
        created_at=at(d(2026, 6, 2)),
        updated_at=at(d(2026, 6, 2)),
    )
    june = (d(2026, 6, 1), d(2026, 6, 30))
    assert st.hospital_statistics(scope, *june).consultation_rate == Decimal("0.00")
    StatisticsPolicy.objects.create(
        effective_from=d(2026, 6, 1),
        newborn_admit_sources=["5a"],
        death_dispositions=["20"],
        surgical_categories=[st.SURGICAL_CATEGORY],
        consultation_document_codes=[st.CONSULT_NOTE, "11506-3"],
        created_at=at(d(2026, 5, 31)),
    )
    assert st.hospital_statistics(scope, *june).consultation_rate == Decimal("100.00")


# --- top codes and the dashboard ----------------------------------------------------


def test_top_codes_count_final_abstracts_only(personas, scope):
    people = [register_patient(personas, family=f"Coded {n}") for n in "ABCD"]
    Code.objects.create(
        system="icd10cm", code="I214", title="Non-ST elevation myocardial infarction", billable=True
    )
    for person in people[:3]:
        final_abstract(
            stay(personas, person, d(2026, 6, 1), d(2026, 6, 4)),
            procedures=["02703ZZ", "B2111ZZ"],
        )
    final_abstract(stay(personas, people[3], d(2026, 6, 1), d(2026, 6, 4)), diagnosis="J189")
    Abstract.objects.filter(diagnoses__code="J189").update(status=AbstractStatus.IN_PROGRESS)
    june = (d(2026, 6, 1), d(2026, 6, 30))
    assert st.top_diagnoses(scope, *june) == [
        ("I214", "Non-ST elevation myocardial infarction", 3, "icd10cm")
    ]
    assert [(r.code, r.count) for r in st.top_procedures(scope, *june)] == [
        ("02703ZZ", 3),
        ("B2111ZZ", 3),
    ]
    assert st.final_coded_discharges(scope, *june) == 3
    # The dashboard counts the same three in its one pass over the discharges.
    report = st.dashboard(scope, *june)
    assert report.totals.final_coded == report.final_coded_discharges == 3
    assert (report.totals.discharges, report.notes) == (4, [])


def test_the_dashboard_agrees_with_itself(personas, scope):
    people = [register_patient(personas, family=f"Board {n}") for n in "ABC"]
    stay(personas, people[0], d(2026, 1, 30), d(2026, 2, 2))
    stay(personas, people[1], d(2026, 2, 27), d(2026, 3, 1), service="surgery")
    stay(personas, people[2], d(2026, 3, 5), d(2026, 3, 5))
    report = st.dashboard(scope, d(2026, 1, 1), d(2026, 3, 31))
    # Service days: 3 (30 Jan–1 Feb) + 2 (27, 28 Feb) + 1 (same day) = 6.
    assert report.totals.service_days == 6 == sum(r.census for r in report.days)
    assert [m.service_days for m in report.months] == [2, 3, 1]
    assert sum(m.discharges for m in report.months) == report.totals.discharges == 3
    assert {s.service: s.discharges for s in report.services} == {"medicine": 2, "surgery": 1}
    assert report.top_diagnoses == [] and st.NO_FINAL_CODES in report.notes
    assert all(s.bed_days is None for s in report.services)


# --- the door -----------------------------------------------------------------------


FILTERS = Filters(start=d(2026, 1, 1), end=d(2026, 1, 31))


@pytest.mark.parametrize("who", ["clinician", "patient", "no_role", "roi_specialist"])
def test_it_refuses_without_the_permission_and_audits(personas, audit_rows, who):
    with pytest.raises(AccessDenied):
        access.hospital_report(getattr(personas, who), FILTERS)
    denied = audit_rows(outcome=Outcome.DENIED, object_type=access.OBJECT_TYPE)
    assert len(denied) == 1 and denied[0].action == Action.VIEW


def test_an_export_refusal_is_audited_as_an_export(personas, audit_rows):
    with pytest.raises(AccessDenied):
        access.hospital_report(personas.clinician, FILTERS, export_format="csv")
    (denied,) = audit_rows(outcome=Outcome.DENIED, object_type=access.OBJECT_TYPE)
    assert denied.action == Action.EXPORT


def test_the_view_is_audited_once_without_a_patient(personas, audit_rows, patient):
    stay(personas, patient, d(2026, 1, 5), d(2026, 1, 7))
    report = access.hospital_report(personas.technician, FILTERS)
    assert report.totals.discharges == 1
    (event,) = audit_rows(object_type=access.OBJECT_TYPE)
    assert (event.action, event.outcome, event.patient_id) == (Action.VIEW, Outcome.ALLOWED, None)
    assert event.detail["start"] == "2026-01-01" and event.detail["population"] == "adults_children"
    assert str(patient.public_id) not in str(event.detail)


def test_a_user_sees_only_the_facilities_they_work_at(personas, patient):
    stay(personas, patient, d(2026, 1, 5), d(2026, 1, 7))
    personas.outsider.user_permissions.clear()
    scope = access.scope_for(personas.technician, FILTERS)
    assert scope.facility_ids == (personas.facility.pk,)
    elsewhere = Filters(start=FILTERS.start, end=FILTERS.end, facility=personas.other_facility)
    with pytest.raises(Http404):
        access.hospital_report(personas.technician, elsewhere)
    # The outsider (a technician at the other facility) sees none of this stay.
    assert access.hospital_statistics(personas.outsider, FILTERS).discharges == 0


def test_the_census_door_gives_the_days(personas, patient):
    stay(personas, patient, d(2026, 1, 5), d(2026, 1, 7))
    days = access.census_by_day(personas.technician, FILTERS)
    assert len(days) == 31 and sum(r.census for r in days) == 2
    assert clock.now() is not None


def test_local_dates_in_sql_match_djangos_conversion(personas, patient):
    # Every 15 minutes from 03:00 to 08:00 UTC on both 2026 clock-change days in New York
    # (8 March, 1 November): local midnight and the change itself are in there. SQL's
    # local date equals the date Python gives the same instant.
    from django.db.models.functions import TruncDate

    from encounters.models import Encounter

    moments = [
        dt.datetime(day.year, day.month, day.day, 3, tzinfo=dt.UTC) + dt.timedelta(minutes=15 * n)
        for day in (d(2026, 3, 8), d(2026, 11, 1))
        for n in range(21)
    ]
    for moment in moments:
        stay(personas, patient, moment, moment + dt.timedelta(hours=1))
    rows = Encounter.objects.annotate(
        ours=st.LocalDate("started_at", low=d(2026, 1, 1), high=d(2026, 12, 31)),
        django=TruncDate("started_at", tzinfo=st.local_midnight(d(2026, 1, 1)).tzinfo),
    ).values_list("started_at", "ours", "django")
    assert len(rows) == len(moments)
    for started_at, ours, django in rows:
        assert ours == django == timezone.localdate(started_at), started_at
