"""The hospital statistics engine: census, service days, length of stay, occupancy,
turnover, death rates, consultations, readmissions and the top codes — every formula
of RULES §6 (AHIMA) implemented once, as set-based SQL through the ORM (COUNT and SUM
with filters, GROUP BY service and local calendar day, correlated subqueries),
portable to SQLite and PostgreSQL. No permission checks here: the door is
``reports.access`` (``hospital_report(user, filters)``), which builds the
:class:`Scope` from the facilities the user may see. docs/statistics.md states each
formula with its source.

API — every function takes ``(scope, start, end)``; ``start``/``end`` are local
calendar dates (settings.TIME_ZONE), both included::

    Scope(facility_ids=(1, 2), service="", population=ADULTS_CHILDREN)  # or NEWBORN, ALL
    hospital_statistics(scope, start, end) -> Statistics   # the whole range
    census_by_day(scope, start, end)  -> list[DayCensus]   # (day, census) per day;
                                                           # dict(census_by_day(…)) works
    daily_detail(scope, start, end)   -> list[DayDetail]   # + at midnight, same-day,
                                                           # admissions, discharges, deaths
    trend_by_month(scope, start, end) -> list[Statistics]  # one per calendar month, cut
                                                           # to the range (.month)
    by_service(scope, start, end)     -> list[Statistics]  # one per service (.service;
                                                           # no bed figures)
    by_unit(scope, start, end)        -> list[UnitStatistics]  # census, movements and
                                                           # occupancy per nursing unit
    top_diagnoses(scope, start, end, limit=10) -> list[CodeCount]  # principal diagnosis
    top_procedures(scope, start, end, limit=10) -> list[CodeCount] # every procedure
    final_coded_discharges(scope, start, end) -> int  # 0: say NO_FINAL_CODES
    service_days(scope, start, end) -> int;  bed_days(scope, start, end) -> int
    dashboard(scope, start, end) -> HospitalReport  # all of the above from one set of
                                                    # queries (what the dashboard shows)

The door (``reports.access``, which part H's views call): ``hospital_report(user,
filters, *, export_format="") -> HospitalReport``, ``hospital_statistics(user, filters)``,
``census_by_day(user, filters)``, ``scope_for(user, filters)``, where ``filters`` is a
``reports.tables.Filters``; each checks ``reports.view_hospital_statistics`` (refusal
audited) and audits the read once, without a patient id.

Rates are ``Decimal`` rounded half-up to 2 places, or ``None`` when the denominator is
0 (not measured — never a made-up 0). Bed figures are ``None`` for one service (beds
belong to units, not services) and occupancy is ``None`` when the scope has no bed
counts (:class:`reports.models.BedCapacity`).

Definitions (data: :class:`reports.models.StatisticsPolicy` and
:class:`reports.models.ReadmissionRule`, the rows in force on the range's last day):

- *inpatient stay*: an encounter of class inpatient (IMP), status in progress or
  finished, not ending before it starts; admission = ``started_at``, discharge =
  ``ended_at``, both as local dates. A stay still open is in house through the range's
  end. Transfers between units (``EncounterLocation``) do not change the hospital's
  census: the patient is counted once a day, in the stay's service.
- *newborn*: a stay whose admit source is one of ``newborn_admit_sources`` (UB-04 "5a",
  born inside this hospital). A baby born elsewhere and admitted is in adults and
  children (AHIMA).
- *death*: a discharge whose disposition is one of ``death_dispositions`` ("20").
- *surgery*: a Procedure clinical entry of the stay (not entered in error, not
  "not-done"/"preparation"/"entered-in-error") with a time, whose category is one of
  ``surgical_categories`` (SNOMED CT 387713003) or whose code is one of
  ``surgical_codes``.
- *consultation*: a document of the stay whose type is one of
  ``consultation_document_codes`` (LOINC 11488-4 Consult note), not entered in error.
- *readmission*: an inpatient stay of the same patient (at any facility) admitted
  after the index discharge, at most ``window_days`` calendar days after its discharge
  date; *planned* when its admit source, its final principal diagnosis or one of its
  final procedures matches the rule's prefixes. *Index stays*: the discharges of the
  range whose disposition is not in ``exclude_dispositions``. With ``first_only`` only
  the first readmission is looked at (a planned first one leaves the index stay
  unreadmitted, as CMS does).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache, reduce
from operator import or_
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    DateField,
    Exists,
    F,
    Func,
    IntegerField,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Least, TruncDate
from django.utils import timezone

from clinical.models import ClinicalEntry, ResourceType
from coding.models import (
    Abstract,
    AbstractDiagnosis,
    AbstractProcedure,
    AbstractStatus,
    Code,
    CodeSystem,
)
from documents.models import Document, DocumentStatus
from encounters.models import Encounter, EncounterClass, EncounterStatus
from patients.models import Patient
from reports.models import BedCapacity, ReadmissionRule, StatisticsPolicy

ADULTS_CHILDREN = "adults_children"
NEWBORN = "newborn"
ALL = "all"
POPULATIONS = {
    ADULTS_CHILDREN: "Adults and children",
    NEWBORN: "Newborns",
    ALL: "All patients (totals)",
}
# The seeded definitions (reports migration 0003); used only when no policy row exists.
SURGICAL_CATEGORY = "387713003"  # SNOMED CT "Surgical procedure"
CONSULT_NOTE = "11488-4"  # LOINC "Consult note"
NEWBORN_ADMIT_SOURCE = "5a"  # UB-04 point of origin: born inside this hospital
EXPIRED = "20"  # UB-04 discharge status: expired

COUNTED_STATUSES = [EncounterStatus.IN_PROGRESS, EncounterStatus.FINISHED]
NOT_PERFORMED = ["not-done", "entered-in-error", "preparation"]
FINAL_ABSTRACT = [AbstractStatus.FINAL, AbstractStatus.REBILLED]
NO_FINAL_CODES = "No final codes yet: no discharge of the period has a final abstract."
BEDS_BY_UNIT = "Bed counts are kept per unit, not per service: no occupancy for a service."
NO_BEDS = "No bed counts are recorded for this scope: occupancy and turnover not measured."
TWO_PLACES = Decimal("0.01")
DAY = dt.timedelta(days=1)


def normalise_population(value: str | None) -> str:
    """``""`` and the form's values to one of ADULTS_CHILDREN, NEWBORN, ALL."""
    value = (value or "").strip().lower().replace("-", "_")
    if value in ("", ADULTS_CHILDREN, "adults"):
        return ADULTS_CHILDREN
    if value in (NEWBORN, "newborns"):
        return NEWBORN
    if value in (ALL, "total", "totals"):
        return ALL
    raise ValueError("unknown population")


