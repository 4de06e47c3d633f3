"""Create and update through the FHIR API, where RecordRoom owns the resource.

* The clinical types (Condition, Procedure, Observation, MedicationRequest,
  MedicationStatement, AllergyIntolerance, Immunization) go through
  ``clinical.actions`` (validation, versions, audit).
* The types kept whole in ``interop.models.FhirResource`` (CarePlan, Coverage,
  DiagnosticReport, …) go through :func:`do_create_resource` and
  :func:`do_update_resource` here: every change is a new FhirResourceVersion with who,
  when and why; nothing is overwritten.
* Patient, Encounter and DocumentReference are managed through the MPI, registration
  and the document record: the API answers 405 and says so (the CapabilityStatement
  lists no create/update for them).

``If-Match: W/"n"`` on an update must name the current version, or the answer is 412.
Spec: https://hl7.org/fhir/R4/http.html#create, #update, #concurrency.
"""

from __future__ import annotations

import copy
import hashlib
import uuid

import orjson
from django.core.exceptions import ValidationError
from django.db import transaction
from pydantic import ValidationError as PydanticValidationError

from accounts.access import require_permission
from audit.actions import record_event
from audit.models import Action, Purpose
from clinical.permissions import ClinicalPermission
from interop import api_access, serialize
from interop.bindings import binding_problems
from interop.models import FhirResource, FhirResourceVersion
from interop.outcome import (
    CONFLICT,
    INVALID,
    NOT_SUPPORTED,
    PROCESSING,
    REQUIRED,
    STRUCTURE,
    VALUE,
    FhirError,
    Issue,
)
from patients.access import Scope, access_patient
from recordroom import clock

MANAGED_ELSEWHERE = {
    "Patient": "Patients are registered and corrected through the master patient index "
    "(RecordRoom's registration screens, or a FHIR transaction Bundle POSTed to /fhir, "
    "which matches on identifiers).",
    "Encounter": "Encounters are registered, transferred and discharged through "
    "RecordRoom's registration (or imported in a transaction Bundle POSTed to /fhir).",
    "DocumentReference": "Documents are written, signed and amended in RecordRoom's "
    "document record (or imported in a transaction Bundle POSTed to /fhir).",
    "AuditEvent": "The audit trail is written by RecordRoom itself and is append-only.",
}

API_REASON = "changed through the FHIR API"


def _validation_error(resource_type: str, error: ValidationError) -> FhirError:
    issues = []
    messages = error.message_dict if hasattr(error, "error_dict") else {"resource": error.messages}
    for element, texts in messages.items():
        for text in texts:
            path = (
                resource_type
                if element in ("resource", "__all__")
                else f"{resource_type}.{element}"
            )
            # pydantic's messages start with the element path: keep it as the expression.
            head = text.split(":", 1)[0]
            if element == "resource" and head and " " not in head and head != text:
                path = f"{resource_type}.{head}"
            issues.append(Issue("error", INVALID, text, [path]))
    return FhirError(422, issues)


def _pydantic_issues(resource_type: str, error: PydanticValidationError) -> list[Issue]:
    issues = []
    for item in error.errors()[:20]:
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "__root__")
        path = f"{resource_type}.{where}" if where else resource_type
        issues.append(Issue("error", STRUCTURE, f"{path}: {item.get('msg', 'invalid')}", [path]))
    return issues


def check_body(resource_type: str, body, fhir_id: str | None = None) -> dict:
    """The request's resource: a JSON object of the URL's type (and id, on update)."""
    if not isinstance(body, dict):
        raise FhirError(400, Issue("error", STRUCTURE, "The body is not a JSON object.", []))
    sent_type = body.get("resourceType")
    if sent_type != resource_type:
        raise FhirError(
            400,
            Issue(
                "error",
                INVALID,
                f"The body's resourceType is {sent_type!r}; the URL says {resource_type}.",
                ["resourceType"],
            ),
        )
    if fhir_id is not None:
        if body.get("id") is None:
            raise FhirError(
                400,
                Issue(
                    "error",
                    REQUIRED,
                    "An update must carry the resource's id.",
                    [f"{resource_type}.id"],
                ),
            )
        if str(body.get("id")) != str(fhir_id):
            raise FhirError(
                400,
                Issue(
                    "error",
                    INVALID,
                    f"The body's id {body.get('id')!r} is not the id in the URL.",
                    [f"{resource_type}.id"],
                ),
            )
    return body


