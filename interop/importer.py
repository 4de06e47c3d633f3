"""The FHIR import engine: one unit (a Bundle, one NDJSON line, one lone resource file)
at a time, all or nothing.

For each unit: parse (orjson) → validate every resource (``fhir.resources`` R4B) →
find what each resource already became (:class:`interop.models.SourceKey`) and what is
unchanged (the SHA-256 of its canonical JSON as received) → match or register patients
(the MPI) → resolve every reference to RecordRoom's ids → write the domain rows and the
stored resources in ONE transaction. Any problem rejects the whole unit: the transaction
rolls back (files stored for it are removed) and the unit is quarantined
(:class:`interop.models.ImportUnit`, status rejected, the raw bytes and an
OperationOutcome naming the resource and the element) for an administrator to fix and
replay.

Where each resource type goes (the storage contract the FHIR API serves from):

* Patient → ``patients.Patient`` (matched on identifiers or registered at the import's
  facility) + the received JSON in ``FhirResource(fhir_id=patient.public_id)``;
* Encounter → ``encounters.Encounter`` + ``FhirResource``;
* DocumentReference → ``documents.Document`` (attachments decoded) + ``FhirResource``;
* Condition, Procedure, Observation, MedicationRequest, MedicationStatement,
  AllergyIntolerance, Immunization → ``clinical.ClinicalEntry`` only;
* everything else → ``FhirResource`` whole.

References that cannot be resolved (not in the unit, not imported before, not a
RecordRoom id) reject the unit with a ``not-found`` issue naming the reference; a later
replay succeeds once the target has arrived. Absolute references to other servers and
references to contained resources are kept as written.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError as PydanticValidationError

from audit.actions import record_event
from audit.models import Action, Purpose
from clinical import imports as clinical_imports
from clinical.models import ClinicalEntry
from documents import imports as document_imports
from documents.integrity import discard_unrecorded
from documents.models import Document
from encounters import imports as encounter_imports
from encounters.imports import parse_moment
from encounters.models import Encounter
from interop import outcome as oo
from interop.models import FhirResource, FhirResourceVersion, ImportUnit, SourceKey, UnitStatus
from interop.outcome import Issue
from interop.references import parse_reference, rewrite_references
from patients import imports as patient_imports
from patients.models import IdentifierKind, Patient, PatientIdentifier
from recordroom import clock

DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_POST_BYTES = 20 * 1024 * 1024
MAX_ISSUES = 50
DOMAIN_TYPES = frozenset({"Patient", "Encounter", "DocumentReference"})
CLINICAL_TYPES = clinical_imports.CLINICAL_TYPES
BUNDLE_TYPES = frozenset({"transaction", "batch", "collection", "searchset", "document", "message"})
# Types written first, so that what the rest references exists (also the order the
# command imports files in).
TYPE_ORDER = {
    "Patient": 0,
    "Organization": 1,
    "Practitioner": 1,
    "PractitionerRole": 2,
    "Location": 2,
    "Encounter": 3,
}


def max_bundle_bytes(channel: str = "command") -> int:
    """The largest unit accepted: ``RECORDROOM_FHIR_MAX_BUNDLE_BYTES`` when set, else
    100 MB for files and 20 MB for POST /fhir."""
    configured = getattr(settings, "RECORDROOM_FHIR_MAX_BUNDLE_BYTES", None)
    if configured:
        return int(configured)
    return DEFAULT_MAX_POST_BYTES if channel == "api" else DEFAULT_MAX_FILE_BYTES


def canonical_sha256(resource: dict) -> str:
    return hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()


class UnitRejected(Exception):
    def __init__(self, issues: list[Issue], *, resource_types: Counter | None = None) -> None:
        super().__init__(issues[0].diagnostics if issues else "rejected")
        self.issues = issues
        self.resource_types = resource_types or Counter()


@dataclass
class EntryResult:
    resource_type: str
    fhir_id: str
    version: int
    outcome: str  # created, updated, unchanged


@dataclass
class UnitResult:
    accepted: bool
    unit: ImportUnit | None = None
    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    entries: list[EntryResult] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    patients: set[str] = field(default_factory=set)
    resource_types: Counter = field(default_factory=Counter)
    deferred: bool = False

    @property
    def reason(self) -> str:
        return self.issues[0].diagnostics[:300] if self.issues else ""

    @property
    def outcome(self) -> dict:
        return oo.operation_outcome(self.issues)


@dataclass
class ImportContext:
    acting_user: object
    facility: object
    source: str = "import"
    channel: str = "command"
    source_label: str = ""


@dataclass
class _Entry:
    index: int
    full_url: str
    resource: dict
    resource_type: str
    namespace: str
    source_id: str
    sha256: str
    path: str  # FHIRPath of the resource in the unit, e.g. Bundle.entry[3].resource
    method: str = ""
    bundled: bool = True
    key: SourceKey | None = None
    fhir_id: str = ""
    unchanged: bool = False
    patient_data: object = None
    matched_patient: Patient | None = None


# --- reading a unit -----------------------------------------------------------------------


def _label(entry_index: int | None, resource: dict) -> str:
    rtype = resource.get("resourceType", "?") if isinstance(resource, dict) else "?"
    rid = resource.get("id") if isinstance(resource, dict) else None
    what = f"{rtype}/{rid}" if rid else str(rtype)
    return what if entry_index is None else f"Bundle.entry[{entry_index}] ({what})"


def _entry_label(entry) -> str:
    return _label(entry.index if entry.bundled else None, entry.resource)


def _model_class(resource_type: str):
    try:
        return get_fhir_model_class(resource_type)
    except (ValueError, KeyError, AttributeError):
        return None


def _loc_path(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}"
    return path


def _validation_issues(error: PydanticValidationError, label: str, root: str) -> list[Issue]:
    issues = []
    for item in error.errors()[:10]:
        loc = tuple(p for p in item.get("loc", ()) if p != "__root__")
        element = root + _loc_path(loc)
        kind = item.get("type", "")
        code = oo.REQUIRED if "missing" in kind else oo.STRUCTURE if "extra" in kind else oo.VALUE
        message = str(item.get("msg", "invalid"))
        issues.append(Issue("error", code, f"{label}: {element}: {message}", [element]))
    return issues


def _entries_of(document, label_root: str) -> tuple[list[tuple[int | None, str, dict, str]], str]:
    """(index, fullUrl, resource, method) of each resource of the unit, and the bundle
    type ('' for a lone resource)."""
    if not isinstance(document, dict):
        raise UnitRejected(
            [
                Issue(
                    "error",
                    oo.STRUCTURE,
                    "The input is JSON but not a FHIR resource (not an object).",
                )
            ]
        )
    resource_type = document.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise UnitRejected(
            [
                Issue(
                    "error",
                    oo.STRUCTURE,
                    "The input is JSON but not a FHIR resource: it has no resourceType.",
                    ["resourceType"],
                )
            ]
        )
    if resource_type != "Bundle":
        return [(None, "", document, "")], ""
    bundle_type = document.get("type")
    if bundle_type not in BUNDLE_TYPES:
        raise UnitRejected(
            [
                Issue(
                    "error",
                    oo.VALUE,
                    f"Bundle.type {bundle_type!r} cannot be imported (one of "
                    f"{', '.join(sorted(BUNDLE_TYPES))}).",
                    ["Bundle.type"],
                )
            ]
        )
    entries = document.get("entry") or []
    if not isinstance(entries, list):
        raise UnitRejected(
            [Issue("error", oo.STRUCTURE, "Bundle.entry is not a list.", ["Bundle.entry"])]
        )
    result = []
    issues = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            request = entry.get("request") if isinstance(entry, dict) else None
            method = (request or {}).get("method", "") if isinstance(request, dict) else ""
            if method in ("GET", "DELETE", "HEAD"):
                issues.append(
                    Issue(
                        "error",
                        oo.NOT_SUPPORTED,
                        f"Bundle.entry[{index}]: request method {method} is not supported in an "
                        "import (RecordRoom never deletes from the record).",
                        [f"Bundle.entry[{index}].request.method"],
                    )
                )
            else:
                issues.append(
                    Issue(
                        "error",
                        oo.REQUIRED,
                        f"Bundle.entry[{index}] has no resource.",
                        [f"Bundle.entry[{index}].resource"],
                    )
                )
            continue
        request = entry.get("request") or {}
        method = str(request.get("method", "")) if isinstance(request, dict) else ""
        if method in ("DELETE", "GET", "HEAD", "PATCH"):
            issues.append(
                Issue(
                    "error",
                    oo.NOT_SUPPORTED,
                    f"Bundle.entry[{index}]: request method {method} is not supported in an import.",
                    [f"Bundle.entry[{index}].request.method"],
                )
            )
            continue
        result.append((index, str(entry.get("fullUrl") or ""), entry["resource"], method))
    if issues:
        raise UnitRejected(issues)
    return result, bundle_type


def _validate(items, bundle: bool) -> list[Issue]:
    issues: list[Issue] = []
    for index, _, resource, _ in items:
        root_path = f"Bundle.entry[{index}].resource" if bundle else ""
        resource_type = resource.get("resourceType")
        label = _label(index, resource)
        if not isinstance(resource_type, str) or not resource_type:
            element = f"{root_path}.resourceType" if root_path else "resourceType"
            issues.append(Issue("error", oo.STRUCTURE, f"{label}: no resourceType.", [element]))
            continue
        if resource_type == "Bundle":
            issues.append(
                Issue(
                    "error",
                    oo.NOT_SUPPORTED,
                    f"{label}: a Bundle inside a Bundle is not imported; import it on its own.",
                    [root_path or "Bundle"],
                )
            )
            continue
        model = _model_class(resource_type)
        if model is None:
            element = f"{root_path}.resourceType" if root_path else "resourceType"
            issues.append(
                Issue(
                    "error",
                    oo.NOT_SUPPORTED,
                    f"{label}: {resource_type!r} is not a FHIR R4 resource type.",
                    [element],
                )
            )
            continue
        try:
            model.model_validate(resource)
        except PydanticValidationError as error:
            issues.extend(_validation_issues(error, label, root_path or resource_type))
        except (ValueError, TypeError) as error:
            issues.append(
                Issue(
                    "error", oo.VALUE, f"{label}: {str(error)[:200]}", [root_path or resource_type]
                )
            )
        if len(issues) >= MAX_ISSUES:
            break
    return issues[:MAX_ISSUES]


def _duplicates(items, bundle: bool) -> list[Issue]:
    issues = []
    urls: dict[str, int] = {}
    ids: dict[tuple, int] = {}
    for index, full_url, resource, _ in items:
        if full_url:
            if full_url in urls:
                issues.append(
                    Issue(
                        "error",
                        oo.DUPLICATE,
                        f"Bundle.entry[{index}] has the same fullUrl as Bundle.entry[{urls[full_url]}].",
                        [f"Bundle.entry[{index}].fullUrl"],
                    )
                )
            urls[full_url] = index
        rid = resource.get("id")
        if rid:
            key = (resource.get("resourceType"), rid)
            if key in ids:
                issues.append(
                    Issue(
                        "error",
                        oo.DUPLICATE,
                        f"Bundle.entry[{index}] has the same id as Bundle.entry[{ids[key]}] "
                        f"({key[0]}/{rid}).",
                        [f"Bundle.entry[{index}].resource.id"],
                    )
                )
            ids[key] = index
    return issues


def read_unit(raw: bytes, *, default_namespace: str) -> tuple[list[_Entry], str]:
    """Parse and validate a unit; raise :class:`UnitRejected` with every issue found."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise UnitRejected(
            [Issue("error", oo.STRUCTURE, f"The input is not JSON: {str(error)[:200]}")]
        ) from None
    items, bundle_type = _entries_of(document, "")
    bundle = bool(bundle_type)
    types = Counter(
        r.get("resourceType") if isinstance(r.get("resourceType"), str) else "unknown"
        for _, _, r, _ in items
    )
    issues = _validate(items, bundle) + _duplicates(items, bundle)
    if issues:
        raise UnitRejected(issues, resource_types=types)
    entries = []
    for index, full_url, resource, method in items:
        sha = canonical_sha256(resource)
        meta_source = (resource.get("meta") or {}).get("source")
        namespace = str(meta_source or default_namespace or "import")[:200]
        source_id = str(resource.get("id") or full_url or f"sha256:{sha}")[:200]
        entries.append(
            _Entry(
                index=index if index is not None else 0,
                full_url=full_url,
                resource=resource,
                resource_type=resource["resourceType"],
                namespace=namespace,
                source_id=source_id,
                sha256=sha,
                path=f"Bundle.entry[{index}].resource" if bundle else resource["resourceType"],
                method=method,
                bundled=bundle,
            )
        )
    return entries, bundle_type