@dataclass(frozen=True)
class Scope:
    """Whose stays: the facilities (None: every facility), a service ("": all; matched
    ignoring case) and the population (adults and children, newborns, or all)."""

    facility_ids: tuple[int, ...] | None = None
    service: str = ""
    population: str = ADULTS_CHILDREN

    def __post_init__(self):
        if self.facility_ids is not None:
            object.__setattr__(self, "facility_ids", tuple(sorted(set(self.facility_ids))))
        object.__setattr__(self, "service", (self.service or "").strip())
        object.__setattr__(self, "population", normalise_population(self.population))


# --- results -----------------------------------------------------------------------


class DayCensus(NamedTuple):
    """One day: the daily inpatient census (in house at midnight plus admitted and
    discharged that day). A 2-tuple ``(day, census)`` first, so ``dict()`` takes it."""

    day: dt.date
    census: int


@dataclass(frozen=True)
class DayDetail:
    day: dt.date
    census: int
    at_midnight: int
    same_day_stays: int
    admissions: int
    discharges: int
    deaths: int


class CodeCount(NamedTuple):
    code: str  # as stored: upper case, no dot
    title: str  # from the code tables ("" when not loaded)
    count: int
    system: str = ""


@dataclass(frozen=True)
class Statistics:
    """The figures of one period (the whole range, a month, or one service). Counts are
    exact; rates are percentages (occupancy, death, consultation, readmission), days
    (ALOS, ADC) or times (turnover), rounded to 2 places; None: not measured."""

    start: dt.date
    end: dt.date
    population: str
    service: str = ""  # one service (by_service), or the scope's
    month: dt.date | None = None  # trend_by_month: the first of the month
    days: int = 0  # days in the period
    # census (RULES §6: daily census = midnight census + same-day stays)
    service_days: int = 0
    average_daily_census: Decimal | None = None
    admissions: int = 0
    discharges: int = 0  # including deaths
    # length of stay of the period's discharges (admission day counted, not discharge)
    total_los: int = 0
    alos: Decimal | None = None
    # beds
    bed_days: int | None = None
    average_beds: Decimal | None = None
    occupancy: Decimal | None = None
    bed_turnover: Decimal | None = None
    # mortality
    deaths: int = 0
    deaths_under_48h: int = 0
    gross_death_rate: Decimal | None = None
    net_death_rate: Decimal | None = None
    operated: int = 0
    postop_deaths: int = 0
    postop_death_rate: Decimal | None = None
    # consultations
    consulted: int = 0
    consultation_rate: Decimal | None = None
    # readmissions
    index_stays: int = 0
    readmitted: int = 0  # index stays followed by an unplanned readmission
    planned_readmissions: int = 0  # index stays whose (first) readmission was planned
    readmission_rate: Decimal | None = None
    readmission_window_days: int = 30
    final_coded: int = 0  # discharges with a final abstract (the top codes' denominator)
    notes: tuple[str, ...] = ()

    @property
    def population_label(self) -> str:
        return POPULATIONS.get(self.population, self.population)


@dataclass(frozen=True)
class HospitalReport:
    """Everything the hospital dashboard shows, for one question."""

    scope: Scope
    totals: Statistics
    days: list[DayDetail]
    months: list[Statistics]
    services: list[Statistics]
    top_diagnoses: list[CodeCount]
    top_procedures: list[CodeCount]
    final_coded_discharges: int
    notes: list[str] = field(default_factory=list)
    units: list[UnitStatistics] = field(default_factory=list)


@dataclass(frozen=True)
class UnitStatistics:
    """One nursing unit over the range (``unit`` is "" for the service days of stays
    with no location recorded). Service days: the midnights the unit's patients spent
    there (each counted on the day the midnight closes) plus the same-day stays
    discharged from it — summed over the units, the hospital's service days."""

    unit: str
    service_days: int
    average_daily_census: Decimal | None
    admissions: int  # stays whose first location is the unit, admitted in the range
    transfers_in: int
    transfers_out: int
    discharges: int
    bed_days: int | None  # None: no bed count recorded for the unit
    occupancy: Decimal | None


# --- SQL building blocks -----------------------------------------------------------


class DayNumber(Func):
    """Whole days from 1970-01-01 to a date expression, so date differences are plain
    integer arithmetic on SQLite (julianday) and PostgreSQL (date − date)."""

    output_field = IntegerField()
    template = "(%(expressions)s - DATE '1970-01-01')"

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="CAST(ROUND(julianday(%(expressions)s) - 2440587.5) AS INTEGER)",
            **extra_context,
        )


