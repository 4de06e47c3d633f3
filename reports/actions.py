"""Changes to the statistics' configuration: bed counts per unit with effective dates.

A bed count is never overwritten: a change is a new :class:`reports.models.BedCapacity`
row in force from its date, with who, when and why. The row it follows (the latest one
of the same unit starting before it) is ended the day before (``effective_to``); a row
inserted before a later one ends the day before that one starts. So the rows of a unit
never overlap, and bed-days are summed over them when the count changes inside a period.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404

from accounts.access import require_permission
from accounts.models import Facility
from audit.actions import record_event
from audit.models import Action, Purpose
from patients.access import facility_ids
from recordroom import clock
from reports.models import BedCapacity
from reports.permissions import ReportsPermission

DAY = dt.timedelta(days=1)


def _require(user, action=Action.VIEW) -> None:
    require_permission(
        user,
        ReportsPermission.MANAGE_BEDS,
        action=action,
        purpose=Purpose.OPERATIONS,
        object_type="reports.bed_capacity",
    )


def bed_facilities(user, *, write: bool = False) -> list[Facility]:
    """The facilities whose bed counts ``user`` may edit (``reports.manage_beds``; a
    refusal is audited as an update when ``write``)."""
    _require(user, Action.UPDATE if write else Action.VIEW)
    return list(Facility.objects.filter(pk__in=facility_ids(user)).order_by("name"))


def bed_capacity_rows(user) -> list[BedCapacity]:
    """Every bed-count row at the user's facilities, by facility, unit and date (newest
    first); configuration, not patient data, but the view is audited all the same."""
    _require(user)
    rows = list(
        BedCapacity.objects.filter(facility_id__in=facility_ids(user))
        .select_related("facility", "created_by")
        .order_by("facility__name", "unit", "-effective_from", "-pk")
    )
    record_event(user, Action.VIEW, purpose=Purpose.OPERATIONS, object_type="reports.bed_capacity")
    return rows


def do_set_bed_capacity(
    *,
    facility: Facility,
    unit: str,
    beds: int,
    newborn: bool = False,
    effective_from: dt.date,
    reason: str,
    acting_user,
) -> BedCapacity:
    """Record that ``unit`` of ``facility`` has ``beds`` staffed beds from
    ``effective_from``. Refused (audited) without ``reports.manage_beds``; a facility
    the user does not work at is a 404; bad values change nothing."""
    _require(acting_user, Action.UPDATE)
    if facility.pk not in facility_ids(acting_user):
        raise Http404("No such facility")
    unit = " ".join((unit or "").split())
    errors = {}
    if not unit or len(unit) > 40:
        errors["unit"] = "Name the unit (at most 40 characters)."
    if not isinstance(beds, int) or beds < 0:
        errors["beds"] = "Give the number of beds: a whole number, 0 or more."
    if not (reason or "").strip():
        errors["reason"] = "Say why the bed count changes."
    if errors:
        raise ValidationError(errors)
    now = clock.now()
    with transaction.atomic():
        same_unit = BedCapacity.objects.select_for_update().filter(
            facility=facility, unit__iexact=unit
        )
        if same_unit.filter(effective_from=effective_from).exists():
            raise ValidationError(
                {"effective_from": "This unit already has a bed count from that date."}
            )
        previous = same_unit.filter(effective_from__lt=effective_from).order_by("-effective_from")
        following = (
            same_unit.filter(effective_from__gt=effective_from).order_by("effective_from").first()
        )
        before = previous.first()
        if before is not None and (
            before.effective_to is None or before.effective_to >= effective_from
        ):
            before.effective_to = effective_from - DAY
            before.save(update_fields=["effective_to"])
        row = BedCapacity(
            facility=facility,
            unit=unit,
            beds=beds,
            newborn=newborn,
            effective_from=effective_from,
            effective_to=following.effective_from - DAY if following else None,
            created_at=now,
            created_by=acting_user,
            change_reason=reason.strip()[:300],
        )
        row.full_clean()
        row.save()
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=Purpose.OPERATIONS,
            object_type="reports.bed_capacity",
            object_id=str(row.pk),
            reason=reason.strip()[:300],
            detail={
                "facility": str(facility.public_id),
                "unit": unit,
                "beds": beds,
                "newborn": newborn,
                "effective_from": effective_from.isoformat(),
                "previous_beds": before.beds if before else None,
            },
        )
    return row
