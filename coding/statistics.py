"""Coding figures for the HIM department's statistics (``reports.department``):
aggregates only, never a patient row, so they can be shown and exported without naming
anyone. Every figure is one set-based query (a GROUP BY or a filtered COUNT), whatever
the size of the backlog.

- **Backlog by status**: discharged encounters (finished, with a discharge time, neither
  cancelled nor entered in error) whose abstract is not final or rebilled, counted by
  the abstract's status; an encounter with no abstract yet counts as *not started*.
- **DNFB** (discharged, not final billed): the same population counted by whole days
  since discharge, in the age buckets of the DNFB report (``coding.dnfb.AGE_BUCKETS``,
  0–3, 4–7, 8–14, 15–30, over 30 days).
- **Finalised per day**: abstracts whose ``finalised_at`` falls on each local calendar
  day of the range (``settings.TIME_ZONE``), days with none included as zero.

The backlog and DNFB are a snapshot at ``now`` (they do not depend on a date range); the
finalised counts are for the range asked. These functions do not check permissions: the
caller (``reports.department``) does, and audits the view.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, F, Q, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from coding.dnfb import AGE_BUCKETS
from coding.models import Abstract, AbstractStatus
from encounters.models import VOID_ENCOUNTER, Encounter, EncounterStatus

DONE = [AbstractStatus.FINAL, AbstractStatus.REBILLED]
BACKLOG_STATUSES = [
    AbstractStatus.NOT_STARTED,
    AbstractStatus.IN_PROGRESS,
    AbstractStatus.ON_HOLD,
]


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int


@dataclass(frozen=True)
class BucketCount:
    key: str
    label: str
    count: int


@dataclass(frozen=True)
class DayCount:
    day: dt.date
    count: int


@dataclass(frozen=True)
class Dnfb:
    total: int
    by_age: list[BucketCount]
    oldest_days: int | None


def _scope(queryset, facility_ids, service: str | None, prefix: str = ""):
    queryset = queryset.filter(**{f"{prefix}facility_id__in": list(facility_ids)})
    if service:
        queryset = queryset.filter(**{f"{prefix}service__iexact": service})
    return queryset


def _not_final(facility_ids, service: str | None = None):
    """Discharged encounters whose abstract is not final: the backlog and DNFB population."""
    return (
        _scope(Encounter.objects, facility_ids, service)
        .filter(status=EncounterStatus.FINISHED, ended_at__isnull=False)
        .exclude(status__in=VOID_ENCOUNTER)
        .exclude(abstract__status__in=DONE)
    )


def abstracts_exist(facility_ids) -> bool:
    """Whether coding has begun at all at these facilities (any abstract), so the
    dashboard can say "no coding data yet" rather than show zeros as if measured."""
    return Abstract.objects.filter(encounter__facility_id__in=list(facility_ids)).exists()


def backlog_by_status(facility_ids, *, service: str | None = None) -> list[StatusCount]:
    """The coding backlog now, by abstract status (every status listed, zeros included)."""
    rows = dict(
        _not_final(facility_ids, service)
        .annotate(coding_status=Coalesce(F("abstract__status"), Value(AbstractStatus.NOT_STARTED)))
        .values("coding_status")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("coding_status", "n")
    )
    labels = dict(AbstractStatus.choices)
    return [StatusCount(s.value, labels[s.value], rows.get(s.value, 0)) for s in BACKLOG_STATUSES]


def dnfb(facility_ids, *, now: dt.datetime, service: str | None = None) -> Dnfb:
    """DNFB at ``now``: the total, by days since discharge, and the oldest in days."""
    aggregates = {
        f"b{i}": Count("pk", filter=bucket.q(now)) for i, bucket in enumerate(AGE_BUCKETS)
    }
    population = _not_final(facility_ids, service)
    totals = population.aggregate(total=Count("pk"), **aggregates)
    oldest = population.order_by("ended_at").values_list("ended_at", flat=True).first()
    return Dnfb(
        total=totals["total"],
        by_age=[
            BucketCount(bucket.key, bucket.label, totals[f"b{i}"])
            for i, bucket in enumerate(AGE_BUCKETS)
        ],
        oldest_days=max(0, (now - oldest).days) if oldest else None,
    )


def _local_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(dt.datetime.combine(start, dt.time.min), tz),
        timezone.make_aware(dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min), tz),
    )


def finalised_per_day(
    facility_ids, start: dt.date, end: dt.date, *, service: str | None = None
) -> list[DayCount]:
    """Abstracts finalised on each local day from ``start`` to ``end`` (both included)."""
    if end < start:
        raise ValueError("the end of the range is before its start")
    low, high = _local_bounds(start, end)
    rows = dict(
        _scope(Abstract.objects, facility_ids, service, prefix="encounter__")
        .filter(finalised_at__gte=low, finalised_at__lt=high)
        .filter(status__in=DONE)
        .annotate(day=TruncDate("finalised_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("day", "n")
    )
    days = (end - start).days + 1
    return [
        DayCount(day, rows.get(day, 0))
        for day in (start + dt.timedelta(days=i) for i in range(days))
    ]


def finalised_total(
    facility_ids, start: dt.date, end: dt.date, *, service: str | None = None
) -> int:
    low, high = _local_bounds(start, end)
    return (
        _scope(Abstract.objects, facility_ids, service, prefix="encounter__")
        .filter(Q(finalised_at__gte=low, finalised_at__lt=high), status__in=DONE)
        .count()
    )
