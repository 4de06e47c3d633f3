"""What a token's SMART scopes allow, where a request touches more than one type or
patient: a transaction or batch Bundle needs write scope on every type it holds and
cannot be sent with a token limited to one patient; Patient/$everything returns only
the types the scopes let the token read; the AuditEvent search and read stay within
the token's patient; ``_include`` of the patient needs Patient read scope. Every
refusal is audited."""

from __future__ import annotations

import pytest

from audit.models import Outcome
from clinical.models import ClinicalEntry
from interop.testing import make_client
from tests.fhir_api_helpers import api_for, body, patient_with_data
from tests.test_fhir_api_bundles import transaction

pytestmark = pytest.mark.django_db


def observation_for(patient) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:7b1d0c77-0f3e-4d0a-9f43-3f0c2c6a1b01",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": f"Patient/{patient.public_id}"},
                    "effectiveDateTime": "2026-11-01T08:00:00Z",
                    "valueQuantity": {"value": 72, "unit": "/min"},
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }


def test_a_patient_scoped_token_cannot_send_a_bundle(client, personas, audit_rows):
    mine, _, _ = patient_with_data(personas)
    other, _, _ = patient_with_data(personas, family="Otherly", given="Ruth", identifiers=[])
    api = api_for(client, personas.administrator, "patient/*.read patient/*.write", patient=mine)
    before = ClinicalEntry.objects.filter(patient=other).count()
    response = api.post("/fhir", observation_for(other))
    assert response.status_code == 403, response.content
    assert "limited to one patient" in body(response)["issue"][0]["diagnostics"]
    assert ClinicalEntry.objects.filter(patient=other).count() == before
    refused = audit_rows(outcome=Outcome.DENIED)[-1]
    assert refused.object_id == "Bundle" and "one patient" in refused.reason


def test_a_bundle_needs_write_scope_on_each_type_it_holds(client, personas, audit_rows):
    system = make_client(personas.integration)
    # Patient and Condition in the bundle; only Patient may be written: refused, nothing
    # written.
    api = api_for(client, personas.integration, "system/Patient.write")
    response = api.post("/fhir", transaction())
    assert response.status_code == 403
    assert audit_rows(outcome=Outcome.DENIED)[-1].object_id == "Condition"
    assert not ClinicalEntry.objects.exists()
    # Write scope on both types is enough: no separate "Bundle" scope is asked for.
    from interop.testing import bearer_token
    from tests.fhir_api_helpers import Api

    token = bearer_token(
        personas.integration, "system/Patient.write system/Condition.write", client=system
    )
    response = Api(client, token).post("/fhir", transaction())
    assert response.status_code == 200, response.content
    assert ClinicalEntry.objects.count() == 1


def test_everything_returns_only_the_types_the_scopes_allow(client, personas):
    patient, _, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician, "user/Patient.read")
    page = body(api.get(f"/fhir/Patient/{patient.public_id}/$everything"))
    assert {e["resource"]["resourceType"] for e in page["entry"]} == {"Patient"}
    api = api_for(client, personas.clinician, "user/Patient.read user/Observation.read")
    page = body(api.get(f"/fhir/Patient/{patient.public_id}/$everything"))
    assert {e["resource"]["resourceType"] for e in page["entry"]} == {"Patient", "Observation"}


def test_audit_events_stay_within_the_tokens_patient(client, personas):
    mine, _, _ = patient_with_data(personas)
    other, _, _ = patient_with_data(personas, family="Otherly", given="Ruth", identifiers=[])
    wide = api_for(client, personas.privacy_officer, "user/AuditEvent.read")
    # Reads that leave audit events about both patients.
    assert wide.get(f"/fhir/AuditEvent?patient={other.public_id}").status_code == 200
    others = body(wide.get("/fhir/AuditEvent", {"patient": str(other.public_id)}))
    foreign = others["entry"][0]["resource"]["id"]

    api = api_for(client, personas.privacy_officer, "patient/AuditEvent.read", patient=mine)
    seen = body(api.get("/fhir/AuditEvent", {"_count": "200"}))
    patients = {
        entity["what"]["reference"]
        for entry in seen.get("entry", [])
        for entity in entry["resource"].get("entity", [])
        if entity.get("what", {}).get("reference", "").startswith("Patient/")
    }
    assert patients <= {f"Patient/{mine.public_id}"}
    assert api.get(f"/fhir/AuditEvent/{foreign}").status_code == 404


def test_include_of_the_patient_needs_patient_read_scope(client, personas):
    patient_with_data(personas)
    api = api_for(client, personas.clinician, "user/Observation.read")
    response = api.get("/fhir/Observation", {"_include": "Observation:patient"})
    assert response.status_code == 403
    api = api_for(client, personas.clinician, "user/Observation.read user/Patient.read")
    found = body(api.get("/fhir/Observation", {"_include": "Observation:patient"}))
    assert any(e["search"]["mode"] == "include" for e in found["entry"])


def test_include_on_a_type_without_one_says_so(client, personas):
    api = api_for(client, personas.clinician, "user/*.read")
    response = api.get("/fhir/Patient", {"_include": "Patient:patient"})
    assert response.status_code == 400
    assert "_include is not supported for Patient" in body(response)["issue"][0]["diagnostics"]
