"""Field encryption of national identifiers: AES-GCM with a rotatable key ring."""

import base64
import os

import pytest
from cryptography.exceptions import InvalidTag

from recordroom import crypto


def _ring(*ids):
    spec = ",".join(f"{i}:{base64.b64encode(os.urandom(32)).decode()}" for i in ids)
    return crypto._parse(spec, base64.b64encode(os.urandom(32)).decode())


def test_round_trip_and_fresh_nonces():
    ring = _ring("key00001")
    a, b = crypto.encrypt("123456789", ring), crypto.encrypt("123456789", ring)
    assert a != b
    assert crypto.decrypt(a, ring) == crypto.decrypt(b, ring) == "123456789"
    assert b"123456789" not in a


def test_old_keys_still_decrypt_after_rotation():
    old = _ring("key00001")
    blob = crypto.encrypt("987654321", old)
    rotated = crypto.KeyRing((("key00002", os.urandom(32)), *old.keys), old.index_key)
    assert crypto.decrypt(blob, rotated) == "987654321"
    assert crypto.key_id_of(crypto.encrypt("x", rotated)) == "key00002"


def test_a_tampered_ciphertext_is_refused():
    ring = _ring("key00001")
    blob = bytearray(crypto.encrypt("123456789", ring))
    blob[-1] ^= 1
    with pytest.raises(InvalidTag):
        crypto.decrypt(bytes(blob), ring)


def test_an_unknown_key_id_is_named():
    blob = crypto.encrypt("1", _ring("key00001"))
    with pytest.raises(crypto.FieldKeyError, match="key00001"):
        crypto.decrypt(blob, _ring("key00009"))


def test_garbage_is_refused():
    with pytest.raises(crypto.FieldKeyError):
        crypto.decrypt(b"not encrypted", _ring("key00001"))


def test_malformed_key_specs_are_refused():
    with pytest.raises(crypto.FieldKeyError):
        crypto._parse("short:" + base64.b64encode(b"x" * 32).decode(), None)
    with pytest.raises(crypto.FieldKeyError):
        crypto._parse("key00001:" + base64.b64encode(b"x" * 16).decode(), None)


def test_the_blind_index_is_keyed_and_stable():
    ring = _ring("key00001")
    assert crypto.blind_index("SS", "123456789", ring) == crypto.blind_index(
        "SS", "123456789", ring
    )
    assert crypto.blind_index("SS", "123456789", ring) != crypto.blind_index(
        "DL", "123456789", ring
    )
    assert crypto.blind_index("SS", "123456789", ring) != crypto.blind_index(
        "SS", "123456789", _ring("key00001")
    )


def test_a_key_file_is_generated_privately(tmp_path, settings, monkeypatch):
    monkeypatch.delenv("RECORDROOM_FIELD_KEYS", raising=False)
    monkeypatch.delenv("RECORDROOM_FIELD_KEYS_FILE", raising=False)
    settings.DATA_DIR = tmp_path
    crypto.key_ring.cache_clear()
    try:
        ring = crypto.key_ring()
        assert (tmp_path / "field_keys.json").stat().st_mode & 0o777 == 0o600
        assert crypto.decrypt(crypto.encrypt("abc", ring), ring) == "abc"
    finally:
        crypto.key_ring.cache_clear()
