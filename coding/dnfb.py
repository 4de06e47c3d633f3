"""DNFB — discharged, not final billed: every discharged encounter whose abstract is not
final yet (``coding.queue.discharged_not_final``), counted by age and by why it is held.

Age is whole days elapsed since discharge, in the buckets 0–3, 4–7, 8–14, 15–30 and
over 30 days. Each encounter is held for one reason, the first that applies:

1. **open query** — a physician query waits for the clinician's answer, or the abstract
   is on hold;
2. **coding in progress** — a coder has begun the abstract;
3. **incomplete record** — chart completion has not found the record complete (and the
   policy does not allow coding before), so coding cannot start;
4. **not started** — ready for coding, nobody has begun.

The counts are two aggregate queries whatever the size of the backlog, and name no
patient, so the report is audited without patients; the list of one cell (a bucket and
a reason) names them and is audited with the patients shown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Case, CharField, Count, Q, Value, When

from audit.models import Action
from coding import work_access as wa
from coding.models import AbstractStatus
from coding.permissions import CodingPermission as K
from coding.queue import (
    VOID_ENCOUNTER,
    days_since,
    discharged_not_final,
    has_open_query,
    ready_condition,
)
from recordroom import clock

LIST_LIMIT = 500


@dataclass(frozen=True)
class AgeBucket:
    key: str
    label: str
    low: int
    high: int | None  # None: no upper end

    def q(self, now: dt.datetime) -> Q:
        query = Q(ended_at__lte=now - dt.timedelta(days=self.low))
        if self.high is not None:
            query &= Q(ended_at__gt=now - dt.timedelta(days=self.high + 1))
        return query


AGE_BUCKETS: tuple[AgeBucket, ...] = (
    AgeBucket("0-3", "0–3 days", 0, 3),
    AgeBucket("4-7", "4–7 days", 4, 7),
    AgeBucket("8-14", "8–14 days", 8, 14),
    AgeBucket("15-30", "15–30 days", 15, 30),
    AgeBucket("31+", "Over 30 days", 31, None),
)

OPEN_QUERY, IN_PROGRESS, INCOMPLETE, NOT_STARTED = (
    "open_query",
    "coding_in_progress",
    "incomplete_record",
    "not_started",
)
REASONS: tuple[tuple[str, str], ...] = (
    (OPEN_QUERY, "Open query"),
    (IN_PROGRESS, "Coding in progress"),
    (INCOMPLETE, "Incomplete record"),
    (NOT_STARTED, "Not started"),
)


def _population(user):
    ids = wa.user_facility_ids(user)
    return (
        discharged_not_final(ids)
        .exclude(status__in=VOID_ENCOUNTER)
        .annotate(open_query=has_open_query())
        .annotate(
            held_for=Case(
                When(
                    Q(abstract__status=AbstractStatus.ON_HOLD) | Q(open_query=True),
                    then=Value(OPEN_QUERY),
                ),
                When(abstract__status=AbstractStatus.IN_PROGRESS, then=Value(IN_PROGRESS)),
                When(~ready_condition(ids), then=Value(INCOMPLETE)),
                default=Value(NOT_STARTED),
                output_field=CharField(),
            )
        )
    )


@dataclass(frozen=True)
class Cell:
    bucket: AgeBucket
    reason: str
    count: int


@dataclass
class DnfbReport:
    now: dt.datetime
    total: int
    by_bucket: list[tuple[AgeBucket, int]]
    by_reason: list[tuple[str, str, int]]
    matrix: list[tuple[str, str, list[Cell], int]]  # reason, label, cells, row total
    oldest_days: int

    @property
    def max_bucket(self) -> int:
        return max([n for _, n in self.by_bucket], default=0) or 1

    @property
    def bars(self) -> list[dict]:
        """Geometry of the age chart (SVG, 300 px for the largest bucket)."""
        return [
            {
                "label": bucket.label,
                "count": n,
                "y": 6 + 26 * i,
                "text_y": 19 + 26 * i,
                "width": round(300 * n / self.max_bucket),
                "value_x": 116 + round(300 * n / self.max_bucket),
                "oldest": bucket.high is None,
            }
            for i, (bucket, n) in enumerate(self.by_bucket)
        ]


def _counts(user, now: dt.datetime) -> DnfbReport:
    rows = _population(user)
    aggregates = {}
    for bi, bucket in enumerate(AGE_BUCKETS):
        for ri, (reason, _label) in enumerate(REASONS):
            aggregates[f"c{bi}_{ri}"] = Count("pk", filter=bucket.q(now) & Q(held_for=reason))
    aggregates["total"] = Count("pk")
    totals = rows.aggregate(**aggregates)
    oldest = rows.order_by("ended_at").values_list("ended_at", flat=True).first()
    matrix = []
    bucket_totals = [0] * len(AGE_BUCKETS)
    by_reason = []
    for ri, (reason, label) in enumerate(REASONS):
        cells = []
        for bi, bucket in enumerate(AGE_BUCKETS):
            n = totals[f"c{bi}_{ri}"]
            bucket_totals[bi] += n
            cells.append(Cell(bucket, reason, n))
        row_total = sum(c.count for c in cells)
        matrix.append((reason, label, cells, row_total))
        by_reason.append((reason, label, row_total))
    return DnfbReport(
        now=now,
        total=totals["total"],
        by_bucket=list(zip(AGE_BUCKETS, bucket_totals, strict=True)),
        by_reason=by_reason,
        matrix=matrix,
        oldest_days=days_since(oldest, now) if oldest else 0,
    )


def dnfb_report(user, *, now=None) -> DnfbReport:
    """The DNFB counts at the user's facilities (``coding.view_reports``)."""
    wa.require(user, K.VIEW_REPORTS, "coding.dnfb")
    now = now or clock.now()
    report = _counts(user, now)
    wa.audit(user, Action.VIEW, "coding.dnfb", total=report.total)
    return report


