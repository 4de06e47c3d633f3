"""Patient/[id]/$everything: https://hl7.org/fhir/R4/patient-operation-everything.html

The patient and every resource linked to them that the user may read: encounters,
clinical entries, documents (the document access rules apply), and the stored resources
of other types (CarePlan, Coverage, Claim, DiagnosticReport, …). Paged with ``_count``
and next links over one stable order (type, then date, then key); ``_since`` keeps what
changed at or after an instant, ``_type`` the types named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q

from audit.actions import record_event
from audit.models import Action
from clinical.models import ClinicalEntry, ClinicalEntryVersion
from documents.models import Document, DocumentStatus
from encounters.models import Encounter
from interop import api_access, search
from interop.models import FhirResource
from interop.outcome import NOT_SUPPORTED, FhirError, Issue
from patients.access import Scope, access_patient
from patients.models import Patient

ORDER = [
    "Patient",
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "MedicationStatement",
    "Procedure",
    "Observation",
    "Immunization",
    "DocumentReference",
    "*",  # the stored types, by type name
]


@dataclass
class EverythingPage:
    resources: list[dict] = field(default_factory=list)
    total: int = 0
    offset: int = 0
    count: int = search.DEFAULT_COUNT
    has_next: bool = False


def _querysets(principal, patient: Patient, since, types: set[str] | None):
    """(type, queryset) in the operation's order, each already limited to what the user
    may read."""

    # Only the types the request asks for (_type) that the token's scopes let it read:
    # $everything is a read of each type it returns.
    def wanted(resource_type: str) -> bool:
        return (not types or resource_type in types) and principal.may(resource_type, "read")

    sets = []
    if wanted("Patient"):
        rows = Patient.objects.filter(pk=patient.pk)
        if since:
            rows = rows.filter(updated_at__gte=since)
        sets.append(("Patient", rows.order_by("pk")))
    if wanted("Encounter"):
        rows = Encounter.objects.filter(patient=patient)
        if since:
            rows = rows.filter(updated_at__gte=since)
        sets.append(("Encounter", rows.order_by("started_at", "pk")))
    for resource_type in ORDER[2:9]:
        if not wanted(resource_type):
            continue
        rows = ClinicalEntry.objects.filter(patient=patient, resource_type=resource_type)
        if since:
            rows = rows.filter(
                Exists(
                    ClinicalEntryVersion.objects.filter(entry=OuterRef("pk"), changed_at__gte=since)
                )
            )
        sets.append((resource_type, rows.order_by("effective_at", "pk")))
    if wanted("DocumentReference"):
        rows = Document.objects.filter(patient=patient).exclude(
            Q(status=DocumentStatus.DRAFT) & ~Q(author=principal.user)
        )
        rows = api_access.readable_documents(principal, rows)
        if since:
            rows = rows.filter(updated_at__gte=since)
        sets.append(("DocumentReference", rows.order_by("service_at", "pk")))
    stored = FhirResource.objects.filter(patient=patient, deleted=False).exclude(
        resource_type__in=api_access.DOMAIN_TYPES
    )
    if types:
        stored = stored.filter(resource_type__in=types)
    if not principal.may("*", "read"):
        readable = [
            t
            for t in stored.values_list("resource_type", flat=True).distinct().order_by()
            if principal.may(t, "read")
        ]
        stored = stored.filter(resource_type__in=readable)
    if since:
        stored = stored.filter(last_updated__gte=since)
    sets.append(("*", stored.order_by("resource_type", "last_updated", "pk")))
    return sets


def everything(principal, public_id: str, params: list[tuple[str, str]]) -> EverythingPage:
    """One page of the patient's record, audited once (the patient's door, and the
    operation with how many resources it returned)."""
    allowed = {"_count", "_offset", "_since", "_type", "_format", "start", "end"}
    controls: dict[str, list[str]] = {}
    for name, value in params:
        if name not in allowed:
            raise FhirError(
                400,
                Issue(
                    "error",
                    NOT_SUPPORTED,
                    f"Parameter {name!r} is not supported by $everything "
                    "(supported: _count, _since, _type).",
                    [name],
                ),
            )
        controls.setdefault(name, []).append(value)
    if "start" in controls or "end" in controls:
        raise FhirError(
            400,
            Issue(
                "error", NOT_SUPPORTED, "start and end are not supported; use _since.", ["start"]
            ),
        )
    api_access.require_read(principal, "Patient", action=Action.VIEW)
    api_access.require_read(principal, "Encounter", action=Action.VIEW)
    compartment = principal.patient_compartment("Patient")
    if compartment is not None and str(compartment.public_id) != str(public_id):
        raise api_access.not_found(principal, "Patient", public_id, "outside the token's patient")
    patient = access_patient(
        principal.user, public_id, scope=Scope.CLINICAL, purpose=api_access.purpose_of(principal)
    )
    count = search._int_param(
        "_count", controls.get("_count", []), search.DEFAULT_COUNT, 1, search.MAX_COUNT
    )
    offset = search._int_param("_offset", controls.get("_offset", []), 0, 0, 10**9)
    since = None
    if controls.get("_since"):
        _, since, _ = search.parse_date("_since", controls["_since"][-1])
    types = None
    if controls.get("_type"):
        types = {t.strip() for value in controls["_type"] for t in value.split(",") if t.strip()}
        unknown = sorted(t for t in types if t not in api_access.SERVED_TYPES or t == "AuditEvent")
        if unknown:
            raise FhirError(
                400,
                Issue(
                    "error", NOT_SUPPORTED, f"_type: {', '.join(unknown)} not served.", ["_type"]
                ),
            )
    page = EverythingPage(offset=offset, count=count)
    skip, room = offset, count
    for resource_type, rows in _querysets(principal, patient, since, types):
        size = rows.count()
        page.total += size
        if room <= 0 or skip >= size:
            skip = max(0, skip - size)
            continue
        chunk = list(search.prefetch(resource_type, rows)[skip : skip + room])
        skip = 0
        room -= len(chunk)
        if resource_type == "*":
            page.resources += api_access.serve_stored(chunk)
        else:
            page.resources += search.serve(principal, resource_type, chunk)
    page.has_next = offset + count < page.total
    record_event(
        principal.user,
        Action.VIEW,
        purpose=api_access.purpose_of(principal),
        patient_id=patient.public_id,
        object_type="fhir.Patient.$everything",
        object_id=str(patient.public_id),
        detail={
            "client_id": getattr(principal, "client_id", ""),
            "returned": len(page.resources),
            "total": page.total,
            "offset": offset,
        },
    )
    return page
