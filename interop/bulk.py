"""FHIR Bulk Data export (Bulk Data Access IG v2,
https://hl7.org/fhir/uv/bulkdata/export.html): the asynchronous request pattern.

1. Kick-off: ``GET /fhir/$export`` or ``/fhir/Patient/$export`` with
   ``Prefer: respond-async`` stores an :class:`~interop.models.ExportJob` and queues
   ``interop.tasks.run_bulk_export``; the answer is 202 with the status URL.
2. The job writes one NDJSON file per resource type through Django's storage. Rows are
   read in keyset-paginated chunks (``FHIR_EXPORT_CHUNK`` rows, ordered by primary key),
   what a chunk's rows need loaded together (an encounter's final codes), serialised
   one by one and written to a temporary file that is then streamed into
   storage, so memory holds one chunk whatever the population.
3. Polling the status URL answers 202 with ``X-Progress`` while it runs, the manifest
   when it is done, an OperationOutcome when it failed. DELETE cancels it.
4. Files are fetched by the same client and user that asked for the export, until the
   job expires (``FHIR_EXPORT_HOURS``); :func:`delete_expired_exports` removes them.

Who sees what: the caller needs ``interop.bulk_export`` and a ``system/`` or ``user/``
read scope for each type; only patients at the caller's facilities are exported,
restricted patients only where the caller may open them, and sensitive documents never
(a bulk export is not the place to release psychotherapy notes or Part 2 records).
The export is audited as one export event naming the number of patients and their ids
(up to ``FHIR_EXPORT_AUDIT_PATIENT_IDS``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import tempfile
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import Exists, OuterRef, Q

from accounts.access import AccessDenied, has_permission, require_permission
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from interop.auth import FhirAuthError, FhirPrincipal
from interop.models import ExportFile, ExportJob, ExportStatus, FhirResource
from interop.outcome import (
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    NOT_SUPPORTED,
    PROCESSING,
    FhirError,
    Issue,
    operation_outcome,
)
from interop.permissions import InteropPermission
from interop.scopes import READ
from recordroom import clock

logger = logging.getLogger(__name__)

# The resource types of FHIR R4 (4.0.1), for _type validation.
R4_RESOURCE_TYPES = frozenset(
    [
        "Account",
        "ActivityDefinition",
        "AdverseEvent",
        "AllergyIntolerance",
        "Appointment",
        "AppointmentResponse",
        "AuditEvent",
        "Basic",
        "Binary",
        "BiologicallyDerivedProduct",
        "BodyStructure",
        "Bundle",
        "CapabilityStatement",
        "CarePlan",
        "CareTeam",
        "CatalogEntry",
        "ChargeItem",
        "ChargeItemDefinition",
        "Claim",
        "ClaimResponse",
        "ClinicalImpression",
        "CodeSystem",
        "Communication",
        "CommunicationRequest",
        "CompartmentDefinition",
        "Composition",
        "ConceptMap",
        "Condition",
        "Consent",
        "Contract",
        "Coverage",
        "CoverageEligibilityRequest",
        "CoverageEligibilityResponse",
        "DetectedIssue",
        "Device",
        "DeviceDefinition",
        "DeviceMetric",
        "DeviceRequest",
        "DeviceUseStatement",
        "DiagnosticReport",
        "DocumentManifest",
        "DocumentReference",
        "EffectEvidenceSynthesis",
        "Encounter",
        "Endpoint",
        "EnrollmentRequest",
        "EnrollmentResponse",
        "EpisodeOfCare",
        "EventDefinition",
        "Evidence",
        "EvidenceVariable",
        "ExampleScenario",
        "ExplanationOfBenefit",
        "FamilyMemberHistory",
        "Flag",
        "Goal",
        "GraphDefinition",
        "Group",
        "GuidanceResponse",
        "HealthcareService",
        "ImagingStudy",
        "Immunization",
        "ImmunizationEvaluation",
        "ImmunizationRecommendation",
        "ImplementationGuide",
        "InsurancePlan",
        "Invoice",
        "Library",
        "Linkage",
        "List",
        "Location",
        "Measure",
        "MeasureReport",
        "Media",
        "Medication",
        "MedicationAdministration",
        "MedicationDispense",
        "MedicationKnowledge",
        "MedicationRequest",
        "MedicationStatement",
        "MedicinalProduct",
        "MedicinalProductAuthorization",
        "MedicinalProductContraindication",
        "MedicinalProductIndication",
        "MedicinalProductIngredient",
        "MedicinalProductInteraction",
        "MedicinalProductManufactured",
        "MedicinalProductPackaged",
        "MedicinalProductPharmaceutical",
        "MedicinalProductUndesirableEffect",
        "MessageDefinition",
        "MessageHeader",
        "MolecularSequence",
        "NamingSystem",
        "NutritionOrder",
        "Observation",
        "ObservationDefinition",
        "OperationDefinition",
        "OperationOutcome",
        "Organization",
        "OrganizationAffiliation",
        "Parameters",
        "Patient",
        "PaymentNotice",
        "PaymentReconciliation",
        "Person",
        "PlanDefinition",
        "Practitioner",
        "PractitionerRole",
        "Procedure",
        "Provenance",
        "Questionnaire",
        "QuestionnaireResponse",
        "RelatedPerson",
        "RequestGroup",
        "ResearchDefinition",
        "ResearchElementDefinition",
        "ResearchStudy",
        "ResearchSubject",
        "RiskAssessment",
        "RiskEvidenceSynthesis",
        "Schedule",
        "SearchParameter",
        "ServiceRequest",
        "Slot",
        "Specimen",
        "SpecimenDefinition",
        "StructureDefinition",
        "StructureMap",
        "Subscription",
        "Substance",
        "SubstanceNucleicAcid",
        "SubstancePolymer",
        "SubstanceProtein",
        "SubstanceReferenceInformation",
        "SubstanceSourceMaterial",
        "SubstanceSpecification",
        "SupplyDelivery",
        "SupplyRequest",
        "Task",
        "TerminologyCapabilities",
        "TestReport",
        "TestScript",
        "ValueSet",
        "VerificationResult",
        "VisionPrescription",
    ]
)
# Never exported: containers, the audit trail (its own export, for the privacy officer).
NOT_EXPORTED = frozenset({"Bundle", "OperationOutcome", "Parameters", "AuditEvent"})
# Resource types kept whole in FhirResource that belong to no patient: a system-level
# export carries them; a Patient-level export does not.
SHARED_TYPES = frozenset(
    [
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "OrganizationAffiliation",
        "Location",
        "HealthcareService",
        "Endpoint",
        "Medication",
        "Substance",
        "InsurancePlan",
    ]
)
DOMAIN_TYPES = (
    "Patient",
    "Encounter",
    "DocumentReference",
    "Condition",
    "Procedure",
    "Observation",
    "MedicationRequest",
    "MedicationStatement",
    "AllergyIntolerance",
    "Immunization",
)
CLINICAL_TYPES = frozenset(DOMAIN_TYPES[3:])
# The received copies of these are served through the domain object, not on their own.
RECEIVED_COPY_TYPES = frozenset({"Patient", "Encounter", "DocumentReference"})

OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
SUPPORTED_PARAMETERS = ("_outputFormat", "_type", "_since")
KNOWN_UNSUPPORTED = ("_typeFilter", "_elements", "patient", "includeAssociatedData")
NDJSON = "application/fhir+ndjson"
FILES_DELETED = "completed; files deleted after expiry"


def chunk_size() -> int:
    return max(1, int(getattr(settings, "FHIR_EXPORT_CHUNK", 500)))


def export_hours() -> int:
    return int(getattr(settings, "FHIR_EXPORT_HOURS", 24))


def audit_id_cap() -> int:
    return int(getattr(settings, "FHIR_EXPORT_AUDIT_PATIENT_IDS", 1000))


# --- kick-off -------------------------------------------------------------------------------


@dataclass
class ExportRequest:
    kind: str  # "system" or "patient"
    types: list[str] = field(default_factory=list)  # empty: every type allowed
    since: dt.datetime | None = None


def _bad(diagnostics: str, expression: str = "", *, code: str = INVALID) -> FhirError:
    return FhirError(400, Issue("error", code, diagnostics, [expression] if expression else []))


def parse_instant(text: str) -> dt.datetime:
    """A FHIR instant (date, time and offset). A '+' that arrived as a space (an
    unencoded query string) is put back."""
    value = text.strip()
    if len(value) > 10 and value[-6] == " ":
        value = value[:-6] + "+" + value[-5:]
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    if "T" not in value:
        raise ValueError("not an instant")
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


def parse_kickoff(request, kind: str) -> ExportRequest:
    """Validate the kick-off request's headers and parameters (400 naming what is
    wrong)."""
    prefer = request.headers.get("Prefer", "")
    if "respond-async" not in [p.strip().lower() for p in prefer.split(",")]:
        raise _bad("the Prefer: respond-async header is required for $export", "Prefer")
    accept = request.headers.get("Accept", "")
    if accept and not any(
        kind_.strip().split(";")[0] in ("application/fhir+json", "application/json", "*/*")
        for kind_ in accept.split(",")
    ):
        raise FhirError(
            406, Issue("error", NOT_SUPPORTED, "Accept must be application/fhir+json", ["Accept"])
        )
    unknown = sorted(name for name in request.GET if name not in SUPPORTED_PARAMETERS)
    if unknown:
        raise _bad(
            f"parameter(s) not supported by $export here: {', '.join(unknown)}",
            unknown[0],
            code=NOT_SUPPORTED,
        )
    output_format = request.GET.get("_outputFormat", "")
    if output_format and output_format not in OUTPUT_FORMATS:
        raise _bad(
            f"_outputFormat {output_format!r} is not supported (application/fhir+ndjson)",
            "_outputFormat",
            code=NOT_SUPPORTED,
        )
    types: list[str] = []
    for value in request.GET.getlist("_type"):
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if name not in R4_RESOURCE_TYPES or name in NOT_EXPORTED:
                raise _bad(f"_type {name!r} is not a resource type that can be exported", "_type")
            if name not in types:
                types.append(name)
    if request.GET.getlist("_type") and not types:
        raise _bad("_type is empty", "_type")
    if kind == "patient" and any(t in SHARED_TYPES for t in types):
        shared = [t for t in types if t in SHARED_TYPES]
        raise _bad(
            f"_type {', '.join(shared)} is not in the patient compartment (use /$export)",
            "_type",
        )
    since = None
    if "_since" in request.GET:
        try:
            since = parse_instant(request.GET["_since"])
        except ValueError:
            raise _bad(
                "_since must be a FHIR instant, e.g. 2026-01-31T00:00:00Z", "_since"
            ) from None
        if since > clock.now():
            raise _bad("_since is in the future", "_since")
    return ExportRequest(kind=kind, types=types, since=since)


def _bulk_may(principal: FhirPrincipal, resource_type: str) -> bool:
    """Bulk export reads through system/ and user/ scopes only: a patient/ scope is one
    patient's compartment, not a population."""
    return any(s.context != "patient" and s.grants(resource_type, READ) for s in principal.scopes)