# --- resolving ids and references ---------------------------------------------------------


def _on_file(resource_type: str, fhir_id: str) -> bool:
    """Whether RecordRoom holds a resource of this type with this logical id."""
    try:
        uuid_value = uuid.UUID(fhir_id)
    except ValueError:
        uuid_value = None
    if resource_type == "Patient":
        return uuid_value is not None and Patient.objects.filter(public_id=uuid_value).exists()
    if resource_type == "Encounter":
        return uuid_value is not None and Encounter.objects.filter(public_id=uuid_value).exists()
    if resource_type == "DocumentReference":
        return uuid_value is not None and Document.objects.filter(public_id=uuid_value).exists()
    if resource_type in CLINICAL_TYPES:
        return (
            uuid_value is not None
            and ClinicalEntry.objects.filter(
                public_id=uuid_value, resource_type=resource_type
            ).exists()
        )
    return FhirResource.objects.filter(resource_type=resource_type, fhir_id=fhir_id).exists()


def _identifier_namespace(system: str) -> str:
    return f"identifier|{system}"[:200]


def _identifier_keys(entry: _Entry) -> list[tuple[str, str]]:
    result = []
    for identifier in entry.resource.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("value"):
            result.append((str(identifier.get("system") or ""), str(identifier["value"])[:200]))
    return result


