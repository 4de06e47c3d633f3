"""Reading the audit trail: for the privacy officer, and itself audited."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass

from django.db.models import QuerySet
from django.utils import timezone

from accounts.access import require_permission
from audit.actions import record_event
from audit.models import Action, AuditChainHead, AuditEvent, Purpose
from audit.permissions import AuditPermission

COUNT_CAP = 10_000


@dataclass(frozen=True)
class TrailFilter:
    username: str = ""
    patient_id: uuid.UUID | None = None
    action: str = ""
    outcome: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    def as_detail(self) -> dict:
        return {k: str(v) for k, v in asdict(self).items() if v}


def _start_of_day(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _seq_bounds(filters: TrailFilter) -> tuple[int | None, int | None]:
    """Sequence numbers that every event of the date range lies strictly between, so a
    date filter is served in order by the seq index or any (column, -seq) index instead
    of sorting the whole range or walking back from the newest event.

    No event is dated more than the chain head's ``max_step_back`` before an event
    written earlier. So each event written before one dated earlier than
    ``start - max_step_back`` is dated before ``start``, and each event written after
    one dated at or after ``end + max_step_back`` is dated at or after ``end``; one probe
    of the occurred_at index finds each of those two events.
    """
    if not (filters.date_from or filters.date_to):
        return None, None
    margin = AuditChainHead.objects.filter(pk=1).values_list("max_step_back", flat=True).first()
    if margin is None:
        return None, None
    lower = upper = None
    if filters.date_from:
        start = _start_of_day(filters.date_from)
        lower = (
            AuditEvent.objects.filter(occurred_at__lt=start - margin)
            .order_by("-occurred_at")
            .values_list("seq", flat=True)
            .first()
        )
    if filters.date_to:
        end = _start_of_day(filters.date_to + dt.timedelta(days=1))
        upper = (
            AuditEvent.objects.filter(occurred_at__gte=end + margin)
            .order_by("occurred_at")
            .values_list("seq", flat=True)
            .first()
        )
    return lower, upper


def _filtered(filters: TrailFilter) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if filters.username:
        events = events.filter(actor_username=filters.username)
    if filters.patient_id:
        events = events.filter(patient_id=filters.patient_id)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.outcome:
        events = events.filter(outcome=filters.outcome)
    if filters.date_from:
        events = events.filter(occurred_at__gte=_start_of_day(filters.date_from))
    if filters.date_to:
        events = events.filter(
            occurred_at__lt=_start_of_day(filters.date_to + dt.timedelta(days=1))
        )
    lower, upper = _seq_bounds(filters)
    if lower is not None:
        events = events.filter(seq__gt=lower)
    if upper is not None:
        events = events.filter(seq__lt=upper)
    return events


@dataclass
class TrailPage:
    events: list[AuditEvent]
    count: int
    count_capped: bool
    older_than: int | None
    newer_than: int | None


def search_trail(
    acting_user,
    filters: TrailFilter,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> TrailPage:
    """One page of events, newest first, paged by sequence number (keyset paging stays
    fast at any depth of a large trail)."""
    require_permission(
        acting_user,
        AuditPermission.VIEW_TRAIL,
        action=Action.SEARCH,
        object_type="audit.trail",
        purpose=Purpose.COMPLIANCE,
    )
    events = _filtered(filters)
    count = events[: COUNT_CAP + 1].count()
    page = events
    if before is not None:
        page = page.filter(seq__lt=before)
    if after is not None:
        page = page.filter(seq__gt=after).order_by("seq")
    rows = list(page.select_related(None)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if after is not None:
        rows.reverse()
    record_event(
        acting_user,
        Action.SEARCH,
        purpose=Purpose.COMPLIANCE,
        object_type="audit.trail",
        detail=filters.as_detail(),
    )
    has_older = (
        more if after is None else bool(rows) and events.filter(seq__lt=rows[-1].seq).exists()
    )
    has_newer = (before is not None or (after is not None and more)) and bool(rows)
    return TrailPage(
        events=rows,
        count=min(count, COUNT_CAP),
        count_capped=count > COUNT_CAP,
        older_than=rows[-1].seq if rows and has_older else None,
        newer_than=rows[0].seq if rows and has_newer else None,
    )


def export_trail(acting_user, filters: TrailFilter):
    """Every matching event, oldest first, streamed in chunks; the export is audited."""
    require_permission(
        acting_user,
        AuditPermission.EXPORT_TRAIL,
        action=Action.EXPORT,
        object_type="audit.trail",
        purpose=Purpose.COMPLIANCE,
    )
    record_event(
        acting_user,
        Action.EXPORT,
        purpose=Purpose.COMPLIANCE,
        object_type="audit.trail",
        detail=filters.as_detail(),
    )
    return _filtered(filters).order_by("seq").iterator(chunk_size=2000)


def recent_denials(acting_user, limit: int = 10) -> list[AuditEvent]:
    """The privacy officer's home panel: the latest refused accesses and failed log-ins."""
    require_permission(
        acting_user,
        AuditPermission.VIEW_TRAIL,
        object_type="audit.trail",
        purpose=Purpose.COMPLIANCE,
    )
    return list(AuditEvent.objects.filter(outcome="denied")[:limit])
