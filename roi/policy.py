"""The ROI policy in force and the clocks it sets.

``RoiPolicy`` rows are versioned configuration (per facility, or for all when the facility
is empty), seeded with US federal defaults by ``roi/migrations/0004_policy_defaults.py``:

- the patient's (and personal representative's) right of access: 30 calendar days from
  receipt (45 CFR 164.524(b)(2)), one extension of up to 30 days with a written notice of
  the reason and the new date sent inside the first period;
- other requesters: the department's own targets (``due_days`` per requester type);
- an urgent request for continuing care: the same day.

Dates are the hospital's local dates (``settings.TIME_ZONE``): a request received at
23:30 local on 31 January was received on 31 January, whatever the UTC date.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from roi.models import RequesterType, RoiPolicy, Urgency

# The right of access: calendar days, and only these requester types (164.524).
RIGHT_OF_ACCESS = {RequesterType.PATIENT, RequesterType.REPRESENTATIVE}
FALLBACK_DAYS = 30


def policy_for(facility, on_date: dt.date) -> RoiPolicy:
    """The policy in force at ``facility`` on ``on_date``: the facility's own newest row
    that has started, else the newest row for all facilities, else the model defaults."""
    rows = RoiPolicy.objects.filter(effective_from__lte=on_date).order_by("-effective_from", "-pk")
    found = None
    if facility is not None:
        found = rows.filter(facility=facility).first()
    found = found or rows.filter(facility__isnull=True).first()
    return found or RoiPolicy(effective_from=on_date, due_days={})


def local_date(moment: dt.datetime) -> dt.date:
    """The hospital's local date of an aware datetime."""
    return timezone.localdate(moment)


def due_days(policy: RoiPolicy, requester_type: str) -> int:
    days = (policy.due_days or {}).get(str(requester_type))
    return int(days) if days is not None else FALLBACK_DAYS


def due_date(
    policy: RoiPolicy, requester_type: str, received_on: dt.date, urgency: str = Urgency.ROUTINE
) -> dt.date:
    """When the answer is due. An urgent request for continuing care is due the day it
    came; otherwise the policy's calendar days for the requester type from receipt."""
    if (
        urgency == Urgency.URGENT
        and policy.urgent_same_day
        and requester_type == RequesterType.PROVIDER
    ):
        return received_on
    return received_on + dt.timedelta(days=due_days(policy, requester_type))


def extended_due_date(policy: RoiPolicy, due_on: dt.date) -> dt.date:
    """The due date after the one extension the rule allows."""
    return due_on + dt.timedelta(days=policy.extension_days)


def days_left(due_on: dt.date, today: dt.date) -> int:
    """Calendar days until the due date (negative: overdue by that many days)."""
    return (due_on - today).days