class _Resolver:
    def __init__(self, entries: list[_Entry]) -> None:
        self.by_url = {e.full_url: e for e in entries if e.full_url}
        self.by_id = {
            (e.resource_type, str(e.resource["id"])): e for e in entries if e.resource.get("id")
        }
        self.by_identifier: dict[tuple, _Entry] = {}
        for entry in entries:
            for system, value in _identifier_keys(entry):
                self.by_identifier.setdefault((entry.resource_type, system, value), entry)
        self.cache: dict[tuple, str | None] = {}

    def _lookup_relative(self, namespace: str, resource_type: str, source_id: str) -> str | None:
        cache_key = ("rel", namespace, resource_type, source_id)
        if cache_key not in self.cache:
            key = (
                SourceKey.objects.filter(
                    namespace=namespace, resource_type=resource_type, source_id=source_id
                )
                .values_list("fhir_id", flat=True)
                .first()
            )
            if key is None and _on_file(resource_type, source_id):
                key = source_id
            self.cache[cache_key] = key
        return self.cache[cache_key]

    def _lookup_identifier(self, resource_type: str, system: str, value: str) -> str | None:
        cache_key = ("ident", resource_type, system, value)
        if cache_key not in self.cache:
            found = None
            if resource_type == "Patient":
                from patients.matching import normalize_identifier

                row = (
                    PatientIdentifier.objects.filter(
                        issuer=system[:100], value=normalize_identifier(value), active=True
                    )
                    .exclude(kind=IdentifierKind.MRN)
                    .select_related("patient")
                    .first()
                )
                found = str(row.patient.public_id) if row else None
            else:
                found = (
                    SourceKey.objects.filter(
                        namespace=_identifier_namespace(system),
                        resource_type=resource_type,
                        source_id=value[:200],
                    )
                    .values_list("fhir_id", flat=True)
                    .first()
                )
            self.cache[cache_key] = found
        return self.cache[cache_key]

    def resolve(self, reference: str, namespace: str) -> tuple[str | None, bool]:
        """(the rewritten reference or None to keep it, whether it is dangling)."""
        parsed = parse_reference(reference)
        if parsed.kind in ("contained", "other"):
            return None, False
        if parsed.kind == "urn" or parsed.kind == "absolute":
            target = self.by_url.get(reference)
            if target is not None:
                return f"{target.resource_type}/{target.fhir_id}", False
            return None, parsed.kind == "urn"
        if parsed.kind == "relative":
            target = self.by_id.get((parsed.resource_type, parsed.source_id))
            if target is not None:
                return f"{target.resource_type}/{target.fhir_id}", False
            found = self._lookup_relative(namespace, parsed.resource_type, parsed.source_id)
            if found:
                return f"{parsed.resource_type}/{found}", False
            return None, True
        if parsed.kind == "conditional":
            target = self.by_identifier.get((parsed.resource_type, parsed.system, parsed.value))
            if target is not None:
                return f"{target.resource_type}/{target.fhir_id}", False
            found = self._lookup_identifier(parsed.resource_type, parsed.system, parsed.value)
            if found:
                return f"{parsed.resource_type}/{found}", False
            return None, True
        return None, False


