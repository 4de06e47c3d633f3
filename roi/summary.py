"""Rows for the release-of-information panels on the home page (recordroom/home.py):
request numbers and clocks only, never a patient's name."""

from __future__ import annotations

from accounts.access import has_permission
from patients.access import facility_ids
from recordroom import clock
from roi import policy
from roi.intake import RUNNING_STATUSES
from roi.models import RequestStatus, RoiRequest
from roi.permissions import RoiPermission as RP

LIMIT = 8


def _open(user):
    return RoiRequest.objects.filter(
        facility_id__in=facility_ids(user), status__in=RUNNING_STATUSES
    )


def due_soon(user) -> list:
    """Open requests by days left (ROI specialists), overdue first."""
    if not has_permission(user, RP.LOG_REQUESTS):
        return []
    today = policy.local_date(clock.now())
    rows = []
    for request in _open(user).exclude(status=RequestStatus.PENDED).order_by("due_on")[:50]:
        due = request.extended_due_on or request.due_on
        left = policy.days_left(due, today)
        when = (
            f"overdue {-left} day{'s' if left != -1 else ''}" if left < 0 else f"{left} days left"
        )
        rows.append((left, f"{request.number} · {request.get_requester_type_display()} · {when}"))
    return [text for _, text in sorted(rows)[:LIMIT]]


def pended(user) -> list:
    """Requests waiting for something from the requester."""
    if not has_permission(user, RP.LOG_REQUESTS):
        return []
    return [
        f"{r.number} · {r.get_requester_type_display()} · {len(r.pend_reasons)} item"
        f"{'s' if len(r.pend_reasons) != 1 else ''} missing"
        for r in _open(user).filter(status=RequestStatus.PENDED).order_by("due_on")[:LIMIT]
    ]
