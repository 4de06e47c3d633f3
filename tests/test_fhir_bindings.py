"""Codes of required bindings (Patient.gender, Encounter.status, CarePlan.status, …),
which fhir.resources does not check: a resource with a code outside its value set is
refused with an OperationOutcome naming the element, through the import, a transaction
and the REST create; valid codes, including those fhir.resources lists only in part,
pass."""

from __future__ import annotations

import pytest

from interop.bindings import binding_problems, required_codes
from patients.models import Patient
from tests.fhir_api_helpers import api_for, body
from tests.test_fhir_api_bundles import transaction

pytestmark = pytest.mark.django_db


def test_the_value_sets_come_from_fhir_resources_and_are_completed_where_cut_short():
    codes = dict(required_codes("Encounter"))
    assert "entered-in-error" in codes["status"] and "+" not in codes["status"]
    assert dict(required_codes("Patient"))["gender"] == {"male", "female", "other", "unknown"}
    assert required_codes("NoSuchType") == ()
    assert binding_problems({"resourceType": "Patient", "gender": "female"}) == []
    assert binding_problems({"resourceType": "Encounter", "status": "unknown"}) == []
    [(element, message)] = binding_problems({"resourceType": "Patient", "gender": "bogus"})
    assert element == "gender" and "'bogus' is not a valid Patient.gender" in message


def test_a_transaction_with_an_invalid_gender_is_refused_and_writes_nothing(client, personas):
    bundle = transaction()
    bundle["entry"][0]["resource"]["gender"] = "bogus"
    api = api_for(client, personas.integration, "system/*.read system/*.write")
    response = api.post("/fhir", bundle)
    assert response.status_code == 422, response.content
    issue = body(response)["issue"][0]
    assert issue["expression"] == ["Bundle.entry[0].resource.gender"]
    assert "not a valid Patient.gender" in issue["diagnostics"]
    assert not Patient.objects.exists()


def test_a_careplan_with_an_invalid_status_is_refused(client, personas):
    from recordroom.testing import register_patient

    patient = register_patient(personas)
    plan = {
        "resourceType": "CarePlan",
        "status": "bogus",
        "intent": "plan",
        "subject": {"reference": f"Patient/{patient.public_id}"},
    }
    api = api_for(client, personas.clinician, "user/CarePlan.read user/CarePlan.write")
    response = api.post("/fhir/CarePlan", plan)
    assert response.status_code == 422, response.content
    assert body(response)["issue"][0]["expression"] == ["CarePlan.status"]
    response = api.post("/fhir/CarePlan", {**plan, "status": "active"})
    assert response.status_code == 201, response.content
