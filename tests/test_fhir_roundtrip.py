"""Round-trip proof: Synthea bundles and the official FHIR R4 examples imported through
the import, then read back through the API: every resource validates under
fhir.resources (R4B) and no element of the input is lost (interop.roundtrip.compare,
ids and references mapped through SourceKey)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class

from interop.roundtrip import IdMap, compare, id_map_from_source_keys
from recordroom.testing import shared_data_dir
from tests.fhir_api_helpers import api_for, body

pytestmark = pytest.mark.django_db

DATA = shared_data_dir()
SYNTHEA = DATA / "synthea-r4"
EXAMPLES = DATA / "fhir-r4-examples"


def synthea_files(limit: int | None = None) -> list[Path]:
    files = sorted(SYNTHEA.glob("*.json"))
    return files[:limit] if limit else files


def import_files(personas, paths):
    from interop.import_actions import do_import_paths

    return do_import_paths(paths, acting_user=personas.integration, source="roundtrip-test")


def validate_and_compare(sent: dict, served: dict, ids: IdMap) -> list[str]:
    resource_type = sent["resourceType"]
    label = f"{resource_type}/{served.get('id')}"
    try:
        get_fhir_model_class(resource_type).model_validate(served)
    except Exception as error:  # noqa: BLE001 - reported, not hidden
        return [f"{label}: does not validate: {str(error)[:300]}"]
    return [f"{label}: {d}" for d in compare(sent, served, ids)]


def read_back(client, personas, sent: dict, ids: IdMap, readers, served_by_id=None) -> list[str]:
    """Problems with one resource read back (empty when it came back whole). Resources
    already fetched (``served_by_id``, from $everything) are not read again."""
    resource_type = sent["resourceType"]
    target = ids.target(resource_type, sent.get("id", ""))
    if target is None:
        return [f"{resource_type}/{sent.get('id')}: no SourceKey"]
    served = (served_by_id or {}).get((resource_type, target))
    if served is None:
        api = readers["AuditEvent"] if resource_type == "AuditEvent" else readers["*"]
        response = api.get(f"/fhir/{resource_type}/{target}")
        if response.status_code != 200:
            return [
                f"{resource_type}/{target}: HTTP {response.status_code} {response.content[:200]!r}"
            ]
        served = body(response)
    return validate_and_compare(sent, served, ids)


def everything_of(api, patient_id: str) -> dict[tuple[str, str], dict]:
    """Every resource of the patient's $everything, all pages."""
    found: dict[tuple[str, str], dict] = {}
    url = f"/fhir/Patient/{patient_id}/$everything?_count=1000"
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content[:300]
        page = body(response)
        for entry in page.get("entry", []):
            resource = entry["resource"]
            found[(resource["resourceType"], resource["id"])] = resource
        url = next((lk["url"] for lk in page["link"] if lk["relation"] == "next"), None)
        url = url.replace("http://testserver", "") if url else None
    return found


def readers_for(client, personas) -> dict:
    return {
        "*": api_for(client, personas.administrator, "user/*.read"),
        "AuditEvent": api_for(client, personas.privacy_officer, "user/*.read"),
    }


def check_bundles(client, personas, paths) -> tuple[int, list[str]]:
    """Import the bundles, then read every resource back: each patient's record through
    $everything (all pages), the rest (organizations, practitioners) one by one."""
    result = import_files(personas, paths)
    ids = id_map_from_source_keys()
    problems: list[str] = []
    readers = readers_for(client, personas)
    bundles = [json.loads(path.read_bytes()) for path in paths]
    for bundle in bundles:
        ids.add_bundle(bundle)
    checked = 0
    for bundle in bundles:
        served: dict = {}
        for entry in bundle.get("entry") or []:
            resource = entry["resource"]
            if resource["resourceType"] == "Patient":
                target = ids.target(
                    "Patient", resource.get("id") or entry["fullUrl"].rsplit(":", 1)[-1]
                )
                if target:
                    served.update(everything_of(readers["*"], target))
        for entry in bundle.get("entry") or []:
            sent = entry["resource"]
            if "id" not in sent:
                sent = {**sent, "id": entry["fullUrl"].rsplit(":", 1)[-1]}
            problems += read_back(client, personas, sent, ids, readers, served)
            checked += 1
    return checked, problems + [f"refused: {r}" for r in _refusals(result)]


def _refusals(result) -> list[str]:
    refused = getattr(result, "refused", None) or []
    return [str(r)[:300] for r in refused]


def test_synthea_bundles_come_back_whole(client, personas):
    checked, problems = check_bundles(client, personas, synthea_files(3))
    assert checked > 100
    assert problems == [], "\n".join(problems[:40])


def test_all_fifty_synthea_bundles_come_back_whole(client, personas):
    started = time.monotonic()
    checked, problems = check_bundles(client, personas, synthea_files())
    assert checked > 1000
    assert problems == [], "\n".join(problems[:40])
    assert time.monotonic() - started < 180  # about 45 s on an idle developer machine


def test_the_official_examples_come_back_whole(client, personas):
    """Every example the import accepts (as reference material: references to what the
    folder does not hold are kept as written; what has no place in RecordRoom is refused
    with its reason, see test_interop_import_reference_material) is read back whole."""
    from interop.import_actions import do_import_paths

    paths = sorted(p for p in EXAMPLES.glob("*.json") if p.name != "package.json")
    result = do_import_paths(
        paths, acting_user=personas.integration, source="roundtrip-test", allow_unresolved=True
    )
    ids = id_map_from_source_keys()
    readers = readers_for(client, personas)
    problems: list[str] = []
    imported = 0
    examples = [json.loads(path.read_bytes()) for path in paths]
    # Two examples describe one person (the same identifiers): the MPI matches the
    # second to the patient the first made, which then serves the first's resource.
    targets = [ids.target(r["resourceType"], r.get("id", "")) for r in examples]
    shared = {t for t in targets if t is not None and targets.count(t) > 1}
    for sent, target in zip(examples, targets, strict=True):
        if target is None:
            continue  # refused by the import (reported by it, with its reason)
        imported += 1
        if target in shared:
            assert sent["resourceType"] == "Patient", sent["resourceType"]
            continue
        problems += read_back(client, personas, sent, ids, readers)
    assert len(shared) <= 1
    assert imported == result.units_accepted >= 160, _refusals(result)[:10]
    assert problems == [], "\n".join(problems[:40])


def test_the_comparator_finds_what_is_lost():
    sent = {
        "resourceType": "Observation",
        "id": "a",
        "status": "final",
        "valueQuantity": {"value": 1.0, "unit": "mg"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2020-01-01T10:00:00+01:00",
        "note": [{"text": "one"}, {"text": "two"}],
    }
    ids = IdMap(ids={("Patient", "p1"): "rr-1"})
    served = {
        **sent,
        "id": "rr-obs",
        "meta": {"versionId": "3"},
        "valueQuantity": {"value": 1, "unit": "mg"},
        "subject": {"reference": "Patient/rr-1"},
        "effectiveDateTime": "2020-01-01T09:00:00Z",
    }
    assert compare(sent, served, ids) == []
    lost = {**served, "note": [{"text": "one"}], "subject": {"reference": "Patient/other"}}
    del lost["status"]
    found = {d.path: d.why for d in compare(sent, lost, ids)}
    assert found == {
        "Observation.status": "missing",
        "Observation.note": "items missing",
        "Observation.subject.reference": "reference should be Patient/rr-1",
    }
