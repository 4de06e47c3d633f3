"""FHIR create and update where RecordRoom owns the resource: clinical entries through
clinical.actions, other stored types as FhirResource versions; If-Match honoured (412
when stale); Patient/Encounter/DocumentReference answer 405; every write audited, and
a role without the permission refused (403) and audited."""

import pytest
from fhir.resources.R4B import get_fhir_model_class

from audit.models import Action, Outcome
from clinical.models import ClinicalEntry, ClinicalEntryVersion
from interop.models import FhirResource, FhirResourceVersion
from tests.fhir_api_helpers import CONDITION, api_for, body, patient_with_data, visit

pytestmark = pytest.mark.django_db


def condition_for(patient, **changes) -> dict:
    return {**CONDITION, "subject": {"reference": f"Patient/{patient.public_id}"}, **changes}


def test_create_a_condition(client, personas, audit_rows):
    patient, _, _ = patient_with_data(personas)
    encounter = visit(personas, patient, attending=personas.clinician)
    api = api_for(client, personas.clinician)
    start = len(audit_rows())
    resource = condition_for(patient, encounter={"reference": f"Encounter/{encounter.public_id}"})
    resource["id"] = "chosen-by-client"
    response = api.post("/fhir/Condition", resource)
    assert response.status_code == 201, response.content
    created = body(response)
    get_fhir_model_class("Condition").model_validate(created)
    assert created["id"] != "chosen-by-client"
    assert response["Location"].endswith(f"/fhir/Condition/{created['id']}/_history/1")
    assert response["ETag"] == 'W/"1"'
    entry = ClinicalEntry.objects.get(public_id=created["id"])
    assert entry.patient == patient and entry.encounter == encounter
    assert entry.code == "E11.9"
    creates = [r for r in audit_rows()[start:] if r.action == Action.CREATE]
    assert creates and creates[0].object_id == created["id"]


def test_update_with_if_match(client, personas):
    patient, condition, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    path = f"/fhir/Condition/{condition.public_id}"
    current = body(api.get(path))
    current["clinicalStatus"] = {"coding": [{"code": "resolved"}]}
    updated = api.put(path, current, HTTP_IF_MATCH='W/"1"')
    assert updated.status_code == 200, updated.content
    assert updated["ETag"] == 'W/"2"'
    assert ClinicalEntryVersion.objects.filter(entry=condition).count() == 2
    stale = api.put(path, current, HTTP_IF_MATCH='W/"1"')
    assert stale.status_code == 412
    assert body(stale)["issue"][0]["code"] == "conflict"
    assert ClinicalEntryVersion.objects.filter(entry=condition).count() == 2
    assert api.put(path, current).status_code == 200  # no If-Match: last writer wins


def test_update_refuses_a_mismatched_or_missing_id(client, personas):
    patient, condition, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    path = f"/fhir/Condition/{condition.public_id}"
    resource = body(api.get(path))
    wrong = {**resource, "id": "something-else"}
    assert api.put(path, wrong).status_code == 400
    missing = {k: v for k, v in resource.items() if k != "id"}
    assert api.put(path, missing).status_code == 400
    as_create = {**resource, "id": "00000000-0000-0000-0000-000000000001"}
    assert (
        api.put("/fhir/Condition/00000000-0000-0000-0000-000000000001", as_create).status_code
        == 405
    )


def test_invalid_content_is_422_naming_the_element(client, personas):
    patient, _, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    bad_status = condition_for(patient, clinicalStatus={"coding": [{"code": "sleepy"}]})
    response = api.post("/fhir/Condition", bad_status)
    assert response.status_code == 422
    issue = body(response)["issue"][0]
    assert issue["expression"] == ["Condition.clinicalStatus"]
    bad_date = condition_for(patient, onsetDateTime="2020-02-30")
    response = api.post("/fhir/Condition", bad_date)
    assert response.status_code == 422
    assert "onsetDateTime" in body(response)["issue"][0]["diagnostics"]
    no_patient = dict(CONDITION.items())
    assert api.post("/fhir/Condition", no_patient).status_code == 422
    assert ClinicalEntry.objects.filter(patient=patient).count() == 2


