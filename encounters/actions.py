"""Every change to an encounter: registration, check-in of a planned visit, transfer,
discharge (and its cancellation), correction and cancellation.

Each writes a new :class:`EncounterVersion` — a snapshot of the whole encounter with
its locations, who, when and why — and its audit event in one transaction. Nothing is
overwritten without a version holding what it was; a cancelled or entered-in-error
encounter is kept, only hidden from ordinary lists. The permission check comes first,
outside the transaction, so a refusal's audit row is never rolled back
(see accounts.access).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.access import AccessDenied, require_permission
from accounts.roles import Role, role_codes
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from encounters.models import (
    AdmitSource,
    Disposition,
    Encounter,
    EncounterClass,
    EncounterLocation,
    EncounterStatus,
    EncounterVersion,
    VisitNumberCounter,
)
from encounters.permissions import EncountersPermission
from encounters.signals import encounter_changed
from patients.access import facility_ids
from patients.models import IdentifierKind, Patient
from recordroom import clock

S = EncounterStatus

# Statuses an encounter leaves only by a correction of the record, never by workflow.
VOID_STATUSES = {S.CANCELLED, S.ENTERED_IN_ERROR}

# Which status each workflow step starts from, and where it goes.
TRANSITIONS: dict[str, tuple[set[str], str | None]] = {
    "start": ({S.PLANNED}, S.IN_PROGRESS),
    "transfer": ({S.IN_PROGRESS}, None),
    "discharge": ({S.IN_PROGRESS}, S.FINISHED),
    "cancel_discharge": ({S.FINISHED}, S.IN_PROGRESS),
    "cancel": ({S.PLANNED, S.IN_PROGRESS}, S.CANCELLED),
    "enter_in_error": ({S.PLANNED, S.IN_PROGRESS, S.FINISHED}, S.ENTERED_IN_ERROR),
    "correct": ({S.PLANNED, S.IN_PROGRESS, S.FINISHED}, None),
}

_STEP_REFUSALS = {
    "start": "Only a planned encounter can be checked in; this one is {status}.",
    "transfer": "Only a patient still in the facility can be transferred; this encounter is {status}.",
    "discharge": "Only an encounter in progress can be discharged; this one is {status}.",
    "cancel_discharge": "Only a discharged encounter can have its discharge cancelled; this one is {status}.",
    "cancel": (
        "Only a planned encounter or one in progress can be cancelled; this one is {status}. "
        "An encounter registered by mistake is marked entered in error instead."
    ),
    "enter_in_error": "This encounter is already {status}.",
    "correct": "A {status} encounter is kept as it was and cannot be corrected.",
}

# Fields a correction may change. Status changes only through the workflow steps;
# a wrong patient or facility is fixed by marking the encounter entered in error and
# registering it again where it belongs.
CORRECTABLE_FIELDS = (
    "visit_number",
    "encounter_class",
    "service",
    "admit_source",
    "started_at",
    "ended_at",
    "disposition",
    "attending",
    "unit",
    "bed",
    "reason",
)

FIELD_LABELS = {
    "visit_number": "Visit number",
    "encounter_class": "Class",
    "status": "Status",
    "service": "Service",
    "admit_source": "Admit source",
    "started_at": "Admitted / arrived",
    "ended_at": "Discharged / left",
    "disposition": "Disposition",
    "attending": "Attending",
    "unit": "Unit",
    "bed": "Bed",
    "reason": "Reason for visit",
}

_VISIT_NUMBER = re.compile(r"^[A-Z0-9][A-Z0-9\-]{0,31}$")
_PLACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .\-/]*$")
_MARKUP = re.compile(r"[<>]")


def local_text(moment: dt.datetime | None) -> str:
    """A date-time as the department reads it, for error messages."""
    if moment is None:
        return ""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


# --- snapshots and versions -------------------------------------------------------------


def encounter_snapshot(encounter: Encounter, *, new: bool = False) -> dict[str, Any]:
    """The encounter as a version stores it, its locations included (``new``: an
    encounter being created, which has no location yet nor a key to look them up)."""
    attending = encounter.attending
    return {
        "visit_number": encounter.visit_number,
        "facility": encounter.facility.code,
        "encounter_class": encounter.encounter_class,
        "status": encounter.status,
        "service": encounter.service,
        "admit_source": encounter.admit_source,
        "started_at": encounter.started_at.isoformat(),
        "ended_at": encounter.ended_at.isoformat() if encounter.ended_at else None,
        "disposition": encounter.disposition,
        "attending": str(attending.public_id) if attending else None,
        "attending_name": attending.display_name if attending else "",
        "unit": encounter.unit,
        "bed": encounter.bed,
        "reason": encounter.reason,
        "locations": [
            {
                "unit": location.unit,
                "bed": location.bed,
                "started_at": location.started_at.isoformat(),
                "ended_at": location.ended_at.isoformat() if location.ended_at else None,
            }
            for location in ([] if new else encounter.locations.order_by("started_at", "pk"))
        ],
    }


def _write_version(encounter: Encounter, *, acting_user, reason: str, now) -> EncounterVersion:
    return EncounterVersion.objects.create(
        encounter=encounter,
        number=encounter.version,
        snapshot=encounter_snapshot(encounter),
        changed_by=acting_user,
        changed_at=now,
        reason=reason[:300],
    )


def _audit(encounter: Encounter, event: str, *, acting_user, reason: str = "", **detail) -> None:
    # Codes and ids only: the visit number is an account identifier and stays out.
    record_event(
        acting_user,
        Action.CREATE if event == "register" else Action.UPDATE,
        purpose=Purpose.OPERATIONS,
        patient_id=encounter.patient.public_id,
        object_type="encounter",
        object_id=str(encounter.public_id),
        reason=reason,
        detail={
            "event": event,
            "class": encounter.encounter_class,
            "status": encounter.status,
            "facility": encounter.facility.code,
            "version": encounter.version,
            **detail,
        },
    )


def _changed(encounter: Encounter, change: str) -> None:
    """Tell listeners (chart completion) inside the action's transaction."""
    encounter_changed.send(sender=Encounter, encounter=encounter, change=change)


