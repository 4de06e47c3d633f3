"""Export of the final abstract: a FHIR R4B Claim (validated by fhir.resources) with
diagnoses in sequence, POA and procedures; a CSV of a period; the Encounter.diagnosis
entries and Conditions carrying the final codes. Exports are audited."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.encounter import Encounter as FhirEncounter

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from coding import export
from coding.models import AbstractStatus
from recordroom.testing import register_patient, sign_in
from tests.test_coding_queue import discharged, make_abstract

pytestmark = pytest.mark.django_db

FINALISED = dt.datetime(2025, 3, 19, 15, tzinfo=dt.UTC)


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def abstract(personas, patient):
    encounter = discharged(personas, patient, days_ago=5)
    return make_abstract(
        encounter,
        status=AbstractStatus.FINAL,
        coder=personas.coder,
        finalised_by=personas.coder,
        finalised_at=FINALISED,
        diagnoses=(("I5033", "Y"), ("E119", "Y"), ("N179", "N")),
        procedures=(("icd10pcs", "5A1955Z"),),
        drg="291",
        payer="Medicare",
    )


def test_the_claim_carries_diagnoses_in_sequence_with_poa_and_procedures(abstract):
    resource = export.claim_resource(abstract)
    Claim.model_validate(resource)
    assert resource["resourceType"] == "Claim" and resource["use"] == "claim"
    assert resource["patient"]["reference"] == f"Patient/{abstract.patient.public_id}"
    dx = resource["diagnosis"]
    assert [d["sequence"] for d in dx] == [1, 2, 3]
    assert [d["diagnosisCodeableConcept"]["coding"][0]["code"] for d in dx] == [
        "I50.33",
        "E11.9",
        "N17.9",
    ]
    assert dx[0]["diagnosisCodeableConcept"]["coding"][0]["system"] == export.ICD10CM
    assert dx[0]["type"][0]["coding"][0]["code"] == "principal"
    assert [d["onAdmission"]["coding"][0]["code"] for d in dx] == ["Y", "Y", "N"]
    (px,) = resource["procedure"]
    assert px["procedureCodeableConcept"]["coding"][0] == {
        "system": "http://www.cms.gov/Medicare/Coding/ICD10",
        "code": "5A1955Z",
    }
    info = {
        i["category"]["coding"][0]["code"]: i["code"]["coding"][0]["code"]
        for i in resource["supportingInfo"]
    }
    assert info == {"pointoforigin": "7", "discharge-status": "01", "drg": "291"}
    assert resource["insurance"][0]["coverage"]["display"] == "Medicare"


def test_the_encounter_and_condition_carry_the_final_codes(abstract):
    parts = export.encounter_diagnoses(abstract.encounter)
    assert [d["rank"] for d in parts["diagnosis"]] == [1, 2, 3]
    assert parts["diagnosis"][0]["condition"]["reference"] == "#dx1"
    assert parts["contained"][0]["code"]["coding"][0]["code"] == "I50.33"
    FhirEncounter.model_validate(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "contained": parts["contained"],
            "diagnosis": parts["diagnosis"],
        }
    )
    conditions = export.condition_resources(abstract.encounter)
    assert [c["code"]["coding"][0]["code"] for c in conditions] == ["I50.33", "E11.9", "N17.9"]
    assert conditions[0]["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    assert conditions[0]["encounter"]["reference"] == f"Encounter/{abstract.encounter.public_id}"


def test_nothing_is_carried_before_the_abstract_is_final(personas, patient):
    encounter = discharged(personas, patient, days_ago=5)
    make_abstract(encounter, coder=personas.coder)
    assert export.encounter_diagnoses(encounter) == {"contained": [], "diagnosis": []}
    assert export.condition_resources(encounter) == []
    with pytest.raises(ValidationError, match="final"):
        export.export_claim(personas.coder, encounter.public_id)


def test_the_claim_export_is_audited(personas, abstract, audit_rows):
    export.export_claim(personas.coder, abstract.encounter.public_id)
    row = audit_rows(object_type="coding.export")[-1]
    assert row.action == Action.EXPORT and row.patient_id == abstract.patient.public_id
    assert row.detail["format"] == "fhir-claim"


def test_the_claim_export_refuses_a_clinician_and_audits_it(personas, abstract, audit_rows):
    with pytest.raises(AccessDenied):
        export.export_claim(personas.clinician, abstract.encounter.public_id)
    assert audit_rows(object_type="coding.export")[0].outcome == Outcome.DENIED


def test_an_outsider_gets_an_audited_404(personas, abstract, audit_rows):
    from recordroom.testing import make_user

    coder = make_user("far.coder", "coder")
    coder.facilities.add(personas.other_facility)
    with pytest.raises(Http404):
        export.export_claim(coder, abstract.encounter.public_id)
    assert audit_rows(object_type="coding.export")[-1].outcome == Outcome.DENIED


def test_the_csv_has_one_line_per_code_of_each_final_abstract(
    personas, patient, abstract, audit_rows
):
    open_one = discharged(personas, patient, days_ago=2)
    make_abstract(open_one, coder=personas.coder)
    result = export.export_csv(
        personas.administrator, start=dt.date(2025, 3, 19), end=dt.date(2025, 3, 19)
    )
    assert result.abstracts == 1
    assert [r[export.CSV_HEADER.index("code")] for r in result.rows] == [
        "I50.33",
        "E11.9",
        "N17.9",
        "5A1955Z",
    ]
    assert [r[export.CSV_HEADER.index("line")] for r in result.rows] == [
        "principal",
        "secondary",
        "secondary",
        "procedure",
    ]
    assert all(len(r) == len(export.CSV_HEADER) for r in result.rows)
    assert result.rows[0][export.CSV_HEADER.index("ms_drg")] == "291"
    row = audit_rows(object_type="coding.export")[-1]
    assert row.action == Action.EXPORT and row.detail["shown"] == [str(patient.public_id)]


def test_the_csv_of_an_empty_period_is_empty(personas, abstract):
    result = export.export_csv(
        personas.administrator, start=dt.date(2025, 1, 1), end=dt.date(2025, 1, 2)
    )
    assert result.rows == [] and result.abstracts == 0


# --- the screens -------------------------------------------------------------------------------


def test_the_claim_download_asks_for_the_password_then_gives_json(client, personas, abstract):
    url = f"/coding/exports/{abstract.encounter.public_id}/claim.json"
    sign_in(client, personas.coder)
    assert client.get(url).status_code == 302
    sign_in(client, personas.coder, sudo=True)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json"
    assert json.loads(response.content)["resourceType"] == "Claim"


def test_the_claim_download_of_an_open_abstract_is_a_conflict(client, personas, patient):
    encounter = discharged(personas, patient, days_ago=5)
    make_abstract(encounter, coder=personas.coder)
    sign_in(client, personas.coder, sudo=True)
    response = client.get(f"/coding/exports/{encounter.public_id}/claim.json")
    assert response.status_code == 409 and b"final" in response.content


def test_the_csv_download(client, personas, abstract):
    sign_in(client, personas.administrator, sudo=True)
    assert client.get("/coding/exports/").status_code == 200
    response = client.get(
        "/coding/exports/abstracts.csv", {"start": "2025-03-19", "end": "2025-03-19"}
    )
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == ",".join(export.CSV_HEADER)
    assert len(lines) == 5
    bad = client.get("/coding/exports/abstracts.csv", {"start": "2025-03-19", "end": "2025-03-01"})
    assert bad.status_code == 400


def test_the_export_pages_refuse_a_clinician_and_audit_it(client, personas, abstract, audit_rows):
    sign_in(client, personas.clinician, sudo=True)
    assert client.get("/coding/exports/").status_code == 403
    assert client.get("/coding/exports/abstracts.csv").status_code == 403
    assert (
        client.get(f"/coding/exports/{abstract.encounter.public_id}/claim.json").status_code == 403
    )
    assert len(audit_rows(outcome=Outcome.DENIED)) == 3


def test_the_export_pages_require_login(client, abstract):
    assert client.get("/coding/exports/abstracts.csv").status_code == 302
