"""The FHIR import engine: units (a Bundle, one NDJSON line, one lone resource file),
each all or nothing.

For each unit: parse (orjson) → find what each resource already became
(:class:`interop.models.SourceKey`) and what is unchanged (the SHA-256 of its canonical
JSON as received, compared FIRST: unchanged content is not validated again) → validate
every changed resource (``fhir.resources`` R4B) → match or register patients (the MPI)
→ resolve every reference to RecordRoom's ids → write the domain rows and the stored
resources. Any problem rejects the whole unit: nothing of it is written (files stored
for it are removed) and it is quarantined alone (:class:`interop.models.ImportUnit`,
status rejected, the raw bytes, the namespace it was received under and an
OperationOutcome naming the resource and the element) for an administrator to fix and
replay.

Several units can be imported together (:func:`import_units`: the command gives the
lines of an NDJSON file in batches): they are read and resolved together (SourceKeys
looked up in bulk; a line may reference another line of the batch, in any order), then
written in ONE transaction, with ONE accepted ``ImportUnit`` row (counts, position
"line a – line b") and ONE audit event listing the ids of the patients touched. A unit
refused while reading or resolving is left out; one refused while writing rolls the
batch back and the batch is written again without it (and without what referenced
it), so each unit is still all or nothing and quarantined alone. Units that would see
each other as already imported one after the other (the same resource twice, a patient
the index would match to another line's) are written in a following round. Look-ups
(source keys, patients, encounters, MRNs at the facility) are kept for the whole run
(:class:`RunCache`, bounded).

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
replay succeeds once the target has arrived. With ``ImportContext.allow_unresolved``
(``import-fhir --allow-unresolved``, for reference material) such a reference is kept as
written and reported as a ``warning`` issue in the accepted unit's outcome, unless
RecordRoom needs it to place the resource: its patient (``subject``, ``patient``,
``beneficiary``, ``individual``) or its encounter (``encounter``, ``context``,
``context.encounter``). Absolute references to other servers and references to
contained resources are kept as written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import hashlib
import os
import sys
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError as PydanticValidationError

from audit.actions import record_event, record_events
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
from interop.bindings import binding_problems
from interop.fast_insert import fast_bulk_create, insert_rows, json_text, table
from interop.models import FhirResource, FhirResourceVersion, ImportUnit, SourceKey, UnitStatus
from interop.outcome import Issue
from interop.references import PATIENT_ELEMENTS, parse_reference, reference_holders
from patients import imports as patient_imports
from patients.models import IdentifierKind, Patient, PatientIdentifier
from recordroom import clock

DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_POST_BYTES = 20 * 1024 * 1024
MAX_ISSUES = 50
DOMAIN_TYPES = frozenset({"Patient", "Encounter", "DocumentReference"})
CLINICAL_TYPES = clinical_imports.CLINICAL_TYPES
BUNDLE_TYPES = frozenset({"transaction", "batch", "collection", "searchset", "document", "message"})
# The order the command imports NDJSON files and lone resources in, so that what the
# rest references exists when it arrives: the usual direction of FHIR
# references — organisations and people before patients, patients before their visits,
# the problems a visit names before the visit, orders and specimens before results,
# results before reports, everything before the documents that gather it. A reference
# against that direction (a condition naming its encounter) makes its unit wait for a
# later round, which costs a second pass over it.
TYPE_ORDER = {
    "Endpoint": 0,
    "Organization": 0,
    "Practitioner": 1,
    "Location": 1,
    "Medication": 1,
    "Device": 1,
    "PractitionerRole": 2,
    "Patient": 3,
    "Bundle": 4,  # a file holding a Bundle (its entries carry their own references)
    "RelatedPerson": 4,
    "Coverage": 4,
    "Condition": 5,
    "Encounter": 6,
    "ServiceRequest": 7,
    "Specimen": 7,
    "ImagingStudy": 8,
    "MedicationRequest": 8,
    "Observation": 9,
    "Procedure": 9,
    "MedicationAdministration": 10,
    "DiagnosticReport": 10,
    "Composition": 12,
    "Provenance": 13,
}
# For files of other types.
DEFAULT_ORDER = 11
# The order entries are WRITTEN in, within a unit and among the units of a batch: what
# a row points to (a patient, an encounter) exists before the row that points to it.
WRITE_ORDER = {
    "Patient": 0,
    "Organization": 1,
    "Practitioner": 1,
    "PractitionerRole": 2,
    "Location": 2,
    "Encounter": 3,
}


def max_bundle_bytes(channel: str = "command") -> int:
    """The largest unit accepted: ``settings.FHIR_MAX_BUNDLE_BYTES`` (the environment's
    ``RECORDROOM_FHIR_MAX_BUNDLE_BYTES``) when set, else 100 MB for files and 20 MB for
    POST /fhir."""
    configured = getattr(settings, "FHIR_MAX_BUNDLE_BYTES", None)
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
    warnings: list[Issue] = field(default_factory=list)
    # A deferred unit: what it waits for, and what it holds, as (namespace, type, id).
    waiting_for: set[tuple] = field(default_factory=set)
    keys: set[tuple] = field(default_factory=set)

    @property
    def reason(self) -> str:
        return self.issues[0].diagnostics[:300] if self.issues else ""

    @property
    def outcome(self) -> dict:
        return oo.operation_outcome(self.issues)


class RunCache:
    """What one import run has looked up, kept across its units: source keys that
    resolve, patients and encounters by RecordRoom id, patients known to hold an MRN at
    the import's facility. Only what exists is remembered, and what a batch wrote only
    once its transaction has committed. Each map is cleared when it grows past
    ``LIMIT`` entries (source keys: ``KEYS_LIMIT``), so memory stays flat on a large
    population."""

    LIMIT = 20_000
    # Source keys are small (two short strings) and every resource written adds one: a
    # map cleared every 20,000 of them forgot the patients and encounters that the next
    # files reference, which were then looked up again batch after batch.
    KEYS_LIMIT = 200_000

    def __init__(self) -> None:
        self.keys: dict[tuple, str] = {}
        self.patients: dict[str, Patient] = {}
        self.encounters: dict[str, Encounter] = {}
        self.with_mrn: set[tuple[int, int]] = set()
        # The batches written so far, and after which of them each source key was last
        # written: a batch whose keys were looked up ahead of its turn (by
        # ValidationWorker.submit) looks up again only the keys written since.
        self.generation = 0
        self.written: dict[tuple, int] = {}
        self.written_forgotten_at = 0  # ``written`` was last cleared after this batch
        # PostgreSQL: source keys written since the table's statistics were last
        # refreshed by this run, and how many rows they described (None: not read yet).
        self.keys_unanalyzed = 0
        self.keys_analyzed: float | None = None

    def remember_key(self, key: tuple, fhir_id: str) -> None:
        if len(self.keys) >= self.KEYS_LIMIT:
            self.keys.clear()
        self.keys[key] = fhir_id

    def written_since(self, key: tuple, generation: int) -> bool:
        """Whether this run may have written ``key`` after batch ``generation``."""
        return self.written_forgotten_at > generation or self.written.get(key, 0) > generation

    def remember(self, writer: _Writer) -> None:
        for mine, theirs in (
            (self.patients, writer.patients),
            (self.encounters, writer.encounters),
        ):
            if len(mine) + len(theirs) > self.LIMIT:
                mine.clear()
            mine.update((k, v) for k, v in theirs.items() if v is not None)
        if len(self.with_mrn) > self.LIMIT * 5:
            self.with_mrn.clear()
        self.with_mrn |= writer.with_mrn
        self.generation += 1
        if len(self.written) + len(writer.keys_written) > self.KEYS_LIMIT:
            self.written.clear()
            self.written_forgotten_at = self.generation
        for key, fhir_id in writer.keys_written:
            self.remember_key(key, fhir_id)
            self.written[key] = self.generation


@dataclass
class ImportContext:
    acting_user: object
    facility: object
    source: str = "import"
    channel: str = "command"
    source_label: str = ""
    # Keep references RecordRoom does not need to place a resource (anything but its
    # patient and its encounter) as written when they cannot be resolved, with a warning.
    allow_unresolved: bool = False
    cache: RunCache = field(default_factory=RunCache)


@dataclass
class _Entry:
    index: int
    full_url: str
    resource: dict
    # The id as received (``resource`` has its references and its id rewritten in place
    # once resolved; :func:`_find_holders` restores them before resolving again).
    original_id: object
    has_id: bool
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
    holders: list = field(default_factory=list)
    references: list[str] | None = None  # each holder's reference as received
    identifiers: list[tuple[str, str]] | None = None
    # Where its Reference elements are (found by the validation process), as paths of
    # keys and indexes from the resource.
    paths: list[tuple[tuple, str]] | None = None
    # Its search columns, computed by the validation process from the resource as
    # received (they read no reference): clinical_columns' (columns, errors) for a
    # clinical type, search_columns' dict for the others.
    columns: object = None


@dataclass(eq=False)
class _Unit:
    """One unit on its way in: its bytes, where it sits in its source, what it holds."""

    raw: bytes
    position: str = ""
    source_label: str = ""  # the file it came from, where a batch mixes files
    validated: bool = False  # these very bytes passed validation before (a retry)
    prepared: bool = False  # parsed and checked (entries set, or rejected)
    checked: _Checked | None = None  # issues found by the validation process
    check_index: int = 0
    # Its entries' source keys were looked up after this many batches of the run had
    # been written (None: not yet looked up).
    keys_as_of: int | None = None
    number: int = 0
    result: UnitResult = field(default_factory=lambda: UnitResult(accepted=False))
    entries: list[_Entry] = field(default_factory=list)
    rejected: bool = False
    warnings: list[Issue] = field(default_factory=list)
    depends: set[int] = field(default_factory=set)
    # (namespace, type, id) of the relative references found nowhere (when deferred).
    waiting_for: set[tuple] = field(default_factory=set)
    by_url: dict = field(default_factory=dict)
    by_id: dict = field(default_factory=dict)
    by_identifier: dict = field(default_factory=dict)


# --- reading a unit -----------------------------------------------------------------------


def _label(entry_index: int | None, resource: dict) -> str:
    rtype = resource.get("resourceType", "?") if isinstance(resource, dict) else "?"
    rid = resource.get("id") if isinstance(resource, dict) else None
    what = f"{rtype}/{rid}" if rid else str(rtype)
    return what if entry_index is None else f"Bundle.entry[{entry_index}] ({what})"


def _entry_label(entry) -> str:
    # The sender's id, as received: the admin reading the outcome knows that one.
    what = (
        f"{entry.resource_type}/{entry.original_id}" if entry.original_id else entry.resource_type
    )
    return what if not entry.bundled else f"Bundle.entry[{entry.index}] ({what})"


@functools.lru_cache(maxsize=256)
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


def _check_types(items, bundle: bool) -> tuple[list[Issue], list[tuple]]:
    """The cheap checks of each resource (a resourceType RecordRoom knows, no nested
    Bundle); returns the issues and the items whose model can be validated."""
    issues: list[Issue] = []
    valid = []
    for item in items:
        index, _, resource, _ = item
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
        if _model_class(resource_type) is None:
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
        valid.append(item)
    return issues, valid


def validate_resource(resource: dict, index: int | None, bundle: bool) -> list[Issue]:
    """Validate one resource with its ``fhir.resources`` R4B model (the costly step of
    an import: about 0.3–0.7 ms for an Observation)."""
    root_path = f"Bundle.entry[{index}].resource" if bundle else ""
    resource_type = resource["resourceType"]
    label = _label(index, resource)
    try:
        _model_class(resource_type).model_validate(resource)
    except PydanticValidationError as error:
        return _validation_issues(error, label, root_path or resource_type)
    except (ValueError, TypeError) as error:
        return [
            Issue("error", oo.VALUE, f"{label}: {str(error)[:200]}", [root_path or resource_type])
        ]
    return [
        Issue("error", oo.VALUE, f"{label}: {message}", [f"{root_path or resource_type}.{element}"])
        for element, message in binding_problems(resource)
    ]


def _validate(items, bundle: bool) -> list[Issue]:
    issues, valid = _check_types(items, bundle)
    for index, _, resource, _ in valid:
        issues.extend(validate_resource(resource, index, bundle))
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


def _make_entries(items, bundle: bool, default_namespace: str) -> list[_Entry]:
    entries = []
    for index, full_url, resource, method in items:
        sha = canonical_sha256(resource)
        meta = resource.get("meta")
        meta_source = meta.get("source") if isinstance(meta, dict) else None
        namespace = str(meta_source or default_namespace or "import")[:200]
        source_id = str(resource.get("id") or full_url or f"sha256:{sha}")[:200]
        entries.append(
            _Entry(
                index=index if index is not None else 0,
                full_url=full_url,
                resource=resource,
                original_id=resource.get("id"),
                has_id="id" in resource,
                resource_type=resource["resourceType"],
                namespace=namespace,
                source_id=source_id,
                sha256=sha,
                path=f"Bundle.entry[{index}].resource" if bundle else resource["resourceType"],
                method=method,
                bundled=bundle,
            )
        )
    return entries


def _parse(raw: bytes) -> tuple[list, str]:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise UnitRejected(
            [Issue("error", oo.STRUCTURE, f"The input is not JSON: {str(error)[:200]}")]
        ) from None
    return _entries_of(document, "")


def _types_of(items) -> Counter:
    return Counter(
        r.get("resourceType") if isinstance(r.get("resourceType"), str) else "unknown"
        for _, _, r, _ in items
    )


def read_unit(raw: bytes, *, default_namespace: str) -> tuple[list[_Entry], str]:
    """Parse and validate a unit; raise :class:`UnitRejected` with every issue found."""
    items, bundle_type = _parse(raw)
    bundle = bool(bundle_type)
    issues = _validate(items, bundle) + _duplicates(items, bundle)
    if issues:
        raise UnitRejected(issues, resource_types=_types_of(items))
    return _make_entries(items, bundle, default_namespace), bundle_type


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
    """(system, value) of each identifier of the entry, read once."""
    if entry.identifiers is not None:
        return entry.identifiers
    result = []
    for identifier in entry.resource.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("value"):
            result.append((str(identifier.get("system") or ""), str(identifier["value"])[:200]))
    entry.identifiers = result
    return result


_PARSED: dict[str, object] = {}


def _parse_reference(reference: str):
    """:func:`parse_reference`, remembered: the same references (a patient, a
    practitioner) recur in thousands of resources."""
    found = _PARSED.get(reference)
    if found is None:
        if len(_PARSED) >= 50_000:
            _PARSED.clear()
        found = _PARSED[reference] = parse_reference(reference)
    return found


# The elements that place a resource in RecordRoom (its patient and its encounter): a
# reference there must resolve, even with ``allow_unresolved``.
_PLACING = frozenset(PATIENT_ELEMENTS) | {"encounter"}


def places_resource(element: str) -> bool:
    """Whether a reference in ``element`` (as :func:`reference_holders` names it) is one
    RecordRoom needs to place the resource: its patient or its encounter."""
    top, _, rest = element.partition(".")
    if top in _PLACING:
        return True
    return top == "context" and rest in ("", "encounter")


def _source_key_rows(namespace: str, resource_type: str, source_ids: list[str], columns: str):
    """(``columns`` of) the source keys of these ids in one namespace and resource
    type, looked up 500 ids at a time through the whole of the unique index (namespace,
    type, id). On PostgreSQL the ids go as one array (``= ANY``, one parameter instead
    of 500 literals); the planner uses the id in the index condition once the table has
    statistics, which :func:`_refresh_statistics` keeps up during a long import."""
    table = connection.ops.quote_name(SourceKey._meta.db_table)
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        for start in range(0, len(source_ids), 500):
            chunk = source_ids[start : start + 500]
            if postgres:
                condition, params = "source_id = ANY(%s)", [chunk]
            else:
                condition, params = f"source_id IN ({', '.join(['%s'] * len(chunk))})", chunk
            cursor.execute(
                f"SELECT {columns} FROM {table} "  # noqa: S608 - names from the model
                f"WHERE namespace = %s AND resource_type = %s AND {condition}",
                [namespace, resource_type, *params],
            )
            yield from cursor.fetchall()


def _load_keys(entries: list[_Entry]) -> None:
    """Find what each entry already became (its SourceKey) and whether it is unchanged,
    with one query per namespace, resource type and 500 ids (an entry not found keeps
    no key)."""
    wanted = defaultdict(set)
    for entry in entries:
        wanted[(entry.namespace, entry.resource_type)].add(entry.source_id)
    keys: dict[tuple, SourceKey] = {}
    for (namespace, resource_type), source_ids in wanted.items():
        for pk, source_id, fhir_id, sha256 in _source_key_rows(
            namespace, resource_type, list(source_ids), "id, source_id, fhir_id, content_sha256"
        ):
            # Only what the writer reads and updates (bulk_update by key).
            key = SourceKey(
                pk=pk,
                namespace=namespace,
                resource_type=resource_type,
                source_id=source_id,
                fhir_id=fhir_id,
                content_sha256=sha256,
            )
            key._state.adding, key._state.db = False, connection.alias
            keys[(namespace, resource_type, source_id)] = key
    for entry in entries:
        entry.key = keys.get((entry.namespace, entry.resource_type, entry.source_id))
        if entry.key is not None:
            entry.fhir_id = entry.key.fhir_id
            entry.unchanged = entry.key.content_sha256 == entry.sha256
        else:
            entry.fhir_id, entry.unchanged = "", False


def _load_keys_of(units: list[_Unit], cache: RunCache) -> None:
    """:func:`_load_keys` for the units' entries — of a unit whose keys were looked up
    ahead of its turn, only those this run has written since. A key written meanwhile
    by another import is found when the batch is written: its insert conflicts, and
    the unit is refused for replay rather than made twice."""
    entries: list[_Entry] = []
    for unit in units:
        as_of = unit.keys_as_of
        if as_of is None:
            entries.extend(unit.entries)
        else:
            entries.extend(
                entry
                for entry in unit.entries
                if cache.written_since(
                    (entry.namespace, entry.resource_type, entry.source_id), as_of
                )
            )
        unit.keys_as_of = cache.generation
    _load_keys(entries)


def _assign_ids(units: list[_Unit]) -> list[_Unit]:
    """Give every entry of the units its RecordRoom id: the one its SourceKey names, a
    matched patient's (the MPI, asked once for all the units' new patients), or a new
    one. :func:`_load_keys` has run. A unit with a Patient the index cannot take is
    rejected; returns the others."""
    passed: list[_Unit] = []
    asking: list[_Entry] = []
    for unit in units:
        issues: list[Issue] = []
        for entry in unit.entries:
            if entry.resource_type != "Patient" or entry.unchanged:
                continue
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
                asking.append(entry)
        if issues:
            _reject(unit, issues)
            continue
        passed.append(unit)
    found = patient_imports.find_patients([entry.patient_data for entry in asking])
    for entry, patient in zip(asking, found, strict=True):
        entry.matched_patient = patient
        if patient is not None:
            entry.fhir_id = str(patient.public_id)
    fresh = [entry for unit in passed for entry in unit.entries if not entry.fhir_id]
    for entry, fhir_id in zip(fresh, new_ids(len(fresh)), strict=True):
        entry.fhir_id = fhir_id
    return passed


def new_ids(count: int) -> list[str]:
    """``count`` new random (version 4) UUIDs as text, as ``str(uuid.uuid4())`` makes
    them — from one read of the system's random source instead of one each (an
    import gives one to every new resource)."""
    random = os.urandom(16 * count).hex()
    return [
        f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
        for h in (random[i : i + 32] for i in range(0, 32 * count, 32))
    ]


class _Resolver:
    """Resolves the references of the units of one write attempt: to an entry of the
    same unit, to an entry of another unit written in the same transaction (NDJSON
    lines of one batch), to what was imported before (SourceKey), or to RecordRoom's
    own ids."""

    def __init__(self, units: list[_Unit], cache: RunCache) -> None:
        self.cache = cache
        self.batch: dict[tuple, tuple[_Entry, int]] = {}
        self.batch_identifiers: dict[tuple, tuple[_Entry, int]] = {}
        for unit in units:
            for entry in unit.entries:
                self.batch.setdefault(
                    (entry.namespace, entry.resource_type, entry.source_id), (entry, unit.number)
                )
                for system, value in _identifier_keys(entry):
                    self.batch_identifiers.setdefault(
                        (entry.resource_type, system, value), (entry, unit.number)
                    )
        self.lookups: dict[tuple, str | None] = {}
        self.missed: set[tuple] = set()  # looked up in bulk and not a source key
        # (namespace, reference) -> (rewritten reference or None, dangling, the unit of
        # the attempt it points into or None), for the units of one resource (NDJSON
        # lines): the same patient or encounter is referenced by thousands of them.
        self.answers: dict[tuple[str, str], tuple[str | None, bool, int | None]] = {}

    def prefetch(self, units: list[_Unit]) -> None:
        """Look up, in bulk, the relative references no entry of the attempt answers
        (each distinct reference once)."""
        wanted: dict[tuple[str, str], set[str]] = defaultdict(set)
        # Each distinct reference once (a batch's lines name the same few thousand).
        seen = {
            (entry.namespace, holder["reference"])
            for unit in units
            for entry in unit.entries
            for holder, _ in entry.holders
        }
        for namespace, reference in seen:
            parsed = _parse_reference(reference)
            if parsed.kind != "relative":
                continue
            # An entry of the attempt (the unit's own included) answers it.
            key = (namespace, parsed.resource_type, parsed.source_id)
            if key in self.batch or key in self.lookups:
                continue
            cached = self.cache.keys.get(key)
            if cached is not None:
                self.lookups[key] = cached
                continue
            wanted[(namespace, parsed.resource_type)].add(parsed.source_id)
        for (namespace, resource_type), source_ids in wanted.items():
            source_ids = list(source_ids)
            found = dict(
                _source_key_rows(namespace, resource_type, source_ids, "source_id, fhir_id")
            )
            for source_id in source_ids:
                key = (namespace, resource_type, source_id)
                if source_id in found:
                    self.lookups[key] = found[source_id]
                    self.cache.remember_key(key, found[source_id])
                else:
                    self.missed.add(key)

    def _lookup_relative(self, namespace: str, resource_type: str, source_id: str) -> str | None:
        cache_key = (namespace, resource_type, source_id)
        if cache_key not in self.lookups:
            key = self.cache.keys.get(cache_key)
            if key is None and cache_key not in self.missed:
                key = (
                    SourceKey.objects.filter(
                        namespace=namespace, resource_type=resource_type, source_id=source_id
                    )
                    .values_list("fhir_id", flat=True)
                    .first()
                )
            if key is None and _on_file(resource_type, source_id):
                key = source_id
            self.lookups[cache_key] = key
        return self.lookups[cache_key]

    def _lookup_identifier(self, resource_type: str, system: str, value: str) -> str | None:
        cache_key = ("identifier", resource_type, system, value)
        if cache_key not in self.lookups:
            found = self.cache.keys.get(cache_key)
            if found is None and resource_type == "Patient":
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
            elif found is None:
                found = (
                    SourceKey.objects.filter(
                        namespace=_identifier_namespace(system),
                        resource_type=resource_type,
                        source_id=value[:200],
                    )
                    .values_list("fhir_id", flat=True)
                    .first()
                )
            if found is not None:
                self.cache.remember_key(cache_key, found)
            self.lookups[cache_key] = found
        return self.lookups[cache_key]

    def resolve(self, reference: str, entry: _Entry, unit: _Unit) -> tuple[str | None, bool]:
        """(the rewritten reference or None to keep it, whether it is dangling). Notes
        in ``unit.depends`` the other units of the attempt it points into.

        A unit of one resource answers a relative or conditional reference as any other
        unit of the attempt does (its own entry is also the attempt's entry of that id
        or identifier), so such answers are remembered for the attempt."""
        if len(unit.entries) != 1:
            return self._resolve(reference, entry, unit)
        key = (entry.namespace, reference)
        answer = self.answers.get(key)
        if answer is None:
            depends = unit.depends
            unit.depends = set()
            new, dangling = self._resolve(reference, entry, unit)
            other = next(iter(unit.depends), None)
            unit.depends = depends
            parsed = _parse_reference(reference)
            answer = (new, dangling, other)
            if parsed.kind in ("relative", "conditional"):
                self.answers[key] = answer
        new, dangling, other = answer
        if other is not None and other != unit.number:
            unit.depends.add(other)
        return new, dangling

    def _resolve(self, reference: str, entry: _Entry, unit: _Unit) -> tuple[str | None, bool]:
        parsed = _parse_reference(reference)
        if parsed.kind in ("contained", "other"):
            return None, False
        if parsed.kind == "urn" or parsed.kind == "absolute":
            target = unit.by_url.get(reference)
            if target is not None:
                return f"{target.resource_type}/{target.fhir_id}", False
            return None, parsed.kind == "urn"
        if parsed.kind == "relative":
            target = unit.by_id.get((parsed.resource_type, parsed.source_id))
            if target is not None:
                return f"{target.resource_type}/{target.fhir_id}", False
            other = self.batch.get((entry.namespace, parsed.resource_type, parsed.source_id))
            if other is not None:
                unit.depends.add(other[1])
                return f"{parsed.resource_type}/{other[0].fhir_id}", False
            found = self._lookup_relative(entry.namespace, parsed.resource_type, parsed.source_id)
            if found:
                return f"{parsed.resource_type}/{found}", False
            return None, True
        if parsed.kind == "conditional":
            target = unit.by_identifier.get((parsed.resource_type, parsed.system, parsed.value))
            if target is not None:
                return f"{target.resource_type}/{target.fhir_id}", False
            other = self.batch_identifiers.get((parsed.resource_type, parsed.system, parsed.value))
            if other is not None:
                unit.depends.add(other[1])
                return f"{parsed.resource_type}/{other[0].fhir_id}", False
            found = self._lookup_identifier(parsed.resource_type, parsed.system, parsed.value)
            if found:
                return f"{parsed.resource_type}/{found}", False
            return None, True
        return None, False


def _find_holders(unit: _Unit) -> None:
    """The Reference elements of each changed entry, found once; when the unit is
    resolved again (after another unit of its batch was refused), its references and id
    are first put back as received. References are rewritten in the resource itself:
    no copy of it is made."""
    unit.by_url = {e.full_url: e for e in unit.entries if e.full_url}
    unit.by_id = {(e.resource_type, str(e.original_id)): e for e in unit.entries if e.original_id}
    unit.by_identifier = {}
    for entry in unit.entries:
        for system, value in _identifier_keys(entry):
            unit.by_identifier.setdefault((entry.resource_type, system, value), entry)
    for entry in unit.entries:
        if entry.unchanged:
            entry.holders = []
            continue
        if entry.references is None:
            if entry.paths is not None:
                entry.holders = [
                    (_follow(entry.resource, path), where) for path, where in entry.paths
                ]
            else:
                entry.holders = reference_holders(entry.resource)
            entry.references = [holder["reference"] for holder, _ in entry.holders]
            continue
        for (holder, _), reference in zip(entry.holders, entry.references, strict=True):
            holder["reference"] = reference
        if entry.has_id:
            entry.resource["id"] = entry.original_id
        else:
            entry.resource.pop("id", None)


def _follow(node, path: tuple):
    for step in path:
        node = node[step]
    return node


def reference_paths(resource: dict) -> list[tuple[tuple, str]]:
    """What :func:`interop.references.reference_holders` finds, in the same order, as
    the path to each Reference element (keys and list indexes) with the element it sits
    in: the validation process sends these back, so that this process goes straight to
    the references instead of walking every resource."""
    found: list[tuple[tuple, str]] = []
    stack: list[tuple[tuple, object, str]] = [
        ((key,), value, key) for key, value in resource.items() if isinstance(value, dict | list)
    ]
    while stack:
        path, node, where = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("reference"), str):
                found.append((path, where))
            deep = "." in where
            for key, value in node.items():
                if isinstance(value, dict | list):
                    stack.append((path + (key,), value, where if deep else f"{where}.{key}"))
        else:
            for number, value in enumerate(node):
                if isinstance(value, dict | list):
                    stack.append((path + (number,), value, where))
    found.reverse()
    return found


def _resolve_unit(unit: _Unit, resolver: _Resolver, allow_unresolved: bool) -> list[Issue]:
    """Rewrite the references of a unit's changed entries; returns the errors (and sets
    ``unit.warnings`` for the references kept as written under ``allow_unresolved``)."""
    issues: list[Issue] = []
    unit.warnings = []
    unit.depends = set()
    unit.waiting_for = set()
    for entry in unit.entries:
        if entry.unchanged:
            continue
        dangling: list[tuple[str, str]] = []
        for holder, element in entry.holders:
            reference = holder["reference"]
            new, is_dangling = resolver.resolve(reference, entry, unit)
            if is_dangling:
                dangling.append((reference, element))
            elif new is not None:
                holder["reference"] = new
        errors = 0
        for reference, element in dangling:
            parsed = _parse_reference(reference)
            if parsed.kind == "relative":
                unit.waiting_for.add((entry.namespace, parsed.resource_type, parsed.source_id))
            if allow_unresolved and not places_resource(element):
                if len(unit.warnings) < MAX_ISSUES:
                    unit.warnings.append(
                        Issue(
                            "warning",
                            oo.NOT_FOUND,
                            f"{_entry_label(entry)}: the reference {reference[:120]} in "
                            f"{element} is not in the unit and was not imported before; it is "
                            "kept as written (--allow-unresolved).",
                            [f"{entry.path}.{element}"],
                        )
                    )
                continue
            errors += 1
            if errors <= 5:
                needed = (
                    " RecordRoom needs it to place the resource (its patient or encounter)."
                    if allow_unresolved
                    else ""
                )
                issues.append(
                    Issue(
                        "error",
                        oo.NOT_FOUND,
                        f"{_entry_label(entry)}: {element}: "
                        f"the reference {reference[:120]} is not in the unit and was not "
                        f"imported before; import its target, then replay this unit.{needed}",
                        [f"{entry.path}.{element}"],
                    )
                )
        entry.resource["id"] = entry.fhir_id
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
    """Writes the entries of one or more units inside the caller's transaction: domain
    rows where RecordRoom models the resource, new rows gathered and inserted in bulk
    (:meth:`flush`), look-ups answered from the run's cache where it can."""

    def __init__(self, ctx: ImportContext, now) -> None:
        self.ctx = ctx
        self.result = UnitResult(accepted=False)
        self.now = now
        self.stored_files: list[str] = []
        self.patients: dict[str, Patient | None] = {}
        self.encounters: dict[str, Encounter | None] = {}
        self.new_resources: list[dict] = []
        self.keys_new: list[dict] = []
        # Identifier keys (what a conditional reference finds): the first resource to
        # carry an identifier keeps it.
        self.identifier_keys: list[dict] = []
        self.keys_changed: list[SourceKey] = []
        self.keys_written: list[tuple[tuple, str]] = []
        self.new_entries: list[dict] = []
        self.with_mrn: set[tuple[int, int]] = set()
        self.all_patients: set[str] = set()
        # New encounters with the sender's visit number, inserted together before
        # anything that points to them; visit numbers already used at the facility (looked
        # up for the whole attempt) or taken by an encounter of this attempt.
        self.new_encounters: list[tuple[Encounter, str]] = []
        self.numbers_taken: set[str] = set()
        self.numbers_given: set[str] = set()
        self.doc_types: dict = {}  # document types by their LOINC codes, for the attempt
        self.new_documents: list = []  # document_imports.NewDocument, filed at flush

    def prepare(self, units: list[_Unit]) -> None:
        """Look up, in one query, which visit numbers the attempt's new encounters ask
        for are already used at the facility."""
        wanted: set[str] = set()
        for unit in units:
            for entry in unit.entries:
                if entry.resource_type != "Encounter" or entry.unchanged:
                    continue
                try:
                    wanted.add(encounter_imports.encounter_values(entry.resource)["visit_number"])
                except encounter_imports.EncounterMappingError:
                    continue
        if wanted - {""}:
            self.numbers_taken = encounter_imports.visit_numbers_taken(self.ctx.facility, wanted)

    def flush_encounters(self) -> None:
        if self.new_encounters:
            encounter_imports.save_imported_encounters(
                self.new_encounters,
                acting_user=self.ctx.acting_user,
                now=self.now,
                insert=fast_bulk_create,
            )
            self.new_encounters = []

    def begin(self, result: UnitResult) -> None:
        """The entries that follow are this unit's."""
        result.counts = defaultdict(Counter)
        result.entries = []
        result.patients = set()
        self.result = result

    # look-ups of what entries reference
    def patient(self, fhir_id: str | None) -> Patient | None:
        if not fhir_id:
            return None
        if fhir_id not in self.patients:
            cached = self.ctx.cache.patients.get(fhir_id)
            if cached is not None:
                self.patients[fhir_id] = cached
                return cached
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
            cached = self.ctx.cache.encounters.get(fhir_id)
            if cached is not None:
                self.encounters[fhir_id] = cached
                return cached
            try:
                self.encounters[fhir_id] = Encounter.objects.filter(
                    public_id=uuid.UUID(fhir_id)
                ).first()
            except ValueError:
                self.encounters[fhir_id] = None
        return self.encounters[fhir_id]

    def _has_mrn(self, patient: Patient) -> bool:
        key = (self.ctx.facility.pk, patient.pk)
        return key in self.with_mrn or key in self.ctx.cache.with_mrn

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
        self.keys_written.append(
            ((entry.namespace, entry.resource_type, entry.source_id), entry.fhir_id)
        )
        if entry.key is None:
            self.keys_new.append(
                {
                    "namespace": entry.namespace,
                    "resource_type": entry.resource_type,
                    "source_id": entry.source_id,
                    "fhir_id": entry.fhir_id,
                    "content_sha256": entry.sha256,
                    "first_seen_at": self.now,
                    "last_seen_at": self.now,
                }
            )
        else:
            entry.key.fhir_id = entry.fhir_id
            entry.key.content_sha256 = entry.sha256
            entry.key.last_seen_at = self.now
            self.keys_changed.append(entry.key)
        if entry.resource_type not in DOMAIN_TYPES and entry.resource_type not in CLINICAL_TYPES:
            for system, value in _identifier_keys(entry):
                self.identifier_keys.append(
                    {
                        "namespace": _identifier_namespace(system),
                        "resource_type": entry.resource_type,
                        "source_id": value,
                        "fhir_id": entry.fhir_id,
                        "content_sha256": "",
                        "first_seen_at": self.now,
                        "last_seen_at": self.now,
                    }
                )

    def store_resource(self, entry: _Entry, *, patient=None, encounter=None) -> tuple[str, int]:
        """Keep the resource whole in FhirResource: a new row with version 1, or a new
        version of the row. Returns (created/updated/unchanged, version)."""
        content = entry.resource
        found = entry.columns
        columns = found if isinstance(found, dict) else search_columns(content)
        existing = None
        if entry.key is not None or entry.matched_patient is not None:
            # A new id (uuid4) was never stored; only a known or matched one may be.
            existing = (
                FhirResource.objects.select_for_update()
                .filter(resource_type=entry.resource_type, fhir_id=entry.fhir_id)
                .first()
            )
        if existing is None:
            self.new_resources.append(
                {
                    "resource_type": entry.resource_type,
                    "fhir_id": entry.fhir_id,
                    "version_id": 1,
                    "last_updated": self.now,
                    "content": json_text(content),
                    "content_sha256": entry.sha256,
                    "patient_id": patient.pk if patient is not None else None,
                    "encounter_id": encounter.pk if encounter is not None else None,
                    # An encounter of this attempt not inserted yet: its key at flush.
                    "encounter": encounter
                    if encounter is not None and encounter.pk is None
                    else None,
                    "source": entry.namespace[:200],
                    "deleted": False,
                    **columns,
                }
            )
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
        """Insert the new rows gathered: encounters, documents, clinical entries, stored resources,
        their first versions (each resource's JSON encoded once for both) and source
        keys."""
        self.flush_encounters()
        if self.new_documents:
            document_imports.create_imported_documents(
                self.new_documents,
                acting_user=self.ctx.acting_user,
                now=self.now,
                stored=self.stored_files,
            )
            self.new_documents = []
        user_id = self.ctx.acting_user.pk if self.ctx.acting_user is not None else None
        if self.new_entries:
            clinical_imports.save_imported_entries(
                self.new_entries, acting_user_id=user_id, now=self.now, insert=insert_rows
            )
            self.new_entries = []
        if self.new_resources:
            for row in self.new_resources:
                encounter = row.pop("encounter", None)
                if encounter is not None:  # inserted since the row was made
                    row["encounter_id"] = encounter.pk
            keys = insert_rows(FhirResource, self.new_resources)
            insert_rows(
                FhirResourceVersion,
                [
                    {
                        "resource_id": pk,
                        "version_id": 1,
                        "content": row["content"],
                        "recorded_at": self.now,
                        "recorded_by_id": user_id,
                        "reason": "imported",
                    }
                    for pk, row in zip(keys, self.new_resources, strict=True)
                ],
            )
            self.new_resources = []
        if self.keys_new:
            # Without ignoring conflicts: a key another import wrote since this batch
            # looked it up fails the batch (each unit is then written alone, and the one
            # that conflicts is refused for replay) instead of making the resource twice.
            table(SourceKey).insert_many(self.keys_new)
            self.keys_new = []
        if self.identifier_keys:
            table(SourceKey).insert_many(self.identifier_keys, ignore_conflicts=True)
            self.identifier_keys = []
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
            self.with_mrn.add((self.ctx.facility.pk, patient.pk))
            what = "created"
        else:
            if not self._has_mrn(patient):
                patient_imports.ensure_mrn(patient, self.ctx.facility, self.now)
                self.with_mrn.add((self.ctx.facility.pk, patient.pk))
            patient_imports.update_imported_patient(
                patient, data, acting_user=self.ctx.acting_user, now=self.now, reason=reason
            )
            what = "updated"
        _, version = self.store_resource(entry, patient=patient)
        self._count(entry, what, version)
        self._touch(patient)
        self._source_key(entry)

    def _touch(self, patient: Patient) -> None:
        public_id = str(patient.public_id)
        self.result.patients.add(public_id)
        self.all_patients.add(public_id)

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
        if patient is not None:
            self._touch(patient)
            if not self._has_mrn(patient):
                patient_imports.ensure_mrn(patient, self.ctx.facility, self.now)
                self.with_mrn.add((self.ctx.facility.pk, patient.pk))
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
        wanted = values["visit_number"]
        if existing is None and (
            wanted and wanted not in self.numbers_taken and wanted not in self.numbers_given
        ):
            # The sender's visit number is free: inserted with the others (flush_encounters).
            encounter = encounter_imports.new_imported_encounter(
                patient,
                facility=self.ctx.facility,
                values=values,
                public_id=uuid.UUID(entry.fhir_id),
                now=self.now,
            )
            self.new_encounters.append((encounter, reason))
            self.numbers_given.add(wanted)
            self.encounters[entry.fhir_id] = encounter
        elif existing is None:
            self.flush_encounters()
            encounter = encounter_imports.create_imported_encounter(
                patient,
                facility=self.ctx.facility,
                values=values,
                public_id=uuid.UUID(entry.fhir_id),
                acting_user=self.ctx.acting_user,
                now=self.now,
                reason=reason,
            )
            self.numbers_given.add(encounter.visit_number)
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
            values = document_imports.document_values(
                entry.resource, now=self.now, known_types=self.doc_types
            )
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
        if document is None:  # filed with the others at flush
            self.new_documents.append(
                document_imports.NewDocument(patient, encounter, values, uuid.UUID(entry.fhir_id))
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
        found = entry.columns
        columns, errors = found or clinical_imports.clinical_columns(rtype, entry.resource)
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
            row["resource"] = json_text(row["resource"])
            self.new_entries.append(row)
            self._count(entry, "created", 1)
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
            self._touch(patient)
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
        if self.new_encounters and rtype != "Encounter":
            self.flush_encounters()  # what follows may point to them
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
    return (WRITE_ORDER.get(entry.resource_type, 9), entry.index)


def _unit_order(unit: _Unit) -> int:
    return min((WRITE_ORDER.get(e.resource_type, 9) for e in unit.entries), default=9)


def _store_rejected(
    refused: list[tuple[bytes, ImportContext, str, UnitResult]], replay_of=None
) -> None:
    """Quarantine refused units — (raw bytes, context, position, result) each — in the
    caller's transaction: each its own ImportUnit row with its bytes and its outcome and
    its own audit event, written together (one insert, one lock of the audit chain).
    The same bytes already waiting in quarantine, or twice in ``refused``, are kept once
    (unless this is a replay)."""
    waiting = _waiting_in_quarantine([raw for raw, _, _, _ in refused])
    now = clock.now()
    rows: list[ImportUnit] = []
    events: dict[object, list[dict]] = defaultdict(list)
    actors: dict[object, object] = {}
    for raw, ctx, position, result in refused:
        raw_sha = hashlib.sha256(raw).hexdigest()
        existing = waiting.get(raw_sha) if raw else None
        if existing is not None and replay_of is None:
            result.unit = existing
            continue
        result.unit = ImportUnit(
            received_at=now,
            received_by=ctx.acting_user,
            channel=ctx.channel,
            source=(ctx.source_label or ctx.source)[:300],
            namespace=ctx.source[:200],
            position=position[:40],
            raw=raw,
            raw_sha256=raw_sha,
            status=UnitStatus.REJECTED,
            outcome=result.outcome,
            reason=result.reason,
            replay_of=replay_of,
        )
        rows.append(result.unit)
        if raw:
            waiting[raw_sha] = result.unit
        actor_key = getattr(ctx.acting_user, "pk", None)
        actors[actor_key] = ctx.acting_user
        events[actor_key].append(
            {
                "action": Action.CREATE,
                "purpose": Purpose.OPERATIONS,
                "object_type": "import_unit",
                "object_id": str(result.unit.public_id),
                "reason": "import unit rejected (quarantined)",
                "detail": {
                    "status": UnitStatus.REJECTED,
                    "channel": ctx.channel,
                    "issues": len(result.issues),
                    "resource_types": dict(result.resource_types),
                },
            }
        )
    if len(rows) == 1:
        rows[0].save(force_insert=True)
    elif rows:
        ImportUnit.objects.bulk_create(rows, batch_size=200)
    for actor_key, specs in events.items():
        record_events(actors[actor_key], specs)


def _waiting_in_quarantine(raws: list[bytes]) -> dict[str, ImportUnit]:
    """The newest rejected unit holding each of these inputs, by its SHA-256: one query
    for a group of refused units."""
    shas = sorted({hashlib.sha256(raw).hexdigest() for raw in raws if raw})
    waiting: dict[str, ImportUnit] = {}
    for start in range(0, len(shas), 500):
        for unit in ImportUnit.objects.filter(
            status=UnitStatus.REJECTED, raw_sha256__in=shas[start : start + 500]
        ).order_by("-received_at", "-pk"):
            waiting.setdefault(unit.raw_sha256, unit)
    return waiting


class _AttemptFailed(Exception):
    """A unit was refused while its batch was being written: the batch's transaction
    rolls back and the batch is written again without it."""

    def __init__(self, unit: _Unit, issues: list[Issue]) -> None:
        super().__init__("unit refused while writing")
        self.unit = unit
        self.issues = issues


def _reject(unit: _Unit, issues: list[Issue]) -> None:
    unit.rejected = True
    unit.result.issues = issues[:MAX_ISSUES]
    unit.result.counts = defaultdict(Counter)
    unit.result.entries = []
    unit.result.patients = set()
    unit.result.warnings = []


def _parse_units(units: list[_Unit], ctx: ImportContext) -> None:
    """Parse each unit and check it (a resourceType RecordRoom knows, no nested Bundle,
    no duplicate); sets its entries, or rejects it."""
    for unit in units:
        unit.prepared = True
        try:
            items, bundle_type = _parse(unit.raw)
        except UnitRejected as rejected:
            _reject(unit, rejected.issues)
            continue
        bundle = bool(bundle_type)
        unit.result.resource_types = _types_of(items)
        type_issues, valid = _check_types(items, bundle)
        duplicates = _duplicates(items, bundle)
        if type_issues or duplicates:
            issues = list(type_issues)
            for index, _, resource, _ in valid:
                if len(issues) >= MAX_ISSUES:
                    break
                issues.extend(validate_resource(resource, index, bundle))
            _reject(unit, issues[:MAX_ISSUES] + duplicates)
            continue
        unit.entries = _make_entries(items, bundle, ctx.source)


def _read(units: list[_Unit], ctx: ImportContext) -> list[_Unit]:
    """Parse each unit (unless :class:`ValidationWorker` did), check it, find what its
    resources became, validate what changed (unchanged content is not validated again:
    the SHA-256 of the canonical JSON is compared first; what the worker validated is
    not validated twice) and give every entry its RecordRoom id. Returns the units that
    passed; the others are rejected."""
    _parse_units([unit for unit in units if not unit.prepared], ctx)
    live = [unit for unit in units if not unit.rejected]
    _load_keys_of(live, ctx.cache)
    passed: list[_Unit] = []
    for unit in live:
        issues: list[Issue] = []
        checked = unit.checked.result() if unit.checked is not None else {}
        for position, entry in enumerate(unit.entries):
            if entry.unchanged or unit.validated:
                continue
            found = checked.get((unit.check_index, position)) if checked else None
            if found is not None:
                issues.extend(found[0])
                entry.paths, entry.columns = found[1], found[2]
            else:
                issues.extend(
                    validate_resource(
                        entry.resource, entry.index if entry.bundled else None, entry.bundled
                    )
                )
            if len(issues) >= MAX_ISSUES:
                break
        if issues:
            _reject(unit, issues)
            continue
        passed.append(unit)
    return _assign_ids(passed)


# Cyclic garbage collection, left to run on its own, scans every object a batch holds
# (hundreds of thousands of small dicts) again and again while the batch is parsed and
# built: it tripled the cost of parsing in a long import. An import makes almost no
# cyclic garbage (measured: none in most batches of a 135,000-resource import, a few
# thousand objects where units were refused), so a long import sets each batch's
# survivors aside instead and collects in full only every FULL_COLLECTION_EVERY batches.
FULL_COLLECTION_EVERY = 64


@contextlib.contextmanager
def collecting_between_batches():
    """Within: no automatic garbage collection; call the ``batch_done()`` it yields after
    each batch. Processes forked within (the validation worker) inherit it and collect
    after each batch they validate. Nested use is a no-op."""
    if not gc.isenabled():
        yield lambda: None
        return
    gc.collect()
    gc.freeze()
    gc.disable()
    done = 0

    def batch_done() -> None:
        nonlocal done
        done += 1
        if done % FULL_COLLECTION_EVERY == 0:
            gc.unfreeze()
            gc.collect()
        gc.freeze()

    try:
        yield batch_done
    finally:
        gc.unfreeze()
        gc.enable()


def _columns_of(resource: dict):
    """The search columns the writer needs, computed where the resource is validated."""
    resource_type = resource["resourceType"]
    if resource_type in CLINICAL_TYPES:
        return clinical_imports.clinical_columns(resource_type, resource)
    return search_columns(resource)


def _validate_payload(payload: list[tuple[bytes, list[int]]]) -> dict[tuple[int, int], tuple]:
    """In the validation process: validate the resources at ``positions`` of each unit
    (its raw bytes), as :func:`_read` would, find their references and compute their
    search columns; {(unit, position): (issues, reference paths, columns or None)}."""
    found: dict[tuple[int, int], tuple] = {}
    for number, (raw, positions) in enumerate(payload):
        items, bundle_type = _parse(raw)
        bundle = bool(bundle_type)
        for position in positions:
            index, _, resource, _ = items[position]
            # Found before validating: the paths are those of the resource as parsed.
            paths = reference_paths(resource)
            issues = validate_resource(resource, index, bundle)
            found[(number, position)] = (issues, paths, None if issues else _columns_of(resource))
    if not gc.isenabled():  # forked within collecting_between_batches()
        gc.collect()
    return found


class _Checked:
    """What the validation process found for a batch, fetched once when first needed;
    empty when the process failed (the lines are then validated here)."""

    def __init__(self, pending) -> None:
        self.pending = pending
        self.found: dict | None = None

    def result(self) -> dict:
        if self.found is None:
            try:
                self.found = self.pending.get()
            except Exception:  # noqa: BLE001 - validated again in this process
                self.found = {}
            self.pending = None
        return self.found


def _quiet_child() -> None:
    """The validation process does not inherit a profiler the importing process runs
    (the benchmark's ``--profile`` measures the importing process alone)."""
    sys.setprofile(None)


class ValidationWorker:
    """Validation (the costliest step of an import) in a second process, ahead of the
    writes (``import_actions.WORKER_AHEAD`` batches' worth of lines): :meth:`submit`
    parses a batch's units here, finds which resources changed (their source keys), and
    hands those lines to the process; while it validates them, this process writes the
    batches before. :func:`_read` then takes the issues it found — the same
    :func:`validate_resource`, on the same bytes — with the references' places and the
    search columns, looks up again the keys the batches before have written since
    (:func:`_load_keys_of`), and validates here whatever the process was not given.
    Refusals are therefore the same as without it."""

    def __init__(self) -> None:
        import multiprocessing

        # A fork of this process: Django is set up; the child never touches the database.
        self.pool = multiprocessing.get_context("fork").Pool(1, initializer=_quiet_child)

    def submit(self, units: list[_Unit], ctx: ImportContext) -> None:
        _parse_units(units, ctx)
        live = [unit for unit in units if not unit.rejected and not unit.validated]
        _load_keys_of(live, ctx.cache)
        payload: list[tuple[bytes, list[int]]] = []
        owners: list[_Unit] = []
        for unit in live:
            positions = [i for i, entry in enumerate(unit.entries) if not entry.unchanged]
            if positions:
                payload.append((unit.raw, positions))
                owners.append(unit)
        if not payload:
            return
        checked = _Checked(self.pool.apply_async(_validate_payload, (payload,)))
        for number, unit in enumerate(owners):
            unit.checked, unit.check_index = checked, number

    def close(self) -> None:
        self.pool.close()
        self.pool.join()

    def terminate(self) -> None:
        self.pool.terminate()
        self.pool.join()


def _patient_keys(entry: _Entry) -> set[tuple]:
    from patients.matching import normalize_identifier

    data = entry.patient_data
    if data is None:
        return set()
    return {
        (ident.kind, ident.issuer.strip(), normalize_identifier(ident.value))
        for ident in data.identifiers
    }


def _split_collisions(units: list[_Unit]) -> tuple[list[_Unit], list[_Unit]]:
    """Units that must be written after others of the batch (the same resource twice,
    or a patient the index could match to one written just before) wait for the next
    round, so that each sees the other as already imported, as one unit after another
    would."""
    seen_keys: set[tuple] = set()
    seen_patients: set[tuple] = set()
    now_units: list[_Unit] = []
    later: list[_Unit] = []
    for unit in units:
        keys = {(e.namespace, e.resource_type, e.source_id) for e in unit.entries}
        patients: set[tuple] = set()
        for entry in unit.entries:
            if entry.resource_type == "Patient":
                patients |= _patient_keys(entry)
                patients.add(("id", entry.fhir_id))
        if keys & seen_keys or patients & seen_patients:
            later.append(unit)
            continue
        seen_keys |= keys
        seen_patients |= patients
        now_units.append(unit)
    return now_units, later


def _resolve_units(units: list[_Unit], ctx: ImportContext) -> list[_Unit]:
    """Resolve the references of the units to be written together; a unit that cannot
    be resolved is rejected, and those that pointed into it are resolved again."""
    for unit in units:
        _find_holders(unit)
    active = list(units)
    while active:
        resolver = _Resolver(active, ctx.cache)
        resolver.prefetch(active)
        failed: set[int] = set()
        for unit in active:
            issues = _resolve_unit(unit, resolver, ctx.allow_unresolved)
            if issues:
                _reject(unit, issues)
                failed.add(unit.number)
        if not failed:
            return active
        active = [u for u in active if u.number not in failed]
        if not any(u.depends & failed for u in active):
            return active
        for unit in active:
            _find_holders(unit)
    return active


def _write(
    units: list[_Unit],
    ctx: ImportContext,
    *,
    replay_of: ImportUnit | None,
    status_on_success: str,
) -> None:
    """Write the units in one transaction, with one ImportUnit row and one audit event
    for all of them (when anything changed). Raises :class:`_AttemptFailed` (nothing
    written) when one of them is refused."""
    writer = _Writer(ctx, clock.now())
    try:
        _write_rows(units, ctx, writer, replay_of=replay_of, status_on_success=status_on_success)
    except BaseException:
        # Files stored for a document of the batch are removed with its transaction.
        for name in writer.stored_files:
            discard_unrecorded(name)
        raise
    ctx.cache.remember(writer)
    _refresh_statistics(ctx.cache, len(writer.keys_written))
    for unit in units:
        unit.result.accepted = True


# A table that grows during the import from (nearly) empty keeps, until autovacuum gets
# round to it, the statistics of its empty self: PostgreSQL then plans the batch's
# source-key look-ups as a scan of every key of the type (40 ms a look-up of 500 ids on
# 200,000 keys, 3 ms with statistics). The import refreshes them as it doubles the table.
ANALYZE_AFTER_KEYS = 10_000


def _refresh_statistics(cache: RunCache, written: int) -> None:
    """On PostgreSQL, ANALYZE the source keys once this run has written as many as the
    table held when its statistics were last taken (at least ANALYZE_AFTER_KEYS)."""
    if connection.vendor != "postgresql" or not written:
        return
    table = connection.ops.quote_name(SourceKey._meta.db_table)
    with connection.cursor() as cursor:
        if cache.keys_analyzed is None:
            cursor.execute(
                "SELECT GREATEST(reltuples, 0) FROM pg_class WHERE oid = %s::regclass", [table]
            )
            row = cursor.fetchone()
            cache.keys_analyzed = float(row[0]) if row else 0.0
        cache.keys_unanalyzed += written
        if cache.keys_unanalyzed < max(ANALYZE_AFTER_KEYS, cache.keys_analyzed):
            return
        try:
            with transaction.atomic():
                cursor.execute(f"ANALYZE {table}")
        except DatabaseError:  # not the table's owner: autovacuum will do it
            cache.keys_analyzed = float("inf")
            return
        cache.keys_analyzed += cache.keys_unanalyzed
        cache.keys_unanalyzed = 0


def _write_rows(units, ctx, writer, *, replay_of, status_on_success) -> None:
    with transaction.atomic():
        now = writer.now
        writer.prepare(units)
        for unit in sorted(units, key=_unit_order):
            writer.begin(unit.result)
            try:
                for entry in sorted(unit.entries, key=_order):
                    writer.write(entry)
            except UnitRejected as rejected:
                raise _AttemptFailed(unit, rejected.issues) from None
        writer.flush()
        totals = Counter()
        counts: dict[str, Counter] = defaultdict(Counter)
        warnings: list[Issue] = []
        for unit in units:
            unit.result.warnings = list(unit.warnings)
            warnings.extend(unit.warnings)
            for rtype, counter in unit.result.counts.items():
                totals.update(counter)
                counts[rtype].update(counter)
        changed = totals["created"] + totals["updated"]
        if changed or replay_of is not None:
            first, last = units[0].position, units[-1].position
            position = first if len(units) == 1 else f"{first} – {last}"
            row = ImportUnit.objects.create(
                received_at=now,
                received_by=ctx.acting_user,
                channel=ctx.channel,
                source=(ctx.source_label or ctx.source)[:300],
                namespace=ctx.source[:200],
                position=position[:40],
                raw=b"",
                raw_sha256=hashlib.sha256(units[0].raw).hexdigest() if len(units) == 1 else "",
                status=status_on_success,
                outcome=oo.operation_outcome(warnings[:MAX_ISSUES]) if warnings else {},
                reason=warnings[0].diagnostics[:300] if warnings else "",
                created=totals["created"],
                updated=totals["updated"],
                unchanged=totals["unchanged"],
                replay_of=replay_of,
            )
            patients = sorted(writer.all_patients)
            detail = {
                "channel": ctx.channel,
                "status": status_on_success,
                "patients": patients,  # all of them, however many lines the batch holds
                "counts": {t: dict(c) for t, c in sorted(counts.items())},
            }
            if len(units) > 1:
                detail["units"] = len(units)
            if warnings:
                detail["warnings"] = len(warnings)
            record_event(
                ctx.acting_user,
                Action.CREATE if totals["created"] else Action.UPDATE,
                purpose=Purpose.OPERATIONS,
                patient_id=patients[0] if len(patients) == 1 else None,
                object_type="import_unit",
                object_id=str(row.public_id),
                reason="FHIR import",
                detail=detail,
            )
            for unit in units:
                unit.result.unit = row


def _write_batch(units: list[_Unit], ctx: ImportContext, *, replay_of, status_on_success) -> None:
    """Resolve and write, again without each unit refused while writing."""
    pending = list(units)
    while pending:
        pending = _resolve_units(pending, ctx)
        if not pending:
            return
        try:
            _write(pending, ctx, replay_of=replay_of, status_on_success=status_on_success)
            return
        except _AttemptFailed as failed:
            _reject(failed.unit, failed.issues)
            pending = [u for u in pending if u is not failed.unit]
        except (IntegrityError, DatabaseError) as error:
            if len(pending) > 1:
                # One of them conflicts with data written at the same time: each alone.
                for unit in pending:
                    _write_batch(
                        [unit], ctx, replay_of=replay_of, status_on_success=status_on_success
                    )
                return
            _reject(
                pending[0],
                [
                    Issue(
                        "error",
                        oo.CONFLICT,
                        f"The unit could not be written ({type(error).__name__}); nothing of "
                        "it was kept. It may conflict with data written at the same time: "
                        "replay it.",
                    )
                ],
            )
            return


def import_units(
    units: list[_Unit],
    ctx: ImportContext,
    *,
    quarantine: bool = True,
    defer_dangling: bool = False,
    replay_of: ImportUnit | None = None,
    status_on_success: str = UnitStatus.ACCEPTED,
) -> None:
    """Import units together (the NDJSON lines of a batch), each all or nothing: read
    and validate each, resolve their references (to each other too), then write all
    that passed in ONE transaction with one ImportUnit row and one audit event. A unit
    refused at any step is left out (the others are resolved and written again without
    it) and quarantined alone, or deferred (``defer_dangling``, its only problem a
    reference whose target may still arrive). Each unit's outcome is in
    ``unit.result``."""
    for number, unit in enumerate(units):
        unit.number = number
    round_units = _read(units, ctx)
    while round_units:
        now_units, later = _split_collisions(round_units)
        _write_batch(now_units, ctx, replay_of=replay_of, status_on_success=status_on_success)
        if not later:
            break
        # What waited sees the first round as imported: find its keys again.
        for unit in later:
            for entry in unit.entries:
                entry.key, entry.fhir_id, entry.unchanged = None, "", False
                entry.matched_patient = None
        _load_keys([entry for unit in later for entry in unit.entries])
        round_units = _assign_ids(later)
    refused: list[_Unit] = []
    for unit in units:
        result = unit.result
        if result.accepted:
            continue
        if defer_dangling and result.issues and all(i.code == oo.NOT_FOUND for i in result.issues):
            result.deferred = True
            result.waiting_for = set(unit.waiting_for)
            result.keys = {(e.namespace, e.resource_type, e.source_id) for e in unit.entries}
            continue
        if quarantine:
            refused.append(unit)
    if refused:
        # Each refused unit is quarantined alone (its own row, raw bytes and audit event);
        # those of a batch in one transaction.
        labelled = {ctx.source_label: ctx}  # the context of each file of the batch

        def context_of(unit: _Unit) -> ImportContext:
            label = unit.source_label or ctx.source_label
            if label not in labelled:
                labelled[label] = dataclasses.replace(ctx, source_label=label)
            return labelled[label]

        with transaction.atomic():
            _store_rejected(
                [(unit.raw, context_of(unit), unit.position, unit.result) for unit in refused],
                replay_of,
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
    limit = max_bundle_bytes(ctx.channel)
    size = len(raw) if size is None else size
    if size > limit:
        result = UnitResult(accepted=False)
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
            with transaction.atomic():
                _store_rejected([(b"", ctx, position, result)], replay_of)
        return result
    unit = _Unit(raw=raw, position=position)
    import_units(
        [unit],
        ctx,
        quarantine=quarantine,
        defer_dangling=defer_dangling,
        replay_of=replay_of,
        status_on_success=status_on_success,
    )
    return unit.result


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


def process_bundle_request(
    body: bytes, *, acting_user, source: str, authorize=None
) -> tuple[int, dict]:
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
    if authorize is not None:
        authorize(entries)  # the caller's check of the entries (the token's scopes)
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
