"""The FHIR API's doors: reading resources for a token's user (read, vread, history)
and the sets of rows a search may look at.

Every read goes through the domain's own access functions with ``principal.user``:
``patients.access.access_patient`` (permission, facility, restricted patient),
``encounters.access.access_encounter``, ``documents.access.access_document`` (sensitive
categories, entered in error, drafts). So a token never sees more than its user sees in
the web pages; ``patient/`` scopes narrow it further to the patient in context. A
patient of another facility, an unknown id and a resource outside the token's patient
all answer the same 404.

Spec: https://hl7.org/fhir/R4/http.html#read, #vread, #history.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.http import Http404

from accounts.access import has_permission, require_permission
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from audit.permissions import AuditPermission
from clinical.models import ClinicalEntry, ResourceType
from documents.models import Document, DocumentStatus
from documents.permissions import DocumentsPermission
from encounters.models import Encounter
from interop import serialize
from interop.models import FhirResource
from interop.outcome import NOT_FOUND, NOT_SUPPORTED, FhirError, Issue
from patients.access import Scope, access_patient
from patients.models import AccessGrant, Patient
from patients.permissions import PatientsPermission
from recordroom import clock

CLINICAL_TYPES = {str(t) for t in ResourceType}
# Types RecordRoom models in its own apps: their FhirResource rows are the copies as
# received, served through the domain object, never on their own.
DOMAIN_TYPES = {"Patient", "Encounter", "DocumentReference"}
# Resources about no patient in particular: a directory anyone who reads the record
# may read.
DIRECTORY_TYPES = {
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Medication",
    "HealthcareService",
    "Endpoint",
    "Substance",
}
# The other resource types the API stores whole and serves (read, vread, history,
# search on patient/_id/date/status/code; create and update).
GENERIC_TYPES = sorted(
    DIRECTORY_TYPES
    | {
        "AdverseEvent",
        "Appointment",
        "Basic",
        "Binary",
        "BodyStructure",
        "CarePlan",
        "CareTeam",
        "Claim",
        "ClaimResponse",
        "ClinicalImpression",
        "Communication",
        "Composition",
        "Consent",
        "Coverage",
        "Device",
        "DeviceRequest",
        "DeviceUseStatement",
        "DiagnosticReport",
        "EpisodeOfCare",
        "ExplanationOfBenefit",
        "FamilyMemberHistory",
        "Flag",
        "Goal",
        "ImagingStudy",
        "ImmunizationRecommendation",
        "List",
        "Media",
        "MedicationAdministration",
        "MedicationDispense",
        "NutritionOrder",
        "Provenance",
        "QuestionnaireResponse",
        "RelatedPerson",
        "RiskAssessment",
        "ServiceRequest",
        "Specimen",
        "SupplyDelivery",
        "SupplyRequest",
    }
)
GENERIC_SET = set(GENERIC_TYPES)
SERVED_TYPES = sorted(DOMAIN_TYPES | CLINICAL_TYPES | GENERIC_SET | {"AuditEvent"})


@dataclass
class Read:
    """One resource as served, with what its response headers say."""

    resource: dict
    version: str
    last_updated: str | None


def purpose_of(principal) -> str:
    return getattr(principal, "purpose", "") or Purpose.TREATMENT


def check_type(resource_type: str) -> None:
    if resource_type not in SERVED_TYPES:
        raise FhirError(
            404,
            Issue(
                "error",
                NOT_SUPPORTED,
                f"Resource type {resource_type!r} is not served by this server "
                "(see /fhir/metadata).",
                [resource_type],
            ),
        )


def not_found(principal, resource_type: str, fhir_id: str, reason: str) -> FhirError:
    record_event(
        principal.user,
        Action.VIEW,
        outcome=Outcome.DENIED,
        purpose=purpose_of(principal),
        object_type=f"fhir.{resource_type}"[:64],
        object_id=str(fhir_id)[:64],
        reason=reason,
    )
    return FhirError(
        404, Issue("error", NOT_FOUND, f"{resource_type}/{fhir_id} is not known.", [resource_type])
    )


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _compartment_check(principal, resource_type: str, patient_public_id, fhir_id: str) -> None:
    """A ``patient/``-scoped token reads only its patient's compartment."""
    patient = principal.patient_compartment(resource_type)
    if patient is None:
        return
    if patient_public_id is None or str(patient.public_id) != str(patient_public_id):
        raise not_found(principal, resource_type, fhir_id, "outside the token's patient")


