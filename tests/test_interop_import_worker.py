"""FHIR import with validation in a second process (``validate_in_worker``): the same
lines are refused, for the same reasons, and the same rows written as when this process
validates; a line seen again later in the run (changed or not) is judged on what the
batches before it wrote."""

from __future__ import annotations

import orjson
import pytest

from clinical.models import ClinicalEntry
from interop import import_actions, importer
from interop.import_actions import do_import_paths
from interop.models import ImportUnit, SourceKey, UnitStatus
from interop.references import reference_holders
from patients.models import Patient

pytestmark = pytest.mark.django_db


def _patient(i: int, **extra) -> dict:
    return {
        "resourceType": "Patient",
        "id": f"p{i}",
        "identifier": [{"system": "urn:gen", "value": f"G{i}"}],
        "name": [{"family": "Workerperson", "given": [f"Ada{i}"]}],
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


@pytest.mark.parametrize("in_worker", [False, True], ids=["here", "worker"])
def test_the_worker_refuses_and_writes_what_this_process_would(
    personas, tmp_path, monkeypatch, in_worker
):
    monkeypatch.setattr(import_actions, "BATCH_LINES", 3)
    first = tmp_path / "first"
    first.mkdir()
    _write(first / "Patient.ndjson", [_patient(i) for i in range(4)])
    observations = [_observation(i, i % 4) for i in range(12)]
    # Line 3: an element Observation does not have (refused by validation); line 6: a
    # code that breaks the FHIR string pattern; line 8: not FHIR at all; line 10
    # references a patient that is not there.
    observations[2]["dosage"] = {"text": "twice"}
    observations[5]["code"]["coding"][0]["code"] = "8867-4\n"
    observations[7] = {"resourceType": "Observation", "id": "o7", "status": 12}
    observations[9]["subject"] = {"reference": "Patient/p9"}
    # Line 4 repeats line 1 changed, line 5 repeats line 2 unchanged: the worker is
    # given them before line 1 and 2 are written, as new.
    observations[3] = _observation(0, 0, valueQuantity={"value": 99, "unit": "/min"})
    observations[4] = _observation(1, 1)
    _write(first / "Observation.ndjson", observations)
    calls = []
    validate = importer.validate_resource
    monkeypatch.setattr(
        importer, "validate_resource", lambda *a: calls.append(a[0].get("id")) or validate(*a)
    )
    result = do_import_paths(
        [first], acting_user=personas.integration, source="worker", validate_in_worker=in_worker
    )
    refused = {r.position: r.reason for r in result.refused}
    assert sorted(refused) == ["line 10", "line 3", "line 6", "line 8"]
    assert "dosage" in refused["line 3"] and "Extra inputs" in refused["line 3"]
    assert "Observation.code.coding[0].code" in refused["line 6"]
    assert "Observation.code: Field required" in refused["line 8"]
    assert "Patient/p9" in refused["line 10"]
    assert result.totals() == {"created": 10, "updated": 1, "unchanged": 1, "refused": 4}
    assert Patient.objects.filter(family_name="Workerperson").count() == 4
    assert ClinicalEntry.objects.filter(resource_type="Observation").count() == 6
    o0 = ClinicalEntry.objects.get(public_id=SourceKey.objects.get(source_id="o0").fhir_id)
    assert o0.version == 2 and o0.value_quantity == 99
    quarantined = ImportUnit.objects.filter(status=UnitStatus.REJECTED)
    assert sorted(u.position for u in quarantined) == sorted(refused)
    if in_worker:
        assert calls == []  # all in the other process
    else:
        assert sorted(calls).count("o0") == 2 and calls.count("o1") == 1
    # Again, where line 4 is unchanged when the worker is given its batch (so it is not
    # given it) but changed by line 1 before it is written: it is validated here.
    second = tmp_path / "second"
    second.mkdir()
    changed = _observation(6, 2, valueQuantity={"value": 10, "unit": "/min"})
    _write(
        second / "Observation.ndjson",
        [changed, observations[8], observations[10]]
        + [observations[6], observations[11], observations[3]],
    )
    calls.clear()
    again = do_import_paths(
        [second], acting_user=personas.integration, source="worker", validate_in_worker=in_worker
    )
    assert again.units_refused == 0
    assert again.totals() == {"updated": 2, "unchanged": 4}
    o6 = ClinicalEntry.objects.get(public_id=SourceKey.objects.get(source_id="o6").fhir_id)
    assert o6.version == 3 and o6.value_quantity == 66
    assert calls == (["o6"] if in_worker else ["o6", "o6"])


def test_reference_paths_lead_to_what_the_walk_finds():
    resource = {
        "resourceType": "Claim",
        "id": "c1",
        "patient": {"reference": "Patient/p1"},
        "provider": {"reference": "Organization?identifier=urn:x|1"},
        "item": [
            {"encounter": [{"reference": "Encounter/e1"}, {"reference": "Encounter/e2"}]},
            {"detail": [{"udi": [{"reference": "Device/d1"}]}]},
        ],
        "contained": [{"resourceType": "Patient", "generalPractitioner": [{"reference": "#x"}]}],
        "extension": [{"valueReference": {"reference": "Location/l1"}}],
        "note": [{"text": "reference"}],
    }
    walked = reference_holders(resource)
    paths = importer.reference_paths(resource)
    assert len(walked) == len(paths) == 7
    for (holder, element), (path, where) in zip(walked, paths, strict=True):
        assert importer._follow(resource, path) is holder and where == element


def test_a_key_another_import_writes_meanwhile_refuses_the_line_instead_of_a_duplicate(
    personas, tmp_path, monkeypatch
):
    """The worker looks a batch's source keys up ahead of its turn; a key another import
    writes in between makes the line's insert conflict: that line is refused (for
    replay), the others are written, and nothing is made twice."""
    from django.utils import timezone

    monkeypatch.setattr(import_actions, "BATCH_LINES", 3)
    _write(tmp_path / "Patient.ndjson", [_patient(0)])
    _write(tmp_path / "Observation.ndjson", [_observation(i, 0) for i in range(3)])
    submit = importer.ValidationWorker.submit

    def submit_then_race(self, units, ctx):
        submit(self, units, ctx)
        if any(b'"o1"' in unit.raw for unit in units):
            now = timezone.now()
            SourceKey.objects.create(
                namespace="race",
                resource_type="Observation",
                source_id="o1",
                fhir_id="00000000-0000-4000-8000-000000000001",
                first_seen_at=now,
                last_seen_at=now,
            )

    monkeypatch.setattr(importer.ValidationWorker, "submit", submit_then_race)
    result = do_import_paths(
        [tmp_path], acting_user=personas.integration, source="race", validate_in_worker=True
    )
    assert [r.position for r in result.refused] == ["line 2"]
    assert "conflict with data written at the same time" in result.refused[0].reason
    assert result.totals() == {"created": 3, "refused": 1}
    assert ClinicalEntry.objects.filter(resource_type="Observation").count() == 2
    assert SourceKey.objects.filter(namespace="race", source_id="o1").count() == 1
    # The refused line waits in quarantine with its bytes, to be replayed.
    unit = ImportUnit.objects.get(status=UnitStatus.REJECTED)
    assert unit.raw and b'"o1"' in bytes(unit.raw)


def test_the_validation_window_is_bounded_by_lines_not_by_steps(personas, tmp_path, monkeypatch):
    """Lines are validated ahead of the writes up to WORKER_AHEAD full batches beyond the
    one being written — however many small files and end-of-file steps lie between."""
    monkeypatch.setattr(import_actions, "BATCH_LINES", 3)
    monkeypatch.setattr(import_actions, "WORKER_AHEAD", 1)
    _write(tmp_path / "Patient.ndjson", [_patient(i) for i in range(2)])
    for name in ("AllergyIntolerance", "Condition", "Immunization"):  # small files
        _write(tmp_path / f"{name}.ndjson", [])
    _write(tmp_path / "Observation.ndjson", [_observation(i, i % 2) for i in range(14)])
    submitted, written, most = [0], [0], [0]
    submit, step = importer.ValidationWorker.submit, import_actions._import_step

    def counting_submit(self, units, ctx):
        submitted[0] += len(units)
        most[0] = max(most[0], submitted[0] - written[0])
        return submit(self, units, ctx)

    def counting_step(current, *args):
        written[0] += len(current[1] or [])
        return step(current, *args)

    monkeypatch.setattr(importer.ValidationWorker, "submit", counting_submit)
    monkeypatch.setattr(import_actions, "_import_step", counting_step)
    result = do_import_paths(
        [tmp_path], acting_user=personas.integration, source="window", validate_in_worker=True
    )
    assert result.units_refused == 0 and written[0] == submitted[0] == 16
    # Two batches of three lines at most were read and not yet written (one being
    # written, one ahead), plus the batch just read.
    assert 3 < most[0] <= 3 * 3
