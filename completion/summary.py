"""Counts for the home page: a clinician's records to complete, and the department's
chart-completion standing. Small set-based queries that return numbers only, never a
patient, so the panels show no patient data.

The delinquency rate is the Joint Commission's former measure as the analysts' dashboard
computes it (``completion.access``): for the month under way, records delinquent now
(incomplete past their due date) ÷ the month's discharges × 100; cancelled encounters
and those entered in error count for neither. The policy in force today at each
facility gives the alert threshold (50 % by default).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Q
from django.utils import timezone

from accounts.access import require_permission
from audit.models import Purpose
from completion.inbox import unread_count
from completion.models import Deficiency, DeficiencyStatus, RecordCompletion, RecordStatus
from completion.permissions import CompletionPermission
from recordroom import clock

SOON_DAYS = 7


@dataclass(frozen=True)
class ClinicianSummary:
    open: int
    due_soon: int
    delinquent_records: int
    unread: int
    soon_days: int = SOON_DAYS

    def __bool__(self) -> bool:
        # The panel shows its counts even when they are all zero.
        return True


@dataclass(frozen=True)
class FacilitySummary:
    facility_name: str
    incomplete: int
    delinquent: int
    discharges: int
    rate: Decimal | None
    alert_percent: Decimal | None

    @property
    def over_threshold(self) -> bool:
        return (
            self.rate is not None
            and self.alert_percent is not None
            and self.rate > self.alert_percent
        )


def clinician_summary(user) -> ClinicianSummary:
    """The user's own open deficiencies: how many, how many become delinquent within
    ``SOON_DAYS``, on how many delinquent records; and unread inbox messages."""
    require_permission(
        user,
        CompletionPermission.COMPLETE_OWN,
        purpose=Purpose.OPERATIONS,
        object_type="completion.summary",
    )
    now = clock.now()
    counts = Deficiency.objects.filter(responsible=user, status=DeficiencyStatus.OPEN).aggregate(
        open=Count("pk"),
        due_soon=Count(
            "pk",
            filter=Q(delinquent_at__gt=now, delinquent_at__lte=now + dt.timedelta(days=SOON_DAYS)),
        ),
        delinquent_records=Count("encounter", distinct=True, filter=Q(delinquent_at__lte=now)),
    )
    return ClinicianSummary(unread=unread_count(user), **counts)


def month_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The first instant of the local calendar month of ``day`` and of the next one."""
    tz = timezone.get_current_timezone()
    following = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    midnight = dt.time.min
    return (
        timezone.make_aware(dt.datetime.combine(day.replace(day=1), midnight), tz),
        timezone.make_aware(dt.datetime.combine(following, midnight), tz),
    )


def delinquency_rate(delinquent: int, discharges: int, months: int = 1):
    """Delinquent records ÷ average monthly discharges × 100, to one decimal; None when
    there were no discharges to divide by."""
    if not discharges:
        return None
    rate = Decimal(delinquent) * 100 * months / Decimal(discharges)
    return rate.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def him_summary(user) -> list[FacilitySummary]:
    """For each facility of the user: incomplete and delinquent records and this month's
    delinquency rate against the policy's alert threshold."""
    require_permission(
        user,
        CompletionPermission.VIEW_DEFICIENCIES,
        purpose=Purpose.OPERATIONS,
        object_type="completion.summary",
    )
    from accounts.models import Facility
    from completion.policy import policy_for
    from encounters.models import Encounter, EncounterStatus
    from patients.access import facility_ids

    ids = facility_ids(user)
    if not ids:
        return []
    now = clock.now()
    today = timezone.localdate(now)
    start, end = month_bounds(today)
    void = [EncounterStatus.CANCELLED, EncounterStatus.ENTERED_IN_ERROR]
    records = {
        row["encounter__facility_id"]: row
        for row in RecordCompletion.objects.filter(
            encounter__facility_id__in=ids, status=RecordStatus.INCOMPLETE
        )
        .exclude(encounter__status__in=void)
        .values("encounter__facility_id")
        .annotate(incomplete=Count("pk"), delinquent=Count("pk", filter=Q(due_at__lt=now)))
        .order_by()
    }
    discharges = dict(
        Encounter.objects.filter(
            facility_id__in=ids,
            status=EncounterStatus.FINISHED,
            ended_at__gte=start,
            ended_at__lt=end,
        )
        .values("facility_id")
        .annotate(n=Count("pk"))
        .order_by()
        .values_list("facility_id", "n")
    )
    result = []
    for facility in Facility.objects.filter(pk__in=ids).order_by("name"):
        row = records.get(facility.pk, {"incomplete": 0, "delinquent": 0})
        discharged = discharges.get(facility.pk, 0)
        policy = policy_for(facility, today)
        alert = getattr(policy, "delinquency_alert_percent", None)
        result.append(
            FacilitySummary(
                facility_name=facility.name,
                incomplete=row["incomplete"],
                delinquent=row["delinquent"],
                discharges=discharged,
                rate=delinquency_rate(row["delinquent"], discharged),
                alert_percent=Decimal(alert) if alert is not None else None,
            )
        )
    return result
