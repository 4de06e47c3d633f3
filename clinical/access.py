"""Reads of clinical data. The chart and the encounter screen call these after the
patient's door (patients.access.access_patient, clinical scope) let the user in and
audited the view; they ask for the clinical-record permission again so that no caller
can skip the door's check by accident."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber

from accounts.access import require_permission
from audit.models import Action
from clinical.models import CODED_SOURCE, ClinicalEntry, ResourceType
from patients.models import Patient
from patients.permissions import PatientsPermission

# The order the chart shows the groups in, and their headings. Medication statements
# and orders share one group.
CHART_GROUPS: list[tuple[str, str, tuple[str, ...]]] = [
    ("allergies", "Allergies and intolerances", (ResourceType.ALLERGY,)),
    ("problems", "Problems and diagnoses", (ResourceType.CONDITION,)),
    (
        "medications",
        "Medications",
        (ResourceType.MEDICATION_STATEMENT, ResourceType.MEDICATION_REQUEST),
    ),
    ("results", "Results and vital signs", (ResourceType.OBSERVATION,)),
    ("procedures", "Procedures", (ResourceType.PROCEDURE,)),
    ("immunizations", "Immunizations", (ResourceType.IMMUNIZATION,)),
]

# How many of the newest entries of each type the chart shows; the count says how
# many there are in all.
PER_TYPE_LIMIT = 25

# Allergy statuses that no longer apply.
_INACTIVE_ALLERGY = {"inactive", "resolved"}


@dataclass
class ClinicalGroup:
    key: str
    title: str
    entries: list[ClinicalEntry] = field(default_factory=list)
    total: int = 0

    @property
    def more(self) -> int:
        return self.total - len(self.entries)


def _require_clinical(user, patient: Patient) -> None:
    require_permission(
        user,
        PatientsPermission.READ_CLINICAL,
        action=Action.VIEW,
        patient_id=patient.public_id,
        object_type="clinical_entry",
    )


def _group(entries, totals: dict[str, int]) -> list[ClinicalGroup]:
    groups = []
    for key, title, types in CHART_GROUPS:
        group = ClinicalGroup(key, title, total=sum(totals.get(t, 0) for t in types))
        group.entries = sorted(
            (e for e in entries if e.resource_type in types),
            key=lambda e: (e.effective_at is not None, e.effective_at or e.recorded_at, e.pk),
            reverse=True,
        )
        groups.append(group)
    return groups


def clinical_for_chart(
    user, patient: Patient, *, limit: int = PER_TYPE_LIMIT
) -> list[ClinicalGroup]:
    """The patient's clinical data by type, newest first, entered-in-error left out.

    One query whatever the size of the record: window functions number the entries of
    each type, newest first, and count them; only the newest ``limit`` of each type
    come back, each carrying its type's total.
    """
    _require_clinical(user, patient)
    per_type = {"partition_by": [F("resource_type")]}
    newest = (
        ClinicalEntry.objects.filter(patient=patient, entered_in_error=False)
        # The final coded diagnoses are billing codes, shown with the abstract, not the
        # clinicians' problem list.
        .exclude(source=CODED_SOURCE)
        .annotate(
            row=Window(
                RowNumber(),
                order_by=[F("effective_at").desc(nulls_last=True), F("pk").desc()],
                **per_type,
            ),
            type_total=Window(Count("pk"), **per_type),
        )
        .filter(row__lte=limit)
        .select_related("encounter")
    )
    entries = list(newest)
    totals = {entry.resource_type: entry.type_total for entry in entries}
    return _group(entries, totals)


def clinical_for_encounter(user, encounter) -> list[ClinicalGroup]:
    """The clinical data recorded during one encounter, by type (entered-in-error left out)."""
    _require_clinical(user, encounter.patient)
    entries = list(
        ClinicalEntry.objects.filter(encounter=encounter, entered_in_error=False)
        .exclude(source=CODED_SOURCE)
        .order_by("-effective_at", "-pk")
    )
    totals: dict[str, int] = {}
    for entry in entries:
        totals[entry.resource_type] = totals.get(entry.resource_type, 0) + 1
    return [group for group in _group(entries, totals) if group.total]


def allergies_of(groups: list[ClinicalGroup]) -> list[ClinicalEntry]:
    """The allergies the banner shows: those not inactive or resolved."""
    for group in groups:
        if group.key == "allergies":
            return [e for e in group.entries if e.status not in _INACTIVE_ALLERGY]
    return []


def coded_diagnoses_for_encounter(user, encounter) -> list[dict]:
    """The encounter's final coded diagnoses (the coder's, kept as Conditions when the
    abstract was finalised), for the encounter page: code, title, present on admission.
    In the order they were first coded."""
    _require_clinical(user, encounter.patient)
    rows = ClinicalEntry.objects.filter(
        encounter=encounter, source=CODED_SOURCE, entered_in_error=False
    ).order_by("pk")
    out = []
    for entry in rows:
        poa = ""
        for extension in (entry.resource or {}).get("extension") or []:
            if extension.get("url", "").endswith("/present-on-admission"):
                poa = (extension.get("valueCoding") or {}).get("code", "")
        out.append({"code": entry.code, "display": entry.display, "poa": poa})
    return out


def coded_condition_ids_of(encounter_ids) -> dict[int, dict[str, str]]:
    """``{code: public id}`` of each encounter's final coded diagnoses (the Conditions
    ``clinical.actions.project_coded_diagnoses`` keeps), for the FHIR Encounter's
    ``diagnosis`` references, in one query, keyed by encounter pk; an encounter with
    none is absent. No permission check: the caller serves the encounters through
    their own door."""
    kept: dict[int, dict[str, str]] = {}
    rows = ClinicalEntry.objects.filter(
        encounter_id__in=list(encounter_ids), source=CODED_SOURCE, entered_in_error=False
    ).values_list("encounter_id", "code", "public_id")
    for encounter_id, code, public_id in rows:
        kept.setdefault(encounter_id, {})[code] = str(public_id)
    return kept