def _insufficient(principal: FhirPrincipal, what: str) -> FhirAuthError:
    record_event(
        principal.user,
        Action.EXPORT,
        outcome=Outcome.DENIED,
        purpose=Purpose.SECURITY,
        object_type="fhir_export",
        reason=f"token scope does not allow bulk export of {what}"[:300],
        detail={"client_id": principal.client_id, "scope": principal.scope_text[:500]},
    )
    return FhirAuthError(
        403,
        Issue(
            "error",
            FORBIDDEN,
            f"insufficient_scope: bulk export of {what} needs a system/ or user/ read scope",
        ),
        headers={
            "WWW-Authenticate": 'Bearer realm="RecordRoom", error="insufficient_scope", '
            'scope="system/*.read user/*.read"'
        },
    )


def _export_types(principal: FhirPrincipal, parsed: ExportRequest) -> list[str]:
    """The types the job will export ([] = every type), after the scope and permission
    checks (each refusal audited)."""
    for name in parsed.types:
        if not _bulk_may(principal, name):
            raise _insufficient(principal, name)
    try:
        require_permission(
            principal.user,
            InteropPermission.BULK_EXPORT,
            action=Action.EXPORT,
            purpose=Purpose.OPERATIONS,
            object_type="fhir_export",
        )
    except AccessDenied:
        raise FhirError(
            403, Issue("error", FORBIDDEN, "this account may not run bulk exports")
        ) from None
    if parsed.types:
        return parsed.types
    if _bulk_may(principal, "*"):
        return []
    named = [
        s.resource_type
        for s in principal.scopes
        if s.context != "patient" and s.read and s.resource_type in R4_RESOURCE_TYPES
    ]
    types = [
        t
        for t in dict.fromkeys(named)
        if t not in NOT_EXPORTED and not (parsed.kind == "patient" and t in SHARED_TYPES)
    ]
    if not types:
        raise _insufficient(principal, "any resource type")
    return types


