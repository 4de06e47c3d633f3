"""FHIR Patient search on the MPI's indexed keys (names, identifiers, telecoms, addresses)
gives the same answers whichever path the keys take (a narrow id list or a broad
subquery); a search for a restricted patient's resources answers 403 like a read, and
is audited; Encounter ``type`` is answered in SQL."""

import datetime as dt

import orjson
import pytest
import time_machine

from audit.models import Action, Outcome
from documents.testing import treats
from interop import search as fhir_search
from interop.import_actions import do_import_bundle
from patients.actions import AddressData, IdentifierData, NameData, TelecomData, do_set_restriction
from recordroom.testing import register_patient
from tests.fhir_api_helpers import api_for, body, patient_with_data

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2025, 3, 14, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=True):
        yield


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [e["resource"]["id"] for e in body(response).get("entry", [])]


@pytest.fixture
def people(personas):
    """Four invented patients whose keys sit at the edges of prefix ranges."""
    quill = register_patient(personas)  # Quillfeather, Marigold; 01103; (413) 555-0142
    quilz = register_patient(
        personas,
        family="Quilz",
        given="Zora",
        middle="",
        birth_date=dt.date(1980, 1, 2),
        identifiers=[IdentifierData(kind="MB", value="MB-1001")],
        addresses=[AddressData(line1="1 Elm St", city="Lee", state="MA", postal_code="01104")],
        telecoms=[TelecomData(system="phone", value="413-555-0177")],
    )
    quim = register_patient(
        personas,
        family="Quim",
        given="Marigold",
        middle="",
        birth_date=dt.date(1975, 5, 6),
        identifiers=[],
        addresses=[AddressData(line1="2 Oak St", city="Lee", state="MA", postal_code="01110")],
        telecoms=[],
    )
    zz = register_patient(
        personas,
        family="Zzyzx",
        given="Quill",
        middle="",
        birth_date=dt.date(1990, 7, 8),
        identifiers=[],
        addresses=[],
        telecoms=[],
    )
    return {
        k: str(p.public_id)
        for k, p in (("quill", quill), ("quilz", quilz), ("quim", quim), ("zz", zz))
    }


def _searches(people):
    p = people
    return [
        ({"family": "quil"}, {p["quill"], p["quilz"]}),
        ({"family": "QUI"}, {p["quill"], p["quilz"], p["quim"]}),
        ({"family": "quilz"}, {p["quilz"]}),
        ({"family": "zz"}, {p["zz"]}),
        ({"family": "z"}, {p["zz"]}),
        ({"family:exact": "quil"}, set()),
        ({"family:exact": "quim"}, {p["quim"]}),
        ({"family:contains": "ill"}, {p["quill"]}),
        ({"given": "quill"}, {p["zz"]}),
        ({"name": "quill"}, {p["quill"], p["zz"]}),
        ({"name": "quil,zor"}, {p["quill"], p["quilz"], p["zz"]}),
        ({"family": "qui", "given": "mari"}, {p["quill"], p["quim"]}),
        ({"family": "qui", "given": "zo"}, {p["quilz"]}),
        ({"family": "qui", "birthdate": "1975"}, {p["quim"]}),
        ({"address-postalcode": "0110"}, {p["quill"], p["quilz"]}),
        ({"address-postalcode": "011"}, {p["quill"], p["quilz"], p["quim"]}),
        ({"address-postalcode:exact": "0111"}, set()),
        ({"address-postalcode:exact": "01110"}, {p["quim"]}),
        ({"address-postalcode": "01104"}, {p["quilz"]}),
        ({"phone": "(413) 555-0177"}, {p["quilz"]}),
        ({"phone": "4135550142,4135550177"}, {p["quill"], p["quilz"]}),
        ({"identifier": "MB-1001", "family": "quilz"}, {p["quilz"]}),
        ({"identifier": "MB-1001", "family": "quill"}, set()),
        ({"identifier": "nothing-like-it"}, set()),
        ({"given": "marigold", "gender": "female", "phone": "4135550142"}, {p["quill"]}),
    ]


@pytest.mark.parametrize("cap", [5000, 1])
def test_patient_key_searches_whichever_path_the_keys_take(
    client, personas, people, cap, monkeypatch
):
    # cap 1: every key with more than one patient is "broad" (a subquery, or read again
    # within the narrow ones): the answers must not change.
    monkeypatch.setattr(fhir_search, "KEY_CAP", cap)
    api = api_for(client, personas.clinician)
    for params, expected in _searches(people):
        response = api.get("/fhir/Patient", params)
        assert set(ids(response)) == expected, params
        assert body(response)["total"] == len(expected), params