@lru_cache(maxsize=64)
def _offset_segments(tz, low: dt.date, high: dt.date) -> tuple[tuple[dt.datetime | None, int], ...]:
    """The zone's UTC offsets (seconds) from ``low`` to ``high``: ``[(until, offset)…]``,
    each in force until the UTC instant ``until`` (None: the last). Found day by day,
    then to the second by bisection where the offset changes."""

    def offset(moment: dt.datetime) -> int:
        return int(moment.astimezone(tz).utcoffset().total_seconds())

    segments = []
    moment = dt.datetime.combine(low - DAY, dt.time(), tzinfo=dt.UTC)
    last = dt.datetime.combine(high + 2 * DAY, dt.time(), tzinfo=dt.UTC)
    current = offset(moment)
    while moment < last:
        following = moment + DAY
        if offset(following) != current:
            before, after = moment, following
            while (after - before) > dt.timedelta(seconds=1):
                middle = before + (after - before) / 2
                if offset(middle) == current:
                    before = middle
                else:
                    after = middle
            after = after.replace(microsecond=0)
            segments.append((after, current))
            current = offset(after)
        moment = following
    segments.append((None, current))
    return tuple(segments)


class LocalDate(TruncDate):
    """The local calendar date (settings.TIME_ZONE) of a stored UTC datetime. On
    PostgreSQL ``AT TIME ZONE`` (as ``TruncDate``); on SQLite the zone's offsets
    between ``low`` and ``high`` as a CASE over SQLite's own ``date()`` — the same
    result as Django's Python conversion function, without calling Python per row.
    Instants outside the window take the offset in force at its nearer edge."""

    def __init__(self, expression, *, low: dt.date, high: dt.date, **extra):
        super().__init__(expression, tzinfo=_tz(), **extra)
        self.low, self.high = low, high

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.lhs)
        segments = _offset_segments(self.tzinfo, self.low, self.high)
        parts, values = [], []
        for until, seconds in segments[:-1]:
            parts.append(f"WHEN {sql} < %s THEN date({sql}, %s)")
            values += [*params, until.strftime("%Y-%m-%d %H:%M:%S"), *params, f"{seconds} seconds"]
        final = f"date({sql}, %s)"
        values += [*params, f"{segments[-1][1]} seconds"]
        if not parts:
            return final, tuple(values)
        return f"(CASE {' '.join(parts)} ELSE {final} END)", tuple(values)


def _tz():
    return timezone.get_current_timezone()