def _assign_ids(entries: list[_Entry]) -> list[Issue]:
    """Find each entry's SourceKey, decide what is unchanged, and give every entry its
    RecordRoom id (patients through the MPI)."""
    wanted = defaultdict(set)
    for entry in entries:
        wanted[entry.namespace].add(entry.source_id)
    keys: dict[tuple, SourceKey] = {}
    for namespace, source_ids in wanted.items():
        source_ids = list(source_ids)
        for start in range(0, len(source_ids), 500):
            for key in SourceKey.objects.filter(
                namespace=namespace, source_id__in=source_ids[start : start + 500]
            ):
                keys[(key.namespace, key.resource_type, key.source_id)] = key
    issues: list[Issue] = []
    for entry in entries:
        entry.key = keys.get((entry.namespace, entry.resource_type, entry.source_id))
        if entry.key is not None:
            entry.fhir_id = entry.key.fhir_id
            entry.unchanged = entry.key.content_sha256 == entry.sha256
        if entry.resource_type == "Patient" and not entry.unchanged:
            try:
                entry.patient_data = patient_imports.patient_data_from_fhir(entry.resource)
            except patient_imports.PatientMappingError as error:
                element = entry.path + error.element.removeprefix("Patient")
                issues.append(
                    Issue(
                        "error",
                        oo.REQUIRED,
                        f"{_entry_label(entry)}: {error.message}",
                        [element],
                    )
                )
                continue
            if entry.key is None:
                entry.matched_patient = patient_imports.find_patient(entry.patient_data)
                if entry.matched_patient is not None:
                    entry.fhir_id = str(entry.matched_patient.public_id)
        if not entry.fhir_id:
            entry.fhir_id = str(uuid.uuid4())
    return issues


def _resolve(entries: list[_Entry]) -> list[Issue]:
    resolver = _Resolver(entries)
    issues: list[Issue] = []
    for entry in entries:
        if entry.unchanged:
            continue
        stored = copy.deepcopy(entry.resource)

        dangling_refs: list[str] = []

        def replace(reference: str, entry=entry, dangling_refs=dangling_refs) -> str | None:
            new, dangling = resolver.resolve(reference, entry.namespace)
            if dangling:
                dangling_refs.append(reference)
            return new

        rewrite_references(stored, replace)
        for reference in dangling_refs[:5]:
            issues.append(
                Issue(
                    "error",
                    oo.NOT_FOUND,
                    f"{_entry_label(entry)}: "
                    f"the reference {reference[:120]} is not in the unit and was not imported "
                    "before; import its target, then replay this unit.",
                    [f"{entry.path}"],
                )
            )
        stored["id"] = entry.fhir_id
        entry.resource = stored
    return issues


# --- writing ------------------------------------------------------------------------------

_DATE_PATHS = (
    "effectiveDateTime",
    "effectivePeriod.start",
    "occurrenceDateTime",
    "performedDateTime",
    "performedPeriod.start",
    "period.start",
    "billablePeriod.start",
    "created",
    "authoredOn",
    "issued",
    "recorded",
    "date",
    "started",
    "onsetDateTime",
    "recordedDate",
    "birthDate",
)


def search_columns(resource: dict) -> dict:
    moment = None
    for path in _DATE_PATHS:
        value = resource
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        moment = parse_moment(value) if isinstance(value, str) else None
        if moment is not None:
            break
    status = resource.get("status")
    code = ""
    for element in ("code", "type", "vaccineCode", "medicationCodeableConcept"):
        concept = resource.get(element)
        if isinstance(concept, list):
            concept = concept[0] if concept else None
        if isinstance(concept, dict):
            codings = concept.get("coding") or []
            if codings and isinstance(codings[0], dict) and codings[0].get("code"):
                code = str(codings[0]["code"])
                break
    return {
        "date": moment,
        "status": str(status)[:40] if isinstance(status, str) else "",
        "code": code[:64],
    }


def _referenced_id(resource: dict, elements: tuple[str, ...], resource_type: str) -> str | None:
    for element in elements:
        value = resource.get(element)
        candidates = value if isinstance(value, list) else [value]
        for candidate in candidates:
            if isinstance(candidate, dict):
                reference = candidate.get("reference")
                if isinstance(reference, str) and reference.startswith(f"{resource_type}/"):
                    return reference.split("/", 2)[1]
    return None


