"""Changes to the audit app that bench_audit_trail.py found necessary, applied to the
benchmark's own throw-away database and process only (``--proposed``), so the "before"
and "after" figures in bench/README.md can be reproduced. Each step is skipped once
the app has the change itself; delete this module when both are adopted.

1. An index on (action, outcome, -seq): "refused chart views" (action and outcome
   together) otherwise walks every denied row through the outcome index and reads the
   table for each to test the action.
2. Date filters also bound ``seq``. Events are appended under the chain-head lock with
   the clock read inside it, so ``occurred_at`` grows with ``seq`` except where the
   clock steps back (an NTP correction, skew between application servers). Given a
   bound on that step back, two probes of the ``occurred_at`` index turn a date range
   into a ``seq`` range that the seq index and every (column, -seq) index serve in
   order; without it a date filter either sorts every event of the range (SQLite) or
   walks the seq index back from the newest event (PostgreSQL), both linear in the
   size of the trail. The change proposed for the app keeps the bound exact (the chain
   head records the furthest step back seen, ``record_event`` updates it); here a
   fixed ``CLOCK_STEP_BACK`` stands in for it, which costs the same and is exact for
   the generated trail, whose clock never steps back.
"""

from __future__ import annotations

import datetime as dt

INDEX_NAME = "audit_action_outcome_seq"
INDEX_FIELDS = ["action", "outcome", "-seq"]
CLOCK_STEP_BACK = dt.timedelta(hours=1)


def _has_index_on(connection, columns: list[str]) -> bool:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "audit_auditevent")
    return any(c.get("index") and c["columns"] == columns for c in constraints.values())


def add_action_outcome_index(connection) -> bool:
    """Create the proposed index unless one on the same columns exists. True if made."""
    from django.db import models

    from audit.models import AuditEvent

    if _has_index_on(connection, ["action", "outcome", "seq"]):
        return False
    with connection.schema_editor() as editor:
        editor.add_index(AuditEvent, models.Index(fields=INDEX_FIELDS, name=INDEX_NAME))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditevent")
    return True


def seq_bounds(date_from: dt.date | None, date_to: dt.date | None) -> tuple[int | None, int | None]:
    """(lower, upper): every event dated in [date_from, date_to] has lower < seq < upper.

    An event dated before ``start - CLOCK_STEP_BACK`` bounds from below: an event with a
    smaller seq was written before it, so is dated at most CLOCK_STEP_BACK after it,
    still before ``start``. Symmetrically above. None where no such event exists.
    """
    from audit.access import _start_of_day
    from audit.models import AuditEvent

    lower = upper = None
    if date_from:
        start = _start_of_day(date_from) - CLOCK_STEP_BACK
        lower = (
            AuditEvent.objects.filter(occurred_at__lt=start)
            .order_by("-occurred_at")
            .values_list("seq", flat=True)
            .first()
        )
    if date_to:
        end = _start_of_day(date_to + dt.timedelta(days=1)) + CLOCK_STEP_BACK
        upper = (
            AuditEvent.objects.filter(occurred_at__gte=end)
            .order_by("occurred_at")
            .values_list("seq", flat=True)
            .first()
        )
    return lower, upper


def bound_date_filters_by_seq() -> bool:
    """Wrap ``audit.access._filtered`` so date filters also bound seq. True if patched."""
    import audit.access

    if hasattr(audit.access, "_seq_bounds") or getattr(
        audit.access._filtered, "bench_proposal", False
    ):
        return False
    original = audit.access._filtered

    def _filtered(filters):
        events = original(filters)
        lower, upper = seq_bounds(filters.date_from, filters.date_to)
        if lower is not None:
            events = events.filter(seq__gt=lower)
        if upper is not None:
            events = events.filter(seq__lt=upper)
        return events

    _filtered.bench_proposal = True
    audit.access._filtered = _filtered
    return True


def apply_all(connection) -> dict[str, bool]:
    return {
        "action_outcome_index": add_action_outcome_index(connection),
        "date_filters_bound_seq": bound_date_filters_by_seq(),
    }
