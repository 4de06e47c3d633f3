"""Clinical data arriving through an interface (FHIR import).

The search columns and the checks are those of ``clinical.actions.parse_resource`` —
the same status value sets, the same "what is it" requirement, the same value columns —
but read from the resource as received (already validated by the importer with
``fhir.resources``), so that the stored resource is the sender's, unchanged but for
RecordRoom's id and its references rewritten to RecordRoom's ids. The version rows are
those the actions write. The caller (``interop.importer``) checks the import permission,
holds the unit's transaction and audits the unit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from clinical.actions import (
    _RESOURCES,
    _STATUS_VALUE_SETS,
    _VERIFICATION,
    _category_of,
    _concept_of,
    _effective_of,
    _first_coding,
    _status_of,
    _value_columns,
    _write_version,
)
from clinical.models import ClinicalEntry, ClinicalEntryVersion
from recordroom import clock

CLINICAL_TYPES = frozenset(str(t) for t in _RESOURCES)


def patient_element(resource_type: str) -> str:
    return _RESOURCES[resource_type][1]


def encounter_element(resource_type: str) -> str:
    return _RESOURCES[resource_type][2]


def clinical_columns(resource_type: str, data: dict) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(columns, errors keyed by element) for a clinical resource, as parse_resource
    computes them."""
    errors: dict[str, list[str]] = {}
    status = _status_of(resource_type, data)
    element, allowed = _STATUS_VALUE_SETS[resource_type]
    if status and status not in allowed:
        errors.setdefault(element, []).append(
            f"{status!r} is not a valid {resource_type}.{element} "
            f"(one of {', '.join(sorted(allowed))})."
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
    code_system, code = str(coding.get("system", "")), str(coding.get("code", ""))
    if len(code) > 40:
        errors.setdefault("code", []).append("The code is longer than 40 characters.")
    if len(code_system) > 120:
        errors.setdefault("code", []).append("The code system is longer than 120 characters.")
    columns: dict[str, Any] = {
        "resource_type": resource_type,
        "category": _category_of(resource_type, data)[:40],
        "code_system": code_system,
        "code": code,
        "display": str(display)[:300],
        "status": status[:30],
        "effective_at": _effective_of(resource_type, data),
        **_value_columns(resource_type, data, errors),
    }
    if len(columns["value_unit"]) > 30:
        errors.setdefault("value", []).append("The unit is longer than 30 characters.")
    columns["value_text"] = columns["value_text"][:300]
    columns["interpretation"] = columns["interpretation"][:8]
    if columns["effective_at"] and columns["effective_at"] > clock.now() + dt.timedelta(days=1):
        errors.setdefault("effective", []).append("The clinical date is in the future.")
    return columns, errors


def _stamped(resource: dict, public_id, version: int, now) -> dict:
    stored = dict(resource)
    stored["id"] = str(public_id)
    stored["meta"] = {
        **(resource.get("meta") or {}),
        "versionId": str(version),
        "lastUpdated": now.isoformat(),
    }
    return stored


def new_imported_entry(
    patient, *, encounter, resource: dict, columns: dict, public_id, source: str, acting_user, now
) -> dict:
    """The row of a new entry (version 1), as attribute values: a batch of them is
    written with their first versions by :func:`save_imported_entries`."""
    return {
        "public_id": public_id,
        "patient_id": patient.pk,
        "encounter_id": encounter.pk if encounter is not None else None,
        "resource": _stamped(resource, public_id, 1, now),
        "source": source[:120],
        "recorded_at": now,
        "recorded_by_id": acting_user.pk if acting_user is not None else None,
        "version": 1,
        "entered_in_error": False,
        **columns,
    }


def save_imported_entries(rows: list[dict], *, acting_user_id, now, insert) -> None:
    """Insert new entries (rows from :func:`new_imported_entry`) and their version 1
    rows, as ``do_record_clinical_entry`` writes them. ``insert(model, rows)`` inserts
    rows of attribute values and returns their new primary keys, in order (the
    import's fast insert); the version holds the entry's resource as the entry does."""
    if not rows:
        return
    keys = insert(ClinicalEntry, rows)
    insert(
        ClinicalEntryVersion,
        [
            {
                "entry_id": pk,
                "number": 1,
                "resource": row["resource"],
                "changed_by_id": acting_user_id,
                "changed_at": now,
                "reason": "recorded (imported)",
            }
            for pk, row in zip(keys, rows, strict=True)
        ],
    )


def update_imported_entry(
    entry: ClinicalEntry, *, encounter, resource: dict, columns: dict, acting_user, now
) -> ClinicalEntry:
    locked = ClinicalEntry.objects.select_for_update(of=("self",)).get(pk=entry.pk)
    for key, value in columns.items():
        setattr(locked, key, value)
    locked.encounter = encounter
    locked.version += 1
    locked.resource = _stamped(resource, locked.public_id, locked.version, now)
    locked.save()
    _write_version(
        locked, acting_user=acting_user, reason="updated by the sender (imported)", now=now
    )
    return locked