def _require_manage(acting_user, encounter_or_patient, action=Action.UPDATE) -> None:
    """encounters.manage, and for an existing encounter, work at its facility."""
    encounter = encounter_or_patient if isinstance(encounter_or_patient, Encounter) else None
    patient = encounter.patient if encounter else encounter_or_patient
    object_id = str(encounter.public_id) if encounter else ""
    require_permission(
        acting_user,
        EncountersPermission.MANAGE,
        action=action,
        purpose=Purpose.OPERATIONS,
        patient_id=patient.public_id,
        object_type="encounter",
        object_id=object_id,
    )
    if encounter is not None and encounter.facility_id not in facility_ids(acting_user):
        record_event(
            acting_user,
            action,
            outcome=Outcome.DENIED,
            purpose=Purpose.OPERATIONS,
            patient_id=patient.public_id,
            object_type="encounter",
            object_id=object_id,
            reason="encounter of a facility the user does not work at",
        )
        raise AccessDenied("encounter of another facility")


def _lock(encounter: Encounter, step: str) -> Encounter:
    locked = (
        Encounter.objects.select_for_update(of=("self",))
        .select_related("patient", "facility", "attending")
        .get(pk=encounter.pk)
    )
    allowed, _ = TRANSITIONS[step]
    if locked.status not in allowed:
        raise ValidationError(
            {"status": _STEP_REFUSALS[step].format(status=locked.get_status_display().lower())}
        )
    return locked


def _refresh(target: Encounter, source: Encounter) -> None:
    """Bring the caller's instance up to date with what was written."""
    for field in Encounter._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    for cache in ("attending",):
        if cache in source._state.fields_cache:
            target._state.fields_cache[cache] = source._state.fields_cache[cache]
        else:
            target._state.fields_cache.pop(cache, None)


def _current_location(encounter: Encounter) -> EncounterLocation | None:
    return encounter.locations.order_by("-started_at", "-pk").first()


# --- validation ---------------------------------------------------------------------------


