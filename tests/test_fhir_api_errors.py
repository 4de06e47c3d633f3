"""Every FHIR error is an OperationOutcome with the right HTTP status: 400 bad JSON or
parameter, 401 without a valid token, 404 unknown ids and types, 405, 406 for XML,
412 stale versions, 413 too large, 415 wrong Content-Type, 422 invalid content; and
nothing is half-written."""

import pytest

from clinical.models import ClinicalEntry
from tests.fhir_api_helpers import CONDITION, Api, api_for, body, patient_with_data

pytestmark = pytest.mark.django_db


def outcome(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    data = body(response)
    assert data["resourceType"] == "OperationOutcome"
    assert data["issue"][0]["severity"] == "error"
    return data["issue"][0]


def test_401_without_a_token(client, personas):
    response = Api(client, None).get("/fhir/Patient")
    outcome(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_401_with_an_unknown_token(client, personas):
    response = Api(client, "not-a-real-token").get("/fhir/Patient")
    outcome(response, 401)
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_400_for_malformed_json(client, personas):
    patient_with_data(personas)
    api = api_for(client, personas.clinician)
    issue = outcome(api.post("/fhir/Condition", b'{"resourceType": "Condition",'), 400)
    assert "not valid JSON" in issue["diagnostics"]
    outcome(api.post("/fhir/Condition", b"[1, 2]"), 400)


def test_400_for_a_wrong_resource_type(client, personas):
    patient, _, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    issue = outcome(api.post("/fhir/Condition", {"resourceType": "Observation"}), 400)
    assert issue["expression"] == ["resourceType"]


def test_400_for_bad_search_values(client, personas):
    api = api_for(client, personas.clinician)
    outcome(api.get("/fhir/Observation", {"date": "yesterday"}), 400)
    outcome(api.get("/fhir/Patient", {"gender": "sometimes"}), 400)
    outcome(api.get("/fhir/Patient", {"_count": "many"}), 400)
    outcome(api.get("/fhir/Patient", {"_summary": "text"}), 400)
    outcome(api.get("/fhir/Patient", {"family": ""}), 400)


def test_404_for_unknown_ids_and_types(client, personas):
    api = api_for(client, personas.clinician)
    outcome(api.get("/fhir/Patient/00000000-0000-0000-0000-000000000000"), 404)
    outcome(api.get("/fhir/Patient/not-a-uuid"), 404)
    outcome(api.get("/fhir/Condition/00000000-0000-0000-0000-000000000000"), 404)
    outcome(api.get("/fhir/CarePlan/nothing-here"), 404)
    issue = outcome(api.get("/fhir/Spaceship"), 404)
    assert issue["code"] == "not-supported"
    outcome(api.get("/fhir/Patient/x/y/z"), 404)


def test_405_for_methods_not_supported(client, personas):
    patient, condition, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    response = api.delete(f"/fhir/Condition/{condition.public_id}")
    outcome(response, 405)
    assert ClinicalEntry.objects.filter(pk=condition.pk).exists()
    outcome(api.client.put("/fhir/metadata"), 405)


def test_406_for_xml(client, personas):
    api = api_for(client, personas.clinician)
    outcome(api.get("/fhir/Patient", HTTP_ACCEPT="application/fhir+xml"), 406)
    outcome(api.get("/fhir/Patient", {"_format": "xml"}), 406)
    assert api.get("/fhir/Patient", HTTP_ACCEPT="application/fhir+json").status_code == 200


def test_413_for_a_body_too_large(client, personas, monkeypatch):
    from interop import api_views

    patient, _, _ = patient_with_data(personas)
    monkeypatch.setattr(api_views, "MAX_RESOURCE_BYTES", 1000)
    big = {
        **CONDITION,
        "subject": {"reference": f"Patient/{patient.public_id}"},
        "note": [{"text": "x" * 2000}],
    }
    outcome(api_for(client, personas.clinician).post("/fhir/Condition", big), 413)
    assert ClinicalEntry.objects.filter(patient=patient).count() == 2


def test_415_for_a_wrong_content_type(client, personas):
    patient, _, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    resource = {**CONDITION, "subject": {"reference": f"Patient/{patient.public_id}"}}
    outcome(api.post("/fhir/Condition", resource, content_type="text/plain"), 415)
    assert api.post("/fhir/Condition", resource, content_type="application/json").status_code == 201


def test_412_for_a_malformed_or_stale_etag(client, personas):
    patient, condition, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    path = f"/fhir/Condition/{condition.public_id}"
    resource = body(api.get(path))
    outcome(api.put(path, resource, HTTP_IF_MATCH="yesterday"), 400)
    outcome(api.put(path, resource, HTTP_IF_MATCH='W/"7"'), 412)
    assert ClinicalEntry.objects.get(pk=condition.pk).version == 1


def test_bundle_post_needs_json(client, personas):
    api = api_for(client, personas.integration, "system/*.read system/*.write")
    outcome(api.post("/fhir/", b"<Bundle/>", content_type="application/xml"), 415)
    response = api.post("/fhir/", b"{not json")
    assert response.status_code == 400
    assert body(response)["resourceType"] == "OperationOutcome"
