"""Reads of encounters. Each goes through the patient's door
(patients.access.access_patient, clinical scope), which checks the facility and any
restriction and audits the access; the encounter view itself is audited here too, so
the trail says which encounter was opened."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.http import Http404

from accounts.access import has_permission, require_permission
from accounts.models import Facility
from accounts.roles import Role
from audit.actions import record_event
from audit.models import Action, Outcome
from encounters.actions import FIELD_LABELS, VOID_STATUSES
from encounters.models import (
    AdmitSource,
    Disposition,
    Encounter,
    EncounterClass,
    EncounterStatus,
    EncounterVersion,
)
from encounters.permissions import EncountersPermission
from patients.access import Scope, access_patient, default_purpose, facility_ids
from patients.models import IdentifierKind, Patient


def _find(public_id) -> Encounter | None:
    try:
        key = uuid.UUID(str(public_id))
    except ValueError:
        return None
    return (
        Encounter.objects.select_related("patient", "facility", "attending")
        .filter(public_id=key)
        .first()
    )


def access_encounter(user, public_id, *, write: bool = False, purpose: str = "") -> Encounter:
    """The encounter, after the patient's door (clinical scope) let the user in.

    The record is the enterprise's: whoever may open the patient sees all their
    encounters, each labelled with its facility. ``write`` asks for encounters.manage
    first, and the actions then ask that the user works at the encounter's facility.
    A missing encounter and one of another facility's patient answer the same 404, so
    existence cannot be probed.
    """
    purpose = purpose or default_purpose(user)
    action = Action.UPDATE if write else Action.VIEW
    if write:
        require_permission(
            user,
            EncountersPermission.MANAGE,
            action=action,
            purpose=purpose,
            object_type="encounter",
            object_id=str(public_id)[:64],
        )
    encounter = _find(public_id)
    if encounter is None:
        record_event(
            user,
            action,
            outcome=Outcome.DENIED,
            purpose=purpose,
            object_type="encounter",
            object_id=str(public_id)[:64],
            reason="no such encounter",
        )
        raise Http404("No such encounter")
    patient = access_patient(
        user, encounter.patient.public_id, scope=Scope.CLINICAL, purpose=purpose
    )
    encounter.patient = patient
    if not write:
        record_event(
            user,
            Action.VIEW,
            purpose=purpose,
            patient_id=patient.public_id,
            object_type="encounter",
            object_id=str(encounter.public_id),
        )
    return encounter


def access_patient_for_encounters(user, public_id, *, purpose: str = "") -> Patient:
    """The patient, for registering a new encounter: encounters.manage, then the door."""
    require_permission(
        user,
        EncountersPermission.MANAGE,
        action=Action.CREATE,
        purpose=purpose or default_purpose(user),
        object_type="encounter",
        object_id="",
    )
    return access_patient(user, public_id, scope=Scope.CLINICAL, purpose=purpose)


def may_manage(user) -> bool:
    return has_permission(user, EncountersPermission.MANAGE)


def facilities_for_new_encounter(user, patient: Patient) -> list:
    """The user's facilities where the patient holds an active MRN."""
    holding = patient.identifiers.filter(
        kind=IdentifierKind.MRN, active=True, facility_id__in=facility_ids(user)
    ).values("facility_id")
    return list(Facility.objects.filter(pk__in=holding).order_by("name"))


def attending_choices(facilities) -> list:
    """Active clinicians who practise at any of ``facilities``, by name."""
    return list(
        get_user_model()
        .objects.filter(
            is_active=True,
            is_system_account=False,
            groups__name=Role.CLINICIAN.value,
            facilities__in=list(facilities),
        )
        .distinct()
        .order_by("last_name", "first_name", "username")
    )


# --- what the screens show ---------------------------------------------------------------


