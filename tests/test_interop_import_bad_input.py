"""Bad input to the FHIR import: each is refused as a unit with an OperationOutcome that
names the resource and the element, quarantined, and nothing of it is half-written."""

from __future__ import annotations

import orjson
import pytest

from clinical.models import ClinicalEntry, ClinicalEntryVersion
from documents.models import Document
from encounters.models import Encounter
from interop.import_actions import do_import_bundle, do_import_paths
from interop.importer import process_bundle_request
from interop.models import FhirResource, FhirResourceVersion, ImportUnit, SourceKey, UnitStatus
from patients.models import Patient, PatientIdentifier, PatientName, PatientVersion


def _counts() -> dict[str, int]:
    return {
        m.__name__: m.objects.count()
        for m in (
            Patient,
            PatientName,
            PatientIdentifier,
            PatientVersion,
            Encounter,
            Document,
            ClinicalEntry,
            ClinicalEntryVersion,
            FhirResource,
            FhirResourceVersion,
            SourceKey,
        )
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


def _observation(**overrides) -> dict:
    observation = {
        "resourceType": "Observation",
        "id": "o-1",
        "status": "final",
        "code": {
            "coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]
        },
        "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"},
        "effectiveDateTime": "2020-01-01T10:00:00Z",
        "valueQuantity": {"value": 72, "unit": "/min"},
    }
    observation.update(overrides)
    return observation


def _bundle(*resources, urls=None) -> bytes:
    urls = urls or [
        f"urn:uuid:00000000-0000-4000-8000-00000000000{i + 1}" for i in range(len(resources))
    ]
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": url,
                    "resource": r,
                    "request": {"method": "POST", "url": r["resourceType"]},
                }
                for url, r in zip(urls, resources, strict=True)
            ],
        }
    )


def _refused(personas, raw: bytes):
    before = _counts()
    result = do_import_bundle(raw, acting_user=personas.integration, source="tests")
    assert result.units_refused == 1 and result.units_accepted == 0
    assert _counts() == before, "a refused unit wrote something"
    unit = ImportUnit.objects.get(public_id=result.refused[0].public_id)
    assert unit.status == UnitStatus.REJECTED
    assert bytes(unit.raw) == raw
    assert unit.outcome["resourceType"] == "OperationOutcome"
    assert unit.reason
    return unit.outcome["issue"]


def test_not_json(personas):
    issues = _refused(personas, b'{"resourceType": "Patient", ')
    assert issues[0]["code"] == "structure"
    assert "not JSON" in issues[0]["diagnostics"]


def test_json_but_not_fhir(personas):
    issues = _refused(personas, b'{"name": "no resource type"}')
    assert "no resourceType" in issues[0]["diagnostics"]
    issues = _refused(personas, b"[1, 2, 3]")
    assert "not a FHIR resource" in issues[0]["diagnostics"]


def test_unknown_resource_type(personas):
    issues = _refused(personas, _bundle(_patient(), {"resourceType": "Spaceship", "id": "x"}))
    assert issues[0]["code"] == "not-supported"
    assert issues[0]["expression"] == ["Bundle.entry[1].resource.resourceType"]
    assert "Spaceship" in issues[0]["diagnostics"]


def test_an_invalid_date_names_the_resource_and_element(personas):
    issues = _refused(personas, _bundle(_patient(birthDate="2023-02-30"), _observation()))
    assert issues[0]["expression"] == ["Bundle.entry[0].resource.birthDate"]
    assert "Bundle.entry[0] (Patient/p-1)" in issues[0]["diagnostics"]


def test_a_bad_code_type(personas):
    issues = _refused(personas, _bundle(_patient(gender=5)))
    assert issues[0]["expression"] == ["Bundle.entry[0].resource.gender"]


def test_a_missing_required_element(personas):
    observation = _observation()
    del observation["status"]
    issues = _refused(personas, _bundle(_patient(), observation))
    assert issues[0]["code"] == "required"
    assert issues[0]["expression"] == ["Bundle.entry[1].resource.status"]


def test_an_invalid_status_code_in_a_clinical_resource(personas):
    issues = _refused(personas, _bundle(_patient(), _observation(status="nonsense")))
    assert issues[0]["expression"] == ["Bundle.entry[1].resource.status"]