def start_export(principal: FhirPrincipal, request, kind: str) -> ExportJob:
    """Validate and store a kick-off request; the export runs as a background task."""
    parsed = parse_kickoff(request, kind)
    types = _export_types(principal, parsed)
    now = clock.now()
    job = ExportJob.objects.create(
        kind=kind,
        requested_by=principal.user,
        client_id=principal.client_id,
        request_url=request.build_absolute_uri()[:2000],
        types=types,
        since=parsed.since,
        status=ExportStatus.ACCEPTED,
        requested_at=now,
        progress="queued: waiting for a worker",
    )
    record_event(
        principal.user,
        Action.EXPORT,
        purpose=Purpose.OPERATIONS,
        object_type="fhir_export",
        object_id=str(job.public_id),
        reason="FHIR bulk export requested",
        detail={
            "client_id": principal.client_id,
            "kind": kind,
            "types": types,
            "since": parsed.since.isoformat() if parsed.since else None,
        },
    )
    from interop.tasks import delete_expired_bulk_exports, run_bulk_export

    run_bulk_export.enqueue(str(job.public_id))
    delete_expired_bulk_exports.enqueue()
    return job


# --- the job ----------------------------------------------------------------------------------


class Cancelled(Exception):
    """The job was cancelled (DELETE on its status URL) while it ran."""


