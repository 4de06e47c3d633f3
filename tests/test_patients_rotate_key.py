"""`recordroom rotate-field-key`: re-encrypt every encrypted identifier with the current
key, refresh look-up hashes, report counts, audit the run."""

import base64
import datetime as dt
import io
import json
import os

import pytest
from django.core.management import CommandError, call_command

from audit.models import Action
from patients.actions import IdentifierData
from patients.models import PatientIdentifier
from patients.search import parse_query, search_patients
from recordroom import crypto
from recordroom.testing import register_patient

pytestmark = pytest.mark.django_db


def _spec(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


@pytest.fixture
def key_file(tmp_path, settings, monkeypatch):
    """Keys in a key file in a fresh data folder (the default set-up)."""
    monkeypatch.delenv("RECORDROOM_FIELD_KEYS", raising=False)
    monkeypatch.delenv("RECORDROOM_FIELD_INDEX_KEY", raising=False)
    monkeypatch.delenv("RECORDROOM_FIELD_KEYS_FILE", raising=False)
    settings.DATA_DIR = tmp_path
    crypto.key_ring.cache_clear()
    yield tmp_path / "field_keys.json"
    crypto.key_ring.cache_clear()


@pytest.fixture
def env_keys(monkeypatch):
    """Keys from RECORDROOM_FIELD_KEYS, with no separate index key."""
    old = _spec("oldkey01")
    monkeypatch.setenv("RECORDROOM_FIELD_KEYS", old)
    monkeypatch.delenv("RECORDROOM_FIELD_INDEX_KEY", raising=False)
    crypto.key_ring.cache_clear()
    yield old
    crypto.key_ring.cache_clear()


def _people(personas):
    first = register_patient(personas)
    second = register_patient(
        personas,
        family="Larchmont",
        birth_date=dt.date(1950, 2, 3),
        identifiers=[
            IdentifierData(kind="SS", value="219-09-9999"),
            IdentifierData(kind="DL", value="S12345678", issuer="MA"),
        ],
    )
    return first, second


def _run(*args) -> str:
    out = io.StringIO()
    call_command("rotate_field_key", *args, stdout=out)
    return out.getvalue()


def _key_ids():
    return {
        crypto.key_id_of(row.value_encrypted)
        for row in PatientIdentifier.objects.exclude(value_encrypted=None)
    }


def test_a_new_key_in_the_key_file_and_every_identifier_re_encrypted(
    key_file, personas, audit_rows
):
    _people(personas)
    old_id = crypto.key_ring().current[0]
    plain = {
        row.pk: crypto.decrypt(row.value_encrypted)
        for row in PatientIdentifier.objects.exclude(value_encrypted=None)
    }
    hashes = dict(PatientIdentifier.objects.values_list("pk", "value_hash"))
    output = _run("--new-key")
    new_id = crypto.key_ring().current[0]
    assert new_id != old_id
    assert json.loads(key_file.read_text())["keys"][0].startswith(new_id)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "Checked 3 encrypted identifiers: 3 were re-encrypted" in output
    assert f"No identifier uses key {old_id} any more" in output
    assert _key_ids() == {new_id}
    for row in PatientIdentifier.objects.exclude(value_encrypted=None):
        assert crypto.decrypt(row.value_encrypted) == plain[row.pk]
    assert dict(PatientIdentifier.objects.values_list("pk", "value_hash")) == hashes
    (event,) = audit_rows(action=Action.SECURITY)
    assert event.object_type == "field_key" and event.object_id == new_id
    assert event.detail["reencrypted"] == 3
    assert event.detail["keys_before"] == {old_id: 3}
    # Running again finds nothing to do.
    assert "0 were re-encrypted" in _run()


def test_keys_from_the_setting_and_a_removed_key_refreshes_the_hashes(
    env_keys, personas, monkeypatch
):
    first, second = _people(personas)
    new = _spec("newkey02")
    monkeypatch.setenv("RECORDROOM_FIELD_KEYS", f"{new},{env_keys}")
    crypto.key_ring.cache_clear()
    output = _run()
    assert "3 were re-encrypted with key newkey02" in output
    assert _key_ids() == {"newkey02"}
    # The old key leaves the ring; the index key (derived from the last key) changes, so
    # the look-up hashes are refreshed and exact SSN search keeps working.
    monkeypatch.setenv("RECORDROOM_FIELD_KEYS", new)
    crypto.key_ring.cache_clear()
    assert search_patients(personas.technician, parse_query("219-09-9999")).results == []
    output = _run()
    assert "0 were re-encrypted" in output and "3 look-up hashes were refreshed" in output
    page = search_patients(personas.technician, parse_query("219-09-9999"))
    assert [r.public_id for r in page.results] == [str(second.public_id)]


def test_a_dry_run_changes_nothing(env_keys, personas, monkeypatch, audit_rows):
    _people(personas)
    monkeypatch.setenv("RECORDROOM_FIELD_KEYS", f"{_spec('newkey03')},{env_keys}")
    crypto.key_ring.cache_clear()
    output = _run("--dry-run")
    assert "3 would be re-encrypted" in output
    assert _key_ids() == {"oldkey01"}
    assert not audit_rows(action=Action.SECURITY)


def test_a_key_missing_from_the_ring_stops_with_a_clear_message(env_keys, personas, monkeypatch):
    _people(personas)
    monkeypatch.setenv("RECORDROOM_FIELD_KEYS", _spec("newkey04"))
    crypto.key_ring.cache_clear()
    with pytest.raises(CommandError, match="encrypted with key 'oldkey01'"):
        _run()
    assert _key_ids() == {"oldkey01"}


def test_new_key_is_refused_when_keys_come_from_the_setting(env_keys):
    with pytest.raises(CommandError, match="RECORDROOM_FIELD_KEYS"):
        _run("--new-key")


def test_generate_key_prints_a_usable_key(env_keys):
    spec = _run("--generate-key").strip()
    ring = crypto._parse(spec, None)
    assert crypto.decrypt(crypto.encrypt("x", ring), ring) == "x"


def test_it_works_in_small_batches(env_keys, personas, monkeypatch):
    _people(personas)
    monkeypatch.setenv("RECORDROOM_FIELD_KEYS", f"{_spec('newkey05')},{env_keys}")
    crypto.key_ring.cache_clear()
    assert "3 were re-encrypted" in _run("--batch-size", "1")
    assert _key_ids() == {"newkey05"}


def test_the_command_runs_from_the_console_script(isolated_env):
    from recordroom.testing import run_recordroom

    run_recordroom(isolated_env, "migrate", "--no-input", "-v", "0")
    result = run_recordroom(isolated_env, "rotate-field-key", "--new-key")
    assert "Checked 0 encrypted identifiers" in result.stdout
