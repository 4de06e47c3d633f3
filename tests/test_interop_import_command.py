"""``recordroom import-fhir``: files, folders, NDJSON, the report, the exit status."""

from __future__ import annotations

import io

import orjson
import pytest
from django.core.management import CommandError, call_command

from interop.models import ImportUnit, UnitStatus
from patients.models import Patient
from recordroom.testing import shared_data_dir

SYNTHEA = sorted((shared_data_dir() / "synthea-r4").glob("*.json"))


def _run(*args):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("import_fhir", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


def _patient(i: int) -> dict:
    return {
        "resourceType": "Patient",
        "id": f"p{i}",
        "identifier": [{"system": "urn:gen", "value": f"G{i}"}],
        "name": [{"family": "Testperson", "given": [f"Ada{i}"]}],
        "birthDate": "1980-05-06",
    }


def test_it_imports_a_bundle_and_reports_counts(personas):
    code, out, err = _run(str(SYNTHEA[0]), "--source", "synthea")
    assert code == 0, err
    assert "Patient" in out and "Observation" in out
    assert "1 units imported, 0 refused" in out
    assert "resources/s" in out
    line = next(line for line in out.splitlines() if line.startswith("Patient "))
    assert line.split()[1:] == ["1", "0", "0", "0"]
    # Again: everything unchanged.
    code, out, _ = _run(str(SYNTHEA[0]), "--source", "synthea")
    line = next(line for line in out.splitlines() if line.startswith("Patient "))
    assert line.split()[1:] == ["0", "0", "1", "0"]
    assert Patient.objects.count() == 1


def test_it_imports_good_units_and_exits_1_when_some_are_refused(personas, tmp_path):
    lines = [orjson.dumps(_patient(1)), b"{broken", orjson.dumps(_patient(2))]
    (tmp_path / "Patient.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "notes.txt").write_text("ignored: not json/ndjson")
    code, out, err = _run(str(tmp_path))
    assert code == 1
    assert Patient.objects.count() == 2
    assert "2 units imported, 1 refused" in out
    assert "Patient.ndjson line 2" in err
    unit = ImportUnit.objects.get(status=UnitStatus.REJECTED)
    assert unit.position == "line 2" and unit.source == "Patient.ndjson"
    assert bytes(unit.raw) == b"{broken"


def test_a_reference_not_there_at_the_end_is_quarantined_and_replayable(personas, tmp_path):
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "Heart rate"},
        "subject": {"reference": "Patient/p9"},
    }
    (tmp_path / "Observation.ndjson").write_bytes(orjson.dumps(observation) + b"\n")
    code, out, err = _run(str(tmp_path))
    assert code == 1
    unit = ImportUnit.objects.get(status=UnitStatus.REJECTED)
    assert "Patient/p9" in unit.reason
    # The target arrives later; the quarantined unit then replays.
    (tmp_path / "Observation.ndjson").unlink()
    (tmp_path / "Patient.ndjson").write_bytes(orjson.dumps(_patient(9)))
    code, _, _ = _run(str(tmp_path))
    assert code == 0
    from interop.import_actions import do_replay_unit

    result = do_replay_unit(unit, acting_user=personas.administrator)
    assert result.accepted
    unit.refresh_from_db()
    assert unit.status == UnitStatus.REPLAYED


def test_the_account_and_facility_options(personas, tmp_path):
    (tmp_path / "p.json").write_bytes(orjson.dumps(_patient(1)))
    with pytest.raises(CommandError, match="no active account"):
        _run(str(tmp_path), "--as", "nobody")
    with pytest.raises(CommandError, match="no facility"):
        _run(str(tmp_path), "--facility", "nowhere")
    with pytest.raises(CommandError, match="may not import"):
        _run(str(tmp_path), "--as", personas.coder.username)
    code, _, _ = _run(str(tmp_path), "--facility", personas.other_facility.code)
    assert code == 0
    patient = Patient.objects.get()
    assert patient.identifiers.filter(kind="MR", facility=personas.other_facility).exists()


def test_a_missing_path_is_an_error(personas):
    with pytest.raises(CommandError, match="No such file"):
        _run("/nonexistent/place.json")