def _view(principal, resource_type: str, fhir_id: str, patient_id, **detail) -> None:
    record_event(
        principal.user,
        Action.VIEW,
        purpose=purpose_of(principal),
        patient_id=patient_id,
        object_type=f"fhir.{resource_type}"[:64],
        object_id=str(fhir_id)[:64],
        detail={"client_id": getattr(principal, "client_id", ""), **detail},
    )


# --- loading rows for serialization (no N+1) -----------------------------------------


def patient_rows(queryset):
    return queryset.prefetch_related("names", "identifiers__facility", "addresses", "telecoms")


def received_copies(resource_type: str, ids) -> dict[str, FhirResource]:
    ids = [str(i) for i in ids]
    if not ids:
        return {}
    rows = FhirResource.objects.filter(resource_type=resource_type, fhir_id__in=ids)
    return {row.fhir_id: row for row in rows}


def serve_patients(patients: list[Patient]) -> list[dict]:
    received = received_copies("Patient", [p.public_id for p in patients])
    return [serialize.patient_resource(p, received.get(str(p.public_id))) for p in patients]


def encounter_rows(queryset):
    return queryset.select_related("patient", "facility", "attending").prefetch_related("locations")


def serve_encounters(encounters: list[Encounter]) -> list[dict]:
    received = received_copies("Encounter", [e.public_id for e in encounters])
    from coding.export import encounter_diagnoses_of

    final_codes = encounter_diagnoses_of(encounters)
    return [
        serialize.encounter_resource(
            e, received.get(str(e.public_id)), final_codes=final_codes[e.pk]
        )
        for e in encounters
    ]


def document_rows(queryset):
    return queryset.select_related(
        "patient", "doc_type", "author", "encounter", "current_version", "addendum_to"
    )


def serve_documents(user, documents: list[Document]) -> list[dict]:
    """DocumentReferences for documents a search already limited to what ``user`` may
    read; a draft's content is its author's (and view_entered_in_error holders') only."""
    received = received_copies("DocumentReference", [d.public_id for d in documents])
    sees_hidden = has_permission(user, DocumentsPermission.VIEW_ENTERED_IN_ERROR)
    result = []
    for document in documents:
        shown = not (
            document.status == DocumentStatus.DRAFT
            and document.author_id != user.pk
            and not sees_hidden
        )
        version = document.current_version
        if version is None and shown:
            # A draft: its latest revision, for its author.
            version = document.versions.order_by("-number").first()
        result.append(
            serialize.document_resource(
                document,
                received.get(str(document.public_id)),
                version=version,
                content_shown=shown,
            )
        )
    return result


def serve_clinical(entries: list[ClinicalEntry]) -> list[dict]:
    return [serialize.clinical_resource(e) for e in entries]


def serve_stored(rows: list[FhirResource]) -> list[dict]:
    return [serialize.stored_resource(r) for r in rows]


# --- which rows a user may see (for searches) ----------------------------------------


def _relationships(user):
    """The patient ids of the user's live access grants and of the patients the user
    treats (a current or recent encounter as attending): a restricted patient's record
    opens to them (``patients.access.may_open_restricted``), as subqueries."""
    from encounters.models import EncounterStatus

    now = clock.now()
    grants = (
        AccessGrant.objects.filter(user=user)
        .exclude(expires_at__lte=now)
        .exclude(review_status=AccessGrant.Review.INAPPROPRIATE)
        .values("patient_id")
    )
    since = now - dt.timedelta(days=settings.TREATMENT_RELATIONSHIP_DAYS)
    current = Q(status__in=[EncounterStatus.IN_PROGRESS, EncounterStatus.PLANNED]) | Q(
        status=EncounterStatus.FINISHED, ended_at__gte=since
    )
    treating = Encounter.objects.filter(current, attending=user).values("patient_id")
    return grants, treating


def openable_patients(principal, resource_type: str = "Patient"):
    """The patients a search may return for this token: at the user's facilities, not
    merged away, restricted ones only where the user has a relationship (or keeps the
    restricted list), and only the patient in context for ``patient/`` scopes."""
    from patients.search import visible_patients

    user = principal.user
    patients = visible_patients(user)
    if not has_permission(user, PatientsPermission.MANAGE_RESTRICTIONS):
        grants, treating = _relationships(user)
        patients = patients.filter(Q(restriction="") | Q(pk__in=grants) | Q(pk__in=treating))
    compartment = principal.patient_compartment(resource_type)
    if compartment is not None:
        patients = patients.filter(pk=compartment.pk)
    return patients