def export_dnfb(user, *, now=None) -> DnfbReport:
    """The same counts for the CSV export, audited as an export."""
    wa.require(user, K.VIEW_REPORTS, "coding.dnfb", action=Action.EXPORT)
    now = now or clock.now()
    report = _counts(user, now)
    wa.audit(user, Action.EXPORT, "coding.dnfb", format="csv", total=report.total)
    return report


@dataclass(frozen=True)
class DnfbRow:
    encounter: object
    patient_name: str
    service: str
    payer: str
    days: int
    reason: str
    reason_label: str
    status_label: str


def dnfb_list(user, *, bucket: str = "", reason: str = "", now=None) -> list[DnfbRow]:
    """The encounters behind one cell of the report (either filter may be empty), oldest
    first, at most LIST_LIMIT; audited with the patients shown."""
    wa.require(user, K.VIEW_REPORTS, "coding.dnfb")
    buckets = {b.key: b for b in AGE_BUCKETS}
    reasons = dict(REASONS)
    errors = {}
    if bucket and bucket not in buckets:
        errors["bucket"] = "Unknown age bucket."
    if reason and reason not in reasons:
        errors["reason"] = "Unknown reason."
    if errors:
        raise ValidationError(errors)
    now = now or clock.now()
    rows = _population(user)
    if bucket:
        rows = rows.filter(buckets[bucket].q(now))
    if reason:
        rows = rows.filter(held_for=reason)
    statuses = dict(AbstractStatus.choices)
    result = []
    for e in rows.select_related("patient").order_by("ended_at", "pk")[:LIST_LIMIT]:
        result.append(
            DnfbRow(
                encounter=e,
                patient_name=e.patient.display_name,
                service=e.service,
                payer=e.payer_name or "",
                days=days_since(e.ended_at, now),
                reason=e.held_for,
                reason_label=reasons[e.held_for],
                status_label=statuses.get(e.abstract_status, e.abstract_status),
            )
        )
    wa.audit_list(
        user,
        "coding.dnfb",
        [r.encounter.patient.public_id for r in result],
        bucket=bucket,
        reason=reason,
    )
    return result