def exported_patients(user):
    """The patients a bulk export by ``user`` may carry: at the user's facilities, not
    merged away, restricted ones only where the user may open them."""
    from patients.access import may_open_restricted, patients_visible_to
    from patients.permissions import PatientsPermission

    visible = patients_visible_to(user)
    if has_permission(user, PatientsPermission.MANAGE_RESTRICTIONS):
        return visible
    opened = [
        patient.pk
        for patient in visible.exclude(restriction="").iterator(chunk_size=chunk_size())
        if may_open_restricted(user, patient)
    ]
    return visible.filter(Q(restriction="") | Q(pk__in=opened))


def batches(queryset, size: int):
    """Lists of at most ``size`` rows, by ascending primary key (keyset pagination: each
    page is one indexed query, and memory holds one page)."""
    last = None
    while True:
        page_qs = queryset.order_by("pk")
        if last is not None:
            page_qs = page_qs.filter(pk__gt=last)
        page = list(page_qs[:size])
        if not page:
            return
        yield page
        last = page[-1].pk


class NdjsonFile:
    """One type's output: lines go to a temporary file (not memory), counted and hashed,
    then streamed into storage."""

    def __init__(self, job: ExportJob, resource_type: str):
        self.job = job
        self.resource_type = resource_type
        self.handle = tempfile.TemporaryFile()  # noqa: SIM115 - closed by save()
        self.count = 0
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, resource: dict) -> None:
        line = orjson.dumps(resource) + b"\n"
        self.handle.write(line)
        self.digest.update(line)
        self.count += 1
        self.size += len(line)

    def save(self) -> ExportFile | None:
        try:
            if not self.count:
                return None
            self.handle.seek(0)
            name = default_storage.save(
                f"fhir-export/{self.job.public_id}/{self.resource_type}.ndjson",
                File(self.handle, name=f"{self.resource_type}.ndjson"),
            )
            return ExportFile.objects.create(
                job=self.job,
                resource_type=self.resource_type,
                path=name,
                count=self.count,
                size=self.size,
                sha256=self.digest.hexdigest(),
            )
        finally:
            self.handle.close()