def openable_q(
    principal, resource_type: str, column: str = "patient", *, probe: bool | None = None
) -> Q:
    """The condition "the row's patient (foreign key ``column``) is one of
    ``openable_patients(principal, resource_type)``", for searches of the rows linked to
    patients (encounters, documents, the clinical record, stored resources).

    Two forms of the same set. ``column IN (the openable patients)`` leaves the choice
    to the database: PostgreSQL's planner makes it a semi-join and picks, by its
    estimates, a probe of each row's patient (few rows) or a hash of the visible
    patients (many). SQLite materialises the whole subquery first, every visible
    patient of the population before the first row (~200 ms a search at 100,000
    patients, however few rows the search's own index finds), so there (``probe``, by
    default on SQLite) each row's patient is probed instead:

    - the patient row itself (primary key): not merged away, and not restricted unless
      the user has a relationship (the user's grants and treated patients, small
      uncorrelated subqueries read once) or keeps the restricted list;
    - an MRN at one of the user's facilities (``identifier_patient_kind_fac``, which
      answers it alone). Where every MRN is at one of them (one facility, or a user at
      all of them) any MRN will do; the statement then re-checks, once, that no MRN is
      elsewhere or without a facility, so an MRN registered at another facility in
      between hides everything rather than showing that patient.

    The other form, "not one of the few hidden patients" (``patient NOT IN`` the merged
    away, ``NOT IN`` the restricted without a relationship, on ``patient_restricted``),
    was measured again with that index (bench/README.md): faster for a broad code on
    both databases, slower for narrow and one-patient searches on both, and its lists
    grow with the population; it is not used.

    ``tests/test_fhir_search_visibility.py`` holds both forms to ``openable_patients``."""
    from django.db import connection

    from accounts.models import Facility
    from patients.access import facility_ids
    from patients.models import IdentifierKind, PatientIdentifier

    if probe is None:
        probe = connection.vendor == "sqlite"
    if not probe:
        return Q(**{f"{column}__in": openable_patients(principal, resource_type)})
    user = principal.user
    mine = sorted(facility_ids(user))
    if not mine:
        return Q(pk__in=[])
    key = f"{column}_id"
    q = Q(**{f"{key}__isnull": False, f"{column}__merged_into__isnull": True})
    if not has_permission(user, PatientsPermission.MANAGE_RESTRICTIONS):
        grants, treating = _relationships(user)
        q &= (
            Q(**{f"{column}__restriction": ""})
            | Q(**{f"{key}__in": grants})
            | Q(**{f"{key}__in": treating})
        )
    compartment = principal.patient_compartment(resource_type)
    if compartment is not None:
        q &= Q(**{key: compartment.pk})
    mrns = PatientIdentifier.objects.filter(patient_id=OuterRef(key), kind=IdentifierKind.MRN)
    others = list(Facility.objects.exclude(pk__in=mine).values_list("pk", flat=True))
    # MRNs without a facility, MRNs at the other facilities: each a probe of the MRNs'
    # own index (unique_mrn_per_facility, kind = MR); asked as one OR, SQLite reads the
    # whole index. The value (never null) named in the first keeps SQLite from reading
    # the whole of identifier_patient_kind_fac instead, which holds kind and facility
    # (it estimates a third of the rows without a facility, and a scan of a covering
    # index cheaper than that many probes).
    mrn_rows = PatientIdentifier.objects.filter(kind=IdentifierKind.MRN)
    elsewhere = [mrn_rows.filter(facility__isnull=True, value__isnull=False)]
    if others:
        elsewhere.append(mrn_rows.filter(facility_id__in=others))
    if any(rows.exists() for rows in elsewhere):
        return q & Exists(mrns.filter(facility_id__in=mine))
    q &= Exists(mrns)
    for rows in elsewhere:
        q &= ~Exists(rows)
    return q


