"""An import unit keeps the namespace it was received under (``--source``, the API
client), so that replaying it resolves ids as the first import would have."""

from __future__ import annotations

import orjson

from clinical.models import ClinicalEntry
from interop.import_actions import do_import_paths, do_replay_unit
from interop.models import ImportUnit, SourceKey, UnitStatus


def _patient() -> dict:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"family": "Namespaceperson", "given": ["Ada"]}],
        "birthDate": "1970-01-02",
    }


def _observation() -> dict:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "Pulse"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2021-04-01T10:00:00Z",
    }


def test_a_replay_resolves_in_the_namespace_of_the_first_import(personas, tmp_path):
    observation = tmp_path / "Observation.ndjson"
    observation.write_bytes(orjson.dumps(_observation()) + b"\n")
    result = do_import_paths([observation], acting_user=personas.integration, source="lab-a")
    assert result.units_refused == 1
    unit = ImportUnit.objects.get(status=UnitStatus.REJECTED)
    assert unit.namespace == "lab-a" and unit.source == "Observation.ndjson"
    # The patient arrives later, from the same sender; the same id under another sender
    # is another person and must not be what the replay finds.
    patient = tmp_path / "Patient.ndjson"
    patient.write_bytes(orjson.dumps(_patient()) + b"\n")
    do_import_paths([patient], acting_user=personas.integration, source="lab-b")
    do_import_paths([patient], acting_user=personas.integration, source="lab-a")
    replayed = do_replay_unit(unit, acting_user=personas.administrator)
    assert replayed.accepted, replayed.issues
    entry = ClinicalEntry.objects.get()
    lab_a = ImportUnit.objects.filter(namespace="lab-a", status=UnitStatus.ACCEPTED)
    assert replayed.unit.namespace == "lab-a" and replayed.unit.replay_of == unit
    assert lab_a.filter(pk=replayed.unit.pk).exists()
    unit.refresh_from_db()
    assert unit.status == UnitStatus.REPLAYED
    assert (
        str(entry.patient.public_id)
        == SourceKey.objects.get(namespace="lab-a", resource_type="Patient", source_id="p1").fhir_id
    )


def test_a_unit_without_a_namespace_replays_under_the_old_rule(personas, tmp_path):
    """Units quarantined before the namespace was kept replay as they did: the API's
    under the client's name, the command's under its default namespace."""
    observation = tmp_path / "Observation.ndjson"
    observation.write_bytes(orjson.dumps(_observation()) + b"\n")
    do_import_paths([observation], acting_user=personas.integration)
    unit = ImportUnit.objects.get(status=UnitStatus.REJECTED)
    ImportUnit.objects.filter(pk=unit.pk).update(namespace="")
    unit.refresh_from_db()
    patient = tmp_path / "Patient.ndjson"
    patient.write_bytes(orjson.dumps(_patient()) + b"\n")
    do_import_paths([patient], acting_user=personas.integration)
    replayed = do_replay_unit(unit, acting_user=personas.administrator)
    assert replayed.accepted, replayed.issues
    assert replayed.unit.namespace == "import"