class Exporter:
    def __init__(self, job: ExportJob):
        self.job = job
        self.user = job.requested_by
        self.since = job.since
        self.size = chunk_size()
        self.patients = exported_patients(self.user)
        self.counts: dict[str, int] = {}
        self.skipped: list[str] = []

    # -- what is exported ----------------------------------------------------------------

    def candidate_types(self) -> list[str]:
        if self.job.types:
            return list(self.job.types)
        stored = self._stored_types()
        return list(DOMAIN_TYPES) + sorted(stored - set(DOMAIN_TYPES))

    def _stored_types(self) -> set[str]:
        candidates = R4_RESOURCE_TYPES - NOT_EXPORTED - RECEIVED_COPY_TYPES - CLINICAL_TYPES
        if self.job.kind == "patient":
            candidates = candidates - SHARED_TYPES
        return {
            name
            for name in candidates
            if FhirResource.objects.filter(resource_type=name, deleted=False).exists()
        }

    def may_read(self, resource_type: str) -> bool:
        from patients.permissions import PatientsPermission

        if resource_type == "Patient":
            return has_permission(self.user, PatientsPermission.READ_DEMOGRAPHICS)
        return has_permission(self.user, PatientsPermission.READ_CLINICAL)

    # -- running -------------------------------------------------------------------------

    def check_cancelled(self) -> None:
        if ExportJob.objects.filter(pk=self.job.pk, status=ExportStatus.CANCELLED).exists():
            raise Cancelled

    def progress(self, text: str) -> None:
        ExportJob.objects.filter(pk=self.job.pk, status=ExportStatus.RUNNING).update(
            progress=text[:100]
        )

    def run(self) -> list[ExportFile]:
        files: list[ExportFile] = []
        types = self.candidate_types()
        for index, resource_type in enumerate(types, start=1):
            if not self.may_read(resource_type):
                self.skipped.append(resource_type)
                continue
            self.progress(f"{resource_type} ({index} of {len(types)} types)")
            out = NdjsonFile(self.job, resource_type)
            try:
                for resource in self.resources(resource_type):
                    out.write(resource)
                    if out.count % self.size == 0:
                        self.check_cancelled()
            except BaseException:
                out.handle.close()
                raise
            saved = out.save()
            if saved is not None:
                files.append(saved)
                self.counts[resource_type] = saved.count
        if self.skipped:
            files.append(self.error_file())
        return files

    def error_file(self) -> ExportFile:
        out = NdjsonFile(self.job, "OperationOutcome")
        out.write(
            operation_outcome(
                [
                    Issue(
                        "error",
                        FORBIDDEN,
                        f"{name} not exported: the account may not read clinical data",
                        [name],
                    )
                    for name in self.skipped
                ]
            )
        )
        return out.save()

    # -- rows of each type ---------------------------------------------------------------

    def resources(self, resource_type: str):
        if resource_type == "Patient":
            yield from self.patient_resources()
        elif resource_type == "Encounter":
            yield from self.encounter_resources()
        elif resource_type == "DocumentReference":
            yield from self.document_resources()
        elif resource_type in CLINICAL_TYPES:
            yield from self.clinical_resources(resource_type)
        else:
            yield from self.stored_resources(resource_type)

    def _received(self, resource_type: str, ids: list[str]) -> dict[str, FhirResource]:
        rows = FhirResource.objects.filter(
            resource_type=resource_type, fhir_id__in=ids, deleted=False
        )
        return {row.fhir_id: row for row in rows}

    def patient_resources(self):
        from interop.serialize import patient_resource

        queryset = self.patients.prefetch_related(
            "names", "identifiers__facility", "addresses", "telecoms"
        )
        if self.since:
            queryset = queryset.filter(updated_at__gte=self.since)
        for page in batches(queryset, self.size):
            received = self._received("Patient", [str(p.public_id) for p in page])
            for patient in page:
                yield patient_resource(patient, received.get(str(patient.public_id)))

    def encounter_resources(self):
        from coding.export import encounter_diagnoses_of
        from encounters.models import Encounter
        from interop.serialize import encounter_resource

        queryset = (
            Encounter.objects.filter(patient__in=self.patients)
            .select_related("facility", "attending", "patient")
            .prefetch_related("locations")
        )
        if self.since:
            queryset = queryset.filter(updated_at__gte=self.since)
        for page in batches(queryset, self.size):
            received = self._received("Encounter", [str(e.public_id) for e in page])
            # The chunk's final codes together: a bounded number of queries a chunk.
            final_codes = encounter_diagnoses_of(page)
            for encounter in page:
                yield encounter_resource(
                    encounter,
                    received.get(str(encounter.public_id)),
                    final_codes=final_codes[encounter.pk],
                )

    def document_resources(self):
        from documents.models import Document, DocumentStatus
        from interop.serialize import document_resource

        # Authenticated documents only, never a sensitive one: drafts are not yet part
        # of the legal record, and sensitive categories need their own authorization.
        queryset = (
            Document.objects.filter(patient__in=self.patients, is_sensitive=False)
            .filter(
                status__in=[
                    DocumentStatus.FINAL,
                    DocumentStatus.AMENDED,
                    DocumentStatus.CORRECTED,
                    DocumentStatus.ENTERED_IN_ERROR,
                ]
            )
            .select_related(
                "doc_type", "author", "encounter", "patient", "current_version", "addendum_to"
            )
        )
        if self.since:
            queryset = queryset.filter(updated_at__gte=self.since)
        for page in batches(queryset, self.size):
            received = self._received("DocumentReference", [str(d.public_id) for d in page])
            for document in page:
                yield document_resource(
                    document, received.get(str(document.public_id)), content_shown=True
                )

    def clinical_resources(self, resource_type: str):
        from clinical.models import ClinicalEntry, ClinicalEntryVersion
        from interop.serialize import clinical_resource

        queryset = ClinicalEntry.objects.filter(
            patient__in=self.patients, resource_type=resource_type
        )
        if self.since:
            changed = ClinicalEntryVersion.objects.filter(
                entry=OuterRef("pk"), changed_at__gte=self.since
            )
            queryset = queryset.filter(Q(recorded_at__gte=self.since) | Exists(changed))
        for page in batches(queryset, self.size):
            for entry in page:
                yield clinical_resource(entry)

    def stored_resources(self, resource_type: str):
        from interop.serialize import stored_resource

        queryset = FhirResource.objects.filter(resource_type=resource_type, deleted=False)
        if resource_type in SHARED_TYPES:
            if self.job.kind == "patient":
                return
            queryset = queryset.filter(patient__isnull=True)
        else:
            queryset = queryset.filter(patient__in=self.patients)
        if self.since:
            queryset = queryset.filter(last_updated__gte=self.since)
        for page in batches(queryset, self.size):
            for row in page:
                yield stored_resource(row)


