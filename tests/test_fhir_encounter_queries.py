"""A page of FHIR Encounters costs a constant number of queries: the final coded
abstracts, the Conditions their finalisation kept and the codes' titles are loaded for
the page at once (``interop.serialize.final_codes_of``), not once an encounter; and
what the page says is what ``coding.export.encounter_diagnoses`` says of each one."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clinical.actions import project_coded_diagnoses
from coding import export
from coding.models import AbstractStatus
from encounters.models import Encounter
from interop import serialize
from recordroom.testing import register_patient
from tests.fhir_api_helpers import api_for, body
from tests.test_coding_abstract import load_codes
from tests.test_coding_queue import discharged, make_abstract

pytestmark = pytest.mark.django_db

DIAGNOSES = (("I5033", "Y"), ("E119", "Y"), ("N179", "N"))


@pytest.fixture
def patient(personas):
    load_codes()
    patient = register_patient(personas)
    for n in range(12):
        encounter = discharged(personas, patient, days_ago=5 + n)
        make_abstract(
            encounter,
            status=AbstractStatus.FINAL,
            coder=personas.coder,
            finalised_by=personas.coder,
            finalised_at=encounter.ended_at,
            diagnoses=DIAGNOSES,
        )
        if n % 2:  # half keep their Conditions, half are served contained
            project_coded_diagnoses(
                encounter,
                export.condition_resources(encounter),
                acting_user=personas.coder,
                reason="finalised",
            )
    discharged(personas, patient, days_ago=1)  # not coded yet: no diagnoses
    return patient


def test_the_page_carries_what_each_encounter_says(patient):
    encounters = list(Encounter.objects.filter(patient=patient).select_related("patient"))
    together = serialize.final_codes_of(encounters)
    for encounter in encounters:
        assert together[encounter.pk] == export.encounter_diagnoses(encounter)
    kinds = {bool(parts["contained"]) for parts in together.values() if parts["diagnosis"]}
    assert kinds == {True, False}  # both kinds of reference are served
    assert serialize.final_codes_of([]) == {}


def search_queries(client, personas, patient, count: int) -> int:
    api = api_for(client, personas.clinician, "user/Encounter.read")
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/fhir/Encounter", {"patient": str(patient.public_id), "_count": count})
    assert response.status_code == 200, response.content
    entries = body(response)["entry"]
    assert len(entries) == count
    assert sum(1 for e in entries if e["resource"].get("diagnosis")) >= count - 1
    return len(queries)


def test_a_page_of_3_and_a_page_of_10_take_the_same_number_of_queries(client, personas, patient):
    assert search_queries(client, personas, patient, 3) == search_queries(
        client, personas, patient, 10
    )


def test_a_read_serves_the_final_codes(client, personas, patient):
    encounter = Encounter.objects.filter(patient=patient, abstract__isnull=False).first()
    api = api_for(client, personas.clinician, "user/Encounter.read")
    resource = body(api.get(f"/fhir/Encounter/{encounter.public_id}"))
    assert [d["rank"] for d in resource["diagnosis"]] == [1, 2, 3]