def test_managed_types_answer_405(client, personas):
    patient, _, _ = patient_with_data(personas)
    api = api_for(client, personas.technician)
    response = api.post("/fhir/Patient", {"resourceType": "Patient"})
    assert response.status_code == 405
    assert "master patient index" in body(response)["issue"][0]["diagnostics"]
    read = body(api.get(f"/fhir/Patient/{patient.public_id}"))
    assert api.put(f"/fhir/Patient/{patient.public_id}", read).status_code == 405
    assert api.post("/fhir/Encounter", {"resourceType": "Encounter"}).status_code == 405
    assert (
        api.post("/fhir/DocumentReference", {"resourceType": "DocumentReference"}).status_code
        == 405
    )
    assert api.delete(f"/fhir/Patient/{patient.public_id}").status_code == 405


def test_stored_types_are_versioned(client, personas):
    patient, _, _ = patient_with_data(personas)
    api = api_for(client, personas.technician)
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": f"Patient/{patient.public_id}"},
        "extension": [{"url": "http://example.org/kept", "valueString": "kept whole"}],
    }
    created = api.post("/fhir/CarePlan", plan)
    assert created.status_code == 201, created.content
    resource = body(created)
    resource["status"] = "completed"
    path = f"/fhir/CarePlan/{resource['id']}"
    updated = api.put(path, resource, HTTP_IF_MATCH='W/"1"')
    assert updated.status_code == 200, updated.content
    row = FhirResource.objects.get(fhir_id=resource["id"])
    assert row.version_id == 2 and row.status == "completed" and row.patient == patient
    assert list(
        FhirResourceVersion.objects.filter(resource=row).values_list("version_id", flat=True)
    ) == [2, 1]
    assert api.put(path, resource, HTTP_IF_MATCH='W/"1"').status_code == 412
    history = body(api.get(f"{path}/_history"))
    assert [e["resource"]["status"] for e in history["entry"]] == ["completed", "active"]
    assert body(api.get(f"{path}/_history/1"))["extension"][0]["valueString"] == "kept whole"
    moved = {**resource, "subject": {"reference": "Patient/00000000-0000-0000-0000-000000000000"}}
    assert api.put(path, moved).status_code == 422


def test_it_denies_a_role_without_the_permission_and_audits_it(client, personas, audit_rows):
    patient, _, _ = patient_with_data(personas)
    api = api_for(client, personas.coder)
    start = len(audit_rows())
    response = api.post("/fhir/Condition", condition_for(patient))
    assert response.status_code == 403
    assert body(response)["resourceType"] == "OperationOutcome"
    denied = [r for r in audit_rows()[start:] if r.outcome == Outcome.DENIED]
    assert denied and denied[0].action == Action.CREATE
    assert ClinicalEntry.objects.filter(patient=patient).count() == 2


def test_a_read_only_token_cannot_write(client, personas, audit_rows):
    patient, _, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician, "user/*.read")
    start = len(audit_rows())
    response = api.post("/fhir/Condition", condition_for(patient))
    assert response.status_code == 403
    assert "insufficient_scope" in response["WWW-Authenticate"]
    assert [r.outcome for r in audit_rows()[start:]] == [Outcome.DENIED]


def test_writing_for_another_facilitys_patient_is_refused(client, personas):
    patient, _, _ = patient_with_data(personas)
    api = api_for(client, personas.outsider)
    response = api.post("/fhir/Condition", condition_for(patient))
    assert response.status_code == 422
    assert ClinicalEntry.objects.filter(patient=patient).count() == 2


def test_the_if_match_version_is_checked_again_under_the_row_lock(personas):
    """Two writers holding the same ETag: the second finds the version moved on inside
    the update's own transaction (not only in the check before it)."""
    from clinical.actions import StaleEntry, do_update_clinical_entry
    from tests.fhir_api_helpers import patient_with_data

    _, condition, _ = patient_with_data(personas)
    seen = condition.version
    changed = {**condition.resource, "clinicalStatus": {"coding": [{"code": "resolved"}]}}
    do_update_clinical_entry(
        condition,
        resource=changed,
        reason="first writer",
        acting_user=personas.technician,
        expected_version=seen,
    )
    with pytest.raises(StaleEntry, match=f"version {seen + 1}, not {seen}"):
        do_update_clinical_entry(
            condition,
            resource=changed,
            reason="second writer",
            acting_user=personas.technician,
            expected_version=seen,
        )