def run_export(job_public_id: str) -> str:
    """Run one export job (the task's body). Returns the job's final status."""
    job = ExportJob.objects.select_related("requested_by").filter(public_id=job_public_id).first()
    if job is None or job.status != ExportStatus.ACCEPTED:
        return job.status if job is not None else "missing"
    started = clock.now()
    claimed = ExportJob.objects.filter(pk=job.pk, status=ExportStatus.ACCEPTED).update(
        status=ExportStatus.RUNNING, transaction_time=started, progress="starting"
    )
    if not claimed:
        return ExportStatus.CANCELLED
    job.refresh_from_db()
    exporter = Exporter(job)
    try:
        files = exporter.run()
    except Cancelled:
        _delete_files(job)
        return ExportStatus.CANCELLED
    except Exception as error:
        # Messages never carry patient data: the exception's type names the failure.
        logger.exception("bulk export %s failed", job.public_id)
        _delete_files(job)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportStatus.FAILED,
            completed_at=clock.now(),
            error=f"the export failed ({type(error).__name__})",
            progress="failed",
        )
        return ExportStatus.FAILED
    finished = clock.now()
    updated = ExportJob.objects.filter(pk=job.pk, status=ExportStatus.RUNNING).update(
        status=ExportStatus.COMPLETED,
        completed_at=finished,
        expires_at=finished + dt.timedelta(hours=export_hours()),
        progress="completed",
    )
    if not updated:  # cancelled while the last file was being saved
        _delete_files(job)
        return ExportStatus.CANCELLED
    _audit_export(job, exporter, files)
    return ExportStatus.COMPLETED


