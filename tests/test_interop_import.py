"""FHIR import: Synthea transaction bundles, the official R4 examples, NDJSON from
another generator, idempotence, updates, and where each resource type is stored."""

from __future__ import annotations

import base64
import copy
import time
import uuid

import orjson
from fhir.resources.R4B import get_fhir_model_class

from clinical.models import ClinicalEntry, ClinicalEntryVersion
from documents.models import Document, DocumentVersion
from encounters.models import Encounter, EncounterVersion
from interop.import_actions import do_import_bundle, do_import_paths
from interop.importer import canonical_sha256
from interop.models import FhirResource, FhirResourceVersion, ImportUnit, SourceKey, UnitStatus
from interop.references import iter_references
from patients.models import IdentifierKind, Patient, PatientIdentifier, PatientVersion
from recordroom.testing import shared_data_dir

DATA = shared_data_dir()
SYNTHEA = DATA / "synthea-r4"
EXAMPLES = DATA / "fhir-r4-examples"
SYNTHEA_FILES = sorted(SYNTHEA.glob("*.json"))

assert SYNTHEA_FILES, f"the Synthea bundles are not at {SYNTHEA} (RECORDROOM_SHARED_DATA)"


def _row_counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            Patient,
            PatientVersion,
            PatientIdentifier,
            Encounter,
            EncounterVersion,
            Document,
            DocumentVersion,
            ClinicalEntry,
            ClinicalEntryVersion,
            FhirResource,
            FhirResourceVersion,
            SourceKey,
            ImportUnit,
        )
    }


def _stored(resource_type: str, fhir_id: str) -> dict:
    """What RecordRoom keeps for a resource (the JSON the API serves)."""
    if resource_type in (
        "Condition",
        "Procedure",
        "Observation",
        "MedicationRequest",
        "MedicationStatement",
        "AllergyIntolerance",
        "Immunization",
    ):
        return ClinicalEntry.objects.get(public_id=fhir_id).resource
    return FhirResource.objects.get(resource_type=resource_type, fhir_id=fhir_id).content


def _strip(resource: dict) -> dict:
    """The resource without what RecordRoom rewrites: id, meta.versionId/lastUpdated and
    reference strings."""
    clone = copy.deepcopy(resource)
    clone.pop("id", None)
    meta = clone.get("meta")
    if isinstance(meta, dict):
        meta.pop("versionId", None)
        meta.pop("lastUpdated", None)
        if not meta:
            clone.pop("meta")
    for holder, _ in iter_references(clone, clone.get("resourceType", "")):
        holder["reference"] = "*"
    return clone


def test_a_synthea_bundle_is_imported_whole(personas, audit_rows):
    path = SYNTHEA_FILES[0]
    bundle = orjson.loads(path.read_bytes())
    result = do_import_paths([path], acting_user=personas.integration, source="synthea")
    assert result.units_refused == 0, result.refused
    assert result.units_accepted == 1
    by_type = {}
    for entry in bundle["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], 0)
        by_type[entry["resource"]["resourceType"]] += 1
    for rtype, number in by_type.items():
        assert result.counts[rtype]["created"] == number, rtype

    # The patient went through the MPI: registered at the facility with an MRN, the
    # sender's identifiers kept.
    assert Patient.objects.count() == 1
    patient = Patient.objects.get()
    assert patient.identifiers.filter(kind=IdentifierKind.MRN, facility=personas.facility).exists()
    assert patient.identifiers.filter(kind=IdentifierKind.SSN).exists()
    assert patient.versions.count() == 1
    stored_patient = FhirResource.objects.get(resource_type="Patient")
    assert stored_patient.fhir_id == str(patient.public_id)
    assert stored_patient.patient == patient

    # Encounters, clinical entries, and everything else, each linked.
    assert Encounter.objects.filter(patient=patient).count() == by_type["Encounter"]
    assert (
        ClinicalEntry.objects.filter(patient=patient, resource_type="Observation").count()
        == (by_type["Observation"])
    )
    assert (
        FhirResource.objects.filter(resource_type="Claim", patient=patient).count()
        == (by_type["Claim"])
    )
    assert not FhirResource.objects.filter(resource_type="Observation").exists()

    # Every resource is kept whole: only ids and references differ from what came.
    source_ids = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        key = SourceKey.objects.get(
            namespace="synthea", resource_type=resource["resourceType"], source_id=resource["id"]
        )
        assert key.content_sha256 == canonical_sha256(resource)
        stored = _stored(resource["resourceType"], key.fhir_id)
        assert stored["id"] == key.fhir_id
        assert _strip(stored) == _strip(resource)
        source_ids[entry["fullUrl"]] = f"{resource['resourceType']}/{key.fhir_id}"
    # References point at RecordRoom's ids.
    observation = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    )
    key = SourceKey.objects.get(resource_type="Observation", source_id=observation["id"])
    stored = _stored("Observation", key.fhir_id)
    assert stored["subject"]["reference"] == f"Patient/{patient.public_id}"
    assert stored["encounter"]["reference"] == source_ids[observation["encounter"]["reference"]]
    entry = ClinicalEntry.objects.get(public_id=key.fhir_id)
    assert entry.encounter is not None
    assert str(entry.encounter.public_id) == stored["encounter"]["reference"].split("/")[1]

    # One audit event for the unit, with the patient id and no names.
    events = audit_rows(object_type="import_unit")
    assert len(events) == 1
    assert events[0].detail["patients"] == [str(patient.public_id)]
    assert patient.family_name not in str(events[0].detail)


