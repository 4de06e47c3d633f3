"""The CapabilityStatement at /fhir/metadata: https://hl7.org/fhir/R4/capabilitystatement.html

Built from the same tables the API serves from (``interop.search``'s parameters and
sorts, ``interop.api_access``'s types, ``interop.resource_actions``' writable types), so
it says what is implemented and nothing more.
"""

from __future__ import annotations

from django.conf import settings

from interop import api_access, search
from interop.resource_actions import MANAGED_ELSEWHERE

FHIR_VERSION = "4.0.1"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"

_PROFILES = {
    "Patient": US_CORE + "us-core-patient",
    "Encounter": US_CORE + "us-core-encounter",
    "Condition": US_CORE + "us-core-condition-problems-health-concerns",
    "Procedure": US_CORE + "us-core-procedure",
    "Observation": US_CORE + "us-core-observation-lab",
    "DocumentReference": US_CORE + "us-core-documentreference",
    "AllergyIntolerance": US_CORE + "us-core-allergyintolerance",
    "MedicationRequest": US_CORE + "us-core-medicationrequest",
    "Immunization": US_CORE + "us-core-immunization",
}

_DOCS = {
    "Patient": "Served from the master patient index (as received from an import, with "
    "RecordRoom's MRN; built from the record when it changed here). Create/update: "
    "405 — managed through registration or a transaction Bundle. History lists the "
    "demographics versions (national identifiers left out of past versions).",
    "Encounter": "Served from registration (as received, with RecordRoom's status, period, "
    "class and locations when they changed here). Create/update: 405. History lists the "
    "encounter's versions.",
    "DocumentReference": "Served from the legal document record; sensitive documents only to "
    "users allowed to read them, entered-in-error ones only to their author and "
    "view_entered_in_error holders. Create/update: 405. History lists the versions the "
    "user may read.",
    "AuditEvent": "RecordRoom's audit trail (ids are sequence numbers), for privacy "
    "officers (audit.view_trail); read-only. Non-numeric ids are AuditEvents received "
    "through an import.",
}


def _search_params(resource_type: str) -> list[dict]:
    table = search.spec_for(resource_type).params
    result = []
    for name in sorted(table):
        param = table[name]
        entry = {"name": name, "type": param.kind}
        if param.documentation:
            entry["documentation"] = param.documentation
        elif param.kind == "date":
            entry["documentation"] = (
                "Prefixes eq, ne, gt, lt, ge, le, sa, eb; precision year, month, day or dateTime."
            )
        elif param.kind == "token":
            entry["documentation"] = "system|code, |code, code or system|."
        if param.modifiers:
            entry["documentation"] = (
                entry.get("documentation", "") + f" Modifiers: {', '.join(param.modifiers)}."
            ).strip()
        result.append(entry)
    return result


def _resource(resource_type: str) -> dict:
    interactions = ["read", "vread", "history-instance", "search-type"]
    writable = resource_type not in MANAGED_ELSEWHERE
    if writable:
        interactions += ["create", "update"]
    spec = search.spec_for(resource_type)
    resource = {
        "type": resource_type,
        "interaction": [{"code": code} for code in interactions],
        "versioning": "versioned-update" if writable else "versioned",
        "readHistory": True,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": _search_params(resource_type),
    }
    if spec.patient_column and resource_type not in ("Patient", "AuditEvent"):
        resource["searchInclude"] = [f"{resource_type}:patient"]
    if resource_type in _PROFILES:
        resource["supportedProfile"] = [_PROFILES[resource_type]]
    documentation = _DOCS.get(resource_type)
    if documentation is None and resource_type in api_access.CLINICAL_TYPES:
        documentation = (
            "Kept whole as received or written; create and update through the clinical "
            "record (validated, versioned, If-Match honoured). Entered-in-error entries "
            "are read with that status and left out of searches."
        )
    if documentation is None:
        documentation = (
            "Kept whole as received; create and update store a new version each "
            "(If-Match honoured)."
        )
    resource["documentation"] = documentation
    if resource_type == "Patient":
        resource["operation"] = [
            {
                "name": "everything",
                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                "documentation": "The patient and everything linked to them; _count, _since, "
                "_type.",
            }
        ]
    return resource


def capability_statement(base_url: str) -> dict:
    """The server's CapabilityStatement; ``base_url`` ends with /fhir."""
    root = base_url.rsplit("/fhir", 1)[0]
    from recordroom import clock

    return {
        "resourceType": "CapabilityStatement",
        "id": "recordroom",
        "url": f"{base_url}/metadata",
        "name": "RecordRoomFhirServer",
        "title": "RecordRoom FHIR R4 server",
        "status": "active",
        "experimental": False,
        "date": clock.now().date().isoformat(),
        "publisher": "RecordRoom",
        "kind": "instance",
        "software": {"name": "RecordRoom", "version": getattr(settings, "RECORDROOM_VERSION", "1")},
        "implementation": {
            "description": "RecordRoom health information management",
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "patchFormat": [],
        "implementationGuide": ["http://hl7.org/fhir/us/core/ImplementationGuide/hl7.fhir.us.core"],
        "rest": [
            {
                "mode": "server",
                "documentation": "JSON only (XML answers 406). Every interaction needs an OAuth "
                "2.0 bearer token; a search parameter the server does not support is "
                "refused with 400 (or ignored and reported with Prefer: handling=lenient). "
                "Paging: _count (default 50, at most 1000) with next/previous links "
                "(_offset); _summary=count; _total=accurate|estimate|none.",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                    "display": "SMART-on-FHIR",
                                }
                            ],
                            "text": "OAuth 2.0 bearer tokens with SMART scopes",
                        }
                    ],
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [
                                {"url": "token", "valueUri": f"{root}/oauth/token"},
                                {"url": "authorize", "valueUri": f"{root}/oauth/authorize"},
                            ],
                        }
                    ],
                    "description": "Client credentials for system accounts, authorization code "
                    "(with PKCE) for user-facing apps; scopes system/*.read, user/<Type>.read, "
                    "patient/*.read and their .write forms. A token sees only what its user "
                    "may see.",
                },
                "resource": [_resource(t) for t in api_access.SERVED_TYPES],
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "searchParam": [
                    {"name": name, "type": kind, "documentation": documentation}
                    for name, (kind, documentation) in search.RESULT_PARAMS.items()
                ],
                "operation": [
                    {
                        "name": "export",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                    },
                    {
                        "name": "patient-export",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
                    },
                ],
            }
        ],
    }
