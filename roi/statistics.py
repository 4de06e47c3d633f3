"""Release-of-information figures for the HIM department's statistics
(``reports.department``): aggregates only, never a patient row or a requester's name.

- **Requests by type and status**: requests *received* in the range (``received_on``),
  counted by requester type and by status — one GROUP BY.
- **Turnaround**: for requests *released* in the range (``released_at`` on a local day of
  the range), the time from receipt (``received_at``) to release, in days. The median is
  the mean of the two middle values when their number is even (the middle one when odd);
  the 90th percentile is the nearest-rank value: the ``ceil(0.9 × n)``-th smallest. Each
  is read from the database in order with OFFSET/LIMIT (a count and at most two rows), so
  no list of turnarounds is built in Python.
- **Against their deadlines**: amendment requests (164.526: 60 days, one 30-day
  extension) and accounting requests (164.528: 60 days, one 30-day extension), and ROI
  requests (164.524: 30 days + 30), *received* in the range: answered on or before the
  deadline in force (the extended one when extended), answered late, still open within
  the deadline, still open past it (at ``today``). The deadlines are the dates the ROI
  app stored on each request from its versioned policy; nothing is recomputed here.

Requests belong to a facility (``RoiRequest.facility``); amendment and accounting
requests belong to a patient, and count at a facility where the patient has a medical
record number. These functions do not check permissions: the caller does, and audits.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from patients.models import IdentifierKind, PatientIdentifier
from roi.models import (
    AccountingRequest,
    Amendment,
    AmendmentStatus,
    DeadlineStatus,
    RequesterType,
    RequestStatus,
    RoiRequest,
)

DAY_SECONDS = Decimal(86400)
OPEN_REQUEST = [
    RequestStatus.LOGGED,
    RequestStatus.PENDED,
    RequestStatus.IN_PROCESS,
    RequestStatus.QC,
]


@dataclass(frozen=True)
class TypeStatusCount:
    requester_type: str
    type_label: str
    counts: dict[str, int]  # status -> count, every status present
    total: int


@dataclass(frozen=True)
class Turnaround:
    label: str
    count: int
    median_days: Decimal | None
    p90_days: Decimal | None


@dataclass(frozen=True)
class DeadlineSummary:
    label: str
    received: int
    on_time: int
    late: int
    open_within: int
    open_overdue: int
    extended: int

    @property
    def answered(self) -> int:
        return self.on_time + self.late

    @property
    def on_time_percent(self) -> Decimal | None:
        if not self.answered:
            return None
        value = Decimal(self.on_time) * 100 / Decimal(self.answered)
        return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _local_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(dt.datetime.combine(start, dt.time.min), tz),
        timezone.make_aware(dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min), tz),
    )


def _requests(facility_ids):
    return RoiRequest.objects.filter(facility_id__in=list(facility_ids))


def _patient_at(facility_ids):
    return Exists(
        PatientIdentifier.objects.filter(
            patient=OuterRef("patient_id"),
            kind=IdentifierKind.MRN,
            facility_id__in=list(facility_ids),
        )
    )


def requests_exist(facility_ids) -> bool:
    return _requests(facility_ids).exists()


def amendments_exist(facility_ids) -> bool:
    return Amendment.objects.filter(_patient_at(facility_ids)).exists()


def accounting_requests_exist(facility_ids) -> bool:
    return AccountingRequest.objects.filter(_patient_at(facility_ids)).exists()


# --- by type and status ------------------------------------------------------------------


def requests_by_type_and_status(
    facility_ids, start: dt.date, end: dt.date
) -> list[TypeStatusCount]:
    """Requests received from ``start`` to ``end``: one row per requester type that has
    any, with a count per status (zeros included) and the row total."""
    rows = (
        _requests(facility_ids)
        .filter(received_on__gte=start, received_on__lte=end)
        .values("requester_type", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    grid: dict[str, dict[str, int]] = {}
    for row in rows:
        grid.setdefault(row["requester_type"], {})[row["status"]] = row["n"]
    labels = dict(RequesterType.choices)
    result = []
    for value, label in RequesterType.choices:
        if value not in grid:
            continue
        counts = {status: grid[value].get(status, 0) for status in RequestStatus.values}
        result.append(TypeStatusCount(value, label, counts, sum(counts.values())))
    for value in sorted(set(grid) - set(labels)):
        counts = {status: grid[value].get(status, 0) for status in RequestStatus.values}
        result.append(TypeStatusCount(value, value, counts, sum(counts.values())))
    return result


# --- turnaround --------------------------------------------------------------------------


def _days(value: dt.timedelta) -> Decimal:
    return Decimal(value.total_seconds()) / DAY_SECONDS


def _round(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def percentile_ranks(count: int) -> tuple[tuple[int, int], int]:
    """The 1-based ranks the median averages, and the nearest rank of the 90th
    percentile, for ``count`` ordered values (``count`` > 0)."""
    low = (count + 1) // 2
    high = count // 2 + 1 if count % 2 == 0 else low
    return (low, high), max(1, math.ceil(Decimal(9) * count / 10))


def _turnaround(queryset, label: str) -> Turnaround:
    ordered = queryset.annotate(
        turnaround=ExpressionWrapper(
            F("released_at") - F("received_at"), output_field=DurationField()
        )
    ).order_by("turnaround", "pk")
    count = ordered.count()
    if not count:
        return Turnaround(label, 0, None, None)
    (low, high), p90 = percentile_ranks(count)
    middle = [_days(v) for v in ordered.values_list("turnaround", flat=True)[low - 1 : high]]
    median = sum(middle, Decimal(0)) / len(middle)
    tail = ordered.values_list("turnaround", flat=True)[p90 - 1 : p90]
    return Turnaround(label, count, _round(median), _round(_days(tail[0])))


def turnaround(facility_ids, start: dt.date, end: dt.date) -> list[Turnaround]:
    """Receipt-to-release time of the requests released in the range: all of them first,
    then one row per requester type with a release."""
    low, high = _local_bounds(start, end)
    released = _requests(facility_ids).filter(
        released_at__gte=low, released_at__lt=high, received_at__isnull=False
    )
    result = [_turnaround(released, "All requests")]
    if not result[0].count:
        return result
    present = set(released.values_list("requester_type", flat=True).distinct().order_by())
    for value, label in RequesterType.choices:
        if value in present:
            result.append(_turnaround(released.filter(requester_type=value), label))
    return result


# --- against the deadlines ---------------------------------------------------------------


def _deadline_summary(
    queryset, *, label: str, answered, open_q: Q, today: dt.date
) -> DeadlineSummary:
    answered_on = TruncDate(answered, tzinfo=timezone.get_current_timezone())
    rows = queryset.annotate(
        deadline=Coalesce("extended_due_on", "due_on"), answered_on=answered_on
    ).aggregate(
        received=Count("pk"),
        on_time=Count(
            "pk", filter=~open_q & Q(answered_on__isnull=False, answered_on__lte=F("deadline"))
        ),
        late=Count(
            "pk", filter=~open_q & Q(answered_on__isnull=False, answered_on__gt=F("deadline"))
        ),
        open_within=Count("pk", filter=open_q & Q(deadline__gte=today)),
        open_overdue=Count("pk", filter=open_q & Q(deadline__lt=today)),
        extended=Count("pk", filter=Q(extended_due_on__isnull=False)),
    )
    return DeadlineSummary(label=label, **rows)


def deadlines(
    facility_ids, start: dt.date, end: dt.date, *, today: dt.date
) -> list[DeadlineSummary]:
    """Access (ROI), amendment and accounting requests received in the range, against
    their deadlines. An ROI request is answered when released, or when closed (a denial);
    one closed with no time recorded counts in neither the answered nor the open columns."""
    at = _patient_at(facility_ids)
    received = {"received_on__gte": start, "received_on__lte": end}
    return [
        _deadline_summary(
            _requests(facility_ids).filter(**received),
            label="Release-of-information requests",
            answered=Coalesce("released_at", "closed_at"),
            open_q=Q(status__in=OPEN_REQUEST),
            today=today,
        ),
        _deadline_summary(
            Amendment.objects.filter(at, **received),
            label="Amendment requests",
            answered=F("decided_at"),
            open_q=Q(status__in=[AmendmentStatus.RECEIVED, AmendmentStatus.EXTENDED]),
            today=today,
        ),
        _deadline_summary(
            AccountingRequest.objects.filter(at, **received),
            label="Accounting-of-disclosures requests",
            answered=F("answered_at"),
            open_q=Q(status__in=[DeadlineStatus.OPEN, DeadlineStatus.EXTENDED]),
            today=today,
        ),
    ]
