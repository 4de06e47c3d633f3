"""Recording clinical data: problems, procedures, medications, allergies, results and
vital signs, immunizations — each a FHIR R4 resource, validated with ``fhir.resources``
(its R4B package, wire-compatible with R4 for these resources) and kept whole, with
the columns RecordRoom searches and shows filled from it.

Every state of an entry is a :class:`ClinicalEntryVersion`; entered-in-error marks the
entry and hides it from the chart, and keeps it. Permission checks come first, outside
the transaction (see accounts.access).
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import importlib
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError as PydanticValidationError

from accounts.access import require_permission
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from clinical.models import CODED_SOURCE, ClinicalEntry, ClinicalEntryVersion, ResourceType
from clinical.permissions import ClinicalPermission
from clinical.signals import clinical_entry_changed
from encounters.models import EncounterStatus
from patients.models import Patient
from recordroom import clock

# resource type -> (fhir.resources.R4B module, the element naming the patient, the
# element naming the encounter)
_RESOURCES: dict[str, tuple[str, str, str]] = {
    ResourceType.CONDITION: ("condition", "subject", "encounter"),
    ResourceType.PROCEDURE: ("procedure", "subject", "encounter"),
    ResourceType.MEDICATION_STATEMENT: ("medicationstatement", "subject", "context"),
    ResourceType.MEDICATION_REQUEST: ("medicationrequest", "subject", "encounter"),
    ResourceType.ALLERGY: ("allergyintolerance", "patient", "encounter"),
    ResourceType.OBSERVATION: ("observation", "subject", "encounter"),
    ResourceType.IMMUNIZATION: ("immunization", "patient", "encounter"),
}

# Status codes of the required FHIR R4 value sets: fhir.resources checks the shape of a
# resource, not its codes, and a status the chart cannot read is refused here.
_STATUS_VALUE_SETS: dict[str, tuple[str, set[str]]] = {
    ResourceType.CONDITION: (
        "clinicalStatus",
        {"active", "recurrence", "relapse", "inactive", "remission", "resolved"},
    ),
    ResourceType.ALLERGY: ("clinicalStatus", {"active", "inactive", "resolved"}),
    ResourceType.PROCEDURE: (
        "status",
        {
            "preparation",
            "in-progress",
            "not-done",
            "on-hold",
            "stopped",
            "completed",
            "entered-in-error",
            "unknown",
        },
    ),
    ResourceType.MEDICATION_STATEMENT: (
        "status",
        {
            "active",
            "completed",
            "entered-in-error",
            "intended",
            "stopped",
            "on-hold",
            "unknown",
            "not-taken",
        },
    ),
    ResourceType.MEDICATION_REQUEST: (
        "status",
        {
            "active",
            "on-hold",
            "cancelled",
            "completed",
            "entered-in-error",
            "stopped",
            "draft",
            "unknown",
        },
    ),
    ResourceType.OBSERVATION: (
        "status",
        {
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        },
    ),
    ResourceType.IMMUNIZATION: ("status", {"completed", "entered-in-error", "not-done"}),
}
_VERIFICATION = {
    ResourceType.CONDITION: {
        "unconfirmed",
        "provisional",
        "differential",
        "confirmed",
        "refuted",
        "entered-in-error",
    },
    ResourceType.ALLERGY: {"unconfirmed", "confirmed", "refuted", "entered-in-error"},
}
_VERIFICATION_SYSTEMS = {
    ResourceType.CONDITION: "http://terminology.hl7.org/CodeSystem/condition-ver-status",
    ResourceType.ALLERGY: "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
}

_MAX_DECIMAL = decimal.Decimal("1e12")
_SIX_PLACES = decimal.Decimal("0.000001")


def _model_class(resource_type: str):
    module_name = _RESOURCES[resource_type][0]
    module = importlib.import_module(f"fhir.resources.R4B.{module_name}")
    class_name = next(
        name for name in dir(module) if name.lower() == module_name and name[0].isupper()
    )
    return getattr(module, class_name)


# --- reading a resource -------------------------------------------------------------------


def _first_coding(concept: dict | None) -> dict:
    codings = (concept or {}).get("coding") or []
    return codings[0] if codings else {}


def _concept_of(resource_type: str, resource: dict) -> dict | None:
    if resource_type in (ResourceType.MEDICATION_STATEMENT, ResourceType.MEDICATION_REQUEST):
        concept = resource.get("medicationCodeableConcept")
        if concept is None and resource.get("medicationReference"):
            return {"text": resource["medicationReference"].get("display", "")}
        return concept
    if resource_type == ResourceType.IMMUNIZATION:
        return resource.get("vaccineCode")
    return resource.get("code")


def _status_of(resource_type: str, resource: dict) -> str:
    element, _ = _STATUS_VALUE_SETS[resource_type]
    value = resource.get(element)
    if isinstance(value, dict):
        return _first_coding(value).get("code", "")
    return value or ""


def _category_of(resource_type: str, resource: dict) -> str:
    category = resource.get("category")
    if isinstance(category, list) and category:
        first = category[0]
        if isinstance(first, dict):
            return _first_coding(first).get("code", "") or first.get("text", "")
        return str(first)  # AllergyIntolerance.category is a list of codes
    if isinstance(category, dict):
        return _first_coding(category).get("code", "")
    return ""


def _parse_fhir_moment(value: str | None) -> dt.datetime | None:
    """A FHIR date or dateTime (possibly partial: 2020, 2020-05) as an aware datetime;
    a date alone means midnight local time."""
    if not value:
        return None
    text = str(value)
    try:
        if "T" in text:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            return moment if timezone.is_aware(moment) else timezone.make_aware(moment)
        parts = [int(p) for p in text.split("-")]
        day = dt.date(
            parts[0], parts[1] if len(parts) > 1 else 1, parts[2] if len(parts) > 2 else 1
        )
    except ValueError:
        return None
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


def _effective_of(resource_type: str, resource: dict) -> dt.datetime | None:
    candidates = {
        ResourceType.CONDITION: ["onsetDateTime", "onsetPeriod.start", "recordedDate"],
        ResourceType.PROCEDURE: ["performedDateTime", "performedPeriod.start"],
        ResourceType.MEDICATION_STATEMENT: [
            "effectiveDateTime",
            "effectivePeriod.start",
            "dateAsserted",
        ],
        ResourceType.MEDICATION_REQUEST: ["authoredOn"],
        ResourceType.ALLERGY: ["onsetDateTime", "onsetPeriod.start", "recordedDate"],
        ResourceType.OBSERVATION: [
            "effectiveDateTime",
            "effectivePeriod.start",
            "effectiveInstant",
            "issued",
        ],
        ResourceType.IMMUNIZATION: ["occurrenceDateTime", "recorded"],
    }[resource_type]
    for path in candidates:
        value: Any = resource
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        moment = _parse_fhir_moment(value)
        if moment is not None:
            return moment
    return None


def _decimal(value, errors: dict, key: str) -> decimal.Decimal | None:
    if value is None:
        return None
    number = decimal.Decimal(str(value))
    if abs(number) >= _MAX_DECIMAL:
        errors.setdefault(key, []).append(f"The value {number} is too large to record.")
        return None
    return number.quantize(_SIX_PLACES, rounding=decimal.ROUND_HALF_EVEN)


def _quantity_text(quantity: dict) -> str:
    value = quantity.get("value")
    unit = quantity.get("unit") or quantity.get("code") or ""
    return f"{value} {unit}".strip() if value is not None else ""


def _value_columns(resource_type: str, resource: dict, errors: dict) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "value_quantity": None,
        "value_unit": "",
        "value_text": "",
        "reference_low": None,
        "reference_high": None,
        "interpretation": "",
    }
    if resource_type == ResourceType.OBSERVATION:
        quantity = resource.get("valueQuantity")
        if quantity:
            columns["value_quantity"] = _decimal(quantity.get("value"), errors, "value")
            columns["value_unit"] = quantity.get("unit") or quantity.get("code") or ""
        elif "valueString" in resource:
            columns["value_text"] = str(resource["valueString"])
        elif "valueCodeableConcept" in resource:
            concept = resource["valueCodeableConcept"]
            columns["value_text"] = concept.get("text") or _first_coding(concept).get("display", "")
        elif "valueBoolean" in resource:
            columns["value_text"] = "yes" if resource["valueBoolean"] else "no"
        elif "valueInteger" in resource:
            columns["value_quantity"] = _decimal(resource["valueInteger"], errors, "value")
        elif resource.get("component"):
            # A panel such as blood pressure: systolic/diastolic in one line.
            parts = [
                _quantity_text(component.get("valueQuantity") or {})
                for component in resource["component"]
            ]
            values = [p.split(" ", 1) for p in parts if p]
            if values and len({tuple(v[1:]) for v in values}) == 1:
                columns["value_text"] = "/".join(v[0] for v in values) + (
                    f" {values[0][1]}" if len(values[0]) > 1 else ""
                )
            else:
                columns["value_text"] = "; ".join(p for p in parts if p)
        ranges = resource.get("referenceRange") or []
        if ranges:
            columns["reference_low"] = _decimal(
                (ranges[0].get("low") or {}).get("value"), errors, "referenceRange"
            )
            columns["reference_high"] = _decimal(
                (ranges[0].get("high") or {}).get("value"), errors, "referenceRange"
            )
        interpretations = resource.get("interpretation") or []
        if interpretations:
            columns["interpretation"] = _first_coding(interpretations[0]).get("code", "")
    elif resource_type == ResourceType.ALLERGY:
        reactions = resource.get("reaction") or []
        manifestations = [
            m.get("text") or _first_coding(m).get("display", "")
            for reaction in reactions
            for m in reaction.get("manifestation") or []
        ]
        text = ", ".join(m for m in manifestations if m)
        if resource.get("criticality") == "high":
            text = f"{text} (high criticality)" if text else "High criticality"
        columns["value_text"] = text
    elif resource_type in (ResourceType.MEDICATION_STATEMENT, ResourceType.MEDICATION_REQUEST):
        dosages = resource.get("dosage") or resource.get("dosageInstruction") or []
        if dosages:
            columns["value_text"] = dosages[0].get("text", "")
    return columns


def _check_length(errors: dict, key: str, value: str, limit: int, what: str) -> None:
    if len(value) > limit:
        errors.setdefault(key, []).append(f"The {what} is longer than {limit} characters.")


def _pydantic_errors(error: PydanticValidationError) -> list[str]:
    messages = []
    for item in error.errors()[:5]:
        where = ".".join(str(part) for part in item.get("loc", ())) or "resource"
        messages.append(f"{where}: {item.get('msg', 'invalid')}")
    more = error.error_count() - len(messages)
    if more > 0:
        messages.append(f"… and {more} more problems.")
    return messages


def parse_resource(resource: dict) -> tuple[str, dict, dict[str, Any]]:
    """Validate a FHIR resource and read its search columns.

    Returns (resource type, the resource as validated JSON, columns). Raises
    ValidationError naming what is wrong.
    """
    if not isinstance(resource, dict):
        raise ValidationError({"resource": ["A FHIR resource is a JSON object."]})
    resource_type = resource.get("resourceType")
    if resource_type not in _RESOURCES:
        allowed = ", ".join(sorted(_RESOURCES))
        raise ValidationError(
            {
                "resource": [
                    f"Clinical data is one of {allowed}; this is {resource_type or 'not a FHIR resource'}."
                ]
            }
        )
    try:
        model = _model_class(resource_type).model_validate(resource)
    except PydanticValidationError as error:
        raise ValidationError({"resource": _pydantic_errors(error)}) from None
    data = model.model_dump(mode="json", exclude_none=True, by_alias=True)
    errors: dict[str, list[str]] = {}

    status = _status_of(resource_type, data)
    element, allowed_statuses = _STATUS_VALUE_SETS[resource_type]
    if status and status not in allowed_statuses:
        errors.setdefault(element, []).append(
            f"{status!r} is not a valid {resource_type}.{element} "
            f"(one of {', '.join(sorted(allowed_statuses))})."
        )
    if resource_type in _VERIFICATION:
        verification = _first_coding(data.get("verificationStatus")).get("code", "")
        if verification and verification not in _VERIFICATION[resource_type]:
            errors.setdefault("verificationStatus", []).append(
                f"{verification!r} is not a verification status code."
            )
    concept = _concept_of(resource_type, data) or {}
    coding = _first_coding(concept)
    display = concept.get("text") or coding.get("display") or coding.get("code") or ""
    if not display:
        errors.setdefault("code", []).append("The resource has no code or text saying what it is.")
    code_system, code = coding.get("system", ""), coding.get("code", "")
    _check_length(errors, "code", code, 40, "code")
    _check_length(errors, "code", code_system, 120, "code system")
    columns: dict[str, Any] = {
        "resource_type": resource_type,
        "category": _category_of(resource_type, data)[:40],
        "code_system": code_system,
        "code": code,
        "display": display[:300],
        "status": status[:30],
        "effective_at": _effective_of(resource_type, data),
        **_value_columns(resource_type, data, errors),
    }
    _check_length(errors, "value", columns["value_unit"], 30, "unit")
    columns["value_text"] = columns["value_text"][:300]
    columns["interpretation"] = columns["interpretation"][:8]
    if columns["effective_at"] and columns["effective_at"] > clock.now() + dt.timedelta(days=1):
        errors.setdefault("effective", []).append("The clinical date is in the future.")
    if errors:
        raise ValidationError(errors)
    return resource_type, data, columns


# --- writing --------------------------------------------------------------------------------


def _stamp(entry: ClinicalEntry, data: dict, now) -> dict:
    """The stored resource: RecordRoom's id, version, and references to the patient and
    encounter, so the FHIR layer can serve it as it is."""
    stored = copy.deepcopy(data)
    _, patient_element, encounter_element = _RESOURCES[entry.resource_type]
    stored["id"] = str(entry.public_id)
    stored["meta"] = {
        **(stored.get("meta") or {}),
        "versionId": str(entry.version),
        "lastUpdated": now.isoformat(),
    }
    stored[patient_element] = {"reference": f"Patient/{entry.patient.public_id}"}
    if entry.encounter_id:
        stored[encounter_element] = {"reference": f"Encounter/{entry.encounter.public_id}"}
    else:
        stored.pop(encounter_element, None)
    return stored


def _check_encounter(patient: Patient, encounter) -> None:
    if encounter is None:
        return
    if encounter.patient_id != patient.pk:
        raise ValidationError({"encounter": ["The encounter is another patient's."]})
    if encounter.status in (EncounterStatus.CANCELLED, EncounterStatus.ENTERED_IN_ERROR):
        raise ValidationError(
            {"encounter": ["The encounter was cancelled or entered in error; record it elsewhere."]}
        )


def _audit(entry: ClinicalEntry, action: str, *, acting_user, reason: str = "", **detail) -> None:
    record_event(
        acting_user,
        action,
        purpose=Purpose.OPERATIONS,
        patient_id=entry.patient.public_id,
        object_type="clinical_entry",
        object_id=str(entry.public_id),
        reason=reason,
        detail={"resource_type": entry.resource_type, "version": entry.version, **detail},
    )
    clinical_entry_changed.send(sender=ClinicalEntry, entry=entry, change=action)


def _write_version(entry: ClinicalEntry, *, acting_user, reason: str, now) -> None:
    ClinicalEntryVersion.objects.create(
        entry=entry,
        number=entry.version,
        resource=entry.resource,
        changed_by=acting_user,
        changed_at=now,
        reason=reason[:300],
    )


def do_record_clinical_entry(
    patient: Patient,
    *,
    resource: dict,
    acting_user,
    encounter=None,
    source: str = "",
) -> ClinicalEntry:
    """Record one clinical fact for a patient (and encounter): a FHIR R4 Condition,
    Procedure, MedicationStatement, MedicationRequest, AllergyIntolerance, Observation
    or Immunization. ``source`` says where it came from (a system, a bundle)."""
    require_permission(
        acting_user,
        ClinicalPermission.RECORD,
        action=Action.CREATE,
        patient_id=patient.public_id,
        object_type="clinical_entry",
    )
    resource_type, data, columns = parse_resource(resource)
    _check_encounter(patient, encounter)
    source = (source or "").strip()
    if len(source) > 120:
        raise ValidationError({"source": ["The source is longer than 120 characters."]})
    with transaction.atomic():
        return _create(patient, encounter, data, columns, source=source, acting_user=acting_user)


def _create(patient, encounter, data: dict, columns: dict, *, source: str, acting_user):
    now = clock.now()
    entry = ClinicalEntry(
        patient=patient,
        encounter=encounter,
        resource=data,
        source=source,
        recorded_at=now,
        recorded_by=acting_user,
        version=1,
        **columns,
    )
    entry.resource = _stamp(entry, data, now)
    entry.save(force_insert=True)
    _write_version(entry, acting_user=acting_user, reason="recorded", now=now)
    _audit(entry, Action.CREATE, acting_user=acting_user, source=source[:60])
    return entry


class StaleEntry(ValidationError):
    """The entry changed since the version the caller last saw (``expected_version``)."""


def do_update_clinical_entry(
    entry: ClinicalEntry,
    *,
    resource: dict,
    reason: str,
    acting_user,
    expected_version: int | None = None,
) -> ClinicalEntry:
    """A new version of a clinical entry (a result corrected, a problem resolved). The
    resource type cannot change; the previous versions stay readable. With
    ``expected_version`` (an If-Match), the version is checked under the row lock and
    :class:`StaleEntry` raised when someone else changed it first."""
    require_permission(
        acting_user,
        ClinicalPermission.RECORD,
        action=Action.UPDATE,
        patient_id=entry.patient.public_id,
        object_type="clinical_entry",
        object_id=str(entry.public_id),
    )
    _refuse_coded(entry, acting_user)
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise ValidationError({"reason": ["Say why the entry changes (at least 5 characters)."]})
    resource_type, data, columns = parse_resource(resource)
    if resource_type != entry.resource_type:
        raise ValidationError(
            {
                "resource": [
                    f"This entry is a {entry.resource_type}; it cannot become a {resource_type}."
                ]
            }
        )
    with transaction.atomic():
        now = clock.now()
        locked = (
            ClinicalEntry.objects.select_for_update(of=("self",))
            .select_related("patient", "encounter")
            .get(pk=entry.pk)
        )
        if locked.entered_in_error:
            raise ValidationError({"__all__": ["This entry was marked entered in error."]})
        if expected_version is not None and expected_version != locked.version:
            raise StaleEntry(
                f"The entry is at version {locked.version}, not {expected_version}: reload it."
            )
        _new_version(locked, data, columns, acting_user=acting_user, reason=reason, now=now)
    _copy(entry, locked)
    return entry


def _new_version(locked: ClinicalEntry, data, columns, *, acting_user, reason, now) -> None:
    for key, value in columns.items():
        setattr(locked, key, value)
    locked.version += 1
    locked.resource = _stamp(locked, data, now)
    locked.save()
    _write_version(locked, acting_user=acting_user, reason=reason, now=now)
    _audit(locked, Action.UPDATE, acting_user=acting_user, reason=reason)


def _mark_resource_in_error(resource_type: str, resource: dict) -> dict:
    marked = copy.deepcopy(resource)
    if resource_type in _VERIFICATION:
        marked["verificationStatus"] = {
            "coding": [{"system": _VERIFICATION_SYSTEMS[resource_type], "code": "entered-in-error"}]
        }
    else:
        marked["status"] = "entered-in-error"
    return marked


def do_mark_clinical_entry_in_error(
    entry: ClinicalEntry, *, reason: str, acting_user
) -> ClinicalEntry:
    """The entry was recorded in error (wrong patient, wrong result): it leaves the chart
    and is kept, with a new version saying so."""
    require_permission(
        acting_user,
        ClinicalPermission.MARK_IN_ERROR,
        action=Action.UPDATE,
        patient_id=entry.patient.public_id,
        object_type="clinical_entry",
        object_id=str(entry.public_id),
    )
    _refuse_coded(entry, acting_user)
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise ValidationError({"reason": ["Say why it is in error (at least 5 characters)."]})
    with transaction.atomic():
        now = clock.now()
        locked = (
            ClinicalEntry.objects.select_for_update(of=("self",))
            .select_related("patient", "encounter")
            .get(pk=entry.pk)
        )
        if locked.entered_in_error:
            raise ValidationError({"__all__": ["This entry is already marked entered in error."]})
        _mark_in_error(locked, acting_user=acting_user, reason=reason, now=now)
    _copy(entry, locked)
    return entry


def _mark_in_error(locked: ClinicalEntry, *, acting_user, reason: str, now) -> None:
    locked.entered_in_error = True
    locked.version += 1
    locked.resource = _stamp(
        locked, _mark_resource_in_error(locked.resource_type, locked.resource), now
    )
    if locked.resource_type not in _VERIFICATION:
        locked.status = "entered-in-error"
    locked.save(update_fields=["entered_in_error", "version", "resource", "status"])
    _write_version(locked, acting_user=acting_user, reason=f"entered in error: {reason}", now=now)
    _audit(locked, Action.UPDATE, acting_user=acting_user, reason=reason, entered_in_error=True)


# --- the final coded diagnoses --------------------------------------------------------------


def _refuse_coded(entry: ClinicalEntry, acting_user) -> None:
    """A final coded diagnosis changes only through its abstract (reopened for a
    rebill): the refusal is audited before it is raised."""
    if entry.source != CODED_SOURCE:
        return
    record_event(
        acting_user,
        Action.UPDATE,
        outcome=Outcome.DENIED,
        purpose=Purpose.OPERATIONS,
        patient_id=entry.patient.public_id,
        object_type="clinical_entry",
        object_id=str(entry.public_id),
        reason="a final coded diagnosis changes only through its abstract",
    )
    raise ValidationError(
        {
            "__all__": [
                "This Condition is a final coded diagnosis of the encounter's abstract: "
                "it changes only when a coder reopens the abstract for a rebill."
            ]
        }
    )


def project_coded_diagnoses(encounter, resources: list[dict], *, acting_user, reason: str) -> None:
    """Keep the encounter's final coded diagnoses as encounter-diagnosis Conditions, so
    the FHIR Condition search, read, $everything and bulk export carry the final codes.

    Called by ``coding.abstracts`` inside its transaction when an abstract becomes final
    (or final again after a rebill), after it has checked the coder's permission: these
    entries are a projection of the abstract, not a clinician's documentation, so they
    need no clinical permission and carry ``source = CODED_SOURCE`` (the completion rule
    for a final diagnosis does not count them). One entry per code: a code already
    projected gets a new version when its resource changed (sequence, POA), a code no
    longer on the abstract is marked entered in error (kept, with its versions). Clinical
    updates and entered-in-error marks refuse these entries: they change only here."""
    parsed = {}
    for resource in resources:  # a code given twice is projected once, at its first place
        resource_type, data, columns = parse_resource(resource)
        parsed.setdefault(columns["code"], (resource_type, data, columns))
    current: dict[str, list[ClinicalEntry]] = {}
    for entry in (
        ClinicalEntry.objects.select_for_update(of=("self",))
        .select_related("patient", "encounter")
        .filter(encounter=encounter, source=CODED_SOURCE, entered_in_error=False)
        .order_by("pk")
    ):
        current.setdefault(entry.code, []).append(entry)
    now = clock.now()
    for code, (_resource_type, data, columns) in parsed.items():
        kept = current.get(code) or []
        entry = kept.pop(0) if kept else None
        if entry is None:
            _create(
                encounter.patient,
                encounter,
                data,
                columns,
                source=CODED_SOURCE,
                acting_user=acting_user,
            )
            continue
        if _unstamped(entry.resource) != _unstamped(data):
            _new_version(entry, data, columns, acting_user=acting_user, reason=reason, now=now)
    for entry in (entry for extra in current.values() for entry in extra):
        _mark_in_error(
            entry,
            acting_user=acting_user,
            reason=f"no longer a final code of the encounter ({reason})",
            now=now,
        )


def _unstamped(resource: dict) -> dict:
    """A resource without what ``_stamp`` sets, to compare content."""
    return {k: v for k, v in resource.items() if k not in ("id", "meta", "subject", "encounter")}


def _copy(target: ClinicalEntry, source: ClinicalEntry) -> None:
    for field in ClinicalEntry._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