def readable_documents(principal, documents):
    """Narrow a Document queryset to what the user may read: entered-in-error ones only
    for their author and view_entered_in_error holders; sensitive ones only for their
    author, for documents.read_sensitive holders treating the patient, or under a live
    break-the-glass grant (documents.access.Reader, written as SQL)."""
    from encounters.models import EncounterStatus

    user = principal.user
    if not has_permission(user, DocumentsPermission.VIEW_ENTERED_IN_ERROR):
        documents = documents.exclude(Q(status=DocumentStatus.ENTERED_IN_ERROR) & ~Q(author=user))
    now = clock.now()
    glass = (
        AccessGrant.objects.filter(user=user, kind=AccessGrant.Kind.BREAK_THE_GLASS)
        .exclude(expires_at__lte=now)
        .exclude(review_status=AccessGrant.Review.INAPPROPRIATE)
        .values("patient_id")
    )
    sensitive_ok = Q(author=user) | Q(patient_id__in=glass)
    if has_permission(user, DocumentsPermission.READ_SENSITIVE):
        since = now - dt.timedelta(days=settings.TREATMENT_RELATIONSHIP_DAYS)
        current = Q(status__in=[EncounterStatus.IN_PROGRESS, EncounterStatus.PLANNED]) | Q(
            status=EncounterStatus.FINISHED, ended_at__gte=since
        )
        treating = Encounter.objects.filter(current, attending=user).values("patient_id")
        treatment_grants = (
            AccessGrant.objects.filter(user=user, kind=AccessGrant.Kind.TREATMENT)
            .exclude(expires_at__lte=now)
            .exclude(review_status=AccessGrant.Review.INAPPROPRIATE)
            .values("patient_id")
        )
        sensitive_ok |= Q(patient_id__in=treating) | Q(patient_id__in=treatment_grants)
    return documents.filter(Q(is_sensitive=False) | sensitive_ok)


def require_read(principal, resource_type: str, *, action: str = Action.SEARCH) -> None:
    """The user's permission to read this kind of resource at all (audited refusal)."""
    if resource_type == "AuditEvent":
        permission = AuditPermission.VIEW_TRAIL
        purpose = Purpose.COMPLIANCE
    elif resource_type == "Patient" or resource_type in DIRECTORY_TYPES:
        permission = PatientsPermission.READ_DEMOGRAPHICS
        purpose = purpose_of(principal)
    else:
        permission = PatientsPermission.READ_CLINICAL
        purpose = purpose_of(principal)
    require_permission(
        principal.user,
        permission,
        action=action,
        purpose=purpose,
        object_type=f"fhir.{resource_type}"[:64],
    )


# --- read ----------------------------------------------------------------------------


def read(principal, resource_type: str, fhir_id: str) -> Read:
    """The current version of one resource, audited as a view."""
    check_type(resource_type)
    if resource_type == "Patient":
        return _read_patient(principal, fhir_id)
    if resource_type == "Encounter":
        return _read_encounter(principal, fhir_id)
    if resource_type == "DocumentReference":
        return _read_document(principal, fhir_id)
    if resource_type in CLINICAL_TYPES:
        entry = _clinical_entry(principal, resource_type, fhir_id)
        return _as_read(serialize.clinical_resource(entry))
    if resource_type == "AuditEvent" and str(fhir_id).isdigit():
        return _read_audit_event(principal, fhir_id)
    row = _stored(principal, resource_type, fhir_id)
    return _as_read(serialize.stored_resource(row))


def _as_read(resource: dict) -> Read:
    meta = resource.get("meta") or {}
    return Read(resource, str(meta.get("versionId", "1")), meta.get("lastUpdated"))


def _read_patient(principal, fhir_id: str) -> Read:
    require_read(principal, "Patient", action=Action.VIEW)
    _compartment_check(principal, "Patient", fhir_id, fhir_id)
    patient = access_patient(
        principal.user, fhir_id, scope=Scope.DEMOGRAPHICS, purpose=purpose_of(principal)
    )
    patient = patient_rows(Patient.objects.filter(pk=patient.pk)).get()
    return _as_read(serve_patients([patient])[0])


def _patient_of(model, fhir_id):
    key = _uuid(fhir_id)
    if key is None:
        return None
    return model.objects.filter(public_id=key).values_list("patient__public_id", flat=True).first()


def _read_encounter(principal, fhir_id: str) -> Read:
    from encounters.access import access_encounter

    require_read(principal, "Encounter", action=Action.VIEW)
    if principal.patient_compartment("Encounter") is not None:
        _compartment_check(principal, "Encounter", _patient_of(Encounter, fhir_id), fhir_id)
    if _uuid(fhir_id) is None:
        raise not_found(principal, "Encounter", fhir_id, "not an encounter id")
    encounter = access_encounter(principal.user, fhir_id, purpose=purpose_of(principal))
    encounter = encounter_rows(Encounter.objects.filter(pk=encounter.pk)).get()
    return _as_read(serve_encounters([encounter])[0])