class _Writer:
    def __init__(self, ctx: ImportContext, result: UnitResult, now) -> None:
        self.ctx = ctx
        self.result = result
        self.now = now
        self.stored_files: list[str] = []
        self.patients: dict[str, Patient] = {}
        self.encounters: dict[str, Encounter] = {}
        self.new_resources: list[tuple[FhirResource, dict]] = []
        self.keys_new: list[SourceKey] = []
        self.keys_changed: list[SourceKey] = []
        self.new_entries: list[ClinicalEntry] = []
        self.with_mrn: set[int] = set()

    # look-ups of what entries reference
    def patient(self, fhir_id: str | None) -> Patient | None:
        if not fhir_id:
            return None
        if fhir_id not in self.patients:
            try:
                self.patients[fhir_id] = Patient.objects.filter(
                    public_id=uuid.UUID(fhir_id)
                ).first()
            except ValueError:
                self.patients[fhir_id] = None
        return self.patients[fhir_id]

    def encounter(self, fhir_id: str | None) -> Encounter | None:
        if not fhir_id:
            return None
        if fhir_id not in self.encounters:
            try:
                self.encounters[fhir_id] = Encounter.objects.filter(
                    public_id=uuid.UUID(fhir_id)
                ).first()
            except ValueError:
                self.encounters[fhir_id] = None
        return self.encounters[fhir_id]

    def _reject(self, entry: _Entry, element: str, message: str, code: str = oo.VALUE):
        raise UnitRejected(
            [
                Issue(
                    "error",
                    code,
                    f"{_entry_label(entry)}: {message}",
                    [entry.path + ("." + element if element else "")],
                )
            ]
        )

    def _count(self, entry: _Entry, what: str, version: int) -> None:
        self.result.counts[entry.resource_type][what] += 1
        self.result.entries.append(EntryResult(entry.resource_type, entry.fhir_id, version, what))

    def _source_key(self, entry: _Entry) -> None:
        if entry.key is None:
            self.keys_new.append(
                SourceKey(
                    namespace=entry.namespace,
                    resource_type=entry.resource_type,
                    source_id=entry.source_id,
                    fhir_id=entry.fhir_id,
                    content_sha256=entry.sha256,
                    first_seen_at=self.now,
                    last_seen_at=self.now,
                )
            )
        else:
            entry.key.fhir_id = entry.fhir_id
            entry.key.content_sha256 = entry.sha256
            entry.key.last_seen_at = self.now
            self.keys_changed.append(entry.key)
        if entry.resource_type not in DOMAIN_TYPES and entry.resource_type not in CLINICAL_TYPES:
            for system, value in _identifier_keys(entry):
                self.keys_new.append(
                    SourceKey(
                        namespace=_identifier_namespace(system),
                        resource_type=entry.resource_type,
                        source_id=value,
                        fhir_id=entry.fhir_id,
                        content_sha256="",
                        first_seen_at=self.now,
                        last_seen_at=self.now,
                    )
                )

    def store_resource(self, entry: _Entry, *, patient=None, encounter=None) -> tuple[str, int]:
        """Keep the resource whole in FhirResource: a new row with version 1, or a new
        version of the row. Returns (created/updated/unchanged, version)."""
        content = entry.resource
        columns = search_columns(content)
        existing = None
        if entry.key is not None or entry.matched_patient is not None:
            # A new id (uuid4) was never stored; only a known or matched one may be.
            existing = (
                FhirResource.objects.select_for_update()
                .filter(resource_type=entry.resource_type, fhir_id=entry.fhir_id)
                .first()
            )
        if existing is None:
            row = FhirResource(
                resource_type=entry.resource_type,
                fhir_id=entry.fhir_id,
                version_id=1,
                last_updated=self.now,
                content=content,
                content_sha256=entry.sha256,
                patient=patient,
                encounter=encounter,
                source=entry.namespace[:200],
                **columns,
            )
            self.new_resources.append((row, content))
            return "created", 1
        if existing.content_sha256 == entry.sha256 and existing.content == content:
            return "unchanged", existing.version_id
        existing.version_id += 1
        existing.last_updated = self.now
        existing.content = content
        existing.content_sha256 = entry.sha256
        existing.patient = patient or existing.patient
        existing.encounter = encounter or existing.encounter
        existing.source = entry.namespace[:200]
        existing.deleted = False
        for key, value in columns.items():
            setattr(existing, key, value)
        existing.save()
        FhirResourceVersion.objects.create(
            resource=existing,
            version_id=existing.version_id,
            content=content,
            recorded_at=self.now,
            recorded_by=self.ctx.acting_user,
            reason="updated by import",
        )
        return "updated", existing.version_id

    def flush(self) -> None:
        clinical_imports.save_imported_entries(
            self.new_entries, acting_user=self.ctx.acting_user, now=self.now
        )
        self.new_entries = []
        if self.new_resources:
            rows = [row for row, _ in self.new_resources]
            FhirResource.objects.bulk_create(rows, batch_size=500)
            FhirResourceVersion.objects.bulk_create(
                [
                    FhirResourceVersion(
                        resource=row,
                        version_id=1,
                        content=content,
                        recorded_at=self.now,
                        recorded_by=self.ctx.acting_user,
                        reason="imported",
                    )
                    for row, content in self.new_resources
                ],
                batch_size=500,
            )
            self.new_resources = []
        if self.keys_new:
            SourceKey.objects.bulk_create(self.keys_new, batch_size=500, ignore_conflicts=True)
            self.keys_new = []
        if self.keys_changed:
            SourceKey.objects.bulk_update(
                self.keys_changed, ["fhir_id", "content_sha256", "last_seen_at"], batch_size=500
            )
            self.keys_changed = []

    # per type
    def write_patient(self, entry: _Entry) -> None:
        data = entry.patient_data
        reason = f"imported from {entry.namespace}"[:300]
        patient = (
            self.patient(entry.fhir_id) if entry.key is not None or entry.matched_patient else None
        )
        if patient is None:
            patient = patient_imports.register_imported_patient(
                data,
                public_id=uuid.UUID(entry.fhir_id),
                facility=self.ctx.facility,
                acting_user=self.ctx.acting_user,
                now=self.now,
                reason=reason,
            )
            self.patients[entry.fhir_id] = patient
            self.with_mrn.add(patient.pk)
            what = "created"
        else:
            patient_imports.ensure_mrn(patient, self.ctx.facility, self.now)
            patient_imports.update_imported_patient(
                patient, data, acting_user=self.ctx.acting_user, now=self.now, reason=reason
            )
            what = "updated"
        _, version = self.store_resource(entry, patient=patient)
        self._count(entry, what, version)
        self.result.patients.add(str(patient.public_id))
        self._source_key(entry)

    def _subject(self, entry: _Entry, elements: tuple[str, ...], required: bool) -> Patient | None:
        patient_id = _referenced_id(entry.resource, elements, "Patient")
        patient = self.patient(patient_id)
        if patient is None and required:
            self._reject(
                entry,
                elements[0],
                f"RecordRoom keeps a {entry.resource_type} with its patient: "
                f"{' or '.join(elements)} must reference a Patient.",
                oo.REQUIRED,
            )
        if patient is not None and patient.pk not in self.with_mrn:
            self.result.patients.add(str(patient.public_id))
            patient_imports.ensure_mrn(patient, self.ctx.facility, self.now)
            self.with_mrn.add(patient.pk)
        return patient

    def _encounter_of(self, entry: _Entry, elements: tuple[str, ...], patient) -> Encounter | None:
        encounter = self.encounter(_referenced_id(entry.resource, elements, "Encounter"))
        if encounter is not None and patient is not None and encounter.patient_id != patient.pk:
            self._reject(entry, elements[0], "The encounter is another patient's.", oo.INVARIANT)
        return encounter

    def write_encounter(self, entry: _Entry) -> None:
        patient = self._subject(entry, ("subject",), True)
        try:
            values = encounter_imports.encounter_values(entry.resource)
        except encounter_imports.EncounterMappingError as error:
            self._reject(
                entry, error.element.removeprefix("Encounter."), error.message, oo.REQUIRED
            )
        existing = self.encounter(entry.fhir_id) if entry.key is not None else None
        reason = f"imported from {entry.namespace}"[:300]
        if existing is None:
            encounter = encounter_imports.create_imported_encounter(
                patient,
                facility=self.ctx.facility,
                values=values,
                public_id=uuid.UUID(entry.fhir_id),
                acting_user=self.ctx.acting_user,
                now=self.now,
                reason=reason,
            )
            self.encounters[entry.fhir_id] = encounter
        else:
            if existing.patient_id != patient.pk:
                self._reject(
                    entry, "subject", "The encounter cannot move to another patient.", oo.INVARIANT
                )
            encounter_imports.update_imported_encounter(
                existing,
                values=values,
                acting_user=self.ctx.acting_user,
                now=self.now,
                reason=reason,
            )
            encounter = existing
        stored, version = self.store_resource(entry, patient=patient, encounter=encounter)
        self._count(entry, "created" if existing is None else "updated", version)
        self._source_key(entry)

    def write_document(self, entry: _Entry) -> None:
        patient = self._subject(entry, ("subject",), True)
        context = entry.resource.get("context") or {}
        encounter = self.encounter(_referenced_id(context, ("encounter",), "Encounter"))
        if encounter is not None and encounter.patient_id != patient.pk:
            self._reject(
                entry, "context.encounter", "The encounter is another patient's.", oo.INVARIANT
            )
        try:
            values = document_imports.document_values(entry.resource, now=self.now)
        except document_imports.DocumentMappingError as error:
            self._reject(entry, error.element.removeprefix("DocumentReference."), error.message)
        if values["service_at"].date() < patient.birth_date:
            self._reject(
                entry, "date", "The date of service is before the patient's date of birth."
            )
        document = None
        if entry.key is not None:
            try:
                document = Document.objects.filter(public_id=uuid.UUID(entry.fhir_id)).first()
            except ValueError:
                document = None
        if document is None:
            document_imports.create_imported_document(
                patient,
                encounter=encounter,
                values=values,
                public_id=uuid.UUID(entry.fhir_id),
                acting_user=self.ctx.acting_user,
                now=self.now,
                stored=self.stored_files,
            )
        else:
            document_imports.update_imported_document(
                document,
                encounter=encounter,
                values=values,
                acting_user=self.ctx.acting_user,
                now=self.now,
                stored=self.stored_files,
            )
        stored, version = self.store_resource(entry, patient=patient, encounter=encounter)
        self._count(entry, "created" if document is None else "updated", version)
        self._source_key(entry)

    def write_clinical(self, entry: _Entry) -> None:
        rtype = entry.resource_type
        patient = self._subject(entry, (clinical_imports.patient_element(rtype),), True)
        encounter = self._encounter_of(entry, (clinical_imports.encounter_element(rtype),), patient)
        columns, errors = clinical_imports.clinical_columns(rtype, entry.resource)
        if errors:
            raise UnitRejected(
                [
                    Issue(
                        "error",
                        oo.VALUE if element != "code" else oo.REQUIRED,
                        f"{_entry_label(entry)}: {message}",
                        [f"{entry.path}.{element}"],
                    )
                    for element, messages in errors.items()
                    for message in messages
                ]
            )
        existing = None
        if entry.key is not None:
            existing = ClinicalEntry.objects.filter(
                public_id=uuid.UUID(entry.fhir_id), resource_type=rtype
            ).first()
        if existing is None:
            row = clinical_imports.new_imported_entry(
                patient,
                encounter=encounter,
                resource=entry.resource,
                columns=columns,
                public_id=uuid.UUID(entry.fhir_id),
                source=entry.namespace,
                acting_user=self.ctx.acting_user,
                now=self.now,
            )
            self.new_entries.append(row)
            self._count(entry, "created", row.version)
        else:
            if existing.patient_id != patient.pk:
                self._reject(
                    entry,
                    clinical_imports.patient_element(rtype),
                    "The entry cannot move to another patient.",
                    oo.INVARIANT,
                )
            row = clinical_imports.update_imported_entry(
                existing,
                encounter=encounter,
                resource=entry.resource,
                columns=columns,
                acting_user=self.ctx.acting_user,
                now=self.now,
            )
            self._count(entry, "updated", row.version)
        self._source_key(entry)

    def write_other(self, entry: _Entry) -> None:
        patient = self.patient(
            _referenced_id(
                entry.resource, ("subject", "patient", "beneficiary", "individual"), "Patient"
            )
        )
        encounter = self.encounter(
            _referenced_id(entry.resource, ("encounter", "context"), "Encounter")
        )
        if patient is None and encounter is not None:
            patient = encounter.patient
        if patient is not None:
            self.result.patients.add(str(patient.public_id))
        what, version = self.store_resource(entry, patient=patient, encounter=encounter)
        if what == "unchanged":
            what = "updated"  # the SourceKey was new or changed: counted as a change
        self._count(entry, what, version)
        self._source_key(entry)

    def write(self, entry: _Entry) -> None:
        if entry.unchanged:
            self._count(entry, "unchanged", 0)
            return
        rtype = entry.resource_type
        if rtype == "Patient":
            self.write_patient(entry)
        elif rtype == "Encounter":
            self.write_encounter(entry)
        elif rtype == "DocumentReference":
            self.write_document(entry)
        elif rtype in CLINICAL_TYPES:
            self.write_clinical(entry)
        else:
            self.write_other(entry)


