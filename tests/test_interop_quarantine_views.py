"""The import-errors screen: list, open, correct and replay, replay as is, dismiss."""

from __future__ import annotations

import orjson
import pytest

from interop.import_actions import do_import_bundle
from interop.models import ImportUnit, UnitStatus
from patients.models import Patient
from recordroom.testing import sign_in


def _patient(**overrides) -> dict:
    patient = {
        "resourceType": "Patient",
        "id": "q-1",
        "identifier": [{"system": "urn:example", "value": "Q1"}],
        "name": [{"family": "Testperson", "given": ["Quinn"]}],
        "birthDate": "1975-03-04",
    }
    patient.update(overrides)
    return patient


@pytest.fixture
def unit(personas):
    do_import_bundle(
        orjson.dumps(_patient(birthDate="1975-02-30")), acting_user=personas.integration
    )
    return ImportUnit.objects.get(status=UnitStatus.REJECTED)


def _urls(unit):
    base = f"/interop/imports/{unit.public_id}/"
    return {
        "list": "/interop/imports/",
        "unit": base,
        "replay": base + "replay/",
        "dismiss": base + "dismiss/",
    }


def test_it_requires_login(client, unit):
    for url in _urls(unit).values():
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_refuses_get_on_mutations(client, personas, unit):
    sign_in(client, personas.administrator)
    assert client.get(_urls(unit)["replay"]).status_code == 405
    assert client.get(_urls(unit)["dismiss"]).status_code == 405


@pytest.mark.parametrize("who", ["technician", "coder", "clinician", "outsider"])
def test_it_denies_roles_without_the_permission_and_audits(client, personas, unit, audit_rows, who):
    user = getattr(personas, who)
    sign_in(client, user)
    for name, url in _urls(unit).items():
        response = (
            client.post(url, {"reason": "x" * 10})
            if name in ("replay", "dismiss")
            else client.get(url)
        )
        assert response.status_code == 403, (who, name)
    denied = audit_rows(outcome="denied", actor=user, object_type="import_unit")
    assert len(denied) == 4
    unit.refresh_from_db()
    assert unit.status == UnitStatus.REJECTED


def test_the_list_shows_rejected_units_and_is_audited(client, personas, unit, audit_rows):
    sign_in(client, personas.administrator)
    response = client.get("/interop/imports/")
    assert response.status_code == 200
    assert unit.reason.encode() in response.content
    assert str(unit.public_id).encode() in response.content
    assert audit_rows(action="search", object_type="import_unit", actor=personas.administrator)


def test_the_unit_page_shows_issues_and_raw_and_is_audited(client, personas, unit, audit_rows):
    sign_in(client, personas.administrator)
    response = client.get(_urls(unit)["unit"])
    assert response.status_code == 200
    assert b"Patient.birthDate" in response.content
    assert b"1975-02-30" in response.content
    events = audit_rows(action="view", object_type="import_unit", object_id=str(unit.public_id))
    assert len(events) == 1


def test_an_unknown_unit_is_404(client, personas, unit):
    sign_in(client, personas.administrator)
    assert client.get("/interop/imports/00000000-0000-4000-8000-000000000000/").status_code == 404


def test_correct_and_replay(client, personas, unit, audit_rows):
    sign_in(client, personas.administrator)
    corrected = orjson.dumps(_patient()).decode()
    response = client.post(_urls(unit)["replay"], {"raw": corrected})
    assert response.status_code == 302
    unit.refresh_from_db()
    assert unit.status == UnitStatus.REPLAYED
    assert unit.resolved_by == personas.administrator
    assert Patient.objects.count() == 1
    replay = ImportUnit.objects.get(replay_of=unit)
    assert replay.status == UnitStatus.ACCEPTED and replay.created == 1
    assert audit_rows(object_type="import_unit", object_id=str(replay.public_id), action="create")


def test_a_failed_replay_keeps_the_unit_and_says_why(client, personas, unit):
    sign_in(client, personas.administrator)
    response = client.post(
        _urls(unit)["replay"], {"raw": '{"resourceType": "Patient", "birthDate": "no"}'}
    )
    assert response.status_code == 422
    assert b"The replay was refused" in response.content
    unit.refresh_from_db()
    assert unit.status == UnitStatus.REJECTED
    assert ImportUnit.objects.filter(status=UnitStatus.REJECTED).count() == 1
    assert Patient.objects.count() == 0


def test_replay_as_received_after_the_cause_is_fixed(client, personas):
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "Heart rate"},
        "subject": {"reference": "Patient/q-1"},
    }
    do_import_bundle(orjson.dumps(observation), acting_user=personas.integration)
    unit = ImportUnit.objects.get(status=UnitStatus.REJECTED)
    do_import_bundle(orjson.dumps(_patient()), acting_user=personas.integration)
    sign_in(client, personas.administrator)
    response = client.post(_urls(unit)["replay"], {"as_received": "1"})
    assert response.status_code == 302
    unit.refresh_from_db()
    assert unit.status == UnitStatus.REPLAYED


def test_dismiss_needs_a_reason(client, personas, unit, audit_rows):
    sign_in(client, personas.administrator)
    response = client.post(_urls(unit)["dismiss"], {"reason": "no"})
    assert response.status_code == 400
    response = client.post(_urls(unit)["dismiss"], {"reason": "test data from the vendor"})
    assert response.status_code == 302
    unit.refresh_from_db()
    assert unit.status == UnitStatus.DISMISSED
    assert bytes(unit.raw)  # kept
    assert audit_rows(
        action="update", object_id=str(unit.public_id), reason="test data from the vendor"
    )
    # A dismissed unit can no longer be replayed.
    response = client.post(_urls(unit)["replay"], {"as_received": "1"})
    assert response.status_code == 409