def local_midnight(day: dt.date) -> dt.datetime:
    """The instant a local calendar day starts (aware)."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=_tz())


def _rate(numerator: int, denominator: int | Decimal | None, scale: int = 100) -> Decimal | None:
    if not denominator:
        return None
    value = Decimal(numerator) * scale / Decimal(denominator)
    return value.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def rate(numerator: int, denominator: int | Decimal | None, scale: int = 100) -> Decimal | None:
    """numerator ÷ denominator × scale, half up to 2 places; None when nothing to divide by."""
    return _rate(numerator, denominator, scale)


def _in_force(model, on: dt.date):
    return model.objects.filter(effective_from__lte=on).order_by("-effective_from", "-pk").first()


def policy_on(on: dt.date) -> StatisticsPolicy:
    return _in_force(StatisticsPolicy, on) or StatisticsPolicy(
        effective_from=dt.date.min,
        newborn_admit_sources=[NEWBORN_ADMIT_SOURCE],
        death_dispositions=[EXPIRED],
        net_death_hours=48,
        postoperative_days=10,
        surgical_categories=[SURGICAL_CATEGORY],
        surgical_codes=[],
        consultation_document_codes=[CONSULT_NOTE],
    )


def readmission_rule_on(on: dt.date) -> ReadmissionRule:
    return _in_force(ReadmissionRule, on) or ReadmissionRule(
        effective_from=dt.date.min, window_days=30, exclude_dispositions=[EXPIRED]
    )


def stay_q(scope: Scope, policy: StatisticsPolicy, prefix: str = "") -> Q:
    """The inpatient stays of the scope (the one definition of "an inpatient"), as a
    condition on ``Encounter`` or, with ``prefix``, on a model that leads to one."""
    newborn = Q(**{f"{prefix}admit_source__in": policy.newborn_admit_sources or ["5a"]})
    condition = Q(
        **{
            f"{prefix}encounter_class": EncounterClass.INPATIENT,
            f"{prefix}status__in": COUNTED_STATUSES,
        }
    ) & ~Q(**{f"{prefix}ended_at__lt": F(f"{prefix}started_at")})
    if scope.facility_ids is not None:
        condition &= Q(**{f"{prefix}facility_id__in": scope.facility_ids})
    if scope.service:
        condition &= Q(**{f"{prefix}service__iexact": scope.service})
    if scope.population == NEWBORN:
        condition &= newborn
    elif scope.population == ADULTS_CHILDREN:
        condition &= ~newborn
    return condition


def stays(scope: Scope, policy: StatisticsPolicy):
    return Encounter.objects.filter(stay_q(scope, policy))


def _surgeries(policy: StatisticsPolicy):
    surgical = Q(category__in=policy.surgical_categories or [SURGICAL_CATEGORY])
    if policy.surgical_codes:
        surgical |= Q(code__in=policy.surgical_codes)
    return (
        ClinicalEntry.objects.filter(
            encounter=OuterRef("pk"),
            resource_type=ResourceType.PROCEDURE,
            entered_in_error=False,
            effective_at__isnull=False,
        )
        .filter(surgical)
        .exclude(status__in=NOT_PERFORMED)
    )


def _prefixes(field_name: str, prefixes: Iterable[str]) -> Q | None:
    terms = [Q(**{f"{field_name}__startswith": p.replace(".", "").upper()}) for p in prefixes if p]
    return reduce(or_, terms) if terms else None


def _planned(rule: ReadmissionRule) -> Q | None:
    """What makes the (candidate) readmission in the subquery planned."""
    terms = []
    if rule.planned_admit_sources:
        terms.append(Q(admit_source__in=rule.planned_admit_sources))
    diagnosis = _prefixes("code", rule.planned_diagnosis_prefixes or [])
    if diagnosis is not None:
        terms.append(
            Q(
                Exists(
                    AbstractDiagnosis.objects.filter(
                        diagnosis,
                        abstract__encounter=OuterRef("pk"),
                        abstract__status__in=FINAL_ABSTRACT,
                        sequence=1,
                    )
                )
            )
        )
    procedure = _prefixes("code", rule.planned_procedure_prefixes or [])
    if procedure is not None:
        terms.append(
            Q(
                Exists(
                    AbstractProcedure.objects.filter(
                        procedure,
                        abstract__encounter=OuterRef("pk"),
                        abstract__status__in=FINAL_ABSTRACT,
                    )
                )
            )
        )
    return reduce(or_, terms) if terms else None


NOT_READMITTED, READMITTED, PLANNED_ONLY = 0, 1, 2


def _readmission(rule: ReadmissionRule, local_date):
    """For a discharge row: READMITTED (an unplanned readmission counts),
    PLANNED_ONLY (the readmission looked at was planned) or NOT_READMITTED."""
    candidates = _candidates(rule, local_date)
    planned = _planned(rule)
    if planned is None:
        return Case(
            When(Exists(candidates), then=Value(READMITTED)),
            default=Value(NOT_READMITTED),
            output_field=IntegerField(),
        )
    if rule.first_only:
        kind = Case(
            When(planned, then=Value(PLANNED_ONLY)),
            default=Value(READMITTED),
            output_field=IntegerField(),
        )
        first = candidates.annotate(kind=kind).order_by("started_at", "pk").values("kind")[:1]
        return Coalesce(Subquery(first, output_field=IntegerField()), Value(NOT_READMITTED))
    return Case(
        When(Exists(candidates.exclude(planned)), then=Value(READMITTED)),
        When(Exists(candidates.filter(planned)), then=Value(PLANNED_ONLY)),
        default=Value(NOT_READMITTED),
        output_field=IntegerField(),
    )


def _candidates(rule: ReadmissionRule, local_date):
    """The possible readmissions of a discharge row (annotated with ``dis_day``): the
    same patient's inpatient stays admitted at or after its discharge, at most
    ``window_days`` local calendar days after the discharge date."""
    return (
        Encounter.objects.filter(
            encounter_class=EncounterClass.INPATIENT,
            status__in=COUNTED_STATUSES,
            patient_id=OuterRef("patient_id"),
            started_at__gte=OuterRef("ended_at"),
            # an indexable bound a little wider than the window (local days differ)
            started_at__lt=OuterRef("ended_at") + dt.timedelta(days=rule.window_days + 2),
        )
        .exclude(pk=OuterRef("pk"))
        .alias(gap=DayNumber(local_date("started_at")) - DayNumber(OuterRef("dis_day")))
        .filter(gap__lte=rule.window_days)
    )


def _los(local_date) -> Greatest:
    """AHIMA length of stay of a discharge row (``dis_day`` annotated): discharge date
    − admission date in local calendar days (the admission day counted, the discharge
    day not); a stay admitted and discharged the same day is 1."""
    return Greatest(DayNumber("dis_day") - DayNumber(local_date("started_at")), Value(1))


def _death(policy: StatisticsPolicy) -> Q:
    return Q(disposition__in=policy.death_dispositions or [EXPIRED])


def _early(policy: StatisticsPolicy) -> Q:
    """Discharged (died) sooner than ``net_death_hours`` after admission."""
    return Q(ended_at__lt=F("started_at") + dt.timedelta(hours=policy.net_death_hours))


def _postoperative(policy: StatisticsPolicy) -> Q:
    """A surgery of the stay at most ``postoperative_days`` before its discharge."""
    after_surgery = OuterRef("ended_at") - dt.timedelta(days=policy.postoperative_days)
    return Q(
        Exists(
            _surgeries(policy).filter(
                effective_at__lte=OuterRef("ended_at"), effective_at__gte=after_surgery
            )
        )
    )


def _index(rule: ReadmissionRule) -> Q:
    """An index stay of the readmission rate: not ended by an excluded disposition."""
    return ~Q(disposition__in=rule.exclude_dispositions or [])


def _flag(condition) -> Case:
    return Case(When(condition, then=Value(1)), default=Value(0), output_field=IntegerField())


# --- the ledger: one set of queries, grouped by service and local day ---------------


@dataclass
class _Ledger:
    scope: Scope
    start: dt.date
    end: dt.date
    policy: StatisticsPolicy
    rule: ReadmissionRule
    carry: dict[str, int]
    admitted: dict[tuple[str, dt.date], dict[str, int]]
    discharged: dict[tuple[str, dt.date], dict[str, int]]

    @property
    def services(self) -> list[str]:
        names = set(self.carry)
        names.update(s for s, _ in self.admitted)
        names.update(s for s, _ in self.discharged)
        return sorted(names, key=lambda s: (s.lower(), s))

    def census(self, services: Iterable[str] | None = None) -> list[DayDetail]:
        """The daily census of the range: a running total over days (not patients)."""
        chosen = list(self.services if services is None else services)
        in_house = sum(self.carry.get(s, 0) for s in chosen)
        rows = []
        day = self.start
        while day <= self.end:
            adm = [self.admitted.get((s, day), {}) for s in chosen]
            dis = [self.discharged.get((s, day), {}) for s in chosen]
            admissions = sum(a.get("admissions", 0) for a in adm)
            same_day = sum(a.get("same_day", 0) for a in adm)
            discharges = sum(d.get("discharges", 0) for d in dis)
            in_house += admissions - discharges
            rows.append(
                DayDetail(
                    day=day,
                    census=in_house + same_day,
                    at_midnight=in_house,
                    same_day_stays=same_day,
                    admissions=admissions,
                    discharges=discharges,
                    deaths=sum(d.get("deaths", 0) for d in dis),
                )
            )
            day += DAY
        return rows

    def statistics(
        self,
        start: dt.date,
        end: dt.date,
        *,
        services: Iterable[str] | None = None,
        census: list[DayDetail] | None = None,
        beds: int | None = None,
        month: dt.date | None = None,
        service: str | None = None,
    ) -> Statistics:
        chosen = list(self.services if services is None else services)
        census = census if census is not None else self.census(chosen)
        days = (end - start).days + 1
        service_days = sum(r.census for r in census if start <= r.day <= end)
        admissions = sum(r.admissions for r in census if start <= r.day <= end)
        totals: dict[str, int] = defaultdict(int)
        for (name, day), counts in self.discharged.items():
            if name in chosen and start <= day <= end:
                for key, value in counts.items():
                    totals[key] += value
        discharges, deaths = totals["discharges"], totals["deaths"]
        early = totals["deaths_under_48h"]
        notes = []
        average_beds = occupancy = turnover = None
        if beds is not None:
            average_beds = _rate(beds, days, scale=1)
            occupancy = _rate(service_days, beds)
            turnover = _rate(discharges * days, beds, scale=1)
            if not beds:
                notes.append(NO_BEDS)
        elif service is not None or self.scope.service:
            notes.append(BEDS_BY_UNIT)
        return Statistics(
            start=start,
            end=end,
            population=self.scope.population,
            service=service if service is not None else self.scope.service,
            month=month,
            days=days,
            service_days=service_days,
            average_daily_census=_rate(service_days, days, scale=1),
            admissions=admissions,
            discharges=discharges,
            total_los=totals["los"],
            alos=_rate(totals["los"], discharges, scale=1),
            bed_days=beds,
            average_beds=average_beds,
            occupancy=occupancy,
            bed_turnover=turnover,
            deaths=deaths,
            deaths_under_48h=early,
            gross_death_rate=_rate(deaths, discharges),
            net_death_rate=_rate(deaths - early, discharges - early),
            operated=totals["operated"],
            postop_deaths=totals["postop_deaths"],
            postop_death_rate=_rate(totals["postop_deaths"], totals["operated"]),
            consulted=totals["consulted"],
            consultation_rate=_rate(totals["consulted"], discharges),
            index_stays=totals["index_stays"],
            readmitted=totals["readmitted"],
            planned_readmissions=totals["planned"],
            readmission_rate=_rate(totals["readmitted"], totals["index_stays"]),
            readmission_window_days=self.rule.window_days,
            final_coded=totals["coded"],
            notes=tuple(notes),
        )


def _check_range(start: dt.date, end: dt.date) -> None:
    if end < start:
        raise ValueError("the end of the range is before its start")


@dataclass(frozen=True)
class _Window:
    """What every query of a range shares: the definitions in force on its last day,
    the stays of the scope, the range as UTC instants, and ``local_date`` — the local
    calendar date of a datetime column (exact over every date the range's stays touch)."""

    policy: StatisticsPolicy
    rule: ReadmissionRule
    base: object  # QuerySet[Encounter]
    low: dt.datetime
    high: dt.datetime
    window_low: dt.date
    window_high: dt.date

    def local_date(self, name: str) -> LocalDate:
        return LocalDate(name, low=self.window_low, high=self.window_high)

    def discharges(self):
        """The stays of the scope discharged in the range, with their local discharge
        day (``dis_day``, which the readmission subquery refers to)."""
        return self.base.filter(ended_at__gte=self.low, ended_at__lt=self.high).annotate(
            dis_day=self.local_date("ended_at")
        )


def _window(scope: Scope, start: dt.date, end: dt.date) -> _Window:
    _check_range(start, end)
    policy = policy_on(end)
    rule = readmission_rule_on(end)
    low, high = local_midnight(start), local_midnight(end + DAY)
    base = stays(scope, policy)
    earliest = base.filter(ended_at__gte=low, ended_at__lt=high).aggregate(first=Min("started_at"))[
        "first"
    ]
    window_low = min(start, timezone.localdate(earliest, _tz())) if earliest else start
    window_high = end + dt.timedelta(days=rule.window_days + 2)
    return _Window(policy, rule, base, low, high, window_low, window_high)


def _ledger(scope: Scope, start: dt.date, end: dt.date, window: _Window | None = None) -> _Ledger:
    window = window or _window(scope, start, end)
    policy, rule, base = window.policy, window.rule, window.base
    low, high = window.low, window.high
    local_date = window.local_date

    carry = {
        row["service"]: row["n"]
        for row in base.filter(started_at__lt=low)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=low))
        .values("service")
        .annotate(n=Count("pk"))
        .order_by()
    }

    admitted_rows = (
        base.filter(started_at__gte=low, started_at__lt=high)
        .annotate(adm_day=local_date("started_at"))
        .values("service", "adm_day")
        .annotate(
            admissions=Count("pk"),
            same_day=Count(
                "pk",
                filter=Q(ended_at__isnull=False)
                & Q(ended_at__lt=high)
                & Q(adm_day=local_date("ended_at")),
            ),
        )
        .order_by()
    )
    admitted = {
        (r["service"], _as_date(r["adm_day"])): {
            "admissions": r["admissions"],
            "same_day": r["same_day"],
        }
        for r in admitted_rows
    }

    death = _death(policy)
    index = _index(rule)
    surgeries = _surgeries(policy).filter(effective_at__lte=OuterRef("ended_at"))
    # One row per discharge, each subquery written once (SQL would otherwise run a
    # subquery again for every aggregate that refers to it) ...
    rows = (
        window.discharges()
        .annotate(
            los=_los(local_date),
            died=_flag(death),
            died_early=_flag(death & _early(policy)),
            operated=_flag(Exists(surgeries)),
            postop=_flag(death & _postoperative(policy)),
            consulted=_flag(
                Exists(
                    Document.objects.filter(
                        encounter=OuterRef("pk"),
                        doc_type__loinc_code__in=policy.consultation_document_codes
                        or [CONSULT_NOTE],
                    ).exclude(status=DocumentStatus.ENTERED_IN_ERROR)
                )
            ),
            is_index=_flag(index),
            coded=_flag(
                Exists(Abstract.objects.filter(encounter=OuterRef("pk"), status__in=FINAL_ABSTRACT))
            ),
            readmission=Case(
                When(index, then=_readmission(rule, local_date)),
                default=Value(NOT_READMITTED),
                output_field=IntegerField(),
            ),
        )
        .values(
            "service",
            "dis_day",
            "los",
            "died",
            "died_early",
            "operated",
            "postop",
            "consulted",
            "is_index",
            "readmission",
            "coded",
        )
    )
    # ... then summed per service and local day over that derived table.
    inner, params = rows.query.sql_with_params()
    # MATERIALIZED: computed once, not folded into the aggregates (SQLite would otherwise
    # flatten it and run the readmission subquery once per SUM).
    grouped = f"""
        WITH d AS MATERIALIZED ({inner})
        SELECT d.service, d.dis_day, COUNT(*), SUM(d.died), SUM(d.died_early), SUM(d.los),
               SUM(d.operated), SUM(d.postop), SUM(d.consulted), SUM(d.is_index),
               SUM(CASE WHEN d.readmission = {READMITTED} THEN 1 ELSE 0 END),
               SUM(CASE WHEN d.readmission = {PLANNED_ONLY} THEN 1 ELSE 0 END),
               SUM(d.coded)
        FROM d
        GROUP BY d.service, d.dis_day
    """  # noqa: S608 - the inner SQL is the ORM's, every value a parameter
    keys = (
        "discharges",
        "deaths",
        "deaths_under_48h",
        "los",
        "operated",
        "postop_deaths",
        "consulted",
        "index_stays",
        "readmitted",
        "planned",
        "coded",
    )
    with _without_jit(), connection.cursor() as cursor:
        cursor.execute(grouped, params)
        discharged = {
            (service, _as_date(day)): {k: int(v or 0) for k, v in zip(keys, values, strict=True)}
            for service, day, *values in cursor.fetchall()
        }
    return _Ledger(scope, start, end, policy, rule, carry, admitted, discharged)


