"""FHIR API reads: read, vread, history and Patient/$everything serve what the record
holds, as valid FHIR R4 (fhir.resources R4B), with ETag and Last-Modified, and each
read is audited like a view in the web pages."""

import datetime as dt

import pytest
import time_machine
from fhir.resources.R4B import get_fhir_model_class

from audit.models import Action
from clinical.actions import do_update_clinical_entry
from documents.testing import signed
from tests.fhir_api_helpers import (
    CONDITION,
    api_for,
    body,
    patient_with_data,
    visit,
)

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2025, 3, 14, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=True):
        yield


def valid(resource: dict) -> dict:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def test_it_reads_a_patient_with_the_mrn(client, personas):
    patient, _, _ = patient_with_data(personas)
    response = api_for(client, personas.clinician).get(f"/fhir/Patient/{patient.public_id}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    assert response["ETag"] == 'W/"1"'
    assert "Last-Modified" in response
    resource = valid(body(response))
    assert resource["id"] == str(patient.public_id)
    mrn = [i for i in resource["identifier"] if i["system"] == "urn:recordroom:mrn:rrgh"]
    assert mrn and mrn[0]["value"]
    assert resource["name"][0]["family"] == "Quillfeather"
    assert resource["gender"] == "female"
    assert resource["birthDate"] == "1968-04-12"
    # National ids are kept encrypted: never served from the model.
    assert "123-45-6789" not in response.content.decode()


def test_it_audits_the_read(client, personas, audit_rows):
    patient, condition, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    start = len(audit_rows())
    response = api.get(f"/fhir/Condition/{condition.public_id}")
    assert response.status_code == 200
    rows = audit_rows()[start:]
    assert [r.object_type for r in rows] == ["patient", "fhir.Condition"]
    assert all(r.patient_id == patient.public_id for r in rows)
    assert rows[-1].action == Action.VIEW
    assert rows[-1].actor == personas.clinician
    assert rows[-1].purpose == "TREAT"


def test_it_reads_a_clinical_entry_as_recorded(client, personas):
    patient, condition, glucose = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    resource = valid(body(api.get(f"/fhir/Condition/{condition.public_id}")))
    assert resource["code"] == CONDITION["code"]
    assert resource["subject"]["reference"] == f"Patient/{patient.public_id}"
    observation = valid(body(api.get(f"/fhir/Observation/{glucose.public_id}")))
    assert observation["valueQuantity"]["value"] == 182.5


def test_it_reads_an_encounter(client, personas):
    patient, _, _ = patient_with_data(personas)
    encounter = visit(personas, patient, attending=personas.clinician)
    response = api_for(client, personas.clinician).get(f"/fhir/Encounter/{encounter.public_id}")
    assert response.status_code == 200
    resource = valid(body(response))
    assert resource["status"] == "in-progress"
    assert resource["class"]["code"] == "AMB"
    assert resource["subject"]["reference"] == f"Patient/{patient.public_id}"
    assert resource["identifier"][0]["value"] == encounter.visit_number


def test_it_reads_a_signed_document_with_its_text(client, personas):
    import base64

    patient, _, _ = patient_with_data(personas)
    document = signed(patient, personas.clinician)
    response = api_for(client, personas.clinician).get(
        f"/fhir/DocumentReference/{document.public_id}"
    )
    assert response.status_code == 200
    resource = valid(body(response))
    assert resource["status"] == "current"
    assert resource["docStatus"] == "final"
    assert resource["type"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "11506-3",
        "display": document.doc_type.display,
    }
    data = resource["content"][0]["attachment"]["data"]
    assert base64.b64decode(data).decode().startswith("Subjective: cough")


def test_history_and_vread_serve_every_version(client, personas):
    patient, condition, _ = patient_with_data(personas)
    changed = {**condition.resource}
    changed["clinicalStatus"] = {"coding": [{"code": "resolved"}]}
    do_update_clinical_entry(
        condition, resource=changed, reason="resolved at follow-up", acting_user=personas.clinician
    )
    api = api_for(client, personas.clinician)
    history = body(api.get(f"/fhir/Condition/{condition.public_id}/_history"))
    valid(history)
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    assert [e["request"]["method"] for e in history["entry"]] == ["PUT", "POST"]
    first = api.get(f"/fhir/Condition/{condition.public_id}/_history/1")
    assert first.status_code == 200
    assert first["ETag"] == 'W/"1"'
    assert body(first)["clinicalStatus"]["coding"][0]["code"] == "active"
    current = api.get(f"/fhir/Condition/{condition.public_id}")
    assert current["ETag"] == 'W/"2"'
    assert api.get(f"/fhir/Condition/{condition.public_id}/_history/9").status_code == 404


def test_patient_history_lists_demographic_versions(client, personas):
    from patients.actions import do_update_demographics
    from recordroom.testing import patient_data

    patient, _, _ = patient_with_data(personas)
    do_update_demographics(
        patient,
        patient_data(family="Quillfeather-Lane"),
        reason="name change after marriage",
        acting_user=personas.technician,
    )
    api = api_for(client, personas.clinician)
    history = body(api.get(f"/fhir/Patient/{patient.public_id}/_history"))
    valid(history)
    families = [e["resource"]["name"][0]["family"] for e in history["entry"]]
    assert families[0] == "Quillfeather-Lane"
    assert "Quillfeather" in families[1:]
    old = body(api.get(f"/fhir/Patient/{patient.public_id}/_history/1"))
    assert old["name"][0]["family"] == "Quillfeather"


def test_everything_returns_the_record_paged(client, personas):
    patient, condition, glucose = patient_with_data(personas)
    encounter = visit(personas, patient, attending=personas.clinician)
    document = signed(patient, personas.clinician)
    api = api_for(client, personas.clinician)
    response = api.get(f"/fhir/Patient/{patient.public_id}/$everything")
    assert response.status_code == 200
    bundle = valid(body(response))
    ids = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
    assert ids == {
        ("Patient", str(patient.public_id)),
        ("Encounter", str(encounter.public_id)),
        ("Condition", str(condition.public_id)),
        ("Observation", str(glucose.public_id)),
        ("DocumentReference", str(document.public_id)),
    }
    assert bundle["total"] == 5
    first = body(api.get(f"/fhir/Patient/{patient.public_id}/$everything", {"_count": 2}))
    assert len(first["entry"]) == 2
    seen = [e["resource"]["id"] for e in first["entry"]]
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    while next_url:
        page = body(api.get(next_url.replace("http://testserver", "")))
        seen += [e["resource"]["id"] for e in page["entry"]]
        next_url = next((lk["url"] for lk in page["link"] if lk["relation"] == "next"), None)
    assert sorted(seen) == sorted(i for _, i in ids)


def test_everything_filters_by_type_and_since(client, personas):
    patient, condition, glucose = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    only = body(api.get(f"/fhir/Patient/{patient.public_id}/$everything", {"_type": "Observation"}))
    assert [e["resource"]["id"] for e in only["entry"]] == [str(glucose.public_id)]
    later = (NOW + dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")
    none = body(api.get(f"/fhir/Patient/{patient.public_id}/$everything", {"_since": later}))
    assert none["total"] == 0
    bad = api.get(f"/fhir/Patient/{patient.public_id}/$everything", {"start": "2020"})
    assert bad.status_code == 400


def test_everything_is_audited_once_with_the_patient(client, personas, audit_rows):
    patient, _, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    start = len(audit_rows())
    api.get(f"/fhir/Patient/{patient.public_id}/$everything")
    rows = [r for r in audit_rows()[start:] if r.object_type == "fhir.Patient.$everything"]
    assert len(rows) == 1
    assert rows[0].patient_id == patient.public_id
    assert rows[0].detail["returned"] == 3


def test_metadata_is_a_valid_capability_statement(client, personas):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    statement = valid(body(response))
    types = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {"Patient", "Observation", "AuditEvent", "DocumentReference"} <= set(types)
    observation_params = {p["name"] for p in types["Observation"]["searchParam"]}
    assert {"patient", "code", "category", "date"} <= observation_params
    assert {"create", "update"} <= {i["code"] for i in types["Condition"]["interaction"]}
    assert "create" not in {i["code"] for i in types["Patient"]["interaction"]}
    security = statement["rest"][0]["security"]
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris["token"].endswith("/oauth/token")
    assert uris["authorize"].endswith("/oauth/authorize")