def test_a_lone_resource_names_itself_without_a_bundle(personas):
    issues = _refused(personas, orjson.dumps(_patient(birthDate="1970-13-01")))
    assert issues[0]["expression"] == ["Patient.birthDate"]
    assert issues[0]["diagnostics"].startswith("Patient/p-1:")


def test_a_dangling_reference(personas):
    observation = _observation(subject={"reference": "Patient/nowhere"})
    issues = _refused(personas, _bundle(_patient(), observation))
    assert issues[0]["code"] == "not-found"
    assert "Patient/nowhere" in issues[0]["diagnostics"]
    assert issues[0]["expression"] == ["Bundle.entry[1].resource.subject"]
    assert ": subject: the reference" in issues[0]["diagnostics"]


def test_a_dangling_urn_reference(personas):
    observation = _observation(
        subject={"reference": "urn:uuid:99999999-0000-4000-8000-000000000000"}
    )
    issues = _refused(personas, _bundle(_patient(), observation))
    assert issues[0]["code"] == "not-found"


def test_a_reference_cycle_does_not_loop(personas):
    """A → B → A inside a bundle: references are looked up, never followed."""
    a = {
        "resourceType": "Encounter",
        "id": "a",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/p-1"},
        "period": {"start": "2020-01-01T10:00:00Z", "end": "2020-01-01T11:00:00Z"},
        "partOf": {"reference": "Encounter/b"},
    }
    b = {**a, "id": "b", "partOf": {"reference": "Encounter/a"}}
    result = do_import_bundle(
        _bundle(_patient(), a, b), acting_user=personas.integration, source="tests"
    )
    assert result.units_refused == 0, result.refused
    stored = {r.fhir_id: r.content for r in FhirResource.objects.filter(resource_type="Encounter")}
    ids = list(stored)
    assert stored[ids[0]]["partOf"]["reference"] == f"Encounter/{ids[1]}"
    assert stored[ids[1]]["partOf"]["reference"] == f"Encounter/{ids[0]}"


def test_duplicate_full_urls_and_ids(personas):
    raw = _bundle(_patient(), _patient(id="p-2"), urls=["urn:uuid:same", "urn:uuid:same"])
    issues = _refused(personas, raw)
    assert issues[0]["code"] == "duplicate"
    assert issues[0]["expression"] == ["Bundle.entry[1].fullUrl"]
    issues = _refused(personas, _bundle(_patient(), _patient()))
    assert issues[0]["code"] == "duplicate"
    assert issues[0]["expression"] == ["Bundle.entry[1].resource.id"]


def test_an_oversized_file_is_refused_without_being_read(personas, settings, tmp_path):
    settings.FHIR_MAX_BUNDLE_BYTES = 1000
    path = tmp_path / "big.json"
    path.write_bytes(
        _bundle(_patient(text={"status": "generated", "div": "<div>" + "x" * 2000 + "</div>"}))
    )
    before = _counts()
    result = do_import_paths([path], acting_user=personas.integration)
    assert result.units_refused == 1
    assert _counts() == before
    unit = ImportUnit.objects.get(status=UnitStatus.REJECTED)
    assert unit.outcome["issue"][0]["code"] == "too-long"
    assert "1,000" in unit.reason
    assert bytes(unit.raw) == b""  # not kept: it was never read


def test_an_oversized_post_is_refused(personas, settings):
    settings.FHIR_MAX_BUNDLE_BYTES = 500
    status, body = process_bundle_request(
        _bundle(_patient(), _observation()), acting_user=personas.integration, source="client"
    )
    assert status == 413
    assert body["issue"][0]["code"] == "too-long"
    assert Patient.objects.count() == 0


def test_hostile_strings_are_stored_as_text(personas, client):
    hostile = "<script>alert('x')</script>"
    result = do_import_bundle(
        _bundle(_patient(name=[{"family": hostile, "given": ["Ada"]}])),
        acting_user=personas.integration,
    )
    assert result.units_refused == 0, result.refused
    patient = Patient.objects.get()
    assert patient.family_name == hostile
    stored = FhirResource.objects.get(resource_type="Patient")
    assert stored.content["name"][0]["family"] == hostile


def test_hostile_strings_in_a_quarantined_unit_are_shown_escaped(personas, client):
    from recordroom.testing import sign_in

    raw = _bundle(_patient(name=[{"family": "<script>alert(1)</script>"}], birthDate="bad"))
    do_import_bundle(raw, acting_user=personas.integration)
    unit = ImportUnit.objects.get()
    sign_in(client, personas.administrator)
    response = client.get(f"/interop/imports/{unit.public_id}/")
    assert response.status_code == 200
    assert b"<script>alert(1)</script>" not in response.content
    assert b"&lt;script&gt;" in response.content