def test_a_second_name_counts_and_each_parameter_may_match_another_name(client, personas):
    patient = register_patient(
        personas,
        name=NameData(family="Ashdown", given="Tobias", middle=""),
        identifiers=[],
        telecoms=[],
        addresses=[],
    )
    from patients.models import PatientName

    PatientName.objects.create(
        patient=patient,
        use="maiden",
        family="Brightwater",
        given="Toby",
        family_norm="brightwater",
        given_norm="toby",
        family_phonetic="B632",
        given_phonetic="T100",
    )
    api = api_for(client, personas.clinician)
    p = str(patient.public_id)
    assert ids(api.get("/fhir/Patient", {"family": "bright"})) == [p]
    # Family from one name, given from the other: FHIR matches each parameter alone.
    assert ids(api.get("/fhir/Patient", {"family": "bright", "given": "tobias"})) == [p]


def test_bad_key_values_are_refused(client, personas, people):
    api = api_for(client, personas.clinician)
    for params in ({"family": "123"}, {"phone": "no digits"}, {"identifier": "urn:x|"}):
        response = api.get("/fhir/Patient", params)
        assert response.status_code == 400, params
        assert body(response)["resourceType"] == "OperationOutcome"


def test_a_restricted_patients_resources_answer_403_and_are_audited(client, personas, audit_rows):
    patient, condition, _ = patient_with_data(personas)
    do_set_restriction(patient, "vip", reason="board member", acting_user=personas.administrator)
    api = api_for(client, personas.other_clinician)
    start = len(audit_rows())
    p = str(patient.public_id)
    for resource_type, params in (
        ("Condition", {"patient": p}),
        ("Condition", {"subject": f"Patient/{p}"}),
        ("Observation", {"patient": f"{p},00000000-0000-0000-0000-000000000000"}),
        ("Encounter", {"patient": p}),
        ("DocumentReference", {"patient": p}),
    ):
        response = api.get(f"/fhir/{resource_type}", params)
        assert response.status_code == 403, (resource_type, response.content)
        issue = body(response)["issue"][0]
        assert issue["code"] == "forbidden"
        assert "break-the-glass" in issue["diagnostics"]
    rows = audit_rows()[start:]
    denied = [r for r in rows if r.outcome == Outcome.DENIED]
    assert len(denied) == 5
    assert all(r.patient_id == patient.public_id and r.action == Action.SEARCH for r in denied)
    assert not [r for r in rows if r.outcome != Outcome.DENIED]
    # No patient named, or an unknown one: nothing found, as before.
    assert ids(api.get("/fhir/Condition")) == []
    unknown = "11111111-1111-4111-8111-111111111111"
    assert ids(api.get("/fhir/Condition", {"patient": unknown})) == []
    # With a relationship the same search answers.
    treats(personas.other_clinician, patient, personas.facility, personas.technician)
    assert ids(api.get("/fhir/Condition", {"patient": p})) == [str(condition.public_id)]


def test_another_facilitys_restricted_patient_is_not_revealed(client, personas):
    patient, _, _ = patient_with_data(personas)
    do_set_restriction(patient, "vip", reason="board member", acting_user=personas.administrator)
    outsider = api_for(client, personas.outsider)
    assert ids(outsider.get("/fhir/Condition", {"patient": str(patient.public_id)})) == []


def _encounter_bundle(patient_id: str, code: str, encounter_id: str) -> bytes:
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": f"urn:uuid:{encounter_id}",
                    "resource": {
                        "resourceType": "Encounter",
                        "id": encounter_id,
                        "status": "finished",
                        "class": {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                            "code": "AMB",
                        },
                        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": code}]}],
                        "subject": {"reference": f"Patient/{patient_id}"},
                        "period": {"start": "2024-02-01T09:00:00Z", "end": "2024-02-01T10:00:00Z"},
                    },
                    "request": {"method": "PUT", "url": f"Encounter/{encounter_id}"},
                }
            ],
        }
    )


def test_encounter_type_is_searched_in_sql(client, personas):
    patient = register_patient(personas)
    p = str(patient.public_id)
    for code, eid in (
        ("185349003", "e0000000-0000-4000-8000-000000000001"),
        ("410620009", "e0000000-0000-4000-8000-000000000002"),
    ):
        result = do_import_bundle(
            _encounter_bundle(p, code, eid), acting_user=personas.integration, source="ehr"
        )
        assert result.units_refused == 0
    api = api_for(client, personas.clinician)
    checkup = ids(api.get("/fhir/Encounter", {"type": "185349003"}))
    assert len(checkup) == 1
    both = ids(api.get("/fhir/Encounter", {"type": "http://snomed.info/sct|185349003,410620009"}))
    assert len(both) == 2 and checkup[0] in both
    assert len(ids(api.get("/fhir/Encounter", {"type": "http://snomed.info/sct|"}))) == 2
    assert ids(api.get("/fhir/Encounter", {"type": "999999"})) == []
    assert len(ids(api.get("/fhir/Encounter", {"type": "185349003", "patient": p}))) == 1