def _public_ids(patient_ids: Iterable[int]) -> dict[int, str]:
    """The public ids of the patients of a list, in one query (a join in the list's
    query would make the planner, which expects few rows, scan the patients)."""
    rows = Patient.objects.filter(pk__in=set(patient_ids)).values_list("pk", "public_id")
    return {pk: str(public_id) for pk, public_id in rows}


@contextmanager
def _without_jit():
    """A transaction in which PostgreSQL does not JIT-compile: the planner's cost
    estimate of the correlated subqueries switches JIT compilation on, which costs more
    than the query itself (0.55 of 0.8 s for the ledger, 0.3 s for a list)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


# --- public API ----------------------------------------------------------------------


def _bed_rows(scope: Scope, start: dt.date, end: dt.date):
    """The bed-count rows of the scope in force some day of the range (bassinets for
    newborns, the other beds for adults and children, both for all)."""
    _check_range(start, end)
    rows = BedCapacity.objects.filter(effective_from__lte=end).filter(
        Q(effective_to__isnull=True) | Q(effective_to__gte=start)
    )
    if scope.facility_ids is not None:
        rows = rows.filter(facility_id__in=scope.facility_ids)
    if scope.population == NEWBORN:
        rows = rows.filter(newborn=True)
    elif scope.population == ADULTS_CHILDREN:
        rows = rows.filter(newborn=False)
    return rows


def bed_days(scope: Scope, start: dt.date, end: dt.date) -> int:
    """Σ staffed beds × days in force, over the bed-count rows overlapping the range
    (bassinets for newborns, the other beds for adults and children, both for all)."""
    rows = _bed_rows(scope, start, end)
    first = Greatest("effective_from", Value(start, output_field=DateField()))
    last = Least(
        Coalesce("effective_to", Value(end, output_field=DateField())),
        Value(end, output_field=DateField()),
    )
    total = rows.aggregate(total=Sum(F("beds") * (DayNumber(last) - DayNumber(first) + Value(1))))[
        "total"
    ]
    return int(total or 0)


def by_unit(
    scope: Scope, start: dt.date, end: dt.date, window: _Window | None = None
) -> list[UnitStatistics]:
    """Census, movements and occupancy per nursing unit (``EncounterLocation``), in one
    grouped query over the location segments of the scope's stays, plus one for the
    bed-days of each unit. A segment ends where the next begins, or at the discharge;
    an open one is in house through the range's end."""
    from encounters.models import EncounterLocation

    window = window or _window(scope, start, end)
    low, high = window.low, window.high
    policy = window.policy
    date = DateField()
    first_day = Value(start, output_field=date)
    last_day = Value(end, output_field=date)
    segment_end = Coalesce("ended_at", "encounter__ended_at")
    segments = (
        EncounterLocation.objects.filter(stay_q(scope, policy, prefix="encounter__"))
        .filter(started_at__lt=high)
        .annotate(segment_end=segment_end)
        .filter(Q(segment_end__isnull=True) | Q(segment_end__gte=low))
        .annotate(
            from_day=window.local_date("started_at"),
            end_day=window.local_date("segment_end"),
            adm_day=window.local_date("encounter__started_at"),
            dis_day=window.local_date("encounter__ended_at"),
        )
    )
    # Census days of a segment inside the range: local days D with D >= its start's
    # date and D < its end's date (the patient is there at the midnight closing D).
    last_census = Case(
        When(segment_end__isnull=True, then=DayNumber(last_day)),
        default=DayNumber(F("end_day")) - Value(1),
        output_field=IntegerField(),
    )
    midnights = Greatest(
        Value(0),
        Least(last_census, DayNumber(last_day))
        - Greatest(DayNumber(F("from_day")), DayNumber(first_day))
        + Value(1),
        output_field=IntegerField(),
    )
    at_discharge = Q(ended_at__isnull=True) | Q(encounter__ended_at__lte=F("ended_at"))
    discharged_here = (
        at_discharge
        & Q(encounter__ended_at__isnull=False)
        & Q(encounter__ended_at__gte=low, encounter__ended_at__lt=high)
    )
    first_segment = Q(started_at__lte=F("encounter__started_at"))
    rows = (
        segments.values("unit")
        .annotate(
            midnights=Sum(midnights),
            same_day=Count("pk", filter=discharged_here & Q(adm_day=F("dis_day"))),
            admissions=Count(
                "pk", filter=first_segment & Q(started_at__gte=low, started_at__lt=high)
            ),
            transfers_in=Count(
                "pk", filter=~first_segment & Q(started_at__gte=low, started_at__lt=high)
            ),
            transfers_out=Count(
                "pk",
                filter=Q(ended_at__isnull=False, ended_at__gte=low, ended_at__lt=high)
                & (Q(encounter__ended_at__isnull=True) | Q(encounter__ended_at__gt=F("ended_at"))),
            ),
            discharges=Count("pk", filter=discharged_here),
        )
        .order_by("unit")
    )
    beds = _unit_bed_days(scope, start, end)
    days = (end - start).days + 1
    out = []
    for r in rows:
        service = int(r["midnights"] or 0) + r["same_day"]
        bed = beds.get(r["unit"])
        out.append(
            UnitStatistics(
                unit=r["unit"],
                service_days=service,
                average_daily_census=_rate(service, days, scale=1),
                admissions=r["admissions"],
                transfers_in=r["transfers_in"],
                transfers_out=r["transfers_out"],
                discharges=r["discharges"],
                bed_days=bed,
                occupancy=_rate(service, bed) if bed else None,
            )
        )
    return out