def test_reimporting_the_same_bundle_changes_nothing(personas, audit_rows):
    path = SYNTHEA_FILES[1]
    first = do_import_paths([path], acting_user=personas.integration)
    assert first.units_refused == 0
    before = _row_counts()
    seq = len(audit_rows())
    second = do_import_paths([path], acting_user=personas.integration)
    totals = second.totals()
    assert totals["created"] == 0 and totals["updated"] == 0
    assert totals["unchanged"] == first.totals()["created"]
    assert _row_counts() == before
    assert len(audit_rows()) == seq


def test_a_changed_resource_becomes_a_new_version(personas):
    path = SYNTHEA_FILES[2]
    bundle = orjson.loads(path.read_bytes())
    do_import_paths([path], acting_user=personas.integration)
    observation = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    observation["resource"]["status"] = "amended"
    patient_entry = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient_entry["resource"]["name"][0]["family"] = "Newname"
    claim = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Claim")
    claim["resource"]["status"] = "cancelled"
    result = do_import_bundle(orjson.dumps(bundle), acting_user=personas.integration)
    assert result.units_refused == 0, result.refused
    assert result.counts["Observation"]["updated"] == 1
    assert result.counts["Patient"]["updated"] == 1
    assert result.counts["Claim"]["updated"] == 1
    assert result.counts["Encounter"]["unchanged"] == sum(
        1 for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
    )
    key = SourceKey.objects.get(
        resource_type="Observation", source_id=observation["resource"]["id"]
    )
    entry = ClinicalEntry.objects.get(public_id=key.fhir_id)
    assert entry.version == 2 and entry.status == "amended"
    assert entry.versions.count() == 2
    patient = Patient.objects.get()
    assert patient.family_name == "Newname"
    assert patient.version == 2
    assert patient.names.filter(use="old").exists()  # the previous name is kept
    stored = FhirResource.objects.get(resource_type="Patient", fhir_id=str(patient.public_id))
    assert stored.version_id == 2 and stored.versions.count() == 2
    claim_key = SourceKey.objects.get(resource_type="Claim", source_id=claim["resource"]["id"])
    claim_row = FhirResource.objects.get(resource_type="Claim", fhir_id=claim_key.fhir_id)
    assert claim_row.version_id == 2 and claim_row.status == "cancelled"


def test_a_patient_is_matched_on_the_senders_identifiers(personas):
    path = SYNTHEA_FILES[3]
    bundle = orjson.loads(path.read_bytes())
    do_import_paths([path], acting_user=personas.integration, source="first-system")
    # The same person sent by another system, with other resource ids.
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    other = copy.deepcopy(patient)
    other["id"] = "another-id"
    result = do_import_bundle(
        orjson.dumps(other), acting_user=personas.integration, source="second-system"
    )
    assert result.units_refused == 0, result.refused
    assert Patient.objects.count() == 1
    assert FhirResource.objects.filter(resource_type="Patient").count() == 1


