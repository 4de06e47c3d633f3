"""Encounters arriving through an interface (FHIR import).

An imported Encounter is a visit that happened elsewhere or was registered by another
system: it is written with the status, times and disposition the sender gives (a
finished stay arrives finished), with version rows exactly as the actions write them.
The caller (``interop.importer``) has checked the import permission, holds the unit's
transaction and audits the unit.
"""

from __future__ import annotations

import datetime as dt
import re

from encounters.actions import (
    _write_version,
    encounter_snapshot,
    next_visit_number,
    normalize_visit_number,
)
from encounters.models import (
    AdmitSource,
    Disposition,
    Encounter,
    EncounterClass,
    EncounterLocation,
    EncounterStatus,
    EncounterVersion,
)

_VISIT_NUMBER = re.compile(r"^[A-Z0-9][A-Z0-9\-]{0,31}$")

_CLASSES = {
    "IMP": EncounterClass.INPATIENT,
    "ACUTE": EncounterClass.INPATIENT,
    "NONAC": EncounterClass.INPATIENT,
    "OBSENC": EncounterClass.OBSERVATION,
    "EMER": EncounterClass.EMERGENCY,
}
_STATUSES = {
    "planned": EncounterStatus.PLANNED,
    "arrived": EncounterStatus.IN_PROGRESS,
    "triaged": EncounterStatus.IN_PROGRESS,
    "in-progress": EncounterStatus.IN_PROGRESS,
    "onleave": EncounterStatus.IN_PROGRESS,
    "finished": EncounterStatus.FINISHED,
    "cancelled": EncounterStatus.CANCELLED,
    "entered-in-error": EncounterStatus.ENTERED_IN_ERROR,
}
# http://terminology.hl7.org/CodeSystem/admit-source → UB-04 point of origin.
_ADMIT_SOURCES = {
    "hosp-trans": AdmitSource.TRANSFER_HOSPITAL,
    "emd": AdmitSource.EMERGENCY,
    "outp": AdmitSource.CLINIC,
    "gp": AdmitSource.CLINIC,
    "mp": AdmitSource.CLINIC,
    "born": AdmitSource.NEWBORN,
    "nursing": AdmitSource.TRANSFER_SNF,
    "psych": AdmitSource.TRANSFER_OTHER,
    "rehab": AdmitSource.TRANSFER_OTHER,
    "law": AdmitSource.COURT,
}
# http://terminology.hl7.org/CodeSystem/discharge-disposition → UB-04 discharge status.
_DISPOSITIONS = {
    "home": Disposition.HOME,
    "alt-home": Disposition.HOME,
    "other-hcf": Disposition.HOME_HEALTH,
    "hosp": Disposition.SHORT_TERM_HOSPITAL,
    "snf": Disposition.SNF,
    "long": Disposition.SNF,
    "aadvice": Disposition.AMA,
    "exp": Disposition.EXPIRED,
    "psy": Disposition.PSYCH,
    "rehab": Disposition.REHAB,
}


class EncounterMappingError(ValueError):
    def __init__(self, element: str, message: str) -> None:
        super().__init__(message)
        self.element = element
        self.message = message


def parse_moment(value) -> dt.datetime | None:
    """A FHIR dateTime/instant as an aware datetime (a date alone is midnight UTC)."""
    if not value or not isinstance(value, str):
        return None
    try:
        if len(value) == 4:
            return dt.datetime(int(value), 1, 1, tzinfo=dt.UTC)
        if len(value) == 7:
            return dt.datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=dt.UTC)
        if len(value) == 10:
            return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _codes(concept) -> list[str]:
    if not isinstance(concept, dict):
        return []
    return [str(c.get("code", "")) for c in concept.get("coding") or [] if isinstance(c, dict)]


def _concept_text(concept) -> str:
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding.get("code"))
    return ""


