"""The final abstract leaves RecordRoom as a FHIR Claim and as CSV; the FHIR Encounter
and Condition resources carry its final codes.

- :func:`claim_resource` builds an institutional **Claim** (FHIR R4B, validated with
  ``fhir.resources``): diagnoses in sequence (principal first) with their ICD-10-CM code
  and present-on-admission indicator (NUBC), procedures (ICD-10-PCS, CPT or HCPCS) with
  their dates, the point of origin, the discharge status and the MS-DRG as supporting
  information, after the CARIN Blue Button institutional claim's conventions.
- :func:`encounter_diagnoses` gives the ``Encounter.diagnosis`` entries (billing
  diagnoses, ranked) with the ``contained`` Conditions they point to, for the FHIR
  Encounter served by ``interop.serialize``; :func:`condition_resources` the
  encounter-diagnosis Conditions themselves, which the finalisation keeps as clinical
  entries (served by the FHIR Condition API). Both are empty until the abstract is final.
- :func:`export_csv` writes one line per code of every final abstract in a period.

Exports are audited as exports with the patients they contain.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from audit.models import Action
from coding import work_access as wa
from coding.codes import dotted
from coding.models import Abstract, AbstractStatus, Code, CodeSystem
from coding.permissions import CodingPermission as K
from patients.access import Scope, access_patient
from patients.models import IdentifierKind, PatientIdentifier

DONE = [AbstractStatus.FINAL, AbstractStatus.REBILLED]
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SYSTEM_URIS = {
    CodeSystem.ICD10CM: ICD10CM,
    CodeSystem.ICD10PCS: "http://www.cms.gov/Medicare/Coding/ICD10",
    CodeSystem.CPT: "http://www.ama-assn.org/go/cpt",
    CodeSystem.HCPCS: "urn:oid:2.16.840.1.113883.6.285",
}
POA_SYSTEM = "https://www.nubc.org/CodeSystem/PresentOnAdmissionIndicators"
DRG_SYSTEM = (
    "https://www.cms.gov/Medicare/Medicare-Fee-for-Service-Payment/AcuteInpatientPPS/"
    "MS-DRG-Classifications-and-Software"
)
SUPPORTING = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBSupportingInfoType"
DX_TYPE = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype"
DX_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CSV_HEADER = [
    "visit_number",
    "encounter",
    "patient",
    "mrn",
    "encounter_class",
    "admitted",
    "discharged",
    "admit_source",
    "disposition",
    "payer",
    "ms_drg",
    "mdc",
    "drg_weight",
    "line",
    "sequence",
    "system",
    "code",
    "poa",
    "procedure_date",
    "finalised_at",
]


def _titles(abstract: Abstract) -> dict[tuple[str, str], str]:
    wanted = [(CodeSystem.ICD10CM, d.code) for d in abstract.diagnoses.all()]
    wanted += [(p.system, p.code) for p in abstract.procedures.all()]
    if not wanted:
        return {}
    rows = Code.objects.filter(code__in={c for _, c in wanted}).values_list(
        "system", "code", "title"
    )
    return {(s, c): t for s, c, t in rows}


def _coding(system: str, code: str, titles: dict) -> dict:
    coding = {"system": SYSTEM_URIS.get(system, system), "code": dotted(code, system)}
    title = titles.get((system, code))
    if title:
        coding["display"] = title
    return coding


def _instant(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if moment else None


def _validated(resource: dict) -> dict:
    from fhir.resources.R4B import get_fhir_model_class

    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return model.model_dump(mode="json", exclude_none=True, by_alias=True)


def _supporting(abstract: Abstract) -> list[dict]:
    info = []

    def add(code: str, system: str, value: str, display: str = "") -> None:
        coding = {"system": system, "code": value}
        if display:
            coding["display"] = display
        info.append(
            {
                "sequence": len(info) + 1,
                "category": {"coding": [{"system": SUPPORTING, "code": code}]},
                "code": {"coding": [coding]},
            }
        )

    encounter = abstract.encounter
    source = abstract.admit_source or encounter.admit_source
    if source:
        add("pointoforigin", "https://www.nubc.org/CodeSystem/PointOfOrigin", source)
    disposition = abstract.disposition or encounter.disposition
    if disposition:
        add("discharge-status", "https://www.nubc.org/CodeSystem/PatDischargeStatus", disposition)
    if abstract.drg:
        add("drg", DRG_SYSTEM, abstract.drg.zfill(3))
    return info


def claim_resource(abstract: Abstract) -> dict:
    """The final abstract as a FHIR R4B institutional Claim (validated)."""
    encounter = abstract.encounter
    titles = _titles(abstract)
    diagnoses = []
    for d in abstract.diagnoses.order_by("sequence"):
        entry = {
            "sequence": d.sequence,
            "diagnosisCodeableConcept": {"coding": [_coding(CodeSystem.ICD10CM, d.code, titles)]},
            "type": [
                {
                    "coding": [
                        {"system": DX_TYPE, "code": "principal" if d.sequence == 1 else "discharge"}
                    ]
                }
            ],
        }
        if d.poa:
            entry["onAdmission"] = {"coding": [{"system": POA_SYSTEM, "code": d.poa}]}
        diagnoses.append(entry)
    procedures = []
    for p in abstract.procedures.order_by("sequence"):
        entry = {
            "sequence": p.sequence,
            "procedureCodeableConcept": {"coding": [_coding(p.system, p.code, titles)]},
        }
        if p.performed_on:
            entry["date"] = _instant(
                timezone.make_aware(dt.datetime.combine(p.performed_on, dt.time(12)))
            )
        procedures.append(entry)
    resource = {
        "resourceType": "Claim",
        "id": str(abstract.public_id),
        "identifier": [
            {
                "system": f"urn:recordroom:visit:{encounter.facility.code}",
                "value": encounter.visit_number,
            }
        ],
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "institutional",
                }
            ]
        },
        "use": "claim",
        "patient": {"reference": f"Patient/{abstract.patient.public_id}"},
        "billablePeriod": {
            k: v
            for k, v in (
                ("start", _instant(encounter.started_at)),
                ("end", _instant(encounter.ended_at)),
            )
            if v
        },
        "created": _instant(abstract.finalised_at or abstract.updated_at),
        "provider": {"display": encounter.facility.name},
        "priority": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/processpriority",
                    "code": "normal",
                }
            ]
        },
        "insurance": [
            {"sequence": 1, "focal": True, "coverage": {"display": abstract.payer or "Self-pay"}}
        ],
        "supportingInfo": _supporting(abstract),
        "diagnosis": diagnoses,
        "procedure": procedures,
        "item": [
            {
                "sequence": 1,
                "diagnosisSequence": [d["sequence"] for d in diagnoses] or None,
                "procedureSequence": [p["sequence"] for p in procedures] or None,
                "productOrService": {
                    "text": "Inpatient stay" if encounter.is_inpatient else "Visit"
                },
                "encounter": [{"reference": f"Encounter/{encounter.public_id}"}],
            }
        ],
    }
    resource["item"][0] = {k: v for k, v in resource["item"][0].items() if v is not None}
    resource = {k: v for k, v in resource.items() if v not in ([], {}, None)}
    return _validated(resource)


def _final_abstract(encounter) -> Abstract | None:
    return (
        Abstract.objects.filter(encounter=encounter, status__in=DONE)
        .prefetch_related("diagnoses", "procedures")
        .first()
    )


def _condition(abstract: Abstract, d, titles: dict, *, contained: bool) -> dict:
    resource = {
        "resourceType": "Condition",
        "id": f"dx{d.sequence}" if contained else f"{abstract.public_id}-dx{d.sequence}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
        "code": {"coding": [_coding(CodeSystem.ICD10CM, d.code, titles)]},
        "subject": {"reference": f"Patient/{abstract.patient.public_id}"},
        "encounter": {"reference": f"Encounter/{abstract.encounter.public_id}"},
    }
    if not contained and abstract.encounter.ended_at:
        # As of the discharge: the final diagnoses describe the stay as a whole.
        resource["recordedDate"] = _instant(abstract.encounter.ended_at)
    if d.poa:
        resource["extension"] = [
            {
                "url": "https://recordroom.invalid/fhir/StructureDefinition/present-on-admission",
                "valueCoding": {"system": POA_SYSTEM, "code": d.poa},
            }
        ]
    return resource


def encounter_diagnoses(encounter) -> dict:
    """For ``interop.serialize``: ``{"contained": [...], "diagnosis": [...]}`` — the
    ``Encounter.diagnosis`` entries of the final abstract (use ``billing``, rank =
    sequence), each pointing to its encounter-diagnosis Condition: the stand-alone one
    the finalisation keeps (``Condition/<id>``), or, for an abstract finalised before
    those were kept, a contained copy. Empty lists while the abstract is not final."""
    return encounter_diagnoses_of([encounter])[encounter.pk]


def encounter_diagnoses_of(encounters) -> dict[int, dict]:
    """:func:`encounter_diagnoses` of many encounters at once (a page of a FHIR search,
    a chunk of a bulk export), keyed by encounter pk: the same entries in three queries
    whatever the number (the final abstracts with their diagnoses, the Conditions the
    finalisation kept, the codes' titles) instead of up to five an encounter.
    ``encounters`` carry their ``patient``; an encounter without a final abstract has
    empty lists."""
    from clinical.access import coded_condition_ids_of

    result: dict[int, dict] = {e.pk: {"contained": [], "diagnosis": []} for e in encounters}
    by_pk = {e.pk: e for e in encounters}
    if not by_pk:
        return result
    abstracts = list(
        Abstract.objects.filter(encounter_id__in=list(by_pk), status__in=DONE)
        .select_related("patient")
        .prefetch_related("diagnoses")
    )
    if not abstracts:
        return result
    kept = coded_condition_ids_of(a.encounter_id for a in abstracts)
    # Titles only for the diagnoses served as contained Conditions (no kept one).
    wanted = {
        d.code
        for a in abstracts
        for d in a.diagnoses.all()
        if dotted(d.code) not in kept.get(a.encounter_id, {})
    }
    titles = {}
    if wanted:
        titles = {
            (system, code): title
            for system, code, title in Code.objects.filter(
                system=CodeSystem.ICD10CM, code__in=wanted
            ).values_list("system", "code", "title")
        }
    for abstract in abstracts:
        abstract.encounter = by_pk[abstract.encounter_id]
        ids = kept.get(abstract.encounter_id, {})
        contained, entries = [], []
        for d in sorted(abstract.diagnoses.all(), key=lambda d: d.sequence):
            public_id = ids.get(dotted(d.code))
            if public_id:
                reference = f"Condition/{public_id}"
            else:
                contained.append(_condition(abstract, d, titles, contained=True))
                reference = f"#dx{d.sequence}"
            entries.append(
                {
                    "condition": {"reference": reference},
                    "use": {
                        "coding": [{"system": DX_ROLE, "code": "billing", "display": "Billing"}]
                    },
                    "rank": d.sequence,
                }
            )
        result[abstract.encounter_id] = {"contained": contained, "diagnosis": entries}
    return result


def condition_resources(encounter) -> list[dict]:
    """The final abstract's diagnoses as stand-alone encounter-diagnosis Conditions
    (validated); empty while not final. ``coding.abstracts`` keeps them as clinical
    entries (``clinical.actions.project_coded_diagnoses``) whenever an abstract becomes
    final, so the FHIR Condition search, read, $everything and bulk export serve them."""
    abstract = _final_abstract(encounter)
    if abstract is None:
        return []
    titles = _titles(abstract)
    return [
        _validated(_condition(abstract, d, titles, contained=False))
        for d in abstract.diagnoses.order_by("sequence")
    ]


# --- the doors -----------------------------------------------------------------------------


def _abstract_for_export(user, encounter_public_id) -> Abstract:
    key = wa.parse_uuid(encounter_public_id)
    abstract = (
        Abstract.objects.select_related("encounter", "encounter__facility", "patient")
        .filter(
            encounter__public_id=key,
            encounter__facility_id__in=wa.user_facility_ids(user),
        )
        .first()
        if key
        else None
    )
    if abstract is None:
        wa.deny(user, "coding.export", encounter_public_id, "no abstract", action=Action.EXPORT)
        raise Http404("No such abstract")
    return abstract


def export_claim(user, encounter_public_id) -> dict:
    """The final abstract of an encounter as a FHIR Claim (``coding.code``); an abstract
    that is not final is refused with a clear message."""
    wa.require(user, K.CODE, "coding.export", action=Action.EXPORT, object_id=encounter_public_id)
    abstract = _abstract_for_export(user, encounter_public_id)
    if abstract.status not in DONE:
        raise ValidationError("Only a final abstract is exported; finalise it first.")
    access_patient(user, abstract.patient.public_id, scope=Scope.CLINICAL)
    resource = claim_resource(abstract)
    wa.audit(
        user,
        Action.EXPORT,
        "coding.export",
        object_id=abstract.public_id,
        patient_id=abstract.patient.public_id,
        format="fhir-claim",
        version=abstract.version,
    )
    return resource


@dataclass(frozen=True)
class CsvExport:
    rows: list[list[str]]
    abstracts: int


def _date(moment) -> str:
    return timezone.localtime(moment).date().isoformat() if moment else ""


def export_csv(user, *, start: dt.date, end: dt.date) -> CsvExport:
    """Every final abstract finalised in the period (both days included) at the user's
    facilities, one line per code (``coding.view_reports``); audited as an export with
    the patients it contains. Restricted patients are left out (they are exported one
    at a time, through the patient's door)."""
    from coding.productivity import _day_bounds, check_period

    wa.require(user, K.VIEW_REPORTS, "coding.export", action=Action.EXPORT)
    start, end = check_period(start, end)
    lo, hi = _day_bounds(start, end)
    abstracts = list(
        Abstract.objects.filter(
            status__in=DONE,
            finalised_at__gte=lo,
            finalised_at__lt=hi,
            encounter__facility_id__in=wa.user_facility_ids(user),
            patient__restriction="",
        )
        .select_related("encounter", "encounter__facility", "patient")
        .prefetch_related("diagnoses", "procedures")
        .order_by("finalised_at", "pk")
    )
    mrns = {
        (p, f): v
        for p, f, v in PatientIdentifier.objects.filter(
            patient_id__in={a.patient_id for a in abstracts}, kind=IdentifierKind.MRN, active=True
        ).values_list("patient_id", "facility_id", "value")
    }
    rows = []
    for a in abstracts:
        e = a.encounter
        head = [
            e.visit_number,
            str(e.public_id),
            str(a.patient.public_id),
            mrns.get((a.patient_id, e.facility_id), ""),
            e.encounter_class,
            _date(e.started_at),
            _date(e.ended_at),
            a.admit_source or e.admit_source,
            a.disposition or e.disposition,
            a.payer,
            a.drg,
            a.mdc,
            str(a.drg_weight) if a.drg_weight is not None else "",
        ]
        for d in sorted(a.diagnoses.all(), key=lambda x: x.sequence):
            kind = "principal" if d.sequence == 1 else "secondary"
            rows.append(
                [
                    *head,
                    kind,
                    str(d.sequence),
                    "ICD-10-CM",
                    dotted(d.code),
                    d.poa,
                    "",
                    _instant(a.finalised_at),
                ]
            )
        for p in sorted(a.procedures.all(), key=lambda x: x.sequence):
            rows.append(
                [
                    *head,
                    "procedure",
                    str(p.sequence),
                    p.get_system_display(),
                    p.code,
                    "",
                    p.performed_on.isoformat() if p.performed_on else "",
                    _instant(a.finalised_at),
                ]
            )
    wa.audit_list(
        user,
        "coding.export",
        [a.patient.public_id for a in abstracts],
        action=Action.EXPORT,
        format="csv",
        start=str(start),
        end=str(end),
        abstracts=len(abstracts),
    )
    return CsvExport(rows, len(abstracts))
