"""Audit-trail figures for the HIM department's statistics (``reports.department``):
counts only, never an event's detail. The trail is one installation-wide chain, not kept
per facility. The caller (``reports.department``) checks permissions and audits.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q

from audit.models import AuditEvent, Outcome


def events_by_action(*, low: dt.datetime, high: dt.datetime) -> list[tuple[str, int, int]]:
    """``(action, events, refused)`` for events in ``[low, high)``, most frequent first."""
    rows = (
        AuditEvent.objects.filter(occurred_at__gte=low, occurred_at__lt=high)
        .values("action")
        .annotate(n=Count("pk"), denied=Count("pk", filter=Q(outcome=Outcome.DENIED)))
        .order_by("-n", "action")
    )
    return [(r["action"], r["n"], r["denied"]) for r in rows]
