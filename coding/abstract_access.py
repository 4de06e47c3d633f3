"""Reads of an encounter's abstract (the door the abstract screen goes through).

Who: ``coding.code`` (coders) or ``coding.review`` (second-level reviewers), for a
patient at one of the user's facilities (restricted patients need a relationship or
break-the-glass). A refusal is audited before it is raised; "no such encounter" and
"not yours" answer the same 404. Every read is audited with the patient's public id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from accounts.access import has_permission, require_permission
from audit.actions import record_event
from audit.models import Action, Outcome
from coding import codes as code_rules
from coding import edits as edit_rules
from coding.abstracts import DONE_STATUSES, OBJECT_TYPE, OPEN_STATUSES
from coding.models import Abstract, Code, CodeSystem
from coding.permissions import CodingPermission
from encounters.models import AdmitSource, Disposition, Encounter
from patients.access import default_purpose, facility_ids, in_users_facilities, may_open_restricted

ICD10CM_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10-cm", "icd-10-cm", "icd10cm", "ICD-10-CM")


def may_read(user) -> bool:
    return has_permission(user, CodingPermission.CODE) or has_permission(
        user, CodingPermission.REVIEW
    )


def _deny(user, object_id, reason, patient=None) -> None:
    record_event(
        user,
        Action.VIEW,
        outcome=Outcome.DENIED,
        purpose=default_purpose(user),
        patient_id=patient.public_id if patient else None,
        object_type=OBJECT_TYPE,
        object_id=str(object_id)[:64],
        reason=reason,
    )


def encounter_for_coding(user, encounter_public_id, *, write: bool = False) -> Encounter:
    """The encounter, after the permission and visibility checks (refusals audited).
    ``write`` asks for ``coding.code``; reading takes ``coding.code`` or ``coding.review``.
    The read itself is not audited here (the caller audits what it shows)."""
    if write or not may_read(user):
        require_permission(
            user,
            CodingPermission.CODE,
            action=Action.UPDATE if write else Action.VIEW,
            purpose=default_purpose(user),
            object_type=OBJECT_TYPE,
            object_id=str(encounter_public_id)[:64],
        )
    try:
        key = uuid.UUID(str(encounter_public_id))
    except ValueError:
        key = None
    encounter = (
        Encounter.objects.select_related("patient", "facility", "attending")
        .filter(public_id=key)
        .first()
        if key
        else None
    )
    if (
        encounter is None
        or encounter.facility_id not in facility_ids(user)
        or not in_users_facilities(user, encounter.patient)
    ):
        _deny(user, encounter_public_id, "no such encounter at the user's facilities")
        raise Http404("No such encounter")
    if encounter.patient.is_restricted and not may_open_restricted(user, encounter.patient):
        _deny(
            user, encounter_public_id, "restricted record without a relationship", encounter.patient
        )
        raise Http404("No such encounter")
    return encounter


@dataclass
class AbstractPage:
    encounter: Encounter
    abstract: Abstract | None
    may_code: bool
    diagnoses: list = field(default_factory=list)
    procedures: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    abstract_findings: list = field(default_factory=list)
    errors: int = 0
    warnings: int = 0
    grouping: dict = field(default_factory=dict)
    previous_drg: str = ""
    versions: list = field(default_factory=list)
    suggestions: list = field(default_factory=list)
    performers: list = field(default_factory=list)
    admit_sources: list = field(default_factory=list)
    dispositions: list = field(default_factory=list)
    age_at_admission: int | None = None

    @property
    def editable(self) -> bool:
        return self.may_code and (self.abstract is None or self.abstract.status in OPEN_STATUSES)

    @property
    def final(self) -> bool:
        return self.abstract is not None and self.abstract.status in DONE_STATUSES

    @property
    def on_hold(self) -> bool:
        return self.abstract is not None and self.abstract.status == "on_hold"


def _titles(system_codes) -> dict:
    query = Q(pk__in=[])
    for system, code in system_codes:
        query |= Q(system=system, code=code)
    return {(c.system, c.code): c.title for c in Code.objects.filter(query).only("title")}


def _attach(page: AbstractPage) -> None:
    abstract = page.abstract
    findings = abstract.edit_results or []
    page.errors = sum(1 for f in findings if f.get("severity") == "error")
    page.warnings = len(findings) - page.errors
    page.abstract_findings = [f for f in findings if f.get("target") == "abstract"]
    page.grouping = abstract.grouping or {}
    diagnoses = list(abstract.diagnoses.order_by("sequence"))
    procedures = list(abstract.procedures.order_by("sequence").select_related("performer"))
    titles = _titles(
        [(CodeSystem.ICD10CM, d.code) for d in diagnoses] + [(p.system, p.code) for p in procedures]
    )
    impact = {d.get("code"): d for d in page.grouping.get("diagnoses", [])}
    for d in diagnoses:
        page.diagnoses.append(
            {
                "row": d,
                "shown": code_rules.dotted(d.code),
                "title": titles.get((CodeSystem.ICD10CM, d.code), ""),
                "findings": [
                    f
                    for f in findings
                    if f.get("target") == "dx" and f.get("sequence") == d.sequence
                ],
                "severity": (impact.get(d.code) or {}).get("severity", ""),
            }
        )
    for p in procedures:
        page.procedures.append(
            {
                "row": p,
                "shown": code_rules.dotted(p.code, p.system),
                "title": titles.get((p.system, p.code), ""),
                "findings": [
                    f
                    for f in findings
                    if f.get("target") == "px" and f.get("sequence") == p.sequence
                ],
            }
        )
    page.versions = list(abstract.versions.select_related("changed_by").order_by("-number")[:50])
    if len(page.versions) > 1:
        page.previous_drg = page.versions[1].snapshot.get("drg", "")


def _suggestions(encounter, coded: set[str]) -> list[dict]:
    """ICD-10-CM conditions clinicians recorded for the encounter, not yet coded: a
    suggestion only (the coded values belong to the abstract)."""
    from clinical.models import CODED_SOURCE, ClinicalEntry

    out, seen = [], set()
    rows = (
        ClinicalEntry.objects.filter(
            encounter=encounter, resource_type="Condition", entered_in_error=False
        )
        .exclude(source=CODED_SOURCE)  # the coder's own earlier final codes
        .only("code", "code_system", "display")
    )
    for row in rows:
        system = (row.code_system or "").lower()
        if "icd-10-cm" not in system and "icd10cm" not in system:
            continue
        code = code_rules.normalise(row.code)
        if not code or code in coded or code in seen:
            continue
        seen.add(code)
        out.append({"code": code, "shown": code_rules.dotted(code), "display": row.display})
    return out


def _performers(encounter) -> list:
    User = get_user_model()
    people = User.objects.filter(is_active=True, facilities=encounter.facility).filter(
        groups__name="clinician"
    )
    return list(people.distinct().order_by("last_name", "first_name")[:200])


def access_abstract_page(user, encounter_public_id) -> AbstractPage:
    """Everything the abstract screen shows (audited as a view of the patient's record)."""
    encounter = encounter_for_coding(user, encounter_public_id)
    abstract = Abstract.objects.filter(encounter=encounter).first()
    page = AbstractPage(
        encounter=encounter,
        abstract=abstract,
        may_code=has_permission(user, CodingPermission.CODE),
        admit_sources=list(AdmitSource.choices),
        dispositions=list(Disposition.choices),
    )
    page.age_at_admission = edit_rules.age_on(
        encounter.patient.birth_date, timezone.localdate(encounter.started_at)
    )
    if abstract is not None:
        _attach(page)
    if page.editable:
        coded = {d["row"].code for d in page.diagnoses}
        page.suggestions = _suggestions(encounter, coded)
        page.performers = _performers(encounter)
    record_event(
        user,
        Action.VIEW,
        purpose=default_purpose(user),
        patient_id=encounter.patient.public_id,
        object_type=OBJECT_TYPE,
        object_id=str(abstract.public_id if abstract else encounter.public_id),
        detail={
            "encounter": str(encounter.public_id),
            "version": abstract.version if abstract else 0,
        },
    )
    return page


def abstract_for_coding(user, encounter_public_id) -> tuple[Encounter, Abstract | None]:
    """The encounter and its abstract (None when not started), for a change
    (``coding.code``; refusals audited; the action audits the change)."""
    encounter = encounter_for_coding(user, encounter_public_id, write=True)
    return encounter, Abstract.objects.filter(encounter=encounter).first()


def performer_for(encounter, public_id):
    """A clinician of the encounter's facility chosen as a procedure's performer."""
    if not public_id:
        return None
    try:
        key = uuid.UUID(str(public_id))
    except ValueError:
        return False
    return next((p for p in _performers(encounter) if p.public_id == key), False)