def _order(entry: _Entry) -> tuple:
    return (TYPE_ORDER.get(entry.resource_type, 9), entry.index)


def _store_rejected(
    raw: bytes, ctx: ImportContext, position: str, result: UnitResult, replay_of=None
) -> None:
    """Quarantine the unit in its own transaction. The same bytes already waiting in
    quarantine are not kept twice."""
    raw_sha = hashlib.sha256(raw).hexdigest()
    with transaction.atomic():
        existing = (
            ImportUnit.objects.filter(status=UnitStatus.REJECTED, raw_sha256=raw_sha)
            .order_by("-received_at")
            .first()
            if raw
            else None
        )
        if existing is not None and replay_of is None:
            result.unit = existing
            return
        result.unit = ImportUnit.objects.create(
            received_at=clock.now(),
            received_by=ctx.acting_user,
            channel=ctx.channel,
            source=(ctx.source_label or ctx.source)[:300],
            position=position[:40],
            raw=raw,
            raw_sha256=raw_sha,
            status=UnitStatus.REJECTED,
            outcome=result.outcome,
            reason=result.reason,
            replay_of=replay_of,
        )
        record_event(
            ctx.acting_user,
            Action.CREATE,
            purpose=Purpose.OPERATIONS,
            object_type="import_unit",
            object_id=str(result.unit.public_id),
            reason="import unit rejected (quarantined)",
            detail={
                "status": UnitStatus.REJECTED,
                "channel": ctx.channel,
                "issues": len(result.issues),
                "resource_types": dict(result.resource_types),
            },
        )