def refuse_managed(resource_type: str) -> FhirError:
    return FhirError(
        405,
        Issue(
            "error",
            NOT_SUPPORTED,
            f"{resource_type} cannot be created or updated through the REST API. "
            + MANAGED_ELSEWHERE.get(resource_type, ""),
            [resource_type],
        ),
    )


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match: W/"n"`` header names (None when absent)."""
    if not if_match:
        return None
    text = if_match.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise FhirError(
            400, Issue("error", INVALID, f'If-Match {if_match!r} is not an ETag W/"n".', [])
        )
    return int(text)


def _stale(resource_type: str, fhir_id: str, expected: int, current: int) -> FhirError:
    return FhirError(
        412,
        Issue(
            "error",
            CONFLICT,
            f"{resource_type}/{fhir_id} is at version {current}, not {expected}: "
            "read it again and apply the change to the current version.",
            [resource_type],
        ),
    )


# --- references in a written resource ------------------------------------------------


def _reference_id(value, resource_type: str) -> str | None:
    reference = (value or {}).get("reference") if isinstance(value, dict) else None
    if not reference or not isinstance(reference, str):
        return None
    if not reference.startswith(f"{resource_type}/"):
        return None
    return reference.split("/", 2)[1]


def _patient_reference(resource: dict) -> str | None:
    for element in ("subject", "patient", "beneficiary"):
        found = _reference_id(resource.get(element), "Patient")
        if found:
            return found
    return None


def _encounter_reference(resource: dict) -> str | None:
    for element in ("encounter", "context"):
        found = _reference_id(resource.get(element), "Encounter")
        if found:
            return found
    return None


def _patient_for_write(principal, resource_type: str, resource: dict, *, required: bool):
    patient_id = _patient_reference(resource)
    if patient_id is None:
        if required:
            raise FhirError(
                422,
                Issue(
                    "error",
                    REQUIRED,
                    f"{resource_type} must name its patient (subject or patient: "
                    '{"reference": "Patient/<id>"}).',
                    [f"{resource_type}.subject"],
                ),
            )
        return None
    compartment = principal.patient_compartment(resource_type, "write")
    if compartment is not None and str(compartment.public_id) != patient_id:
        raise FhirError(
            403,
            Issue(
                "error",
                "forbidden",
                "The token may write only its patient's resources.",
                [f"{resource_type}.subject"],
            ),
        )
    try:
        uuid.UUID(patient_id)
    except ValueError:
        raise FhirError(
            422,
            Issue(
                "error",
                "not-found",
                f"Patient/{patient_id} is not known.",
                [f"{resource_type}.subject"],
            ),
        ) from None
    from django.http import Http404

    try:
        return access_patient(
            principal.user,
            patient_id,
            scope=Scope.CLINICAL,
            purpose=api_access.purpose_of(principal),
        )
    except Http404:
        raise FhirError(
            422,
            Issue(
                "error",
                "not-found",
                f"Patient/{patient_id} is not known.",
                [f"{resource_type}.subject"],
            ),
        ) from None


def _encounter_for_write(resource_type: str, resource: dict, patient):
    from encounters.models import Encounter

    encounter_id = _encounter_reference(resource)
    if encounter_id is None:
        return None
    try:
        key = uuid.UUID(encounter_id)
    except ValueError:
        key = None
    encounter = (
        Encounter.objects.select_related("patient").filter(public_id=key).first() if key else None
    )
    if encounter is None or patient is None or encounter.patient_id != patient.pk:
        raise FhirError(
            422,
            Issue(
                "error",
                "not-found",
                f"Encounter/{encounter_id} is not one of this patient's encounters.",
                [f"{resource_type}.encounter"],
            ),
        )
    return encounter


# --- the generic store ---------------------------------------------------------------


def _validated(resource_type: str, resource: dict) -> dict:
    from fhir.resources.R4B import get_fhir_model_class

    try:
        model = get_fhir_model_class(resource_type).model_validate(resource)
    except PydanticValidationError as error:
        raise FhirError(422, _pydantic_issues(resource_type, error)) from None
    except (KeyError, ValueError) as error:
        raise FhirError(400, Issue("error", NOT_SUPPORTED, str(error), [resource_type])) from None
    problems = binding_problems(resource)
    if problems:
        raise FhirError(
            422,
            [
                Issue("error", VALUE, message, [f"{resource_type}.{element}"])
                for element, message in problems
            ],
        )
    return model.model_dump(mode="json", exclude_none=True, by_alias=True)


def _columns(resource: dict) -> dict:
    from interop.importer import search_columns

    return search_columns(resource)


def _sha(resource: dict) -> str:
    return hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()


def do_create_resource(
    resource_type: str, resource: dict, *, acting_user, patient=None, encounter=None, source=""
) -> FhirResource:
    """Store a new resource of a type RecordRoom keeps whole (version 1)."""
    require_permission(
        acting_user,
        ClinicalPermission.RECORD,
        action=Action.CREATE,
        patient_id=patient.public_id if patient else None,
        object_type=f"fhir.{resource_type}"[:64],
    )
    data = _validated(resource_type, resource)
    with transaction.atomic():
        now = clock.now()
        fhir_id = str(uuid.uuid4())
        data["id"] = fhir_id
        data["meta"] = serialize.meta(1, now, data)
        columns = _columns(data)
        row = FhirResource.objects.create(
            resource_type=resource_type,
            fhir_id=fhir_id,
            version_id=1,
            last_updated=now,
            content=data,
            content_sha256=_sha(data),
            patient=patient,
            encounter=encounter,
            source=source[:200],
            **columns,
        )
        FhirResourceVersion.objects.create(
            resource=row,
            version_id=1,
            content=data,
            recorded_at=now,
            recorded_by=acting_user,
            reason="created through the FHIR API",
        )
        _audit(row, Action.CREATE, acting_user, patient)
    return row


def do_update_resource(
    row: FhirResource,
    resource: dict,
    *,
    acting_user,
    reason: str,
    expected: int | None = None,
    patient=None,
    encounter=None,
) -> FhirResource:
    """A new version of a stored resource; 412 when ``expected`` is not the current
    version (checked under a row lock, so two writers cannot both pass)."""
    require_permission(
        acting_user,
        ClinicalPermission.RECORD,
        action=Action.UPDATE,
        patient_id=row.patient.public_id if row.patient_id else None,
        object_type=f"fhir.{row.resource_type}"[:64],
        object_id=row.fhir_id,
    )
    data = _validated(row.resource_type, resource)
    with transaction.atomic():
        locked = FhirResource.objects.select_for_update().get(pk=row.pk)
        if expected is not None and expected != locked.version_id:
            raise _stale(row.resource_type, row.fhir_id, expected, locked.version_id)
        now = clock.now()
        locked.version_id += 1
        data["id"] = locked.fhir_id
        data["meta"] = serialize.meta(locked.version_id, now, data)
        for key, value in _columns(data).items():
            setattr(locked, key, value)
        locked.content = data
        locked.content_sha256 = _sha(data)
        locked.last_updated = now
        if patient is not None:
            locked.patient = patient
        if encounter is not None:
            locked.encounter = encounter
        locked.save()
        FhirResourceVersion.objects.create(
            resource=locked,
            version_id=locked.version_id,
            content=data,
            recorded_at=now,
            recorded_by=acting_user,
            reason=reason[:200],
        )
        _audit(locked, Action.UPDATE, acting_user, locked.patient if locked.patient_id else None)
    return locked


def _audit(row: FhirResource, action: str, acting_user, patient) -> None:
    record_event(
        acting_user,
        action,
        purpose=Purpose.OPERATIONS,
        patient_id=patient.public_id if patient else None,
        object_type=f"fhir.{row.resource_type}"[:64],
        object_id=row.fhir_id,
        detail={"version": row.version_id},
    )


# --- what the views call -------------------------------------------------------------


def create(principal, resource_type: str, body) -> api_access.Read:
    """POST [type]: a new resource; its id is RecordRoom's (a sent id is ignored, as
    FHIR says)."""
    api_access.check_type(resource_type)
    if resource_type in MANAGED_ELSEWHERE:
        raise refuse_managed(resource_type)
    resource = copy.deepcopy(check_body(resource_type, body))
    resource.pop("id", None)
    source = f"fhir-api:{getattr(principal, 'client_id', '')}"[:120]
    if resource_type in api_access.CLINICAL_TYPES:
        from clinical.actions import do_record_clinical_entry

        patient = _patient_for_write(principal, resource_type, resource, required=True)
        encounter = _encounter_for_write(resource_type, resource, patient)
        try:
            entry = do_record_clinical_entry(
                patient,
                resource=resource,
                acting_user=principal.user,
                encounter=encounter,
                source=source,
            )
        except ValidationError as error:
            raise _validation_error(resource_type, error) from None
        return api_access._as_read(serialize.clinical_resource(entry))
    patient = _patient_for_write(
        principal,
        resource_type,
        resource,
        required=resource_type not in api_access.DIRECTORY_TYPES
        and _patient_reference(resource) is not None,
    )
    encounter = _encounter_for_write(resource_type, resource, patient)
    if patient is None and principal.patient_compartment(resource_type, "write") is not None:
        raise FhirError(
            403,
            Issue("error", "forbidden", "The token may write only its patient's resources.", []),
        )
    row = do_create_resource(
        resource_type,
        resource,
        acting_user=principal.user,
        patient=patient,
        encounter=encounter,
        source=source,
    )
    return api_access._as_read(serialize.stored_resource(row))


def update(principal, resource_type: str, fhir_id: str, body, if_match: str | None):
    """PUT [type]/[id]: a new version of a resource RecordRoom keeps. Update-as-create
    (a client choosing the id) is not supported: 405."""
    api_access.check_type(resource_type)
    if resource_type in MANAGED_ELSEWHERE:
        raise refuse_managed(resource_type)
    resource = check_body(resource_type, body, fhir_id)
    expected = expected_version(if_match)
    if resource_type in api_access.CLINICAL_TYPES:
        return _update_clinical(principal, resource_type, fhir_id, resource, expected)
    from django.http import Http404

    try:
        row = api_access._stored(principal, resource_type, fhir_id, audit=False)
    except FhirError as error:
        if error.status == 404:
            raise _no_update_as_create(resource_type) from None
        raise
    except Http404:
        raise _no_update_as_create(resource_type) from None
    patient = None
    new_patient = _patient_reference(resource)
    if new_patient is not None:
        patient = _patient_for_write(principal, resource_type, resource, required=True)
    if row.patient_id and (patient is None or patient.pk != row.patient_id):
        raise FhirError(
            422,
            Issue(
                "error",
                PROCESSING,
                "An update cannot move a resource to another patient (or drop its patient).",
                [f"{resource_type}.subject"],
            ),
        )
    encounter = _encounter_for_write(resource_type, resource, patient)
    row = do_update_resource(
        row,
        resource,
        acting_user=principal.user,
        reason=f"{API_REASON} ({getattr(principal, 'client_id', '')})",
        expected=expected,
        patient=patient,
        encounter=encounter,
    )
    return api_access._as_read(serialize.stored_resource(row))


def _no_update_as_create(resource_type: str) -> FhirError:
    return FhirError(
        405,
        Issue(
            "error",
            NOT_SUPPORTED,
            f"There is no {resource_type} with that id you may update; RecordRoom assigns "
            "ids itself (POST to create), so update-as-create is not supported.",
            [resource_type],
        ),
    )


def _update_clinical(principal, resource_type, fhir_id, resource, expected):
    from clinical.actions import StaleEntry, do_update_clinical_entry

    try:
        entry = api_access._clinical_entry_for_write(principal, resource_type, fhir_id)
    except FhirError as error:
        if error.status == 404:
            raise _no_update_as_create(resource_type) from None
        raise
    if expected is not None and expected != entry.version:
        raise _stale(resource_type, fhir_id, expected, entry.version)
    patient_id = _patient_reference(resource)
    if patient_id is not None and patient_id != str(entry.patient.public_id):
        raise FhirError(
            422,
            Issue(
                "error",
                PROCESSING,
                "An update cannot move a clinical entry to another patient.",
                [f"{resource_type}.subject"],
            ),
        )
    try:
        do_update_clinical_entry(
            entry,
            resource=resource,
            reason=f"{API_REASON} ({getattr(principal, 'client_id', '')})",
            acting_user=principal.user,
            expected_version=expected,  # checked again under the row lock
        )
    except StaleEntry:
        entry.refresh_from_db()
        raise _stale(resource_type, fhir_id, expected, entry.version) from None
    except ValidationError as error:
        raise _validation_error(resource_type, error) from None
    return api_access._as_read(serialize.clinical_resource(entry))
