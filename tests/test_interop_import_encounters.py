"""Imported encounters are written in bulk (a batch's new encounters with the visit
numbers their senders give, together): the rows and version 1 are those one at a time
would give, and a visit number already used, or asked for twice, gets the facility's
next number as before."""

from __future__ import annotations

import orjson
import pytest

from encounters.actions import encounter_snapshot
from encounters.models import Encounter
from interop.import_actions import do_import_paths
from interop.models import FhirResource, SourceKey

pytestmark = pytest.mark.django_db


def _patient() -> dict:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "urn:gen", "value": "G1"}],
        "name": [{"family": "Bulkvisit", "given": ["Ada"]}],
        "birthDate": "1980-05-06",
    }


def _encounter(i: int, number: str) -> dict:
    return {
        "resourceType": "Encounter",
        "id": f"e{i}",
        "identifier": [{"system": "urn:visit", "value": number}],
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": "Patient/p1"},
        "serviceType": {"text": "Internal Medicine"},
        "period": {"start": f"2024-03-0{i + 1}T10:00:00Z", "end": f"2024-03-0{i + 1}T11:00:00Z"},
    }


def _observation(i: int, encounter: int) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Pulse"},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": f"Encounter/e{encounter}"},
        "effectiveDateTime": "2024-03-01T10:30:00Z",
        "valueQuantity": {"value": 60 + i, "unit": "/min"},
    }


def test_encounters_in_bulk_are_written_as_one_at_a_time(personas, tmp_path):
    lines = [_encounter(0, "V-100"), _encounter(1, "V-101"), _encounter(2, "V-100")]
    lines += [_encounter(3, "V-103")]
    (tmp_path / "a.ndjson").write_bytes(b"\n".join(orjson.dumps(r) for r in [_patient()]))
    # One file: the encounters and an observation of the first, in one batch.
    (tmp_path / "b.ndjson").write_bytes(
        b"\n".join(orjson.dumps(r) for r in [*lines, _observation(0, 0)])
    )
    result = do_import_paths([tmp_path], acting_user=personas.integration, source="bulk")
    assert result.units_refused == 0, result.refused
    encounters = {
        key.source_id: Encounter.objects.get(public_id=key.fhir_id)
        for key in SourceKey.objects.filter(resource_type="Encounter")
    }
    assert encounters["e0"].visit_number == "V-100"
    assert encounters["e1"].visit_number == "V-101"
    assert encounters["e3"].visit_number == "V-103"
    # Asked for a number another line of the batch took: the facility's next one.
    assert encounters["e2"].visit_number not in ("V-100", "V-101", "V-103", "")
    for encounter in encounters.values():
        version = encounter.versions.get()
        assert version.number == 1 and version.reason == "imported from bulk"
        assert version.snapshot == encounter_snapshot(encounter)
        stored = FhirResource.objects.get(resource_type="Encounter", fhir_id=encounter.public_id)
        assert stored.encounter_id == encounter.pk and stored.patient_id == encounter.patient_id
    entry = encounters["e0"].clinical_entries.get()
    assert entry.value_quantity == 60
