"""The completion policy in force, and the deadline arithmetic every completion module
shares.

Policy is data (:class:`~completion.models.CompletionPolicy`): versioned by
``effective_from``, for one facility or for all (``facility`` empty). The policy that
governs a record is the one in force on its discharge date, a facility's own policy
first, then the policy for all facilities, then the US defaults below (30 days to
complete a record, verbal orders authenticated within 48 hours, a 50 % delinquency
alert, suspension listing after 14 days delinquent, reminders 7, 3 and 1 days before).

Time: deadlines are aware datetimes stored in UTC. A limit in **hours** is elapsed
time (24 h after an admission at 01:30 on the day clocks spring forward is 02:30 the
next day, local). A limit in **days** counts the hospital's calendar days
(``settings.TIME_ZONE``) and keeps the wall-clock time: 30 days after a discharge at
10:00 on 1 March is 10:00 on 31 March, local, whatever daylight saving did in between.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from completion.models import CompletionPolicy
from recordroom import clock

DEFAULTS: dict = {
    "completion_days": 30,
    "verbal_order_hours": 48,
    "delinquency_alert_percent": Decimal("50"),
    "suspension_days": 14,
    "reminder_days": [7, 3, 1],
}
"""US defaults: medical staff bylaws commonly allow 30 days after discharge (42 CFR
482.24(c)(4)(viii)); 48 hours is a common state limit for verbal orders; 50 % was the
Joint Commission's delinquency threshold."""


def local_date(moment: dt.datetime) -> dt.date:
    """The hospital's calendar date of an aware moment."""
    return timezone.localtime(moment).date()


def day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of a local calendar day, as an aware UTC datetime."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time())).astimezone(dt.UTC)


def add_hours(moment: dt.datetime, hours: float) -> dt.datetime:
    """Elapsed hours, in UTC."""
    return (moment + dt.timedelta(hours=hours)).astimezone(dt.UTC)


def add_local_days(moment: dt.datetime, days: int) -> dt.datetime:
    """``days`` calendar days later (earlier when negative) at the same local wall-clock
    time, in UTC. A wall-clock time that does not exist that day (the skipped hour of a
    spring-forward) lands just after the change."""
    local = timezone.localtime(moment)
    wall = local.replace(tzinfo=None) + dt.timedelta(days=days)
    return timezone.make_aware(wall).astimezone(dt.UTC)


def policy_for(facility=None, on: dt.date | None = None) -> CompletionPolicy:
    """The completion policy in force on ``on`` (default: today, local) for ``facility``
    (a Facility, its id, or None for the policy for all facilities).

    A facility's own newest policy effective on that day wins over the all-facility
    one; with neither, an unsaved policy with the US defaults is returned (its
    ``pk`` is None).
    """
    day = on or local_date(clock.now())
    facility_id = getattr(facility, "pk", facility)
    candidates = CompletionPolicy.objects.filter(effective_from__lte=day)
    if facility_id is not None:
        candidates = candidates.filter(Q(facility_id=facility_id) | Q(facility__isnull=True))
    else:
        candidates = candidates.filter(facility__isnull=True)
    chosen = None
    for policy in candidates.order_by("-effective_from", "-pk"):
        if policy.facility_id is not None:
            return policy
        if chosen is None:
            chosen = policy
    if chosen is not None:
        return chosen
    return CompletionPolicy(
        facility_id=None,
        effective_from=dt.date(1900, 1, 1),
        created_at=clock.now(),
        **{**DEFAULTS, "reminder_days": list(DEFAULTS["reminder_days"])},
    )


def policy_for_encounter(encounter) -> CompletionPolicy:
    """The policy governing an encounter's record: the one in force on its discharge
    date (on today for an encounter not discharged yet)."""
    on = local_date(encounter.ended_at) if encounter.ended_at else None
    return policy_for(encounter.facility_id, on)


def delinquent_at(discharged_at: dt.datetime | None, policy: CompletionPolicy):
    """When a record still incomplete becomes delinquent: discharge + completion days
    (calendar days, local), or None before discharge."""
    if discharged_at is None:
        return None
    return add_local_days(discharged_at, policy.completion_days)