def _encounter_result(personas, patient_ref):
    return {
        "resourceType": "Encounter",
        "id": "enc-1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": patient_ref},
        "period": {"start": "2020-03-01T10:00:00Z", "end": "2020-03-04T12:00:00Z"},
        "hospitalization": {
            "admitSource": {"coding": [{"code": "emd"}]},
            "dischargeDisposition": {"coding": [{"code": "home"}]},
        },
        "serviceType": {"text": "Medicine"},
        "identifier": [{"system": "urn:visit", "value": "A12345"}],
    }


def _patient(**overrides) -> dict:
    patient = {
        "resourceType": "Patient",
        "id": "p-1",
        "identifier": [{"system": "urn:example:mrn", "value": "X-1"}],
        "name": [{"family": "Testperson", "given": ["Ada"]}],
        "gender": "female",
        "birthDate": "1970-01-02",
    }
    patient.update(overrides)
    return patient


def _bundle(*resources, kind="transaction") -> bytes:
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": kind,
            "entry": [
                {
                    "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, r['resourceType'] + r.get('id', ''))}",
                    "resource": r,
                    "request": {"method": "POST", "url": r["resourceType"]},
                }
                for r in resources
            ],
        }
    )


def test_encounter_and_document_mapping(personas, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"
    note = "Discharge summary: <script>alert(1)</script> stable."
    documents = {
        "resourceType": "DocumentReference",
        "id": "doc-1",
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]},
        "subject": {"reference": "Patient/p-1"},
        "author": [{"reference": "Practitioner/elsewhere", "display": "Dr Remote"}],
        "date": "2020-03-04T13:00:00Z",
        "context": {"encounter": [{"reference": "Encounter/enc-1"}]},
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "data": base64.b64encode(note.encode()).decode(),
                }
            },
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "data": base64.b64encode(pdf).decode(),
                }
            },
        ],
    }
    # The author reference is not in the unit: a reference to another system's
    # practitioner given as an absolute URL is kept; a relative one must resolve.
    documents["author"] = [{"reference": "https://other.example/fhir/Practitioner/77"}]
    raw = _bundle(_patient(), _encounter_result(personas, "Patient/p-1"), documents)
    result = do_import_bundle(raw, acting_user=personas.integration, source="ehr")
    assert result.units_refused == 0, result.refused
    encounter = Encounter.objects.get()
    assert encounter.encounter_class == "IMP"
    assert encounter.status == "finished"
    assert encounter.admit_source == "7" and encounter.disposition == "01"
    assert encounter.service == "Medicine"
    assert encounter.visit_number == "A12345"
    assert encounter.facility == personas.facility
    assert encounter.versions.count() == 1
    document = Document.objects.get()
    assert document.source == "imported" and document.status == "final"
    assert document.doc_type.loinc_code == "18842-5"
    assert document.encounter == encounter
    assert document.author == personas.integration
    version = document.current_version
    assert version.body == note  # kept as text, shown escaped
    assert version.attachment_content_type == "application/pdf"
    import hashlib

    assert version.attachment_sha256 == hashlib.sha256(pdf).hexdigest()
    stored = FhirResource.objects.get(resource_type="DocumentReference")
    assert stored.fhir_id == str(document.public_id)
    assert stored.content["author"] == [{"reference": "https://other.example/fhir/Practitioner/77"}]
    assert (
        stored.content["context"]["encounter"][0]["reference"] == f"Encounter/{encounter.public_id}"
    )


def test_other_resource_types_are_kept_whole_with_links(personas):
    practitioner = {
        "resourceType": "Practitioner",
        "id": "pr-1",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "9999999999"}],
        "name": [{"family": "Remote"}],
    }
    care_plan = {
        "resourceType": "CarePlan",
        "id": "cp-1",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/p-1"},
        "author": {
            "reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999999999"
        },
        "extension": [{"url": "http://example.org/unknown", "valueString": "kept"}],
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">plan</div>',
        },
    }
    result = do_import_bundle(
        _bundle(_patient(), practitioner, care_plan), acting_user=personas.integration
    )
    assert result.units_refused == 0, result.refused
    patient = Patient.objects.get()
    stored_practitioner = FhirResource.objects.get(resource_type="Practitioner")
    plan = FhirResource.objects.get(resource_type="CarePlan")
    assert plan.patient == patient
    assert plan.status == "active"
    assert plan.content["author"]["reference"] == f"Practitioner/{stored_practitioner.fhir_id}"
    assert plan.content["extension"] == care_plan["extension"]
    assert plan.content["text"] == care_plan["text"]
    uuid.UUID(plan.fhir_id)
    # A later unit's conditional reference resolves to the practitioner imported before.
    later = copy.deepcopy(care_plan)
    later["id"] = "cp-2"
    result = do_import_bundle(_bundle(later), acting_user=personas.integration)
    assert result.units_refused == 0, result.refused
    second = FhirResource.objects.get(
        resource_type="CarePlan", fhir_id=SourceKey.objects.get(source_id="cp-2").fhir_id
    )
    assert second.content["author"]["reference"] == f"Practitioner/{stored_practitioner.fhir_id}"
    assert second.content["subject"]["reference"] == f"Patient/{patient.public_id}"