def _unit_bed_days(scope: Scope, start: dt.date, end: dt.date) -> dict[str, int]:
    """Σ staffed beds × days in force per unit, over the rows overlapping the range."""
    rows = _bed_rows(scope, start, end)
    first = Greatest("effective_from", Value(start, output_field=DateField()))
    last = Least(
        Coalesce("effective_to", Value(end, output_field=DateField())),
        Value(end, output_field=DateField()),
    )
    totals = (
        rows.values("unit")
        .annotate(total=Sum(F("beds") * (DayNumber(last) - DayNumber(first) + Value(1))))
        .order_by()
    )
    return {r["unit"]: int(r["total"] or 0) for r in totals}


def _beds(scope: Scope, start: dt.date, end: dt.date) -> int | None:
    return None if scope.service else bed_days(scope, start, end)


def service_days(scope: Scope, start: dt.date, end: dt.date) -> int:
    """Inpatient service days: the sum of the daily censuses of the range."""
    return sum(r.census for r in _ledger(scope, start, end).census())


def census_by_day(scope: Scope, start: dt.date, end: dt.date) -> list[DayCensus]:
    return [DayCensus(r.day, r.census) for r in _ledger(scope, start, end).census()]


def daily_detail(scope: Scope, start: dt.date, end: dt.date) -> list[DayDetail]:
    return _ledger(scope, start, end).census()


