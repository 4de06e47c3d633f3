"""FHIR search: the parameters the CapabilityStatement lists, date prefixes and
precision, tokens with system|code, paging with next/previous links in a stable order,
_sort, _include, _summary=count; unsupported parameters refused (or reported when
lenient); one audit event per search listing the patients returned."""

import datetime as dt

import pytest
import time_machine
from fhir.resources.R4B import get_fhir_model_class

from audit.models import Action
from documents.testing import signed
from recordroom.testing import register_patient
from tests.fhir_api_helpers import (
    api_for,
    body,
    observation,
    patient_with_data,
    record,
    visit,
)

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2025, 3, 14, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=True):
        yield


def ids(bundle: dict, mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def search(api, resource_type: str, **params) -> dict:
    response = api.get(f"/fhir/{resource_type}", params)
    assert response.status_code == 200, response.content
    bundle = body(response)
    get_fhir_model_class("Bundle").model_validate(bundle)
    return bundle


@pytest.fixture
def population(personas):
    from patients.actions import IdentifierData, TelecomData

    marigold = register_patient(personas)
    other = register_patient(
        personas,
        family="Ashdown",
        given="Tobias",
        middle="",
        birth_date=dt.date(1990, 2, 3),
        sex_at_birth="M",
        identifiers=[IdentifierData(kind="MB", value="MEMBER-77")],
        telecoms=[TelecomData(system="phone", value="617-555-0199")],
        addresses=[],
    )
    return marigold, other


def test_patient_search_parameters(client, personas, population):
    marigold, tobias = population
    api = api_for(client, personas.clinician)
    m, t = str(marigold.public_id), str(tobias.public_id)
    assert ids(search(api, "Patient", family="quill")) == [m]
    assert ids(search(api, "Patient", given="tob")) == [t]
    assert ids(search(api, "Patient", name="ashdown")) == [t]
    assert ids(search(api, "Patient", **{"name:exact": "ash"})) == []
    assert ids(search(api, "Patient", birthdate="1968-04-12")) == [m]
    assert ids(search(api, "Patient", birthdate="1990")) == [t]
    assert ids(search(api, "Patient", birthdate="lt1980")) == [m]
    assert ids(search(api, "Patient", gender="male")) == [t]
    assert ids(search(api, "Patient", **{"address-postalcode": "011"})) == [m]
    assert ids(search(api, "Patient", phone="(617) 555-0199")) == [t]
    assert ids(search(api, "Patient", identifier="MEMBER-77")) == [t]
    assert ids(search(api, "Patient", _id=m)) == [m]
    from patients.actions import mrn_of

    mrn = mrn_of(marigold)
    assert ids(search(api, "Patient", identifier=f"urn:recordroom:mrn:rrgh|{mrn}")) == [m]
    assert ids(search(api, "Patient", identifier=f"urn:recordroom:mrn:othr|{mrn}")) == []
    assert ids(search(api, "Patient", identifier="http://hl7.org/fhir/sid/us-ssn|123-45-6789")) == [
        m
    ]
    # Comma is OR; repeating a parameter is AND.
    assert sorted(ids(search(api, "Patient", _id=f"{m},{t}"))) == sorted([m, t])
    both = api.get("/fhir/Patient", {"family": ["quill", "ash"]})
    assert ids(body(both)) == []


def test_observation_dates_with_precision_and_prefixes(client, personas):
    patient = register_patient(personas)
    may = record(patient, personas.technician, observation("2020-05-13T07:30:00Z"))
    june = record(patient, personas.technician, observation("2020-06-02T09:00:00Z"))
    later = record(patient, personas.technician, observation("2021-01-05T12:00:00Z"))
    api = api_for(client, personas.clinician)
    p = str(patient.public_id)

    def found(date):
        return set(ids(search(api, "Observation", patient=p, date=date)))

    may, june, later = str(may.public_id), str(june.public_id), str(later.public_id)
    assert found("2020") == {may, june}
    assert found("2020-05") == {may}
    assert found("2020-05-13") == {may}
    assert found("2020-05-13T07:30:00Z") == {may}
    assert found("ge2020-06-01") == {june, later}
    assert found("gt2020-06") == {later}
    assert found("le2020-05") == {may}
    assert found("lt2021") == {may, june}
    assert found("eq2019") == set()
    bounded = api.get("/fhir/Observation", {"patient": p, "date": ["ge2020-05-01", "lt2020-07"]})
    assert set(ids(body(bounded))) == {may, june}
    bad = api.get("/fhir/Observation", {"date": "2020-13"})
    assert bad.status_code == 400
    assert body(bad)["issue"][0]["expression"] == ["date"]


def test_tokens_with_system_and_code(client, personas):
    patient = register_patient(personas)
    glucose = str(
        record(patient, personas.technician, observation("2020-05-13T07:30:00Z")).public_id
    )
    vital = str(
        record(
            patient,
            personas.technician,
            observation("2020-05-13T08:00:00Z", "8867-4", "vital-signs"),
        ).public_id
    )
    api = api_for(client, personas.clinician)
    assert ids(search(api, "Observation", code="http://loinc.org|2345-7")) == [glucose]
    assert ids(search(api, "Observation", code="2345-7")) == [glucose]
    assert ids(search(api, "Observation", code="http://snomed.info/sct|2345-7")) == []
    assert ids(search(api, "Observation", category="vital-signs")) == [vital]
    assert sorted(ids(search(api, "Observation", code="2345-7,8867-4"))) == sorted([glucose, vital])


def test_condition_and_clinical_status(client, personas):
    patient, condition, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    assert ids(search(api, "Condition", **{"clinical-status": "active"})) == [
        str(condition.public_id)
    ]
    assert ids(search(api, "Condition", **{"clinical-status": "resolved"})) == []
    assert ids(search(api, "Condition", code="http://hl7.org/fhir/sid/icd-10-cm|E11.9")) == [
        str(condition.public_id)
    ]
    # 'status' is not Condition's parameter: refused, naming it.
    refused = api.get("/fhir/Condition", {"status": "active"})
    assert refused.status_code == 400
    assert body(refused)["issue"][0]["expression"] == ["status"]


def test_paging_is_stable_with_next_and_previous_links(client, personas):
    patient = register_patient(personas)
    made = [
        str(
            record(
                patient, personas.technician, observation(f"2020-01-{d:02d}T10:00:00Z")
            ).public_id
        )
        for d in range(1, 8)
    ]
    api = api_for(client, personas.clinician)
    first = search(api, "Observation", patient=str(patient.public_id), _count=3, _sort="date")
    assert first["total"] == 7
    seen = ids(first)
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "previous" not in links
    url = links["next"]
    second = None
    while url:
        page = body(api.get(url.replace("http://testserver", "")))
        second = second or page
        seen += ids(page)
        url = next((lk["url"] for lk in page["link"] if lk["relation"] == "next"), None)
    assert seen == made
    assert any(lk["relation"] == "previous" for lk in second["link"])
    newest_first = search(api, "Observation", patient=str(patient.public_id), _sort="-date")
    assert ids(newest_first) == list(reversed(made))


def test_count_limits_and_summary_count(client, personas):
    patient = register_patient(personas)
    for d in range(1, 4):
        record(patient, personas.technician, observation(f"2020-01-{d:02d}T10:00:00Z"))
    api = api_for(client, personas.clinician)
    counted = search(api, "Observation", _summary="count")
    assert counted["total"] == 3
    assert "entry" not in counted
    assert len(ids(search(api, "Observation", _count=5000))) == 3
    assert "total" not in search(api, "Observation", _total="none")


def test_include_adds_the_patient(client, personas):
    patient, _, glucose = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    bundle = search(api, "Observation", _include="Observation:patient")
    assert ids(bundle) == [str(glucose.public_id)]
    assert ids(bundle, "include") == [str(patient.public_id)]
    wrong = api.get("/fhir/Observation", {"_include": "Observation:performer"})
    assert wrong.status_code == 400


def test_unsupported_parameters_are_refused_or_reported_when_lenient(client, personas):
    patient_with_data(personas)
    api = api_for(client, personas.clinician)
    refused = api.get("/fhir/Patient", {"eye-colour": "green"})
    assert refused.status_code == 400
    issue = body(refused)["issue"][0]
    assert issue["code"] == "not-supported"
    assert issue["expression"] == ["eye-colour"]
    lenient = api.get("/fhir/Patient", {"eye-colour": "green"}, HTTP_PREFER="handling=lenient")
    assert lenient.status_code == 200
    bundle = body(lenient)
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome[0]["resource"]["issue"][0]["expression"] == ["eye-colour"]
    assert len(ids(bundle)) == 1
    assert api.get("/fhir/Patient", {"_sort": "eye-colour"}).status_code == 400
    assert api.get("/fhir/Patient", {"family:fuzzy": "q"}).status_code == 400


def test_encounter_search(client, personas):
    patient, _, _ = patient_with_data(personas)
    encounter = visit(personas, patient, attending=personas.clinician)
    api = api_for(client, personas.clinician)
    p = str(patient.public_id)
    assert ids(search(api, "Encounter", patient=p)) == [str(encounter.public_id)]
    assert ids(search(api, "Encounter", patient=f"Patient/{p}", status="in-progress")) == [
        str(encounter.public_id)
    ]
    assert ids(search(api, "Encounter", **{"class": "IMP"})) == []
    assert ids(search(api, "Encounter", date="2025-03-14")) == [str(encounter.public_id)]


def test_document_reference_search(client, personas):
    patient, _, _ = patient_with_data(personas)
    document = signed(patient, personas.clinician)
    api = api_for(client, personas.clinician)
    d = str(document.public_id)
    assert ids(search(api, "DocumentReference", patient=str(patient.public_id))) == [d]
    assert ids(search(api, "DocumentReference", type="http://loinc.org|11506-3")) == [d]
    assert ids(search(api, "DocumentReference", type="18842-5")) == []
    assert ids(search(api, "DocumentReference", status="current")) == [d]
    assert ids(search(api, "DocumentReference", date="2025-03")) == [d]


def test_a_search_is_one_audit_event_listing_the_patients(client, personas, population, audit_rows):
    marigold, tobias = population
    api = api_for(client, personas.clinician)
    start = len(audit_rows())
    search(api, "Patient", birthdate="ge1900")
    rows = audit_rows()[start:]
    assert len(rows) == 1
    event = rows[0]
    assert event.action == Action.SEARCH
    assert event.object_type == "fhir.Patient"
    assert sorted(event.detail["patients"]) == sorted(
        [str(marigold.public_id), str(tobias.public_id)]
    )
    assert event.detail["patient_count"] == 2
    assert event.detail["params"] == ["birthdate"]


def test_search_by_post(client, personas):
    patient, _, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    response = api.client.post(
        "/fhir/Patient/_search",
        "family=quill",
        content_type="application/x-www-form-urlencoded",
        **api.headers,
    )
    assert response.status_code == 200
    assert ids(body(response)) == [str(patient.public_id)]


def test_audit_events_for_the_privacy_officer(client, personas):
    patient, _, _ = patient_with_data(personas)
    api_for(client, personas.clinician).get(f"/fhir/Patient/{patient.public_id}")
    officer = api_for(client, personas.privacy_officer)
    bundle = search(officer, "AuditEvent", patient=str(patient.public_id), agent="dr.carl")
    assert bundle["total"] >= 1
    for entry in bundle["entry"]:
        get_fhir_model_class("AuditEvent").model_validate(entry["resource"])
        assert entry["resource"]["agent"][0]["who"]["identifier"]["value"] == "dr.carl"
    reads = search(officer, "AuditEvent", action="R", outcome="0", date=f"ge{NOW.date()}")
    assert reads["total"] >= 1
    one = reads["entry"][0]["resource"]["id"]
    assert officer.get(f"/fhir/AuditEvent/{one}").status_code == 200
    assert officer.get("/fhir/AuditEvent", {"action": "X"}).status_code == 400


def test_generic_resources_search_by_patient(client, personas):
    patient, _, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician)
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": f"Patient/{patient.public_id}"},
        "period": {"start": "2025-01-01"},
    }
    technician = api_for(client, personas.technician)
    created = technician.post("/fhir/CarePlan", plan)
    assert created.status_code == 201, created.content
    plan_id = body(created)["id"]
    assert ids(search(api, "CarePlan", patient=str(patient.public_id))) == [plan_id]
    assert ids(search(api, "CarePlan", status="active", date="2025")) == [plan_id]


