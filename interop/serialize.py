"""RecordRoom's records as FHIR R4 resources (US Core where it has a profile).

Where a resource came in through an import, the resource as received is kept
(``interop.models.FhirResource``) and served back: nothing the sender wrote is lost.
RecordRoom's own state wins where it has changed since the import (a demographics
correction, a discharge, a document marked entered in error): the modelled elements are
then built from the record and laid over the received JSON, and the elements RecordRoom
does not model (extensions, communication, managingOrganization, text, …) stay.

Every function here takes objects the caller already fetched (with their related rows
prefetched) and never queries the database itself, so a page of a search costs the same
few queries whatever its size.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
from typing import Any

from django.utils import timezone

# Identifier systems RecordRoom assigns. The MRN system names the facility that issued
# the number, so two facilities' MRNs never collide.
MRN_SYSTEM_PREFIX = "urn:recordroom:mrn:"
VISIT_SYSTEM_PREFIX = "urn:recordroom:visit:"
IDENTIFIER_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
NATIONAL_ID_SYSTEMS = {
    "SS": "http://hl7.org/fhir/sid/us-ssn",
    "MB": "urn:recordroom:member-id",
    "MC": "http://hl7.org/fhir/sid/us-mbi",
    "XX": "urn:recordroom:identifier",
}

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
RACE_URL = US_CORE + "us-core-race"
ETHNICITY_URL = US_CORE + "us-core-ethnicity"
BIRTHSEX_URL = US_CORE + "us-core-birthsex"
MODELLED_EXTENSIONS = {RACE_URL, ETHNICITY_URL, BIRTHSEX_URL}
OMB_SYSTEM = "urn:oid:2.16.840.1.113883.6.238"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"

# Sensitive document categories as HL7 v3 ActCode information-sensitivity codes.
SENSITIVITY_CODES = {
    "psychotherapy": ("PSYTHPN", "psychotherapy note information sensitivity"),
    "sud_part2": ("ETH", "substance abuse information sensitivity"),
    "hiv_sti": ("HIV", "HIV/AIDS information sensitivity"),
    "genetic": ("GDIS", "genetic disease information sensitivity"),
    "reproductive": ("SEX", "sexuality and reproductive health information sensitivity"),
    "behavioral": ("BH", "behavioral health information sensitivity"),
}

DOC_STATUS = {
    "draft": "preliminary",
    "final": "final",
    "amended": "amended",
    "corrected": "amended",
    "entered-in-error": "entered-in-error",
}

ENCOUNTER_CLASS_DISPLAY = {
    "IMP": "inpatient encounter",
    "OBSENC": "observation encounter",
    "EMER": "emergency",
    "AMB": "ambulatory",
}

# Attachments larger than this are described (type, size, title) rather than inlined.
MAX_INLINE_ATTACHMENT = 8 * 1024 * 1024


def instant(moment: dt.datetime | None) -> str | None:
    """A FHIR instant / dateTime: UTC, seconds precision or finer, with an offset."""
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def meta(version: int | str, last_updated: dt.datetime | None, received: dict | None = None):
    result = dict((received or {}).get("meta") or {})
    result["versionId"] = str(version)
    if last_updated is not None:
        result["lastUpdated"] = instant(last_updated)
    return result


def mrn_system(facility_code: str) -> str:
    return f"{MRN_SYSTEM_PREFIX}{facility_code}"


def _drop_empty(resource: dict) -> dict:
    """Leave out elements without a value (FHIR forbids empty strings, lists, objects)."""
    cleaned: dict = {}
    for key, value in resource.items():
        if isinstance(value, dict):
            value = _drop_empty(value)
        elif isinstance(value, list):
            value = [_drop_empty(v) if isinstance(v, dict) else v for v in value]
            value = [v for v in value if v not in (None, "", {}, [])]
        if value in (None, "", {}, []):
            continue
        cleaned[key] = value
    return cleaned


# --- Patient -------------------------------------------------------------------------


def _gender(sex_at_birth: str, gender_identity: str) -> str:
    if gender_identity in ("female", "male"):
        return gender_identity
    if gender_identity in ("transgender-female",):
        return "female"
    if gender_identity in ("transgender-male",):
        return "male"
    if gender_identity in ("non-binary", "other"):
        return "other"
    return {"F": "female", "M": "male"}.get(sex_at_birth, "unknown")


def _omb_extension(url: str, code: str, label: str) -> dict:
    system = NULL_FLAVOR if code == "ASKU" else OMB_SYSTEM
    return {
        "url": url,
        "extension": [
            {
                "url": "ombCategory",
                "valueCoding": {"system": system, "code": code, "display": label},
            },
            {"url": "text", "valueString": label},
        ],
    }


def _name(use: str, family: str, given: str, middle: str, suffix: str, period_end=None):
    return _drop_empty(
        {
            "use": use,
            "family": family,
            "given": [g for g in (given, middle) if g],
            "suffix": [suffix] if suffix else [],
            "period": {"end": period_end.isoformat()} if period_end else {},
        }
    )


def _address(address) -> dict:
    return _drop_empty(
        {
            "use": address.use,
            "line": [line for line in (address.line1, address.line2) if line],
            "city": address.city,
            "state": address.state,
            "postalCode": address.postal_code,
            "country": address.country,
            "period": {"end": address.period_end.isoformat()} if address.period_end else {},
        }
    )


def _identifier(identifier) -> dict | None:
    """A PatientIdentifier row as FHIR; national ids (kept encrypted) are never served
    from the model: only their masked form exists without decrypting."""
    if identifier.is_encrypted:
        return None
    if identifier.kind == "MR":
        code = identifier.facility.code if identifier.facility_id else "unknown"
        result = {
            "use": "usual" if identifier.active else "old",
            "type": {
                "coding": [
                    {
                        "system": IDENTIFIER_TYPE_SYSTEM,
                        "code": "MR",
                        "display": "Medical record number",
                    }
                ]
            },
            "system": mrn_system(code),
            "value": identifier.value,
        }
        if identifier.facility_id:
            result["assigner"] = {"display": identifier.facility.name}
        return result
    return _drop_empty(
        {
            "use": "usual" if identifier.active else "old",
            "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": identifier.kind}]},
            "system": NATIONAL_ID_SYSTEMS.get(identifier.kind, "urn:recordroom:identifier"),
            "value": identifier.value,
            "assigner": {"display": identifier.issuer} if identifier.issuer else {},
        }
    )


def _modelled_patient(patient) -> dict:
    """The elements of Patient that RecordRoom models, from the patient's rows
    (``names``, ``identifiers``, ``addresses``, ``telecoms`` prefetched)."""
    from patients.models import Ethnicity, Race

    names = [
        _name(n.use, n.family, n.given, n.middle, n.suffix, n.period_end)
        for n in sorted(
            patient.names.all(),
            key=lambda n: (n.use == "old" or n.period_end is not None, n.use != "official", n.pk),
        )
    ] or [
        _name(
            "official",
            patient.family_name,
            patient.given_name,
            patient.middle_name,
            patient.suffix,
        )
    ]
    identifiers = [
        i
        for i in (_identifier(row) for row in sorted(patient.identifiers.all(), key=lambda r: r.pk))
        if i
    ]
    telecoms = [
        {"system": t.system, "value": t.value, "use": t.use}
        for t in sorted(patient.telecoms.all(), key=lambda t: t.pk)
        if t.active
    ]
    addresses = [_address(a) for a in sorted(patient.addresses.all(), key=lambda a: a.pk)]
    extensions = []
    if patient.race:
        extensions.append(_omb_extension(RACE_URL, patient.race, Race(patient.race).label))
    if patient.ethnicity:
        extensions.append(
            _omb_extension(ETHNICITY_URL, patient.ethnicity, Ethnicity(patient.ethnicity).label)
        )
    if patient.sex_at_birth:
        extensions.append({"url": BIRTHSEX_URL, "valueCode": patient.sex_at_birth})
    result: dict[str, Any] = {
        "extension": extensions,
        "identifier": identifiers,
        "active": patient.merged_into_id is None,
        "name": names,
        "telecom": telecoms,
        "gender": _gender(patient.sex_at_birth, patient.gender_identity),
        "birthDate": patient.birth_date.isoformat(),
        "address": addresses,
    }
    if patient.deceased_at:
        result["deceasedDateTime"] = instant(patient.deceased_at)
    return result


def _mrn_identifiers(patient) -> list[dict]:
    rows = sorted(patient.identifiers.all(), key=lambda r: r.pk)
    return [_identifier(r) for r in rows if r.kind == "MR"]


def _same_identifier(a: dict, b: dict) -> bool:
    return a.get("system") == b.get("system") and a.get("value") == b.get("value")


def patient_resource(patient, received=None) -> dict:
    """Patient as FHIR. ``received`` is the FhirResource kept from an import (or None).

    Unchanged since the import: the received JSON with RecordRoom's id, meta and MRN.
    Changed in RecordRoom since (or registered here): built from the record, keeping
    the received elements RecordRoom does not model."""
    last_updated = patient.updated_at
    if received is not None and received.last_updated > last_updated:
        last_updated = received.last_updated
    base = copy.deepcopy(received.content) if received is not None else {}
    if received is not None and patient.updated_at <= received.last_updated:
        resource = base
        identifiers = list(resource.get("identifier") or [])
        for mrn in _mrn_identifiers(patient):
            if not any(_same_identifier(mrn, i) for i in identifiers):
                identifiers.append(mrn)
        resource["identifier"] = identifiers
    else:
        modelled = _modelled_patient(patient)
        resource = base
        kept_extensions = [
            e for e in resource.get("extension") or [] if e.get("url") not in MODELLED_EXTENSIONS
        ]
        modelled["extension"] = modelled["extension"] + kept_extensions
        # National ids are kept encrypted and served only as received.
        received_ids = [
            i
            for i in resource.get("identifier") or []
            if i.get("system") in (NATIONAL_ID_SYSTEMS["SS"],)
            or _type_code(i) in ("SS", "DL", "PPN", "SB")
        ]
        modelled["identifier"] = modelled["identifier"] + [
            i
            for i in received_ids
            if not any(_same_identifier(i, m) for m in modelled["identifier"])
        ]
        for key in ("deceasedBoolean", "deceasedDateTime"):
            resource.pop(key, None)
        resource.update(modelled)
        resource = {k: v for k, v in resource.items() if v not in ([], "", None, {})}
    resource["resourceType"] = "Patient"
    resource["id"] = str(patient.public_id)
    resource["meta"] = meta(patient.version, last_updated, base)
    return _ordered(resource)


def _type_code(identifier: dict) -> str:
    codings = (identifier.get("type") or {}).get("coding") or []
    return codings[0].get("code", "") if codings else ""


def patient_from_snapshot(public_id, number: int, snapshot: dict, changed_at) -> dict:
    """A past version of a patient's demographics (PatientVersion.snapshot) as FHIR.
    National ids are masked in snapshots and are left out."""
    name = snapshot.get("name") or {}
    names = [
        _name(
            n.get("use", "official"),
            n["family"],
            n.get("given", ""),
            n.get("middle", ""),
            n.get("suffix", ""),
        )
        for n in sorted(
            snapshot.get("names") or [],
            key=lambda n: (n.get("use") == "old", n.get("use", "official") != "official"),
        )
    ] or [
        _name(
            "official",
            name.get("family", ""),
            name.get("given", ""),
            name.get("middle", ""),
            name.get("suffix", ""),
        )
    ]
    identifiers = []
    for ident in snapshot.get("identifiers") or []:
        if ident.get("kind") == "MR":
            identifiers.append(
                {
                    "use": "usual" if ident.get("active", True) else "old",
                    "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": "MR"}]},
                    "system": mrn_system(ident.get("facility") or "unknown"),
                    "value": ident.get("value", ""),
                }
            )
    resource = {
        "resourceType": "Patient",
        "id": str(public_id),
        "meta": meta(number, changed_at),
        "identifier": identifiers,
        "name": names,
        "telecom": [
            {"system": t["system"], "value": t["value"], "use": t.get("use", "home")}
            for t in snapshot.get("telecoms") or []
            if t.get("active", True)
        ],
        "gender": _gender(snapshot.get("sex_at_birth", ""), snapshot.get("gender_identity", "")),
        "birthDate": snapshot.get("birth_date"),
        "address": [
            _drop_empty(
                {
                    "use": a.get("use"),
                    "line": [x for x in (a.get("line1"), a.get("line2")) if x],
                    "city": a.get("city"),
                    "state": a.get("state"),
                    "postalCode": a.get("postal_code"),
                }
            )
            for a in snapshot.get("addresses") or []
        ],
    }
    if snapshot.get("deceased_at"):
        resource["deceasedDateTime"] = instant(dt.datetime.fromisoformat(snapshot["deceased_at"]))
    return _drop_empty(resource)


# --- Encounter -----------------------------------------------------------------------


def _encounter_locations(locations: list, fallback_unit: str, fallback_bed: str) -> list[dict]:
    result = []
    for location in locations:
        result.append(
            _drop_empty(
                {
                    "location": {
                        "display": " ".join(p for p in (location.unit, location.bed) if p)
                    },
                    "status": "completed" if location.ended_at else "active",
                    "period": {
                        "start": instant(location.started_at),
                        "end": instant(location.ended_at),
                    },
                }
            )
        )
    if not result and fallback_unit:
        result.append(
            {"location": {"display": " ".join(p for p in (fallback_unit, fallback_bed) if p)}}
        )
    return result


def _encounter_class(code: str) -> dict:
    return {"system": ACT_CODE, "code": code, "display": ENCOUNTER_CLASS_DISPLAY.get(code, code)}


def _encounter_period(started_at, ended_at) -> dict:
    return _drop_empty({"start": instant(started_at), "end": instant(ended_at)})


def encounter_resource(encounter, received=None, *, final_codes: dict | None = None) -> dict:
    """Encounter as FHIR (``facility``, ``attending``, ``patient`` loaded; ``locations``
    prefetched). An imported encounter is served as received, with RecordRoom's status,
    period, class and locations laid over it when they changed here since.
    ``final_codes``: the encounter's entry of ``coding.export.encounter_diagnoses_of``
    (a page loads them together); looked up for this encounter alone when not given."""
    last_updated = encounter.updated_at
    if received is not None and received.last_updated > last_updated:
        last_updated = received.last_updated
    locations = sorted(encounter.locations.all(), key=lambda x: (x.started_at, x.pk))
    if received is not None:
        resource = copy.deepcopy(received.content)
        if encounter.updated_at > received.last_updated:
            resource["status"] = encounter.status
            resource["class"] = _encounter_class(encounter.encounter_class)
            resource["period"] = _encounter_period(encounter.started_at, encounter.ended_at)
            if locations:
                resource["location"] = _encounter_locations(locations, "", "")
    else:
        resource = _built_encounter(encounter, locations)
    resource["resourceType"] = "Encounter"
    resource["id"] = str(encounter.public_id)
    resource["subject"] = {
        **(resource.get("subject") or {}),
        "reference": f"Patient/{encounter.patient.public_id}",
    }
    resource["meta"] = meta(
        encounter.version, last_updated, received.content if received is not None else None
    )
    _add_final_codes(resource, encounter, final_codes)
    return _ordered(resource)


def _add_final_codes(resource: dict, encounter, parts: dict | None = None) -> None:
    """The final coded abstract's diagnoses (ICD-10-CM, rank = sequence, POA) join
    whatever diagnoses the encounter already carries (nothing received is dropped)."""
    if parts is None:
        from coding.export import encounter_diagnoses

        parts = encounter_diagnoses(encounter)
    if parts["contained"]:
        resource["contained"] = [*resource.get("contained", []), *parts["contained"]]
    if parts["diagnosis"]:
        resource["diagnosis"] = [*resource.get("diagnosis", []), *parts["diagnosis"]]


def _built_encounter(encounter, locations) -> dict:
    attending = encounter.attending
    hospitalization = {}
    if encounter.admit_source:
        hospitalization["admitSource"] = {
            "coding": [
                {
                    "system": "https://www.nubc.org/CodeSystem/PointOfOrigin",
                    "code": encounter.admit_source,
                    "display": encounter.get_admit_source_display(),
                }
            ]
        }
    if encounter.disposition:
        hospitalization["dischargeDisposition"] = {
            "coding": [
                {
                    "system": "https://www.nubc.org/CodeSystem/PatDischargeStatus",
                    "code": encounter.disposition,
                    "display": encounter.get_disposition_display(),
                }
            ]
        }
    return _drop_empty(
        {
            "identifier": [
                {
                    "use": "usual",
                    "system": f"{VISIT_SYSTEM_PREFIX}{encounter.facility.code}",
                    "value": encounter.visit_number,
                }
            ],
            "status": encounter.status,
            "class": _encounter_class(encounter.encounter_class),
            "serviceType": {"text": encounter.service} if encounter.service else {},
            "participant": [
                {
                    "type": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                    "code": "ATND",
                                    "display": "attender",
                                }
                            ]
                        }
                    ],
                    "individual": {"display": attending.display_name},
                }
            ]
            if attending
            else [],
            "period": _encounter_period(encounter.started_at, encounter.ended_at),
            "reasonCode": [{"text": encounter.reason}] if encounter.reason else [],
            "hospitalization": hospitalization,
            "location": _encounter_locations(locations, encounter.unit, encounter.bed),
            "serviceProvider": {"display": encounter.facility.name},
        }
    )


def encounter_from_snapshot(encounter, number: int, snapshot: dict, changed_at) -> dict:
    """A past version of an encounter (EncounterVersion.snapshot) as FHIR."""
    started = snapshot.get("started_at")
    ended = snapshot.get("ended_at")
    resource = {
        "resourceType": "Encounter",
        "id": str(encounter.public_id),
        "meta": meta(number, changed_at),
        "identifier": [
            {
                "use": "usual",
                "system": f"{VISIT_SYSTEM_PREFIX}{snapshot.get('facility', '')}",
                "value": snapshot.get("visit_number", ""),
            }
        ],
        "status": snapshot.get("status"),
        "class": _encounter_class(snapshot.get("encounter_class", "")),
        "subject": {"reference": f"Patient/{encounter.patient.public_id}"},
        "participant": [{"individual": {"display": snapshot["attending_name"]}}]
        if snapshot.get("attending_name")
        else [],
        "period": {"start": _snapshot_instant(started), "end": _snapshot_instant(ended)},
        "reasonCode": [{"text": snapshot["reason"]}] if snapshot.get("reason") else [],
        "location": [
            {
                "location": {
                    "display": " ".join(p for p in (loc.get("unit"), loc.get("bed")) if p)
                },
                "period": {
                    "start": _snapshot_instant(loc.get("started_at")),
                    "end": _snapshot_instant(loc.get("ended_at")),
                },
            }
            for loc in snapshot.get("locations") or []
        ],
    }
    return _drop_empty(resource)


def _snapshot_instant(value: str | None) -> str | None:
    return instant(dt.datetime.fromisoformat(value)) if value else None


# --- DocumentReference ---------------------------------------------------------------


def security_labels(categories: list[str]) -> list[dict]:
    labels = []
    for category in categories or []:
        code, display = SENSITIVITY_CODES.get(category, (None, None))
        if code:
            labels.append({"coding": [{"system": ACT_CODE, "code": code, "display": display}]})
    if labels:
        labels.insert(
            0,
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                        "code": "R",
                        "display": "restricted",
                    }
                ]
            },
        )
    return labels


def _attachment(document, version, *, content_shown: bool) -> dict:
    """The document's content as an Attachment: its text (notes written in RecordRoom)
    or its file, base64 in ``data``. When the content may not be shown (a draft read by
    someone other than its author), only what it is."""
    attachment: dict[str, Any] = {"title": document.title}
    created = version.created_at if version is not None else document.entered_at
    attachment["creation"] = instant(created)
    if version is None or not content_shown:
        attachment["contentType"] = "text/plain"
        return attachment
    if version.attachment:
        attachment["contentType"] = version.attachment_content_type or "application/octet-stream"
        if version.attachment_size is not None:
            attachment["size"] = version.attachment_size
        if (version.attachment_size or 0) <= MAX_INLINE_ATTACHMENT:
            with version.attachment.open("rb") as handle:
                attachment["data"] = base64.b64encode(handle.read()).decode("ascii")
    else:
        data = version.body.encode("utf-8")
        attachment["contentType"] = "text/plain; charset=utf-8"
        attachment["size"] = len(data)
        attachment["data"] = base64.b64encode(data).decode("ascii")
    return attachment


def document_resource(document, received=None, *, version=None, content_shown: bool = True):
    """DocumentReference as FHIR (``doc_type``, ``author``, ``encounter``, ``patient``,
    ``current_version``, ``addendum_to`` loaded). ``version`` is the DocumentVersion to
    serve (the current one by default)."""
    if version is None:
        version = document.current_version
    version_number = version.number if version is not None else 1
    last_updated = document.updated_at
    if received is not None and document.updated_at <= received.last_updated:
        resource = copy.deepcopy(received.content)
        last_updated = received.last_updated
    else:
        resource = copy.deepcopy(received.content) if received is not None else {}
        built = _built_document(document, version, content_shown=content_shown)
        if received is not None:
            # Keep the received content (the sender's attachments) and everything not
            # modelled; RecordRoom's status, type, dates and labels win.
            for key in ("status", "docStatus", "securityLabel", "relatesTo"):
                if key in built:
                    resource[key] = built[key]
                elif key in ("relatesTo",):
                    continue
            if document.status == "entered-in-error" or not resource.get("content"):
                resource["content"] = built["content"]
            if not document.is_sensitive:
                labels = [
                    lab
                    for lab in resource.get("securityLabel") or []
                    if not _is_recordroom_label(lab)
                ]
                if labels:
                    resource["securityLabel"] = labels
                else:
                    resource.pop("securityLabel", None)
        else:
            resource = built
    resource["resourceType"] = "DocumentReference"
    resource["id"] = str(document.public_id)
    resource["subject"] = {
        **(resource.get("subject") or {}),
        "reference": f"Patient/{document.patient.public_id}",
    }
    resource["meta"] = meta(
        version_number, last_updated, received.content if received is not None else None
    )
    return _ordered(resource)


def _is_recordroom_label(label: dict) -> bool:
    codings = label.get("coding") or []
    codes = {c.get("code") for c in codings}
    return bool(codes & ({"R"} | {code for code, _ in SENSITIVITY_CODES.values()}))


def _built_document(document, version, *, content_shown: bool) -> dict:
    doc_type = document.doc_type
    context: dict[str, Any] = {"period": {"start": instant(document.service_at)}}
    if document.encounter_id:
        context["encounter"] = [{"reference": f"Encounter/{document.encounter.public_id}"}]
    resource = {
        "status": "entered-in-error" if document.status == "entered-in-error" else "current",
        "docStatus": DOC_STATUS.get(document.status, "preliminary"),
        "type": {
            "coding": [{"system": LOINC, "code": doc_type.loinc_code, "display": doc_type.display}]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                        "code": "clinical-note",
                        "display": "Clinical Note",
                    }
                ]
            }
        ],
        "date": instant(document.entered_at),
        "author": [{"display": document.author.display_name}],
        "description": document.title,
        "securityLabel": security_labels(document.sensitivity),
        "content": [{"attachment": _attachment(document, version, content_shown=content_shown)}],
        "context": context,
    }
    if document.signed_at:
        resource["authenticator"] = {"display": document.author.display_name}
    if document.addendum_to_id:
        resource["relatesTo"] = [
            {
                "code": "appends",
                "target": {"reference": f"DocumentReference/{document.addendum_to.public_id}"},
            }
        ]
    return _drop_empty(resource)


# --- clinical entries and stored resources -------------------------------------------


def clinical_resource(entry, resource: dict | None = None, *, version: int | None = None) -> dict:
    """A clinical entry's resource (stored whole, already carrying RecordRoom's id and
    references). ``resource``/``version`` serve a past version."""
    result = copy.deepcopy(resource if resource is not None else entry.resource)
    result["id"] = str(entry.public_id)
    current_meta = result.get("meta") or {}
    result["meta"] = {**current_meta, "versionId": str(version or entry.version)}
    return _ordered(result)


def stored_resource(row, content: dict | None = None, *, version: int | None = None, at=None):
    """A resource kept whole in FhirResource (or one of its FhirResourceVersions)."""
    result = copy.deepcopy(content if content is not None else row.content)
    result["resourceType"] = row.resource_type
    result["id"] = row.fhir_id
    result["meta"] = meta(version or row.version_id, at or row.last_updated, result)
    return _ordered(result)


# --- AuditEvent ----------------------------------------------------------------------

_AUDIT_ACTION = {
    "view": "R",
    "print": "R",
    "search": "E",
    "create": "C",
    "update": "U",
    "sign": "U",
    "merge": "U",
    "export": "R",
    "disclose": "R",
}
AUDIT_ACTION_CODES = {"C", "R", "U", "D", "E"}
AUDIT_SUBTYPE_SYSTEM = "urn:recordroom:audit-action"


def audit_action_code(action: str) -> str:
    return _AUDIT_ACTION.get(action, "E")


def audit_event_resource(event) -> dict:
    """One row of RecordRoom's audit trail as a FHIR AuditEvent (ids and codes only, as
    the trail keeps them)."""
    security = event.action in (
        "login",
        "login_failed",
        "lockout",
        "logout",
        "mfa",
        "security",
        "permission_change",
        "account_change",
    )
    type_coding = (
        {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110114",
            "display": "User Authentication",
        }
        if security
        else {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110110",
            "display": "Patient Record",
        }
    )
    agent: dict[str, Any] = {
        "requestor": True,
        "who": {
            "identifier": {
                "system": "urn:recordroom:user",
                "value": event.actor_username or "anonymous",
            }
        },
    }
    if event.actor_roles:
        agent["role"] = [
            {"coding": [{"system": "urn:recordroom:role", "code": role}]}
            for role in event.actor_roles.split(",")
        ]
    if event.client_ip:
        agent["network"] = {"address": event.client_ip, "type": "2"}
    if event.path:
        agent["policy"] = [event.path] if event.path.startswith(("http", "urn")) else []
    entities = []
    if event.patient_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{event.patient_id}"},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                    "display": "Person",
                },
            }
        )
    if event.object_type:
        entities.append(
            _drop_empty(
                {
                    "what": {
                        "identifier": {
                            "system": f"urn:recordroom:{event.object_type}",
                            "value": event.object_id or event.object_type,
                        }
                    },
                    "description": event.reason[:500] if event.reason else "",
                }
            )
        )
    resource = {
        "resourceType": "AuditEvent",
        "id": str(event.seq),
        "meta": meta(1, event.occurred_at),
        "type": type_coding,
        "subtype": [{"system": AUDIT_SUBTYPE_SYSTEM, "code": event.action}],
        "action": audit_action_code(event.action),
        "recorded": instant(event.occurred_at),
        "outcome": "0" if event.outcome == "allowed" else "4",
        "outcomeDesc": event.reason[:500] if event.outcome != "allowed" and event.reason else "",
        "purposeOfEvent": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                        "code": event.purpose,
                    }
                ]
            }
        ]
        if event.purpose
        else [],
        "agent": [_drop_empty(agent)],
        "source": {"observer": {"display": "RecordRoom"}},
        "entity": entities,
    }
    return _drop_empty(resource)


_ORDER = ("resourceType", "id", "meta", "implicitRules", "language", "text", "contained")


def _ordered(resource: dict) -> dict:
    """resourceType, id and meta first, as people reading the JSON expect."""
    head = {key: resource[key] for key in _ORDER if key in resource}
    head.update((k, v) for k, v in resource.items() if k not in head)
    return head