def _add(errors: dict[str, list[str]], key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


def check_attending(user, facility) -> str:
    """Why ``user`` cannot attend at ``facility``, or "" when they can."""
    if user is None:
        return ""
    if not user.is_active or user.is_system_account:
        return "The attending must be an active clinician's account."
    if Role.CLINICIAN.value not in role_codes(user):
        return "The attending must have the clinician role."
    if not user.facilities.filter(pk=facility.pk).exists():
        return "The attending does not practise at this facility."
    return ""


def _check_place(errors, values: dict, *, required: bool) -> None:
    unit, bed = values.get("unit", ""), values.get("bed", "")
    if unit:
        if len(unit) > 40 or not _PLACE.match(unit):
            _add(errors, "unit", "A unit is at most 40 letters, digits, spaces, . - or /.")
    elif required:
        _add(errors, "unit", "Give the unit the patient is in.")
    if bed:
        if len(bed) > 20 or not _PLACE.match(bed):
            _add(errors, "bed", "A bed is at most 20 letters, digits, spaces, . - or /.")
        if not unit:
            _add(errors, "bed", "Give the unit of this bed as well.")


def _validate(
    values: dict, *, patient: Patient, facility, now, existing: Encounter | None = None
) -> None:
    """Raise ValidationError (keyed by field) for anything impossible in ``values``: the
    whole state an encounter would have after a registration, a workflow step or a
    correction (``existing`` is the encounter as it stands)."""
    errors: dict[str, list[str]] = {}
    status = values["status"]
    started_at, ended_at = values.get("started_at"), values.get("ended_at")

    if values["encounter_class"] not in EncounterClass.values:
        _add(errors, "encounter_class", "Choose inpatient, observation, emergency or outpatient.")
    if values.get("admit_source", "") not in AdmitSource.values:
        _add(errors, "admit_source", "Unknown admit source.")
    if values.get("disposition", "") not in Disposition.values:
        _add(errors, "disposition", "Unknown discharge disposition.")
    for key, limit in (("service", 60), ("reason", 200)):
        text = values.get(key, "")
        if len(text) > limit:
            _add(errors, key, f"At most {limit} characters.")
        elif _MARKUP.search(text):
            _add(errors, key, "No markup (< or >) here.")

    if not isinstance(started_at, dt.datetime) or timezone.is_naive(started_at):
        _add(errors, "started_at", "Give the admission or arrival date and time.")
        started_at = None
    if ended_at is not None and (
        not isinstance(ended_at, dt.datetime) or timezone.is_naive(ended_at)
    ):
        _add(errors, "ended_at", "Give the discharge date and time with its time zone.")
        ended_at = None

    if started_at is not None:
        local_start = timezone.localtime(started_at).date()
        if local_start < patient.birth_date:
            _add(
                errors,
                "started_at",
                f"The admission ({local_text(started_at)}) is before the patient's date of birth.",
            )
        if patient.deceased_at and started_at > patient.deceased_at:
            _add(
                errors,
                "started_at",
                f"The admission ({local_text(started_at)}) is after the patient's recorded death.",
            )
        if status != S.PLANNED and started_at > now:
            _add(
                errors,
                "started_at",
                f"The admission time ({local_text(started_at)}) is in the future; "
                "register a planned encounter for a visit still to come.",
            )
    if status == S.FINISHED:
        if ended_at is None and "ended_at" not in errors:
            _add(errors, "ended_at", "Give the discharge date and time.")
        if values["encounter_class"] == EncounterClass.INPATIENT and not values.get("disposition"):
            _add(errors, "disposition", "Give the discharge disposition of an inpatient.")
    else:
        if ended_at is not None:
            _add(errors, "ended_at", "Only a discharged encounter has a discharge time.")
        if values.get("disposition"):
            _add(errors, "disposition", "Only a discharged encounter has a disposition.")
    if started_at is not None and ended_at is not None:
        if ended_at <= started_at:
            _add(
                errors,
                "ended_at",
                f"The discharge ({local_text(ended_at)}) is not after the admission "
                f"({local_text(started_at)}).",
            )
        if ended_at > now:
            _add(
                errors, "ended_at", f"The discharge time ({local_text(ended_at)}) is in the future."
            )

    attending = values.get("attending")
    unchanged = (
        existing is not None and attending is not None and attending.pk == existing.attending_id
    )
    # An attending who has since left does not block discharging their patient.
    problem = "" if unchanged else check_attending(attending, facility)
    if problem:
        _add(errors, "attending", problem)
    elif attending is None and values["encounter_class"] == EncounterClass.INPATIENT:
        _add(errors, "attending", "An inpatient admission needs an attending physician.")

    _check_place(errors, values, required=False)

    visit_number = values.get("visit_number", "")
    if visit_number:
        if not _VISIT_NUMBER.match(visit_number):
            _add(
                errors,
                "visit_number",
                "A visit number is 1 to 32 letters, digits and hyphens, starting with a letter or digit.",
            )
        elif (
            Encounter.objects.filter(facility=facility, visit_number=visit_number)
            .exclude(pk=existing.pk if existing else None)
            .exists()
        ):
            _add(
                errors,
                "visit_number",
                f"Visit number {visit_number} is already used at {facility.name}; "
                "each visit has its own number.",
            )
    if errors:
        raise ValidationError(errors)


def _clean_text(value) -> str:
    return (value or "").strip()


def normalize_visit_number(value) -> str:
    return _clean_text(value).upper()


def _duplicate_visit_number(visit_number: str, facility) -> ValidationError:
    return ValidationError(
        {
            "visit_number": [
                f"Visit number {visit_number} is already used at {facility.name}; "
                "each visit has its own number."
            ]
        }
    )


# --- visit numbers --------------------------------------------------------------------------


def format_visit_number(number: int) -> str:
    return f"V{number:09d}"


def next_visit_number(facility) -> str:
    """Take the facility's next free visit number. Call inside a transaction: the
    counter row is locked. Numbers an interface already used are skipped."""
    VisitNumberCounter.objects.get_or_create(facility=facility)
    counter = VisitNumberCounter.objects.select_for_update(of=("self",)).get(pk=facility.pk)
    number = counter.next_number
    candidate = format_visit_number(number)
    while Encounter.objects.filter(facility=facility, visit_number=candidate).exists():
        number += 1
        candidate = format_visit_number(number)
    VisitNumberCounter.objects.filter(pk=facility.pk).update(next_number=number + 1)
    return candidate


# --- the actions --------------------------------------------------------------------------


def do_register_encounter(
    patient: Patient,
    *,
    facility,
    encounter_class: str,
    started_at: dt.datetime,
    acting_user,
    status: str = S.IN_PROGRESS,
    visit_number: str = "",
    service: str = "",
    admit_source: str = "",
    attending=None,
    unit: str = "",
    bed: str = "",
    reason: str = "",
    version_reason: str = "registered",
) -> Encounter:
    """Register a visit or admit a patient at ``facility``.

    The visit number is the facility's next one unless given (an interface sends its
    own); it is unique per facility. A unit (and bed) places the patient: the first
    :class:`EncounterLocation`. Version 1 is written with the encounter.
    """
    _require_manage(acting_user, patient, Action.CREATE)
    if status not in (S.PLANNED, S.IN_PROGRESS):
        raise ValidationError(
            {"status": "A new encounter is planned or in progress; discharge it afterwards."}
        )
    if (
        facility is None
        or not patient.identifiers.filter(
            kind=IdentifierKind.MRN, facility=facility, active=True
        ).exists()
    ):
        raise ValidationError(
            {
                "facility": "The patient has no medical record number at this facility; "
                "register them there first."
            }
        )
    if facility.pk not in facility_ids(acting_user):
        raise ValidationError({"facility": "You do not work at this facility."})
    if patient.merged_into_id:
        raise ValidationError(
            {"patient": "This record was merged into another; register the encounter there."}
        )
    values = {
        "visit_number": normalize_visit_number(visit_number),
        "encounter_class": encounter_class,
        "status": status,
        "service": _clean_text(service),
        "admit_source": admit_source or "",
        "started_at": started_at,
        "ended_at": None,
        "disposition": "",
        "attending": attending,
        "unit": _clean_text(unit),
        "bed": _clean_text(bed),
        "reason": _clean_text(reason),
    }
    now = clock.now()
    _validate(values, patient=patient, facility=facility, now=now)
    try:
        with transaction.atomic():
            if not values["visit_number"]:
                values["visit_number"] = next_visit_number(facility)
            encounter = Encounter.objects.create(
                patient=patient,
                facility=facility,
                created_at=now,
                updated_at=now,
                version=1,
                **values,
            )
            if encounter.unit and status == S.IN_PROGRESS:
                # A planned admission's unit is where the bed is booked; the patient is
                # placed there when checked in.
                EncounterLocation.objects.create(
                    encounter=encounter,
                    unit=encounter.unit,
                    bed=encounter.bed,
                    started_at=encounter.started_at,
                )
            _write_version(encounter, acting_user=acting_user, reason=version_reason, now=now)
            _audit(encounter, "register", acting_user=acting_user)
            _changed(encounter, "registered")
    except IntegrityError:
        # Another registration took the same number between the check and the insert.
        raise _duplicate_visit_number(values["visit_number"], facility) from None
    return encounter


def do_start_encounter(
    encounter: Encounter,
    *,
    started_at: dt.datetime,
    acting_user,
    unit: str = "",
    bed: str = "",
) -> Encounter:
    """A planned encounter begins: the patient arrived or was admitted."""
    _require_manage(acting_user, encounter)
    with transaction.atomic():
        now = clock.now()
        locked = _lock(encounter, "start")
        values = _values_of(locked)
        values.update(
            status=S.IN_PROGRESS,
            started_at=started_at,
            unit=_clean_text(unit) or locked.unit,
            # A bed given alone is in the booked unit; nothing given keeps the booking.
            bed=_clean_text(bed) if (_clean_text(unit) or _clean_text(bed)) else locked.bed,
        )
        _validate(
            values, patient=locked.patient, facility=locked.facility, now=now, existing=locked
        )
        locked.status, locked.started_at = S.IN_PROGRESS, started_at
        locked.unit, locked.bed = values["unit"], values["bed"]
        locked.version += 1
        locked.updated_at = now
        locked.save()
        if locked.unit:
            EncounterLocation.objects.create(
                encounter=locked, unit=locked.unit, bed=locked.bed, started_at=started_at
            )
        _write_version(locked, acting_user=acting_user, reason="checked in / admitted", now=now)
        _audit(locked, "start", acting_user=acting_user)
        _changed(locked, "started")
    _refresh(encounter, locked)
    return encounter


def do_transfer(
    encounter: Encounter,
    *,
    unit: str,
    at: dt.datetime,
    acting_user,
    bed: str = "",
    reason: str = "transfer",
) -> EncounterLocation:
    """Move the patient to another unit or bed: the current location closes at ``at``
    and the new one opens. ``at`` comes after the previous move and is not in the future."""
    _require_manage(acting_user, encounter)
    unit, bed = _clean_text(unit), _clean_text(bed)
    errors: dict[str, list[str]] = {}
    _check_place(errors, {"unit": unit, "bed": bed}, required=True)
    if not isinstance(at, dt.datetime) or timezone.is_naive(at):
        _add(errors, "at", "Give the date and time of the transfer.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        now = clock.now()
        locked = _lock(encounter, "transfer")
        current = _current_location(locked)
        if at <= locked.started_at:
            _add(
                errors,
                "at",
                f"The transfer ({local_text(at)}) is not after the admission "
                f"({local_text(locked.started_at)}).",
            )
        elif current is not None and at <= current.started_at:
            _add(
                errors,
                "at",
                f"The transfer ({local_text(at)}) is not after the previous move "
                f"({local_text(current.started_at)}).",
            )
        if at > now:
            _add(errors, "at", f"The transfer time ({local_text(at)}) is in the future.")
        if current is not None and (current.unit, current.bed) == (unit, bed):
            _add(errors, "unit", "The patient is already in this unit and bed.")
        if errors:
            raise ValidationError(errors)
        if current is not None:
            EncounterLocation.objects.filter(pk=current.pk).update(ended_at=at)
        location = EncounterLocation.objects.create(
            encounter=locked, unit=unit, bed=bed, started_at=at
        )
        locked.unit, locked.bed = unit, bed
        locked.version += 1
        locked.updated_at = now
        locked.save(update_fields=["unit", "bed", "version", "updated_at"])
        _write_version(
            locked, acting_user=acting_user, reason=_clean_text(reason) or "transfer", now=now
        )
        _audit(locked, "transfer", acting_user=acting_user)
        _changed(locked, "transferred")
    _refresh(encounter, locked)
    return location


def do_discharge(
    encounter: Encounter,
    *,
    ended_at: dt.datetime,
    acting_user,
    disposition: str = "",
) -> Encounter:
    """Discharge (or end the visit): after the admission and the last transfer, not in
    the future; an inpatient needs a disposition. The open location closes."""
    _require_manage(acting_user, encounter)
    with transaction.atomic():
        now = clock.now()
        locked = _lock(encounter, "discharge")
        values = _values_of(locked)
        values.update(status=S.FINISHED, ended_at=ended_at, disposition=disposition or "")
        _validate(
            values, patient=locked.patient, facility=locked.facility, now=now, existing=locked
        )
        current = _current_location(locked)
        if current is not None and ended_at < current.started_at:
            raise ValidationError(
                {
                    "ended_at": f"The discharge ({local_text(ended_at)}) is before the last "
                    f"transfer ({local_text(current.started_at)})."
                }
            )
        if current is not None:
            EncounterLocation.objects.filter(pk=current.pk).update(ended_at=ended_at)
        locked.status, locked.ended_at, locked.disposition = (
            S.FINISHED,
            ended_at,
            values["disposition"],
        )
        locked.version += 1
        locked.updated_at = now
        locked.save(update_fields=["status", "ended_at", "disposition", "version", "updated_at"])
        _write_version(locked, acting_user=acting_user, reason="discharged", now=now)
        _audit(locked, "discharge", acting_user=acting_user, disposition=locked.disposition)
        _changed(locked, "discharged")
    _refresh(encounter, locked)
    return encounter


def do_cancel_discharge(encounter: Encounter, *, reason: str, acting_user) -> Encounter:
    """The discharge did not happen (HL7 A13): the encounter is in progress again and the
    last location reopens. The discharge stays readable in the version history."""
    _require_manage(acting_user, encounter)
    reason = _clean_text(reason)
    if len(reason) < 5:
        raise ValidationError(
            {"reason": "Say why the discharge is cancelled (at least 5 characters)."}
        )
    with transaction.atomic():
        now = clock.now()
        locked = _lock(encounter, "cancel_discharge")
        current = _current_location(locked)
        if current is not None:
            EncounterLocation.objects.filter(pk=current.pk).update(ended_at=None)
        locked.status, locked.ended_at, locked.disposition = S.IN_PROGRESS, None, ""
        locked.version += 1
        locked.updated_at = now
        locked.save(update_fields=["status", "ended_at", "disposition", "version", "updated_at"])
        _write_version(
            locked, acting_user=acting_user, reason=f"discharge cancelled: {reason}", now=now
        )
        _audit(locked, "cancel_discharge", acting_user=acting_user, reason=reason)
        _changed(locked, "discharge_cancelled")
    _refresh(encounter, locked)
    return encounter


def _values_of(encounter: Encounter) -> dict[str, Any]:
    return {
        "visit_number": encounter.visit_number,
        "encounter_class": encounter.encounter_class,
        "status": encounter.status,
        "service": encounter.service,
        "admit_source": encounter.admit_source,
        "started_at": encounter.started_at,
        "ended_at": encounter.ended_at,
        "disposition": encounter.disposition,
        "attending": encounter.attending,
        "unit": encounter.unit,
        "bed": encounter.bed,
        "reason": encounter.reason,
    }


def _normalize_change(key: str, value):
    if key == "visit_number":
        return normalize_visit_number(value)
    if key in ("service", "unit", "bed", "reason"):
        return _clean_text(value)
    if key in ("admit_source", "disposition"):
        return value or ""
    return value


def do_correct_encounter(
    encounter: Encounter, *, changes: dict[str, Any], reason: str, acting_user
) -> Encounter:
    """Correct what was recorded wrongly, with a reason: a new version with the
    encounter as corrected; the previous versions stay readable.

    ``changes`` maps field names (CORRECTABLE_FIELDS) to their right values. A changed
    admission or discharge time moves the first or last location with it; a changed
    unit or bed corrects the current location (a move is a transfer, not a correction).
    """
    _require_manage(acting_user, encounter)
    unknown = sorted(set(changes) - set(CORRECTABLE_FIELDS))
    if unknown:
        raise ValidationError(
            {"__all__": [f"These cannot be corrected here: {', '.join(unknown)}."]}
        )
    reason = _clean_text(reason)
    if len(reason) < 5:
        raise ValidationError({"reason": "Say what was wrong (at least 5 characters)."})
    with transaction.atomic():
        now = clock.now()
        locked = _lock(encounter, "correct")
        before = _values_of(locked)
        after = dict(before)
        after.update({key: _normalize_change(key, value) for key, value in changes.items()})
        changed = sorted(key for key in CORRECTABLE_FIELDS if after[key] != before[key])
        if not changed:
            raise ValidationError(
                {"__all__": ["Nothing to correct: these are the values already recorded."]}
            )
        _validate(after, patient=locked.patient, facility=locked.facility, now=now, existing=locked)
        _correct_locations(locked, before, after)
        for key in changed:
            setattr(locked, key, after[key])
        locked.version += 1
        locked.updated_at = now
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError:
            raise _duplicate_visit_number(after["visit_number"], locked.facility) from None
        _write_version(locked, acting_user=acting_user, reason=f"corrected: {reason}", now=now)
        _audit(locked, "correct", acting_user=acting_user, reason=reason, fields=changed)
        _changed(locked, "corrected")
    _refresh(encounter, locked)
    return encounter


def _correct_locations(locked: Encounter, before: dict, after: dict) -> None:
    """Keep the location rows consistent with a corrected encounter (the version written
    next holds them as corrected; the previous version holds them as they were)."""
    locations = list(locked.locations.order_by("started_at", "pk"))
    errors: dict[str, list[str]] = {}
    if not locations:
        if after["unit"] and locked.status != S.PLANNED:
            EncounterLocation.objects.create(
                encounter=locked,
                unit=after["unit"],
                bed=after["bed"],
                started_at=after["started_at"],
                ended_at=after["ended_at"],
            )
        return
    first, last = locations[0], locations[-1]
    if after["started_at"] != before["started_at"]:
        if first.started_at == before["started_at"]:
            # The admitting location moves with the admission, up to the next transfer.
            if len(locations) > 1 and after["started_at"] >= locations[1].started_at:
                _add(
                    errors,
                    "started_at",
                    "The admission would come after the transfer of "
                    f"{local_text(locations[1].started_at)}.",
                )
            else:
                first.started_at = after["started_at"]
        elif after["started_at"] > first.started_at:
            _add(
                errors,
                "started_at",
                f"The admission would come after the placement of {local_text(first.started_at)}.",
            )
    if after["ended_at"] != before["ended_at"] and after["ended_at"] is not None:
        if after["ended_at"] < last.started_at:
            _add(
                errors,
                "ended_at",
                f"The discharge ({local_text(after['ended_at'])}) would come before the "
                f"last transfer ({local_text(last.started_at)}).",
            )
        elif last.ended_at == before["ended_at"]:
            last.ended_at = after["ended_at"]
    if not after["unit"]:
        _add(
            errors,
            "unit",
            "The patient was placed in a unit; correct the unit instead of removing it.",
        )
    if errors:
        raise ValidationError(errors)
    last.unit, last.bed = after["unit"], after["bed"]
    for location in {first.pk: first, last.pk: last}.values():
        EncounterLocation.objects.filter(pk=location.pk).update(
            unit=location.unit,
            bed=location.bed,
            started_at=location.started_at,
            ended_at=location.ended_at,
        )


def do_cancel_encounter(
    encounter: Encounter,
    *,
    reason: str,
    acting_user,
    status: str = S.CANCELLED,
) -> Encounter:
    """Cancel an encounter that did not take place (HL7 A11), or mark one registered by
    mistake entered in error. It is kept, with its versions, and hidden from ordinary
    lists."""
    _require_manage(acting_user, encounter)
    if status not in VOID_STATUSES:
        raise ValidationError({"status": "Choose cancelled or entered in error."})
    reason = _clean_text(reason)
    if len(reason) < 5:
        raise ValidationError({"reason": "Say why (at least 5 characters)."})
    step = "cancel" if status == S.CANCELLED else "enter_in_error"
    with transaction.atomic():
        now = clock.now()
        locked = _lock(encounter, step)
        old = locked.status
        locked.status = status
        locked.version += 1
        locked.updated_at = now
        locked.save(update_fields=["status", "version", "updated_at"])
        label = "cancelled" if status == S.CANCELLED else "entered in error"
        _write_version(locked, acting_user=acting_user, reason=f"{label}: {reason}", now=now)
        _audit(locked, step, acting_user=acting_user, reason=reason, previous_status=old)
        _changed(locked, "cancelled" if status == S.CANCELLED else "entered_in_error")
    _refresh(encounter, locked)
    return encounter