def _read_document(principal, fhir_id: str) -> Read:
    from documents.access import access_document

    require_read(principal, "DocumentReference", action=Action.VIEW)
    if principal.patient_compartment("DocumentReference") is not None:
        _compartment_check(principal, "DocumentReference", _patient_of(Document, fhir_id), fhir_id)
    if _uuid(fhir_id) is None:
        raise not_found(principal, "DocumentReference", fhir_id, "not a document id")
    document = access_document(principal.user, fhir_id)
    document = document_rows(Document.objects.filter(pk=document.pk)).get()
    return _as_read(serve_documents(principal.user, [document])[0])


def _clinical_entry(principal, resource_type: str, fhir_id: str) -> ClinicalEntry:
    require_read(principal, resource_type, action=Action.VIEW)
    key = _uuid(fhir_id)
    entry = (
        ClinicalEntry.objects.select_related("patient", "encounter")
        .filter(public_id=key, resource_type=resource_type)
        .first()
        if key
        else None
    )
    if entry is None:
        raise not_found(principal, resource_type, fhir_id, "no such resource")
    _compartment_check(principal, resource_type, entry.patient.public_id, fhir_id)
    access_patient(
        principal.user,
        entry.patient.public_id,
        scope=Scope.CLINICAL,
        purpose=purpose_of(principal),
    )
    _view(principal, resource_type, fhir_id, entry.patient.public_id, version=entry.version)
    return entry


def _clinical_entry_for_write(principal, resource_type: str, fhir_id: str) -> ClinicalEntry:
    """The entry an update is about: the patient's door (clinical scope) lets the user
    in; the update action audits the change."""
    key = _uuid(fhir_id)
    entry = (
        ClinicalEntry.objects.select_related("patient", "encounter")
        .filter(public_id=key, resource_type=resource_type)
        .first()
        if key
        else None
    )
    if entry is None:
        raise not_found(principal, resource_type, fhir_id, "no such resource")
    compartment = principal.patient_compartment(resource_type, "write")
    if compartment is not None and compartment.pk != entry.patient_id:
        raise not_found(principal, resource_type, fhir_id, "outside the token's patient")
    entry.patient = access_patient(
        principal.user,
        entry.patient.public_id,
        scope=Scope.CLINICAL,
        purpose=purpose_of(principal),
    )
    return entry


def _stored(principal, resource_type: str, fhir_id: str, *, audit: bool = True) -> FhirResource:
    require_read(principal, resource_type, action=Action.VIEW)
    row = (
        FhirResource.objects.select_related("patient")
        .filter(resource_type=resource_type, fhir_id=str(fhir_id)[:64], deleted=False)
        .first()
    )
    if row is None:
        raise not_found(principal, resource_type, fhir_id, "no such resource")
    patient_id = row.patient.public_id if row.patient_id else None
    if row.patient_id:
        _compartment_check(principal, resource_type, patient_id, fhir_id)
        access_patient(
            principal.user, patient_id, scope=Scope.CLINICAL, purpose=purpose_of(principal)
        )
    elif principal.patient_compartment(resource_type) is not None and (
        resource_type not in DIRECTORY_TYPES
    ):
        raise not_found(principal, resource_type, fhir_id, "outside the token's patient")
    if audit:
        _view(principal, resource_type, fhir_id, patient_id, version=row.version_id)
    return row


def _read_audit_event(principal, fhir_id: str) -> Read:
    from audit.models import AuditEvent

    require_read(principal, "AuditEvent", action=Action.VIEW)
    event = AuditEvent.objects.filter(seq=int(fhir_id)).first()
    compartment = principal.patient_compartment("AuditEvent")
    if event is None or (
        compartment is not None and str(event.patient_id or "") != str(compartment.public_id)
    ):
        raise not_found(principal, "AuditEvent", fhir_id, "no such audit event")
    record_event(
        principal.user,
        Action.VIEW,
        purpose=Purpose.COMPLIANCE,
        object_type="audit.trail",
        object_id=str(event.seq),
    )
    return _as_read(serialize.audit_event_resource(event))


# --- vread and history ---------------------------------------------------------------