def hospital_statistics(scope: Scope, start: dt.date, end: dt.date) -> Statistics:
    ledger = _ledger(scope, start, end)
    return ledger.statistics(start, end, beds=_beds(scope, start, end))


def _months(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date, dt.date]]:
    """(first of month, first day in range, last day in range) per calendar month."""
    months = []
    first = start.replace(day=1)
    while first <= end:
        last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        months.append((first, max(first, start), min(last, end)))
        first = last + DAY
    return months


def _trend(ledger: _Ledger, census: list[DayDetail]) -> list[Statistics]:
    scope = ledger.scope
    return [
        ledger.statistics(a, b, census=census, beds=_beds(scope, a, b), month=month)
        for month, a, b in _months(ledger.start, ledger.end)
    ]


def trend_by_month(scope: Scope, start: dt.date, end: dt.date) -> list[Statistics]:
    ledger = _ledger(scope, start, end)
    return _trend(ledger, ledger.census())


def _by_service(ledger: _Ledger) -> list[Statistics]:
    return [
        ledger.statistics(ledger.start, ledger.end, services=[name], service=name)
        for name in ledger.services
    ]


def by_service(scope: Scope, start: dt.date, end: dt.date) -> list[Statistics]:
    return _by_service(_ledger(scope, start, end))


def _final_abstracts(scope: Scope, start: dt.date, end: dt.date, prefix: str = "abstract__") -> Q:
    """Final abstracts of the range's discharges, as a join (not IN): the planner can
    start from the discharge index."""
    encounter = f"{prefix}encounter__"
    return (
        stay_q(scope, policy_on(end), encounter)
        & Q(**{f"{encounter}ended_at__gte": local_midnight(start)})
        & Q(**{f"{encounter}ended_at__lt": local_midnight(end + DAY)})
        & Q(**{f"{prefix}status__in": FINAL_ABSTRACT})
    )


def _titles(rows: list[CodeCount]) -> list[CodeCount]:
    wanted = Q(pk__in=[])
    for row in rows:
        wanted |= Q(system=row.system, code=row.code)
    titles = {(c.system, c.code): c.title for c in Code.objects.filter(wanted).only("title")}
    return [row._replace(title=titles.get((row.system, row.code), "")) for row in rows]


def top_diagnoses(scope: Scope, start: dt.date, end: dt.date, limit: int = 10) -> list[CodeCount]:
    """The most frequent principal diagnoses (sequence 1) of the range's discharges
    with a final abstract; empty when none is final yet (say NO_FINAL_CODES)."""
    _check_range(start, end)
    rows = (
        AbstractDiagnosis.objects.filter(_final_abstracts(scope, start, end), sequence=1)
        .values("code")
        .annotate(n=Count("pk"))
        .order_by("-n", "code")[:limit]
    )
    return _titles([CodeCount(r["code"], "", r["n"], CodeSystem.ICD10CM) for r in rows])