def import_unit(
    raw: bytes,
    ctx: ImportContext,
    *,
    position: str = "",
    quarantine: bool = True,
    defer_dangling: bool = False,
    replay_of: ImportUnit | None = None,
    status_on_success: str = UnitStatus.ACCEPTED,
    size: int | None = None,
) -> UnitResult:
    """Import one unit, all or nothing (``size``: the unit's size when ``raw`` was not
    read because it is too large). A rejected unit is quarantined (unless
    ``quarantine`` is False, or ``defer_dangling`` and its only problem is a reference
    whose target may still arrive: then ``result.deferred`` is set and nothing is kept).
    The caller has checked the import permission."""
    result = UnitResult(accepted=False)
    limit = max_bundle_bytes(ctx.channel)
    size = len(raw) if size is None else size
    if size > limit:
        # Refused on its size alone, before parsing; the bytes are not kept.
        result.issues = [
            Issue(
                "error",
                oo.TOO_LONG,
                f"The unit is {size:,} bytes; the limit is {limit:,} "
                "(RECORDROOM_FHIR_MAX_BUNDLE_BYTES). Split it into smaller bundles or NDJSON.",
            )
        ]
        if quarantine:
            _store_rejected(b"", ctx, position, result, replay_of)
        return result
    stored_files: list[str] = []
    try:
        entries, _ = read_unit(raw, default_namespace=ctx.source)
        result.resource_types = Counter(e.resource_type for e in entries)
        issues = _assign_ids(entries)
        if issues:
            raise UnitRejected(issues)
        issues = _resolve(entries)
        if issues:
            raise UnitRejected(issues)
        with transaction.atomic():
            now = clock.now()
            writer = _Writer(ctx, result, now)
            stored_files = writer.stored_files
            for entry in sorted(entries, key=_order):
                writer.write(entry)
            writer.flush()
            totals = Counter()
            for counter in result.counts.values():
                totals.update(counter)
            changed = totals["created"] + totals["updated"]
            if changed or replay_of is not None:
                result.unit = ImportUnit.objects.create(
                    received_at=now,
                    received_by=ctx.acting_user,
                    channel=ctx.channel,
                    source=(ctx.source_label or ctx.source)[:300],
                    position=position[:40],
                    raw=b"",
                    raw_sha256=hashlib.sha256(raw).hexdigest(),
                    status=status_on_success,
                    created=totals["created"],
                    updated=totals["updated"],
                    unchanged=totals["unchanged"],
                    replay_of=replay_of,
                )
                patients = sorted(result.patients)
                record_event(
                    ctx.acting_user,
                    Action.CREATE if totals["created"] else Action.UPDATE,
                    purpose=Purpose.OPERATIONS,
                    patient_id=patients[0] if len(patients) == 1 else None,
                    object_type="import_unit",
                    object_id=str(result.unit.public_id),
                    reason="FHIR import",
                    detail={
                        "channel": ctx.channel,
                        "status": status_on_success,
                        "patients": patients[:1000],
                        "counts": {t: dict(c) for t, c in sorted(result.counts.items())},
                    },
                )
        result.accepted = True
        return result
    except UnitRejected as rejected:
        for name in stored_files:
            discard_unrecorded(name)
        result.issues = rejected.issues
        result.resource_types = result.resource_types or rejected.resource_types
        result.counts = defaultdict(Counter)
        result.entries = []
        result.patients = set()
    except (IntegrityError, DatabaseError) as error:
        for name in stored_files:
            discard_unrecorded(name)
        result.issues = [
            Issue(
                "error",
                oo.CONFLICT,
                f"The unit could not be written ({type(error).__name__}); nothing of it was kept. "
                "It may conflict with data written at the same time: replay it.",
            )
        ]
        result.counts = defaultdict(Counter)
        result.entries = []
        result.patients = set()
    except BaseException:
        for name in stored_files:
            discard_unrecorded(name)
        raise
    if defer_dangling and all(i.code == oo.NOT_FOUND for i in result.issues):
        result.deferred = True
        return result
    if quarantine:
        _store_rejected(raw, ctx, position, result, replay_of)
    return result