@dataclass
class HistoryEntry:
    resource: dict
    method: str  # POST (first version) or PUT
    recorded: str | None


def history(principal, resource_type: str, fhir_id: str) -> list[HistoryEntry]:
    """Every version of a resource the user may read, newest first."""
    check_type(resource_type)
    if resource_type in CLINICAL_TYPES:
        entry = _clinical_entry(principal, resource_type, fhir_id)
        versions = list(entry.versions.order_by("-number"))
        return [
            HistoryEntry(
                serialize.clinical_resource(entry, v.resource, version=v.number),
                "POST" if v.number == 1 else "PUT",
                serialize.instant(v.changed_at),
            )
            for v in versions
        ]
    if resource_type == "Patient":
        current = _read_patient(principal, fhir_id)
        patient = Patient.objects.get(public_id=fhir_id)
        entries = [HistoryEntry(current.resource, _method(patient.version), current.last_updated)]
        for v in patient.versions.filter(number__lt=patient.version).order_by("-number"):
            entries.append(
                HistoryEntry(
                    serialize.patient_from_snapshot(
                        patient.public_id, v.number, v.snapshot, v.changed_at
                    ),
                    _method(v.number),
                    serialize.instant(v.changed_at),
                )
            )
        return entries
    if resource_type == "Encounter":
        current = _read_encounter(principal, fhir_id)
        encounter = Encounter.objects.select_related("patient").get(public_id=fhir_id)
        entries = [HistoryEntry(current.resource, _method(encounter.version), current.last_updated)]
        for v in encounter.versions.filter(number__lt=encounter.version).order_by("-number"):
            entries.append(
                HistoryEntry(
                    serialize.encounter_from_snapshot(
                        encounter, v.number, v.snapshot, v.changed_at
                    ),
                    _method(v.number),
                    serialize.instant(v.changed_at),
                )
            )
        return entries
    if resource_type == "DocumentReference":
        return _document_history(principal, fhir_id)
    if resource_type == "AuditEvent" and str(fhir_id).isdigit():
        current = _read_audit_event(principal, fhir_id)
        return [HistoryEntry(current.resource, "POST", current.last_updated)]
    row = _stored(principal, resource_type, fhir_id)
    return [
        HistoryEntry(
            serialize.stored_resource(row, v.content, version=v.version_id, at=v.recorded_at),
            _method(v.version_id),
            serialize.instant(v.recorded_at),
        )
        for v in row.versions.order_by("-version_id")
    ] or [HistoryEntry(serialize.stored_resource(row), "POST", serialize.instant(row.last_updated))]


def _method(number: int) -> str:
    return "POST" if number == 1 else "PUT"


def _document_history(principal, fhir_id: str) -> list[HistoryEntry]:
    """A document's versions the user may read: the current one, and for its author and
    view_entered_in_error holders every version (documents.access rules)."""
    from documents.access import Reader

    current = _read_document(principal, fhir_id)
    document = document_rows(Document.objects.filter(public_id=fhir_id)).get()
    reader = Reader(principal.user, document.patient)
    entries = [HistoryEntry(current.resource, "PUT", current.last_updated)]
    if reader.sees_all_versions(document) and not reader.hidden_reason(document):
        shown = document.current_version.number if document.current_version else None
        for version in document.versions.order_by("-number"):
            if version.number == shown:
                continue
            version.document = document
            resource = serialize.document_resource(document, None, version=version)
            entries.append(
                HistoryEntry(
                    resource, _method(version.number), serialize.instant(version.created_at)
                )
            )
    entries[-1].method = "POST"
    return entries


def vread(principal, resource_type: str, fhir_id: str, version_id: str) -> Read:
    for entry in history(principal, resource_type, fhir_id):
        if str((entry.resource.get("meta") or {}).get("versionId")) == str(version_id):
            return _as_read(entry.resource)
    raise FhirError(
        404,
        Issue(
            "error",
            NOT_FOUND,
            f"{resource_type}/{fhir_id} has no version {version_id} you may read.",
            [resource_type],
        ),
    )


def raise_not_found(exc: Http404, resource_type: str, fhir_id: str) -> FhirError:
    return FhirError(
        404, Issue("error", NOT_FOUND, f"{resource_type}/{fhir_id} is not known.", [resource_type])
    )


def load_patient_prefetched(public_ids) -> list[Patient]:
    return list(patient_rows(Patient.objects.filter(public_id__in=list(public_ids))))
