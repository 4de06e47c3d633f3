"""A page of FHIR Encounters, and a chunk of a bulk export's Encounter file, costs a
constant number of queries: the final coded abstracts, the Conditions their finalisation
kept and the codes' titles are loaded together (``coding.export.encounter_diagnoses_of``
through ``coding.export.encounter_diagnoses_of``), not once an encounter; and what they say
is what ``coding.export.encounter_diagnoses`` says of each encounter."""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clinical.actions import project_coded_diagnoses
from coding import export
from coding.models import AbstractStatus
from documents.testing import temporary_storage
from encounters.models import Encounter
from interop import serialize
from interop.bulk import run_export
from interop.models import ExportFile, ExportJob, ExportStatus
from recordroom import clock
from recordroom.testing import register_patient
from tests.fhir_api_helpers import api_for, body
from tests.test_coding_abstract import load_codes
from tests.test_coding_queue import discharged, make_abstract

pytestmark = pytest.mark.django_db

DIAGNOSES = (("I5033", "Y"), ("E119", "Y"), ("N179", "N"))


def coded_encounters(personas, patient, count: int, *, first_day: int = 5) -> None:
    """``count`` discharged encounters with a final abstract: every other one keeps its
    Conditions (served as references), the others are served contained copies."""
    for n in range(count):
        encounter = discharged(personas, patient, days_ago=first_day + n)
        make_abstract(
            encounter,
            status=AbstractStatus.FINAL,
            coder=personas.coder,
            finalised_by=personas.coder,
            finalised_at=encounter.ended_at,
            diagnoses=DIAGNOSES,
        )
        if n % 2:
            project_coded_diagnoses(
                encounter,
                export.condition_resources(encounter),
                acting_user=personas.coder,
                reason="finalised",
            )


@pytest.fixture
def patient(personas):
    load_codes()
    patient = register_patient(personas)
    coded_encounters(personas, patient, 12)
    discharged(personas, patient, days_ago=1)  # not coded yet: no diagnoses
    return patient


def test_the_page_carries_what_each_encounter_says(patient):
    encounters = list(Encounter.objects.filter(patient=patient).select_related("patient"))
    together = export.encounter_diagnoses_of(encounters)
    for encounter in encounters:
        assert together[encounter.pk] == export.encounter_diagnoses(encounter)
    kinds = {bool(parts["contained"]) for parts in together.values() if parts["diagnosis"]}
    assert kinds == {True, False}  # both kinds of reference are served
    assert export.encounter_diagnoses_of([]) == {}


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


# --- bulk export -------------------------------------------------------------------------


def export_encounters(personas) -> tuple[int, list[dict]]:
    """A system export of the Encounter type, run in this process: its queries and its
    file's resources."""
    job = ExportJob.objects.create(
        kind="system",
        requested_by=personas.integration,
        client_id="queries-test",
        request_url="http://testserver/fhir/$export?_type=Encounter",
        types=["Encounter"],
        status=ExportStatus.ACCEPTED,
        requested_at=clock.now(),
    )
    with CaptureQueriesContext(connection) as queries:
        assert run_export(str(job.public_id)) == ExportStatus.COMPLETED
    exported = ExportFile.objects.get(job=job, resource_type="Encounter")
    with default_storage.open(exported.path) as handle:
        lines = handle.read().decode().splitlines()
    return len(queries), [json.loads(line) for line in lines]


def test_a_bulk_export_of_3_and_of_10_encounters_takes_the_same_queries(
    personas, settings, tmp_path
):
    temporary_storage(settings, tmp_path)
    settings.FHIR_EXPORT_CHUNK = 50  # every encounter in one chunk
    load_codes()
    patient = register_patient(personas)
    coded_encounters(personas, patient, 3)
    three, resources = export_encounters(personas)
    assert len(resources) == 3
    coded_encounters(personas, patient, 7, first_day=20)
    ten, resources = export_encounters(personas)
    assert len(resources) == 10
    assert three == ten
    # What the file says is what each encounter says on its own (its final codes looked
    # up one encounter at a time).
    encounters = Encounter.objects.filter(patient=patient).select_related(
        "patient", "facility", "attending"
    )
    alone = {str(e.public_id): serialize.encounter_resource(e) for e in encounters}
    assert {r["id"]: r for r in resources} == alone
    assert all(r.get("diagnosis") for r in resources)


def test_a_bulk_export_in_chunks_costs_the_same_queries_each_chunk(personas, settings, tmp_path):
    """Chunks of 3: 2 chunks and 4 chunks differ by twice one chunk's queries, whatever
    the encounters' codes."""
    temporary_storage(settings, tmp_path)
    settings.FHIR_EXPORT_CHUNK = 3
    load_codes()
    patient = register_patient(personas)
    coded_encounters(personas, patient, 6)
    two_chunks, _ = export_encounters(personas)
    coded_encounters(personas, patient, 3, first_day=20)
    three_chunks, _ = export_encounters(personas)
    coded_encounters(personas, patient, 3, first_day=30)
    four_chunks, resources = export_encounters(personas)
    assert len(resources) == 12
    assert four_chunks - three_chunks == three_chunks - two_chunks
    assert three_chunks - two_chunks <= 10