def top_procedures(scope: Scope, start: dt.date, end: dt.date, limit: int = 10) -> list[CodeCount]:
    """The most frequent procedures (every sequence; a stay counted once per code) of
    the range's discharges with a final abstract."""
    _check_range(start, end)
    rows = (
        AbstractProcedure.objects.filter(_final_abstracts(scope, start, end))
        .values("system", "code")
        .annotate(n=Count("abstract", distinct=True))
        .order_by("-n", "code", "system")[:limit]
    )
    return _titles([CodeCount(r["code"], "", r["n"], r["system"]) for r in rows])


def final_coded_discharges(scope: Scope, start: dt.date, end: dt.date) -> int:
    """Discharges of the range whose abstract is final (the top codes' denominator)."""
    _check_range(start, end)
    return Abstract.objects.filter(_final_abstracts(scope, start, end, prefix="")).count()


def dashboard(scope: Scope, start: dt.date, end: dt.date, *, limit: int = 10) -> HospitalReport:
    """Everything the hospital dashboard shows: one ledger (the stays in house at the
    start, admissions per day, discharges per day with every discharge figure) gives
    the days, the totals, the months and the services; then the bed-days (per month)
    and the top codes."""
    window = _window(scope, start, end)  # shared by the ledger and the units
    ledger = _ledger(scope, start, end, window)
    census = ledger.census()
    totals = ledger.statistics(start, end, census=census, beds=_beds(scope, start, end))
    coded = totals.final_coded
    notes = [] if coded else [NO_FINAL_CODES]
    return HospitalReport(
        scope=scope,
        totals=totals,
        days=census,
        months=_trend(ledger, census),
        services=_by_service(ledger),
        top_diagnoses=top_diagnoses(scope, start, end, limit) if coded else [],
        top_procedures=top_procedures(scope, start, end, limit) if coded else [],
        final_coded_discharges=coded,
        notes=notes,
        units=_with_unplaced(by_unit(scope, start, end, window), totals.service_days),
    )


def _with_unplaced(units: list[UnitStatistics], service_days: int) -> list[UnitStatistics]:
    """The units, and a row for the service days of stays with no location recorded
    (the hospital's service days less the units'), so the table adds up."""
    unplaced = service_days - sum(u.service_days for u in units)
    if unplaced <= 0:
        return units
    row = UnitStatistics("", unplaced, None, 0, 0, 0, 0, None, None)
    return [*units, row]


# --- patient-level lists (the dashboard marks them patient-level) ---------------------

LIST_LIMIT = 500


@dataclass(frozen=True)
class ReadmissionRow:
    """An index stay of the range followed by an unplanned readmission that counts."""

    patient: str  # the patient's public id
    stay: str  # the index stay's public id
    service: str
    discharged: dt.date
    readmitted: dt.date
    days: int  # readmission date − discharge date, local calendar days
    readmission_service: str


@dataclass(frozen=True)
class DeathRow:
    """A discharge of the range that is a death."""

    patient: str
    stay: str
    service: str
    admitted: dt.date
    died: dt.date
    los: int
    under_net_hours: bool  # left out of the net death rate
    postoperative: bool  # counted in the post-operative death rate


def readmission_list(
    scope: Scope, start: dt.date, end: dt.date, *, limit: int = LIST_LIMIT
) -> list[ReadmissionRow]:
    """The index stays counted as readmitted in :attr:`Statistics.readmitted` (the
    same condition), oldest discharge first, at most ``limit``."""
    window = _window(scope, start, end)
    rule = window.rule
    candidates = _candidates(rule, window.local_date)
    planned = _planned(rule)
    if planned is not None and not rule.first_only:
        candidates = candidates.exclude(planned)
    first = candidates.order_by("started_at", "pk")
    rows = (
        window.discharges()
        .filter(_index(rule))
        .annotate(readmission=_readmission(rule, window.local_date))
        .filter(readmission=READMITTED)
        .annotate(
            re_day=Subquery(
                first.annotate(day=window.local_date("started_at")).values("day")[:1],
                output_field=DateField(),
            ),
            re_service=Subquery(first.values("service")[:1]),
        )
        .order_by("ended_at", "pk")
        .values("patient_id", "public_id", "service", "dis_day", "re_day", "re_service")[:limit]
    )
    with _without_jit():
        rows = list(rows)
    patients = _public_ids(r["patient_id"] for r in rows)
    result = []
    for r in rows:
        discharged, readmitted = _as_date(r["dis_day"]), _as_date(r["re_day"])
        result.append(
            ReadmissionRow(
                patient=patients[r["patient_id"]],
                stay=str(r["public_id"]),
                service=r["service"],
                discharged=discharged,
                readmitted=readmitted,
                days=(readmitted - discharged).days,
                readmission_service=r["re_service"] or "",
            )
        )
    return result


def death_list(
    scope: Scope, start: dt.date, end: dt.date, *, limit: int = LIST_LIMIT
) -> list[DeathRow]:
    """The deaths of :attr:`Statistics.deaths` (the same condition), in date order, at
    most ``limit``, each marked when under the net-rate hours or post-operative."""
    window = _window(scope, start, end)
    policy = window.policy
    rows = (
        window.discharges()
        .filter(_death(policy))
        .annotate(
            adm_day=window.local_date("started_at"),
            los=_los(window.local_date),
            early=_flag(_early(policy)),
            postop=_flag(_postoperative(policy)),
        )
        .order_by("ended_at", "pk")
        .values(
            "patient_id",
            "public_id",
            "service",
            "adm_day",
            "dis_day",
            "los",
            "early",
            "postop",
        )[:limit]
    )
    with _without_jit():
        rows = list(rows)
    patients = _public_ids(r["patient_id"] for r in rows)
    return [
        DeathRow(
            patient=patients[r["patient_id"]],
            stay=str(r["public_id"]),
            service=r["service"],
            admitted=_as_date(r["adm_day"]),
            died=_as_date(r["dis_day"]),
            los=int(r["los"]),
            under_net_hours=bool(r["early"]),
            postoperative=bool(r["postop"]),
        )
        for r in rows
    ]
