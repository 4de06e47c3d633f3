"""NDJSON from another generator: a small seeded ``clinosim`` population (one file per
resource type, ids of its own, references by ``Type/id``) imports with no refusals, and
importing it again changes nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clinical.models import ClinicalEntry
from documents.models import Document
from encounters.models import Encounter
from interop.import_actions import do_import_paths
from interop.models import FhirResource, ImportUnit, UnitStatus
from patients.models import Patient

CLINOSIM = Path(sys.executable).parent / "clinosim"


@pytest.fixture(scope="module")
def population(tmp_path_factory) -> list[Path]:
    if not CLINOSIM.exists() and not shutil.which("clinosim"):
        pytest.fail("clinosim is not installed in the virtual environment")
    out = tmp_path_factory.mktemp("clinosim")
    subprocess.run(
        [
            str(CLINOSIM if CLINOSIM.exists() else shutil.which("clinosim")),
            "simulate",
            "--country",
            "US",
            "--population",
            "5",
            "--seed",
            "7",
            "--output",
            str(out),
            "--format",
            "fhir-r4",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    # The FHIR data is the NDJSON; manifest.json and _generator_metadata.json beside it
    # describe the run and are not FHIR resources.
    files = sorted((out / "fhir_r4").glob("*.ndjson"))
    assert files
    return files


def _lines(files: list[Path]) -> int:
    return sum(1 for path in files for line in path.read_bytes().splitlines() if line.strip())


def test_a_clinosim_population_imports_whole_and_again_unchanged(personas, population):
    result = do_import_paths(population, acting_user=personas.integration, source="clinosim")
    assert result.units_refused == 0, [(r.source, r.position, r.reason) for r in result.refused]
    total = _lines(population)
    assert result.units_accepted == total
    totals = result.totals()
    assert totals["created"] + totals["updated"] == total
    assert Patient.objects.count() == 5
    assert Encounter.objects.exists()
    if any(path.name == "DocumentReference.ndjson" for path in population):
        assert Document.objects.exists()
    assert ClinicalEntry.objects.filter(resource_type="Observation").exists()
    assert FhirResource.objects.filter(resource_type="Composition").exists()
    # Every clinical entry sits with its patient, and its encounter is the same patient's.
    for entry in ClinicalEntry.objects.exclude(encounter=None).select_related("encounter")[:500]:
        assert entry.encounter.patient_id == entry.patient_id
    units = ImportUnit.objects.count()

    again = do_import_paths(population, acting_user=personas.integration, source="clinosim")
    assert again.units_refused == 0
    assert again.totals() == {"unchanged": total}
    assert ImportUnit.objects.count() == units
    assert not ImportUnit.objects.filter(status=UnitStatus.REJECTED).exists()
