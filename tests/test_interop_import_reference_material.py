"""Loading reference material: ``import-fhir --allow-unresolved`` keeps a reference
that cannot be resolved as written (a warning in the unit's outcome) unless RecordRoom
needs it to place the resource (its patient/subject or its encounter); the default
still refuses such a unit."""

from __future__ import annotations

import io
import re
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command

from clinical.models import ClinicalEntry
from interop.import_actions import do_import_paths
from interop.models import ImportUnit, SourceKey, UnitStatus
from recordroom.testing import shared_data_dir

EXAMPLES = shared_data_dir() / "fhir-r4-examples"


def _patient() -> dict:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"family": "Referenceperson", "given": ["Ada"]}],
        "birthDate": "1970-01-02",
    }


def _observation(**extra) -> dict:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "Pulse"},
        "subject": {"reference": "Patient/p1"},
        "performer": [{"reference": "Practitioner/nobody-here"}],
        "effectiveDateTime": "2021-04-01T10:00:00Z",
        **extra,
    }


@pytest.fixture
def folder(tmp_path, personas):
    do_import_paths(
        [_write(tmp_path / "patient.json", _patient())],
        acting_user=personas.integration,
        source="ref",
    )
    return tmp_path


def _write(path: Path, resource: dict) -> Path:
    path.write_bytes(orjson.dumps(resource))
    return path


def test_by_default_a_reference_to_what_is_not_there_refuses_the_unit(personas, folder):
    path = _write(folder / "obs.json", _observation())
    result = do_import_paths([path], acting_user=personas.integration, source="ref")
    assert result.units_refused == 1
    unit = ImportUnit.objects.get(status=UnitStatus.REJECTED)
    issue = unit.outcome["issue"][0]
    assert issue["code"] == "not-found" and "Practitioner/nobody-here" in issue["diagnostics"]
    assert not ClinicalEntry.objects.exists()


def test_allow_unresolved_keeps_the_reference_as_written_with_a_warning(personas, folder):
    path = _write(folder / "obs.json", _observation())
    result = do_import_paths(
        [path], acting_user=personas.integration, source="ref", allow_unresolved=True
    )
    assert result.units_refused == 0 and result.warnings == 1
    entry = ClinicalEntry.objects.get()
    assert entry.resource["performer"] == [{"reference": "Practitioner/nobody-here"}]
    assert entry.resource["subject"]["reference"] == f"Patient/{entry.patient.public_id}"
    unit = ImportUnit.objects.get(status=UnitStatus.ACCEPTED, created=1, source="obs.json")
    warning = unit.outcome["issue"][0]
    assert warning["severity"] == "warning" and warning["code"] == "not-found"
    assert warning["expression"] == ["Observation.performer"]
    assert "Practitioner/nobody-here" in warning["diagnostics"] and unit.reason
    # Again: unchanged, nothing new.
    again = do_import_paths(
        [path], acting_user=personas.integration, source="ref", allow_unresolved=True
    )
    assert again.totals() == {"unchanged": 1}


@pytest.mark.parametrize(
    "extra, element",
    [
        ({"subject": {"reference": "Patient/not-imported"}}, "Patient/not-imported"),
        ({"encounter": {"reference": "Encounter/not-imported"}}, "Encounter/not-imported"),
    ],
)
def test_the_patient_and_encounter_must_still_resolve(personas, folder, extra, element):
    path = _write(folder / "obs.json", _observation(**extra))
    result = do_import_paths(
        [path], acting_user=personas.integration, source="ref", allow_unresolved=True
    )
    assert result.units_refused == 1 and result.warnings == 0
    issue = ImportUnit.objects.get(status=UnitStatus.REJECTED).outcome["issue"][0]
    assert issue["code"] == "not-found" and element in issue["diagnostics"]
    assert "needs it to place the resource" in issue["diagnostics"]
    assert not ClinicalEntry.objects.exists()


def test_the_command_takes_allow_unresolved(personas, folder):
    path = _write(folder / "obs.json", _observation())
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_fhir", str(path), "--source", "ref", "--allow-unresolved", stdout=out, stderr=err
    )
    assert "1 unresolved references kept as written" in out.getvalue()
    assert ClinicalEntry.objects.count() == 1


# What of the official examples has no place in RecordRoom, and why. Everything else is
# accepted, or refused only because the patient or encounter it needs is one of these
# or is not in the folder at all (checked below, unit by unit).
NO_DATE_OF_BIRTH = {"Patient-dicom", "Patient-ihe-pcd", "Patient-pat1", "Patient-pat2"}
NO_NAME = {"Patient-infant-fetal", "Patient-newborn", "Patient-proband"}
NO_START = {
    "Encounter-example",
    "Encounter-f001",
    "Encounter-f002",
    "Encounter-f003",
    "Encounter-f201",
    "Encounter-f202",
    "Encounter-xcda",
}
NO_PATIENT = {  # the subject is missing, a contained #newborn, or only a display text
    "Observation-10minute-apgar-score",
    "Observation-1minute-apgar-score",
    "Observation-20minute-apgar-score",
    "Observation-2minute-apgar-score",
    "Observation-5minute-apgar-score",
    "Observation-decimal",
    "Observation-vp-oyster",
    "Procedure-education",
    "Procedure-ob",
}
NO_CODE = {"Procedure-appendectomy-narrative"}  # a procedure known only by its narrative
GROUP_SUBJECT = {"Observation-herd1"}  # subject Group/herd1, which the folder does not hold
ACCEPTED = 160


def test_the_official_examples_load_as_reference_material(personas):
    files = sorted(p for p in EXAMPLES.glob("*.json") if p.name != "package.json")
    assert files, f"the official FHIR examples are not at {EXAMPLES} (RECORDROOM_SHARED_DATA)"
    ids = {}
    for path in files:
        resource = orjson.loads(path.read_bytes())
        ids[(resource.get("resourceType"), str(resource.get("id")))] = path.stem
    result = do_import_paths(
        files, acting_user=personas.integration, source="hl7-examples", allow_unresolved=True
    )
    refused = {Path(r.source).stem: r.reason for r in result.refused}
    assert result.units_accepted == ACCEPTED, sorted(refused)
    assert result.units_accepted + result.units_refused == len(files)
    assert result.warnings > 0
    roots = {
        **dict.fromkeys(NO_DATE_OF_BIRTH, "index needs the date of birth"),
        **dict.fromkeys(NO_NAME, "index needs a name"),
        **dict.fromkeys(NO_START, "needs when the encounter started"),
        **dict.fromkeys(NO_PATIENT, "subject must reference a Patient"),
        **dict.fromkeys(NO_CODE, "no code or text"),
        **dict.fromkeys(GROUP_SUBJECT, "Group/herd1 is not in the unit"),
    }
    for name, why in roots.items():
        assert why in refused.get(name, ""), (name, refused.get(name))
    dependants = {name: reason for name, reason in refused.items() if name not in roots}
    for name, reason in dependants.items():
        match = re.search(r"the reference (Patient|Encounter)/(\S+) is not in the unit", reason)
        assert match and "needs it to place the resource" in reason, (name, reason)
        target = ids.get((match.group(1), match.group(2)))
        assert target is None or target in refused, (name, reason)
    assert len(dependants) == result.units_refused - len(roots) == 107
    # The references kept as written are warnings in their units' outcomes.
    warned = ImportUnit.objects.filter(status=UnitStatus.ACCEPTED, reason__contains="kept as")
    assert warned.exists()
    for unit in warned:
        assert all(i["severity"] == "warning" for i in unit.outcome["issue"])
    assert SourceKey.objects.filter(namespace="hl7-examples").exists()
