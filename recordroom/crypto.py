"""Field encryption for national identifiers (HIPAA 164.312(a)(2)(iv)).

AES-256-GCM with a key ring: the first key encrypts, every key decrypts, so a key is
rotated by putting a new one first and re-encrypting (``recordroom rotate-field-key``).
Ciphertext layout: ``b"RR1" | key id (8 bytes) | nonce (12) | ciphertext+tag``.
A separate HMAC-SHA256 key makes the "blind index" used for exact look-up of an
encrypted value without decrypting every row.

Keys come from ``RECORDROOM_FIELD_KEYS`` (``id:base64key,id:base64key``) or
``RECORDROOM_FIELD_KEYS_FILE``; without either, a key file is generated on first use in
the data folder (mode 0600), like the secret key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

MAGIC = b"RR1"


class FieldKeyError(Exception):
    pass


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[tuple[str, bytes], ...]  # (id, 32-byte key), first is current
    index_key: bytes

    @property
    def current(self) -> tuple[str, bytes]:
        return self.keys[0]

    def find(self, key_id: str) -> bytes:
        for kid, key in self.keys:
            if kid == key_id:
                return key
        raise FieldKeyError(f"no field key with id {key_id!r} in the key ring")


def _parse(spec: str, index_key: str | None) -> KeyRing:
    keys = []
    for item in spec.split(","):
        kid, _, b64 = item.strip().partition(":")
        key = base64.b64decode(b64)
        if len(kid) != 8 or len(key) != 32:
            raise FieldKeyError(
                "field keys are 'id:base64' with an 8-character id and a 32-byte key"
            )
        keys.append((kid, key))
    if not keys:
        raise FieldKeyError("the field key ring is empty")
    index = (
        base64.b64decode(index_key)
        if index_key
        else hashlib.sha256(b"index" + keys[-1][1]).digest()
    )
    return KeyRing(tuple(keys), index)


def new_key_spec() -> str:
    return f"{secrets.token_hex(4)}:{base64.b64encode(os.urandom(32)).decode()}"


def _key_file() -> Path:
    return Path(settings.DATA_DIR) / "field_keys.json"


@lru_cache(maxsize=1)
def key_ring() -> KeyRing:
    spec = os.environ.get("RECORDROOM_FIELD_KEYS")
    index = os.environ.get("RECORDROOM_FIELD_INDEX_KEY")
    path = os.environ.get("RECORDROOM_FIELD_KEYS_FILE")
    if not spec:
        file = Path(path) if path else _key_file()
        if not file.exists():
            file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(
                    {
                        "keys": [new_key_spec()],
                        "index_key": base64.b64encode(os.urandom(32)).decode(),
                    },
                    handle,
                )
        data = json.loads(file.read_text())
        spec, index = ",".join(data["keys"]), data["index_key"]
    return _parse(spec, index)


def encrypt(plaintext: str, ring: KeyRing | None = None) -> bytes:
    ring = ring or key_ring()
    kid, key = ring.current
    nonce = os.urandom(12)
    return (
        MAGIC + kid.encode("ascii") + nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), MAGIC)
    )


def decrypt(blob: bytes, ring: KeyRing | None = None) -> str:
    ring = ring or key_ring()
    blob = bytes(blob)
    if not blob.startswith(MAGIC) or len(blob) < 3 + 8 + 12 + 16:
        raise FieldKeyError("not a RecordRoom field ciphertext")
    kid = blob[3:11].decode("ascii")
    nonce, body = blob[11:23], blob[23:]
    return AESGCM(ring.find(kid)).decrypt(nonce, body, MAGIC).decode()


def key_id_of(blob: bytes) -> str:
    return bytes(blob)[3:11].decode("ascii")


def blind_index(kind: str, normalized: str, ring: KeyRing | None = None) -> str:
    ring = ring or key_ring()
    return hmac.new(ring.index_key, f"{kind}:{normalized}".encode(), hashlib.sha256).hexdigest()