def test_a_unit_failing_late_leaves_nothing(personas):
    """The last resource fails only when written (an Encounter without a start): the
    patient and observations written before it in the same unit are rolled back."""
    encounter = {
        "resourceType": "Encounter",
        "id": "e-1",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/p-1"},
    }
    issues = _refused(personas, _bundle(_patient(), _observation(), encounter))
    assert issues[0]["expression"] == ["Bundle.entry[2].resource.period.start"]


def test_a_patient_without_birth_date_is_refused(personas):
    patient = _patient()
    del patient["birthDate"]
    issues = _refused(personas, _bundle(patient))
    assert issues[0]["expression"] == ["Bundle.entry[0].resource.birthDate"]


def test_delete_entries_are_not_supported(personas):
    raw = orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "DELETE", "url": "Patient/1"}}],
        }
    )
    issues = _refused(personas, raw)
    assert issues[0]["code"] == "not-supported"


def test_the_same_bad_unit_is_quarantined_once(personas):
    raw = b"not json at all"
    do_import_bundle(raw, acting_user=personas.integration)
    do_import_bundle(raw, acting_user=personas.integration)
    assert ImportUnit.objects.filter(status=UnitStatus.REJECTED).count() == 1


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_post_fhir_bundles(personas, kind):
    # Batch entries stand alone: the observation names the patient by its id, which the
    # first entry made known.
    raw = orjson.loads(_bundle(_patient(), _observation(subject={"reference": "Patient/p-1"})))
    raw["type"] = kind
    status, body = process_bundle_request(
        orjson.dumps(raw), acting_user=personas.integration, source="client"
    )
    assert status == 200
    assert body["type"] == f"{kind}-response"
    patient = Patient.objects.get()
    assert body["entry"][0]["response"]["status"] == "201 Created"
    assert body["entry"][0]["response"]["location"] == f"Patient/{patient.public_id}/_history/1"
    observation = ClinicalEntry.objects.get()
    assert (
        body["entry"][1]["response"]["location"]
        == f"Observation/{observation.public_id}/_history/1"
    )
    # The same again: 200 OK, nothing new.
    status, body = process_bundle_request(
        orjson.dumps(raw), acting_user=personas.integration, source="client"
    )
    assert status == 200
    assert body["entry"][0]["response"]["status"] == "200 OK"
    assert ClinicalEntry.objects.count() == 1


def test_post_fhir_transaction_failure_writes_nothing(personas):
    before = _counts()
    status, body = process_bundle_request(
        _bundle(_patient(), _observation(status="nonsense")),
        acting_user=personas.integration,
        source="client",
    )
    assert status == 422
    assert body["resourceType"] == "OperationOutcome"
    assert _counts() == before


def test_post_fhir_batch_entries_stand_alone(personas):
    raw = orjson.loads(_bundle(_patient(), _observation(subject={"reference": "Patient/nowhere"})))
    raw["type"] = "batch"
    status, body = process_bundle_request(
        orjson.dumps(raw), acting_user=personas.integration, source="client"
    )
    assert status == 200
    assert body["entry"][0]["response"]["status"] == "201 Created"
    assert body["entry"][1]["response"]["status"].startswith("422")
    outcome = body["entry"][1]["response"]["outcome"]
    assert outcome["issue"][0]["code"] == "not-found"
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[1].resource.subject"]
    assert Patient.objects.count() == 1


def test_post_fhir_refuses_what_is_not_a_transaction_or_batch(personas):
    status, body = process_bundle_request(
        orjson.dumps(_patient()), acting_user=personas.integration, source="client"
    )
    assert status == 400
    assert Patient.objects.count() == 0
    status, body = process_bundle_request(b"{oops", acting_user=personas.integration, source="c")
    assert status == 400


def test_post_fhir_requires_the_import_permission(personas, audit_rows):
    status, body = process_bundle_request(
        _bundle(_patient()), acting_user=personas.coder, source="client"
    )
    assert status == 403
    assert body["issue"][0]["code"] == "forbidden"
    assert audit_rows(outcome="denied", actor=personas.coder)
    assert Patient.objects.count() == 0
