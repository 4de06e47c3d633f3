"""Transaction and batch Bundles posted to the FHIR base URL by an interface engine,
through the HTTP endpoint (authentication, scopes, the import underneath)."""

from __future__ import annotations

import pytest

from clinical.models import ClinicalEntry
from patients.models import Patient
from tests.fhir_api_helpers import api_for, body

pytestmark = pytest.mark.django_db

PATIENT_URL = "urn:uuid:6c1f1f0e-4b1a-4f55-9d53-0e8c1c0b7a11"


def transaction(kind: str = "transaction", condition_subject: str = PATIENT_URL) -> dict:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {
                "fullUrl": PATIENT_URL,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "E-1001"}],
                    "name": [{"family": "Quill", "given": ["Marisol"]}],
                    "gender": "female",
                    "birthDate": "1971-04-12",
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:0d2a4b39-1c7e-4a0e-8c55-2f7f5f1e9b02",
                "resource": {
                    "resourceType": "Condition",
                    "subject": {"reference": condition_subject},
                    "code": {
                        "coding": [{"system": "http://snomed.info/sct", "code": "44054006"}],
                        "text": "Diabetes mellitus type 2",
                    },
                    "recordedDate": "2026-10-02",
                },
                "request": {"method": "POST", "url": "Condition"},
            },
        ],
    }


def test_a_transaction_posted_to_the_base_url_is_imported_once(client, personas):
    api = api_for(client, personas.integration, "system/*.read system/*.write")
    response = api.post("/fhir", transaction())
    assert response.status_code == 200, response.content
    result = body(response)
    assert result["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    condition_location = result["entry"][1]["response"]["location"]
    assert condition_location.startswith("Condition/")
    # What the location names is readable, and points at the patient created with it.
    read = api.get("/fhir/" + condition_location.split("/_history")[0])
    assert read.status_code == 200
    patient = Patient.objects.get()
    assert body(read)["subject"]["reference"] == f"Patient/{patient.public_id}"
    # The same bundle again changes nothing.
    again = body(api.post("/fhir", transaction()))
    assert [e["response"]["status"] for e in again["entry"]] == ["200 OK", "200 OK"]
    assert (Patient.objects.count(), ClinicalEntry.objects.count()) == (1, 1)


def test_a_transaction_with_a_dangling_reference_writes_nothing(client, personas):
    api = api_for(client, personas.integration, "system/*.read system/*.write")
    broken = transaction(condition_subject="urn:uuid:99999999-0000-0000-0000-000000000000")
    response = api.post("/fhir", broken)
    assert response.status_code in (400, 422)
    outcome = body(response)
    assert outcome["resourceType"] == "OperationOutcome"
    assert "urn:uuid:99999999" in str(outcome)
    assert (Patient.objects.count(), ClinicalEntry.objects.count()) == (0, 0)


def test_a_batch_keeps_the_good_entries(client, personas):
    api = api_for(client, personas.integration, "system/*.read system/*.write")
    batch = transaction("batch")
    batch["entry"][1]["resource"]["recordedDate"] = "2026-02-30"  # no such day
    response = api.post("/fhir", batch)
    assert response.status_code == 200, response.content
    entries = body(response)["entry"]
    assert entries[0]["response"]["status"].startswith("201")
    assert not entries[1]["response"]["status"].startswith("2")
    assert Patient.objects.count() == 1 and ClinicalEntry.objects.count() == 0


def test_a_read_only_token_cannot_post_a_bundle(client, personas):
    api = api_for(client, personas.integration, "system/*.read")
    response = api.post("/fhir", transaction())
    assert response.status_code == 403
    assert Patient.objects.count() == 0