def encounter_values(resource: dict) -> dict:
    """The columns of :class:`Encounter` the sender's Encounter gives. Raises
    :class:`EncounterMappingError` when RecordRoom cannot place the visit in time."""
    period = resource.get("period") or {}
    started_at = parse_moment(period.get("start"))
    if started_at is None:
        raise EncounterMappingError(
            "Encounter.period.start", "RecordRoom needs when the encounter started."
        )
    ended_at = parse_moment(period.get("end"))
    klass = resource.get("class") or {}
    encounter_class = _CLASSES.get(str(klass.get("code", "")), EncounterClass.OUTPATIENT)
    status = _STATUSES.get(resource.get("status", ""))
    if status is None:
        status = EncounterStatus.FINISHED if ended_at else EncounterStatus.IN_PROGRESS
    if ended_at and ended_at < started_at:
        raise EncounterMappingError("Encounter.period.end", "The encounter ends before it starts.")
    hospitalization = resource.get("hospitalization") or {}
    admit_source = next(
        (
            _ADMIT_SOURCES.get(code) or (code if code in AdmitSource.values else "")
            for code in _codes(hospitalization.get("admitSource"))
        ),
        "",
    )
    disposition = next(
        (
            _DISPOSITIONS.get(code) or (code if code in Disposition.values else "")
            for code in _codes(hospitalization.get("dischargeDisposition"))
        ),
        "",
    )
    service = _concept_text(resource.get("serviceType"))
    if not service:
        types = resource.get("type") or []
        service = _concept_text(types[0]) if types else ""
    reasons = resource.get("reasonCode") or []
    reason = _concept_text(reasons[0]) if reasons else ""
    visit_number = ""
    for identifier in resource.get("identifier") or []:
        candidate = normalize_visit_number(identifier.get("value"))
        if _VISIT_NUMBER.match(candidate):
            visit_number = candidate
            break
    return {
        "visit_number": visit_number,
        "encounter_class": encounter_class,
        "status": status,
        "service": service.strip()[:60],
        "admit_source": admit_source or "",
        "started_at": started_at,
        "ended_at": ended_at if status != EncounterStatus.IN_PROGRESS else None,
        "disposition": disposition or "",
        "reason": reason.strip()[:200],
    }


def _visit_number(values: dict, facility, exclude_pk=None) -> str:
    wanted = values["visit_number"]
    if wanted:
        taken = Encounter.objects.filter(facility=facility, visit_number=wanted)
        if exclude_pk is not None:
            taken = taken.exclude(pk=exclude_pk)
        if not taken.exists():
            return wanted
    return next_visit_number(facility)


def create_imported_encounter(
    patient, *, facility, values: dict, public_id, acting_user, now, reason: str
) -> Encounter:
    data = dict(values)
    data["visit_number"] = _visit_number(values, facility)
    encounter = Encounter.objects.create(
        public_id=public_id,
        patient=patient,
        facility=facility,
        created_at=now,
        updated_at=now,
        version=1,
        **data,
    )
    _write_version(encounter, acting_user=acting_user, reason=reason, now=now)
    return encounter


def visit_numbers_taken(facility, wanted: set[str]) -> set[str]:
    """Which of these visit numbers are already used at the facility (one query per 500)."""
    wanted_list = sorted(n for n in wanted if n)
    taken: set[str] = set()
    for start in range(0, len(wanted_list), 500):
        taken.update(
            Encounter.objects.filter(
                facility=facility, visit_number__in=wanted_list[start : start + 500]
            ).values_list("visit_number", flat=True)
        )
    return taken


def new_imported_encounter(patient, *, facility, values: dict, public_id, now) -> Encounter:
    """An unsaved encounter (version 1) with the visit number the sender gives, which the
    caller has found free: :func:`save_imported_encounters` writes a batch of them as
    :func:`create_imported_encounter` writes one."""
    return Encounter(
        public_id=public_id,
        patient=patient,
        facility=facility,
        created_at=now,
        updated_at=now,
        version=1,
        **values,
    )


def save_imported_encounters(
    encounters: list[tuple[Encounter, str]], *, acting_user, now, insert
) -> None:
    """Insert new encounters (from :func:`new_imported_encounter`, each with the reason
    of its version) and their version 1 rows. ``insert(model, objects)`` inserts model
    instances and sets their primary keys (the import's fast insert)."""
    if not encounters:
        return
    insert(Encounter, [encounter for encounter, _ in encounters])
    insert(
        EncounterVersion,
        [
            EncounterVersion(
                encounter=encounter,
                number=1,
                snapshot=encounter_snapshot(encounter, new=True),
                changed_by=acting_user,
                changed_at=now,
                reason=reason[:300],
            )
            for encounter, reason in encounters
        ],
    )


_COMPARED = (
    "encounter_class",
    "status",
    "service",
    "admit_source",
    "started_at",
    "ended_at",
    "disposition",
    "reason",
)


def update_imported_encounter(
    encounter: Encounter, *, values: dict, acting_user, now, reason: str
) -> list[str]:
    """A new version when what the sender says differs from what is recorded. The visit
    number stays (it is RecordRoom's account number once assigned)."""
    locked = Encounter.objects.select_for_update(of=("self",)).get(pk=encounter.pk)
    changed = [key for key in _COMPARED if getattr(locked, key) != values[key]]
    if not changed:
        return []
    for key in changed:
        setattr(locked, key, values[key])
    if "ended_at" in changed and locked.ended_at:
        EncounterLocation.objects.filter(encounter=locked, ended_at__isnull=True).update(
            ended_at=locked.ended_at
        )
    locked.version += 1
    locked.updated_at = now
    locked.save()
    _write_version(locked, acting_user=acting_user, reason=reason, now=now)
    return changed