def encounters_for_chart(patient: Patient, *, include_void: bool = False):
    """The patient's encounters, newest first, as a queryset the chart pages through.
    Cancelled and entered-in-error encounters are left out unless asked for."""
    encounters = Encounter.objects.filter(patient=patient).select_related("facility", "attending")
    if not include_void:
        encounters = encounters.exclude(status__in=VOID_STATUSES)
    return encounters.order_by("-started_at", "-pk")


def encounter_counts(patient: Patient) -> tuple[int, int]:
    """How many of the patient's encounters stand, and how many were cancelled or
    entered in error: one query."""
    void = Q(status__in=VOID_STATUSES)
    counts = Encounter.objects.filter(patient=patient).aggregate(
        standing=Count("pk", filter=~void), void=Count("pk", filter=void)
    )
    return counts["standing"], counts["void"]


def locations_of(encounter: Encounter) -> list:
    return list(encounter.locations.order_by("started_at", "pk"))


@dataclass
class Change:
    label: str
    before: str
    after: str


@dataclass
class VersionRow:
    version: EncounterVersion
    changes: list[Change] = field(default_factory=list)


_CHOICES = {
    "encounter_class": dict(EncounterClass.choices),
    "status": dict(EncounterStatus.choices),
    "admit_source": dict(AdmitSource.choices),
    "disposition": dict(Disposition.choices),
}


def _shown(key: str, snapshot: dict[str, Any]) -> str:
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    value = snapshot.get(key)
    if key == "attending":
        return snapshot.get("attending_name") or ""
    if key in ("started_at", "ended_at"):
        moment = parse_datetime(value) if value else None
        return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""
    if key in _CHOICES:
        return str(_CHOICES[key].get(value or "", value or ""))
    return "" if value is None else str(value)


def version_history(encounter: Encounter) -> list[VersionRow]:
    """The encounter's versions, newest first, each with what it changed."""
    versions = list(encounter.versions.select_related("changed_by").order_by("number"))
    rows: list[VersionRow] = []
    previous: dict[str, Any] | None = None
    for version in versions:
        row = VersionRow(version)
        if previous is not None:
            for key, label in FIELD_LABELS.items():
                before, after = _shown(key, previous), _shown(key, version.snapshot)
                if before != after:
                    row.changes.append(Change(label, before, after))
            if previous.get("locations") != version.snapshot.get("locations"):
                row.changes.append(Change("Locations", "", "changed (see locations)"))
        rows.append(row)
        previous = version.snapshot
    rows.reverse()
    return rows


@dataclass
class EncounterPage:
    """What the encounter screen shows, read through each app's access functions."""

    encounter: Encounter
    mrn: str
    locations: list
    versions: list[VersionRow]
    document_groups: list
    clinical: list
    can_manage: bool
    coded_diagnoses: list = field(default_factory=list)

    @property
    def document_count(self) -> int:
        return sum(len(g.documents) for g in self.document_groups)

    @property
    def steps(self) -> set[str]:
        """The workflow steps this encounter's status allows."""
        from encounters.actions import TRANSITIONS

        if not self.can_manage:
            return set()
        steps = {
            step for step, (allowed, _) in TRANSITIONS.items() if self.encounter.status in allowed
        }
        return steps


def encounter_page(user, encounter: Encounter) -> EncounterPage:
    """The encounter screen's content, for an encounter access_encounter returned."""
    from clinical.access import clinical_for_encounter, coded_diagnoses_for_encounter
    from documents.access import documents_for_chart
    from patients.chart import group_documents_by_type

    patient = encounter.patient
    mrn = (
        patient.identifiers.filter(
            kind=IdentifierKind.MRN, active=True, facility=encounter.facility
        )
        .values_list("value", flat=True)
        .first()
        or ""
    )
    return EncounterPage(
        encounter=encounter,
        mrn=mrn,
        locations=locations_of(encounter),
        versions=version_history(encounter),
        document_groups=group_documents_by_type(
            documents_for_chart(user, patient, encounter=encounter)
        ),
        clinical=clinical_for_encounter(user, encounter),
        can_manage=may_manage(user),
        coded_diagnoses=coded_diagnoses_for_encounter(user, encounter),
    )