def _audit_export(job: ExportJob, exporter: Exporter, files: list[ExportFile]) -> None:
    """One export event: how many patients' records left, and (up to a cap) whose."""
    cap = audit_id_cap()
    count = exporter.patients.count()
    ids = [
        str(public_id)
        for public_id in exporter.patients.order_by("pk").values_list("public_id", flat=True)[:cap]
    ]
    record_event(
        job.requested_by,
        Action.EXPORT,
        purpose=Purpose.OPERATIONS,
        object_type="fhir_export",
        object_id=str(job.public_id),
        reason="FHIR bulk export completed",
        detail={
            "client_id": job.client_id,
            "kind": job.kind,
            "patients": count,
            "patient_ids": ids,
            "patient_ids_truncated": count > len(ids),
            "resources": {f.resource_type: f.count for f in files},
            "since": job.since.isoformat() if job.since else None,
        },
    )


def _delete_files(job: ExportJob) -> None:
    for export_file in ExportFile.objects.filter(job=job):
        if export_file.path and default_storage.exists(export_file.path):
            default_storage.delete(export_file.path)


# --- polling, files, cancelling --------------------------------------------------------------


def _not_found(principal: FhirPrincipal, public_id, reason: str, *, what: str) -> FhirError:
    record_event(
        principal.user,
        Action.EXPORT,
        outcome=Outcome.DENIED,
        purpose=Purpose.OPERATIONS,
        object_type=what,
        object_id=str(public_id)[:64],
        reason=reason,
        detail={"client_id": principal.client_id},
    )
    return FhirError(404, Issue("error", NOT_FOUND, f"no such {what.replace('_', ' ')}"))


def access_export_job(principal: FhirPrincipal, public_id) -> ExportJob:
    """The caller's own job (any other answers 404, audited)."""
    job = ExportJob.objects.filter(public_id=public_id).first()
    if job is None:
        raise _not_found(principal, public_id, "no such export job", what="fhir_export")
    if not principal.same_principal(user_id=job.requested_by_id, client_id=job.client_id):
        raise _not_found(
            principal, public_id, "export job of another client or user", what="fhir_export"
        )
    if job.status == ExportStatus.CANCELLED:
        raise _not_found(principal, public_id, "export job was cancelled", what="fhir_export")
    if job.expires_at is not None and job.expires_at <= clock.now():
        raise _not_found(principal, public_id, "export job has expired", what="fhir_export")
    return job