def test_us_core_intent_authoredon_and_onset_date(client, personas):
    from tests.fhir_api_helpers import CONDITION, record

    patient = register_patient(personas)
    order = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Metformin 500 mg"},
        "authoredOn": "2024-03-04T10:00:00Z",
    }
    record(patient, personas.technician, order)
    record(patient, personas.technician, {**order, "intent": "plan"})
    dated_only = {k: v for k, v in CONDITION.items() if k != "onsetDateTime"}
    record(patient, personas.technician, {**dated_only, "recordedDate": "2019-06-01"})
    record(patient, personas.technician, CONDITION)  # onset 2019-06-01
    api = api_for(client, personas.clinician, "user/*.read")
    found = body(
        api.get(
            "/fhir/MedicationRequest",
            {"patient": str(patient.public_id), "intent": "order", "authoredon": "ge2024-03-01"},
        )
    )
    assert [e["resource"]["intent"] for e in found["entry"]] == ["order"]
    assert api.get("/fhir/MedicationRequest", {"intent": "bogus"}).status_code == 400
    onset = body(
        api.get("/fhir/Condition", {"patient": str(patient.public_id), "onset-date": "2019-06-01"})
    )
    assert [e["resource"].get("onsetDateTime", "")[:10] for e in onset["entry"]] == ["2019-06-01"]
