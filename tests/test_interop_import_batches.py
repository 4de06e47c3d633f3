"""FHIR import of NDJSON in batches: each line is still its own unit (refused alone,
nothing of it written), while the lines of a batch share one transaction, one
ImportUnit row and one audit event; unchanged lines are not validated again."""

from __future__ import annotations

import orjson
import pytest

from clinical.models import ClinicalEntry, ClinicalEntryVersion
from interop import import_actions, importer
from interop.import_actions import do_import_paths
from interop.models import ImportUnit, SourceKey, UnitStatus
from patients.models import Patient
from recordroom.testing import shared_data_dir


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of three lines, so that a dozen lines make several batches."""
    monkeypatch.setattr(import_actions, "BATCH_LINES", 3)


def _patient(i: int, **extra) -> dict:
    return {
        "resourceType": "Patient",
        "id": f"p{i}",
        "identifier": [{"system": "urn:gen", "value": f"G{i}"}],
        "name": [{"family": "Batchperson", "given": [f"Ada{i}"]}],
        "birthDate": "1980-05-06",
        **extra,
    }


def _observation(i: int, patient: int, **extra) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Pulse"},
        "subject": {"reference": f"Patient/p{patient}"},
        "effectiveDateTime": "2021-04-01T10:00:00Z",
        "valueQuantity": {"value": 60 + i, "unit": "/min"},
        **extra,
    }


def _write(path, resources) -> None:
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in resources) + b"\n")


def test_a_refused_line_is_left_out_of_its_batch_and_quarantined_alone(
    personas, tmp_path, small_batches, audit_rows
):
    _write(tmp_path / "Patient.ndjson", [_patient(i) for i in range(4)])
    observations = [_observation(i, i % 4) for i in range(10)]
    # Line 5: valid FHIR, but a status RecordRoom's clinical record does not accept
    # (refused while its batch is written); line 8: not FHIR at all (refused on reading).
    observations[4]["status"] = "made-up"
    observations[7] = {"resourceType": "Observation", "id": "o7", "status": 12}
    _write(tmp_path / "Observation.ndjson", observations)
    result = do_import_paths([tmp_path], acting_user=personas.integration, source="batch")
    assert result.units_accepted == 12 and result.units_refused == 2
    refused = sorted(r.position for r in result.refused)
    assert refused == ["line 5", "line 8"]
    assert ClinicalEntry.objects.filter(resource_type="Observation").count() == 8
    assert not SourceKey.objects.filter(source_id__in=["o4", "o7"]).exists()
    units = ImportUnit.objects.filter(status=UnitStatus.REJECTED).order_by("position")
    assert [u.position for u in units] == ["line 5", "line 8"]
    assert "made-up" in units[0].reason and units[0].raw == orjson.dumps(observations[4])
    assert units[0].namespace == "batch"
    # One accepted ImportUnit and one audit event per batch of three lines (the batch
    # that lost a line holds two), each listing the patients it touched.
    accepted = ImportUnit.objects.filter(status=UnitStatus.ACCEPTED).order_by("pk")
    assert [u.position for u in accepted] == [
        "line 1 – line 3",
        "line 4",
        "line 1 – line 3",
        "line 4 – line 6",
        "line 7 – line 9",
        "line 10",
    ]
    assert sum(u.created for u in accepted) == 12
    events = audit_rows(object_type="import_unit", reason="FHIR import")
    assert len(events) == len(accepted)
    pulse = ClinicalEntry.objects.get(public_id=SourceKey.objects.get(source_id="o5").fhir_id)
    event = next(e for e in events if e.object_id == str(accepted[3].public_id))
    assert str(pulse.patient.public_id) in event.detail["patients"]


def test_lines_of_one_batch_reference_each_other_in_any_order(personas, tmp_path):
    _write(tmp_path / "Patient.ndjson", [_patient(1)])
    panel = _observation(1, 1, hasMember=[{"reference": "Observation/o2"}])
    _write(tmp_path / "Observation.ndjson", [panel, _observation(2, 1)])
    result = do_import_paths([tmp_path], acting_user=personas.integration, source="batch")
    assert result.units_refused == 0, result.refused
    member = SourceKey.objects.get(source_id="o2").fhir_id
    stored = ClinicalEntry.objects.get(public_id=SourceKey.objects.get(source_id="o1").fhir_id)
    assert stored.resource["hasMember"] == [{"reference": f"Observation/{member}"}]


def test_a_line_whose_target_is_refused_waits_and_is_quarantined(personas, tmp_path):
    _write(tmp_path / "Patient.ndjson", [_patient(1)])
    bad = _observation(2, 1, status="made-up")
    panel = _observation(1, 1, hasMember=[{"reference": "Observation/o2"}])
    _write(tmp_path / "Observation.ndjson", [panel, bad, _observation(3, 1)])
    result = do_import_paths([tmp_path], acting_user=personas.integration, source="batch")
    assert sorted(r.position for r in result.refused) == ["line 1", "line 2"]
    panel_unit = ImportUnit.objects.get(status=UnitStatus.REJECTED, position="line 1")
    assert panel_unit.outcome["issue"][0]["code"] == "not-found"
    assert SourceKey.objects.filter(source_id="o3").exists()
    assert not SourceKey.objects.filter(source_id__in=["o1", "o2"]).exists()


def test_the_same_resource_twice_in_a_file_is_one_resource_with_two_versions(personas, tmp_path):
    first = _observation(1, 1)
    second = _observation(1, 1, valueQuantity={"value": 99, "unit": "/min"})
    _write(tmp_path / "Patient.ndjson", [_patient(1)])
    _write(tmp_path / "Observation.ndjson", [first, second, first])
    result = do_import_paths([tmp_path], acting_user=personas.integration, source="batch")
    assert result.units_refused == 0, result.refused
    entry = ClinicalEntry.objects.get(resource_type="Observation")
    assert entry.version == 3 and entry.value_quantity == 60 + 1
    assert ClinicalEntryVersion.objects.filter(entry=entry).count() == 3
    assert result.counts["Observation"] == {"created": 1, "updated": 2}


def test_two_lines_for_one_person_make_one_patient(personas, tmp_path):
    """The index matches the second line to the patient the first registered, as it
    would one unit after the other, though both sit in the same batch."""
    again = _patient(2, identifier=[{"system": "urn:gen", "value": "G1"}])
    _write(tmp_path / "Patient.ndjson", [_patient(1), again])
    result = do_import_paths([tmp_path], acting_user=personas.integration, source="batch")
    assert result.units_refused == 0, result.refused
    assert Patient.objects.count() == 1
    assert result.counts["Patient"] == {"created": 1, "updated": 1}
    keys = SourceKey.objects.filter(resource_type="Patient")
    assert {k.source_id for k in keys} == {"p1", "p2"} and len({k.fhir_id for k in keys}) == 1


def test_unchanged_lines_are_not_validated_again(personas, tmp_path, monkeypatch):
    _write(tmp_path / "Patient.ndjson", [_patient(i) for i in range(3)])
    _write(tmp_path / "Observation.ndjson", [_observation(i, i % 3) for i in range(6)])
    first = do_import_paths([tmp_path], acting_user=personas.integration, source="batch")
    assert first.units_refused == 0
    calls = []
    validate = importer.validate_resource
    monkeypatch.setattr(
        importer, "validate_resource", lambda *a: calls.append(a[0]["id"]) or validate(*a)
    )
    changed = _observation(0, 0, valueQuantity={"value": 120, "unit": "/min"})
    _write(
        tmp_path / "Observation.ndjson", [changed] + [_observation(i, i % 3) for i in range(1, 6)]
    )
    units = ImportUnit.objects.count()
    second = do_import_paths([tmp_path], acting_user=personas.integration, source="batch")
    assert calls == ["o0"]
    assert second.totals() == {"unchanged": 8, "updated": 1}
    assert ImportUnit.objects.count() == units + 1


def test_units_that_reference_each_other_across_files_are_written_together(personas, tmp_path):
    """A condition naming its encounter and the encounter naming it as its diagnosis
    (a reference cycle across two files): both wait, are brought together and written
    in one transaction, so that the observation of that encounter, later in the run,
    finds it without waiting."""
    encounter = {
        "resourceType": "Encounter",
        "id": "e1",
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "IMP",
        },
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2021-03-01T08:00:00Z", "end": "2021-03-04T12:00:00Z"},
        "diagnosis": [{"condition": {"reference": "Condition/c1"}}],
    }
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}]},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "recordedDate": "2021-03-01",
    }
    _write(tmp_path / "Patient.ndjson", [_patient(1)])
    _write(tmp_path / "Encounter.ndjson", [encounter])
    _write(tmp_path / "Condition.ndjson", [condition])
    _write(
        tmp_path / "Observation.ndjson",
        [_observation(1, 1, encounter={"reference": "Encounter/e1"})],
    )
    result = do_import_paths([tmp_path], acting_user=personas.integration, source="batch")
    assert result.units_refused == 0, result.refused
    assert result.retried == 2  # the condition and the encounter, not the observation
    stored = ClinicalEntry.objects.get(resource_type="Condition")
    assert stored.encounter is not None
    assert stored.resource["encounter"]["reference"] == f"Encounter/{stored.encounter.public_id}"
    observation = ClinicalEntry.objects.get(resource_type="Observation")
    assert observation.encounter == stored.encounter


def test_entries_of_a_bundle_keep_their_encounter(personas):
    """Within a unit, encounters are written before what points to them."""

    bundles = sorted((shared_data_dir() / "synthea-r4").glob("*.json"))
    result = do_import_paths(bundles[:1], acting_user=personas.integration, source="synthea")
    assert result.units_refused == 0
    with_encounter = ClinicalEntry.objects.filter(resource__has_key="encounter")
    assert with_encounter.exists()
    assert not with_encounter.filter(encounter=None).exists()


def test_statistics_of_the_source_keys_follow_a_growing_import(
    personas, tmp_path, small_batches, monkeypatch
):
    """On PostgreSQL a table the import fills keeps the statistics of its empty self until
    autovacuum comes round; the import refreshes them as it doubles the source keys.
    SQLite's planner is given none (its plans for these look-ups use the unique index
    without them): nothing is analysed there."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(importer, "ANALYZE_AFTER_KEYS", 4)
    table = SourceKey._meta.db_table
    postgres = connection.vendor == "postgresql"

    def rows_known() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
            return cursor.fetchone()[0]

    if postgres:
        # Statistics of the table as it is now (ANALYZE writes them outside the
        # transaction: an earlier test's import may have left figures of rows rolled
        # back since).
        with connection.cursor() as cursor:
            cursor.execute(f'ANALYZE "{table}"')
        assert rows_known() == 0
    _write(tmp_path / "Patient.ndjson", [_patient(i) for i in range(3)])
    _write(tmp_path / "Observation.ndjson", [_observation(i, i % 3) for i in range(9)])
    with CaptureQueriesContext(connection) as queries:
        result = do_import_paths([tmp_path], acting_user=personas.integration, source="stats")
    assert result.units_refused == 0
    analyzed = [q for q in queries.captured_queries if q["sql"].startswith("ANALYZE")]
    if not postgres:
        assert analyzed == []
        return
    assert 1 <= len(analyzed) <= 3  # as the table doubles, not after every batch
    assert rows_known() >= 8