@dataclass
class ExportStatusAnswer:
    status: int
    body: dict | None
    headers: dict[str, str]


def export_status(principal: FhirPrincipal, public_id, *, file_url) -> ExportStatusAnswer:
    """The status request's answer: 202 + X-Progress, 200 + manifest, 500 + outcome."""
    job = access_export_job(principal, public_id)
    if job.status in (ExportStatus.ACCEPTED, ExportStatus.RUNNING):
        return ExportStatusAnswer(
            202, None, {"X-Progress": job.progress or job.status, "Retry-After": "5"}
        )
    if job.status == ExportStatus.FAILED:
        return ExportStatusAnswer(
            500,
            operation_outcome([Issue("error", PROCESSING, job.error or "the export failed")]),
            {},
        )
    files = list(ExportFile.objects.filter(job=job).order_by("resource_type", "pk"))
    output = [
        {"type": f.resource_type, "url": file_url(f.public_id), "count": f.count}
        for f in files
        if f.resource_type != "OperationOutcome"
    ]
    errors = [
        {"type": "OperationOutcome", "url": file_url(f.public_id), "count": f.count}
        for f in files
        if f.resource_type == "OperationOutcome"
    ]
    from interop.serialize import instant

    manifest = {
        "transactionTime": instant(job.transaction_time),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": output,
        "error": errors,
    }
    headers = {}
    if job.expires_at is not None:
        from django.utils.http import http_date

        headers["Expires"] = http_date(job.expires_at.timestamp())
    return ExportStatusAnswer(200, manifest, headers)


def do_cancel_export(principal: FhirPrincipal, public_id) -> None:
    """Cancel a job (running or done): its files are deleted and it answers 404 from
    then on."""
    job = access_export_job(principal, public_id)
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportStatus.CANCELLED, progress="cancelled", completed_at=clock.now()
    )
    _delete_files(job)
    record_event(
        principal.user,
        Action.EXPORT,
        purpose=Purpose.OPERATIONS,
        object_type="fhir_export",
        object_id=str(job.public_id),
        reason="FHIR bulk export cancelled",
        detail={"client_id": principal.client_id},
    )


def open_export_file(principal: FhirPrincipal, public_id):
    """(file handle, ExportFile) of one output file for the job's own caller."""
    export_file = ExportFile.objects.select_related("job").filter(public_id=public_id).first()
    if export_file is None:
        raise _not_found(principal, public_id, "no such export file", what="fhir_export_file")
    job = export_file.job
    if not principal.same_principal(user_id=job.requested_by_id, client_id=job.client_id):
        raise _not_found(
            principal, public_id, "export file of another client or user", what="fhir_export_file"
        )
    if (
        job.status != ExportStatus.COMPLETED
        or (job.expires_at is not None and job.expires_at <= clock.now())
        or not default_storage.exists(export_file.path)
    ):
        raise _not_found(
            principal, public_id, "export file expired or cancelled", what="fhir_export_file"
        )
    handle = default_storage.open(export_file.path, "rb")
    record_event(
        principal.user,
        Action.EXPORT,
        purpose=Purpose.OPERATIONS,
        object_type="fhir_export_file",
        object_id=str(export_file.public_id),
        reason="FHIR bulk export file downloaded",
        detail={
            "client_id": principal.client_id,
            "job": str(job.public_id),
            "type": export_file.resource_type,
            "count": export_file.count,
        },
    )
    return handle, export_file


def delete_expired_exports(now=None) -> int:
    """Delete the files of expired jobs (the rows stay, as the record of what was
    exported). Returns how many jobs were cleaned."""
    now = now or clock.now()
    cleaned = 0
    expired = ExportJob.objects.filter(expires_at__lte=now, status=ExportStatus.COMPLETED).exclude(
        progress=FILES_DELETED
    )
    for job in expired.iterator(chunk_size=100):
        _delete_files(job)
        ExportJob.objects.filter(pk=job.pk).update(progress=FILES_DELETED)
        cleaned += 1
    return cleaned
