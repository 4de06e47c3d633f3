"""Helpers for the FHIR API tests: a client that carries a bearer token, and clinical
data written through the real actions. Everything here is invented."""

from __future__ import annotations

import copy
import datetime as dt

import orjson

from interop.testing import auth_header, bearer_token
from recordroom import clock
from recordroom.testing import register_patient

FHIR_JSON = "application/fhir+json"

CONDITION = {
    "resourceType": "Condition",
    "clinicalStatus": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active",
            }
        ]
    },
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                    "code": "problem-list-item",
                }
            ]
        }
    ],
    "code": {
        "coding": [
            {
                "system": "http://hl7.org/fhir/sid/icd-10-cm",
                "code": "E11.9",
                "display": "Type 2 diabetes",
            }
        ]
    },
    "onsetDateTime": "2019-06-01T00:00:00Z",
}

GLUCOSE = {
    "resourceType": "Observation",
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory",
                }
            ]
        }
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
    "effectiveDateTime": "2020-05-13T07:30:00Z",
    "valueQuantity": {"value": 182.5, "unit": "mg/dL", "system": "http://unitsofmeasure.org"},
}


def observation(when: str, code: str = "2345-7", category: str = "laboratory") -> dict:
    resource = copy.deepcopy(GLUCOSE)
    resource["effectiveDateTime"] = when
    resource["code"]["coding"][0]["code"] = code
    resource["category"][0]["coding"][0]["code"] = category
    return resource


def record(patient, user, resource: dict, encounter=None):
    from clinical.actions import do_record_clinical_entry

    resource = copy.deepcopy(resource)
    element = (
        "patient"
        if resource["resourceType"] in ("AllergyIntolerance", "Immunization")
        else "subject"
    )
    resource.setdefault(element, {"reference": f"Patient/{patient.public_id}"})
    return do_record_clinical_entry(
        patient, resource=resource, acting_user=user, encounter=encounter
    )


def visit(personas, patient, *, attending=None, hours_ago: int = 3):
    from encounters.actions import do_register_encounter

    return do_register_encounter(
        patient,
        facility=personas.facility,
        encounter_class="AMB",
        started_at=clock.now() - dt.timedelta(hours=hours_ago),
        attending=attending,
        acting_user=personas.technician,
    )


class Api:
    """The Django test client with a bearer token and FHIR JSON."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.headers = auth_header(token) if token else {}

    def get(self, path: str, data=None, **extra):
        return self.client.get(path, data or {}, **self.headers, **extra)

    def post(self, path: str, resource, content_type: str = FHIR_JSON, **extra):
        body = resource if isinstance(resource, bytes | str) else orjson.dumps(resource)
        return self.client.post(path, body, content_type=content_type, **self.headers, **extra)

    def put(self, path: str, resource, content_type: str = FHIR_JSON, **extra):
        body = resource if isinstance(resource, bytes | str) else orjson.dumps(resource)
        return self.client.put(path, body, content_type=content_type, **self.headers, **extra)

    def delete(self, path: str, **extra):
        return self.client.delete(path, **self.headers, **extra)


def api_for(client, user, scope: str = "user/*.read user/*.write", patient=None) -> Api:
    return Api(client, bearer_token(user, scope, patient=patient))


def body(response) -> dict:
    return orjson.loads(response.content)


def patient_with_data(personas, **overrides):
    patient = register_patient(personas, **overrides)
    condition = record(patient, personas.technician, CONDITION)
    glucose = record(patient, personas.technician, GLUCOSE)
    return patient, condition, glucose