# --- POST /fhir: transaction and batch -----------------------------------------------------


def _response_entry(entry: EntryResult) -> dict:
    status = "201 Created" if entry.outcome == "created" else "200 OK"
    return {
        "response": {
            "status": status,
            "location": f"{entry.resource_type}/{entry.fhir_id}/_history/{max(entry.version, 1)}",
        }
    }


def _current_version(resource_type: str, fhir_id: str) -> int:
    if resource_type in CLINICAL_TYPES:
        row = (
            ClinicalEntry.objects.filter(public_id=fhir_id)
            .values_list("version", flat=True)
            .first()
        )
        return row or 1
    row = (
        FhirResource.objects.filter(resource_type=resource_type, fhir_id=fhir_id)
        .values_list("version_id", flat=True)
        .first()
    )
    return row or 1


def _entry_results_in_order(raw_entries: list, result: UnitResult) -> list[dict]:
    # The writer works in dependency order; the response follows the request's order.
    by_order = list(result.entries)
    ordered_types = [e["resource"]["resourceType"] for e in raw_entries]
    pools: dict[str, list[EntryResult]] = defaultdict(list)
    for item in by_order:
        pools[item.resource_type].append(item)
    response = []
    for rtype in ordered_types:
        item = pools[rtype].pop(0)
        if item.outcome == "unchanged":
            item.version = _current_version(item.resource_type, item.fhir_id)
        response.append(_response_entry(item))
    return response


def _status_for(issues: list[Issue]) -> int:
    codes = {i.code for i in issues}
    if oo.TOO_LONG in codes:
        return 413
    if codes & {oo.STRUCTURE} and not codes - {oo.STRUCTURE}:
        return 400
    if oo.NOT_SUPPORTED in codes and "resourceType" in str([i.expression for i in issues]):
        return 400
    if codes & {oo.CONFLICT}:
        return 409
    return 422 if codes - {oo.STRUCTURE} else 400


def process_bundle_request(body: bytes, *, acting_user, source: str) -> tuple[int, dict]:
    """POST /fhir with a transaction or batch Bundle. Returns (HTTP status, the response
    Bundle or an OperationOutcome).

    * transaction: all or nothing — a ``transaction-response`` whose entries say
      ``201 Created`` / ``200 OK`` with ``location`` ``Type/id/_history/n``; any problem
      → the OperationOutcome (400 for what is not JSON/FHIR, 413 too large, 422 for
      invalid content or unresolved references), nothing written;
    * batch: each entry on its own (its own transaction), a ``batch-response`` whose
      failed entries carry their OperationOutcome.

    Rejected units are quarantined like those of the command. Requires
    ``interop.import`` (a refusal is audited and answered 403).
    """
    from accounts.access import AccessDenied, require_permission
    from interop.import_actions import import_facility
    from interop.permissions import InteropPermission

    try:
        require_permission(
            acting_user, InteropPermission.IMPORT, action=Action.CREATE, object_type="import_unit"
        )
    except AccessDenied:
        return 403, oo.operation_outcome(
            [Issue("error", oo.FORBIDDEN, "This account may not import FHIR data.")]
        )
    limit = max_bundle_bytes("api")
    if len(body) > limit:
        return 413, oo.operation_outcome(
            [
                Issue(
                    "error",
                    oo.TOO_LONG,
                    f"The bundle is {len(body):,} bytes; the limit is {limit:,}. Split it.",
                )
            ]
        )
    try:
        facility = import_facility(acting_user, None)
    except oo.FhirError as error:
        return error.status, error.outcome
    ctx = ImportContext(
        acting_user=acting_user,
        facility=facility,
        source=source or "api",
        channel="api",
        source_label=source or "api",
    )
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        # Not JSON: quarantined like any unreadable unit, and answered 400.
        result = import_unit(body, ctx)
        return 400, result.outcome
    if (
        not isinstance(document, dict)
        or document.get("resourceType") != "Bundle"
        or document.get("type") not in ("transaction", "batch")
    ):
        return 400, oo.operation_outcome(
            [
                Issue(
                    "error",
                    oo.INVALID,
                    "POST /fhir takes a Bundle of type transaction or batch; create a single "
                    "resource with POST /fhir/[type].",
                    ["Bundle.type"],
                )
            ]
        )
    entries = document.get("entry") or []
    if document["type"] == "transaction":
        result = import_unit(body, ctx)
        if not result.accepted:
            return _status_for(result.issues), result.outcome
        return 200, {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": _entry_results_in_order(entries, result),
        }
    response_entries = []
    for index, entry in enumerate(entries):
        single = {"resourceType": "Bundle", "type": "batch", "entry": [entry]}
        raw = orjson.dumps(single)
        result = import_unit(raw, ctx, position=f"entry {index}")
        if result.accepted:
            response_entries.append(_entry_results_in_order([entry], result)[0])
        else:
            issues = [
                Issue(
                    i.severity,
                    i.code,
                    i.diagnostics.replace("Bundle.entry[0]", f"Bundle.entry[{index}]"),
                    [e.replace("Bundle.entry[0]", f"Bundle.entry[{index}]") for e in i.expression],
                )
                for i in result.issues
            ]
            status = _status_for(issues)
            response_entries.append(
                {
                    "response": {
                        "status": f"{status} {'Bad Request' if status == 400 else 'Unprocessable Entity' if status == 422 else 'Error'}",
                        "outcome": oo.operation_outcome(issues),
                    }
                }
            )
    return 200, {"resourceType": "Bundle", "type": "batch-response", "entry": response_entries}