def test_ndjson_lines_resolve_across_files(personas, tmp_path):
    """NDJSON as bulk exports and other generators write it (one resource a line, one
    file per type), imported in the order the files need, whatever their names."""
    patients = [
        _patient(id=f"p{i}", identifier=[{"system": "urn:gen", "value": f"G{i}"}]) for i in range(3)
    ]
    encounters = [
        {**_encounter_result(None, f"Patient/p{i}"), "id": f"e{i}", "identifier": []}
        for i in range(3)
    ]
    conditions = [
        {
            "resourceType": "Condition",
            "id": f"c{i}",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/sid/icd-10-cm",
                        "code": "I10",
                        "display": "Essential hypertension",
                    }
                ]
            },
            "subject": {"reference": f"Patient/p{i}"},
            "encounter": {"reference": f"Encounter/e{i}"},
            "recordedDate": "2020-03-02",
        }
        for i in range(3)
    ]
    (tmp_path / "a_Condition.ndjson").write_bytes(
        b"\n".join(orjson.dumps(c) for c in conditions) + b"\n"
    )
    (tmp_path / "b_Encounter.ndjson").write_bytes(b"\n".join(orjson.dumps(e) for e in encounters))
    (tmp_path / "c_Patient.ndjson").write_bytes(b"\n\n".join(orjson.dumps(p) for p in patients))
    result = do_import_paths([tmp_path], acting_user=personas.integration, source="clinosim")
    assert result.units_refused == 0, result.refused
    assert result.units_accepted == 9
    assert Patient.objects.count() == 3
    for condition in ClinicalEntry.objects.filter(resource_type="Condition"):
        assert condition.encounter.patient == condition.patient
        assert condition.code == "I10"


def test_many_synthea_bundles_import(personas):
    """Ten bundles (about 2,500 resources) through the folder path: every one accepted,
    one patient each. (All 50 take about 100 s on SQLite; see the report.)"""
    files = SYNTHEA_FILES[:10]
    started = time.monotonic()
    result = do_import_paths(files, acting_user=personas.integration, source="synthea")
    elapsed = time.monotonic() - started
    assert result.units_refused == 0, result.refused[:3]
    assert result.units_accepted == len(files)
    assert Patient.objects.count() == len(files)
    total = sum(result.totals().values())
    print(f"{total} resources in {elapsed:.1f} s ({total / elapsed:.0f}/s)")


def test_official_examples_import_or_are_quarantined_with_reasons(personas):
    """Each example file is a unit. Those that reference what is in the folder resolve
    (whatever the order); those that reference what is not there (or that RecordRoom
    cannot place, e.g. a Patient without a date of birth) are quarantined with an
    OperationOutcome naming the resource and the element."""
    files = [p for p in EXAMPLES.glob("*.json") if p.name != "package.json"]
    result = do_import_paths(files, acting_user=personas.integration, source="hl7-examples")
    assert result.units_accepted + result.units_refused == len(files)
    # The examples reference much that the package does not hold (Endpoint/example,
    # Coverage/9876B1, …): what depends on it waits in quarantine, by design.
    assert result.units_accepted >= 100, [r.reason for r in result.refused][:20]
    for unit in ImportUnit.objects.filter(status=UnitStatus.REJECTED):
        issues = unit.outcome["issue"]
        assert issues and all(i["expression"] or i["code"] in ("structure",) for i in issues)
        assert unit.raw
    # Every accepted resource is kept whole.
    for unit_result in result.results:
        if not unit_result.accepted:
            continue
        for entry in unit_result.entries:
            stored = _stored(entry.resource_type, entry.fhir_id)
            model = get_fhir_model_class(entry.resource_type)
            model.model_validate(stored)
