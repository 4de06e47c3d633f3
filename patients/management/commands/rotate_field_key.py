"""``recordroom rotate-field-key``: re-encrypt every encrypted patient identifier (SSN,
driver's licence, passport) with the current field key, and refresh their look-up
hashes.

Rotating a key is: put a new key first in the ring (``--new-key`` does it in the key
file; with ``RECORDROOM_FIELD_KEYS`` an administrator edits the setting, and
``--generate-key`` prints a fresh key to paste), run this command, and remove the old
key from the ring once no backup made with it needs restoring. The command is safe to
stop and run again: rows already under the current key are left alone.

This re-writes ciphertext, not the content of the record (every value decrypts to what
it was), so it writes no demographic version; the run is audited as a security event
with its counts.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from cryptography.exceptions import InvalidTag
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.actions import record_event
from audit.models import Action, Purpose
from patients.models import PatientIdentifier
from recordroom import crypto


def _key_file() -> Path:
    path = os.environ.get("RECORDROOM_FIELD_KEYS_FILE")
    return Path(path) if path else Path(settings.DATA_DIR) / "field_keys.json"


def add_key_to_file() -> str:
    """Put a new key first in the key file (kept private, replaced atomically); returns
    its id."""
    if os.environ.get("RECORDROOM_FIELD_KEYS"):
        raise CommandError(
            "The field keys come from RECORDROOM_FIELD_KEYS, not a file: put a new key first "
            "there (`recordroom rotate-field-key --generate-key` prints one), restart, and run "
            "this command again without --new-key."
        )
    crypto.key_ring.cache_clear()
    crypto.key_ring()  # creates the file when there is none yet
    path = _key_file()
    content = json.loads(path.read_text())
    spec = crypto.new_key_spec()
    content["keys"] = [spec, *content["keys"]]
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle)
    os.replace(temporary, path)
    crypto.key_ring.cache_clear()
    return spec.split(":", 1)[0]


def rotate(*, batch_size: int = 500, dry_run: bool = False) -> Counter:
    """Re-encrypt under the current key every identifier that is not, and recompute
    every look-up hash; one transaction per batch, so a long run holds no long lock."""
    ring = crypto.key_ring()
    current = ring.current[0]
    counts: Counter = Counter()
    last_pk = 0
    while True:
        batch = list(
            PatientIdentifier.objects.filter(pk__gt=last_pk, value_encrypted__isnull=False)
            .order_by("pk")
            .only("pk", "kind", "value_encrypted", "value_hash")[:batch_size]
        )
        if not batch:
            break
        changed = []
        for row in batch:
            blob = bytes(row.value_encrypted)
            key_id = crypto.key_id_of(blob)
            counts["checked"] += 1
            counts[f"key:{key_id}"] += 1
            try:
                plaintext = crypto.decrypt(blob, ring)
            except (crypto.FieldKeyError, InvalidTag):
                raise CommandError(
                    f"Identifier row {row.pk} is encrypted with key {key_id!r}, which the key "
                    "ring does not hold (or holds wrongly). Put the old key back in the ring "
                    "after the new one and run the command again."
                ) from None
            dirty = False
            if key_id != current:
                row.value_encrypted = crypto.encrypt(plaintext, ring)
                counts["reencrypted"] += 1
                dirty = True
            else:
                counts["already_current"] += 1
            index = crypto.blind_index(row.kind, plaintext, ring)
            if row.value_hash != index:
                row.value_hash = index
                counts["hashes_refreshed"] += 1
                dirty = True
            if dirty:
                changed.append(row)
        if changed and not dry_run:
            with transaction.atomic():
                PatientIdentifier.objects.bulk_update(changed, ["value_encrypted", "value_hash"])
        last_pk = batch[-1].pk
    return counts


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted patient identifier with the current field key (the "
        "first in the key ring) and refresh the look-up hashes."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--new-key",
            action="store_true",
            help="First put a newly generated key at the front of the key file.",
        )
        parser.add_argument(
            "--generate-key",
            action="store_true",
            help="Only print a new key (id:base64) for RECORDROOM_FIELD_KEYS, and stop.",
        )
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would change; write nothing."
        )

    def handle(self, *args, new_key=False, generate_key=False, batch_size=500, dry_run=False, **o):
        if generate_key:
            self.stdout.write(crypto.new_key_spec())
            return
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if new_key:
            if dry_run:
                raise CommandError("--new-key changes the key file; it cannot be a dry run.")
            key_id = add_key_to_file()
            self.stdout.write(f"Added field key {key_id} at the front of {_key_file()}.")
        crypto.key_ring.cache_clear()
        ring = crypto.key_ring()
        current = ring.current[0]
        counts = rotate(batch_size=batch_size, dry_run=dry_run)
        before = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("key:")}
        if not dry_run:
            record_event(
                None,
                Action.SECURITY,
                purpose=Purpose.SECURITY,
                object_type="field_key",
                object_id=current,
                reason="field key rotation: identifiers re-encrypted with the current key",
                detail={
                    "checked": counts["checked"],
                    "reencrypted": counts["reencrypted"],
                    "hashes_refreshed": counts["hashes_refreshed"],
                    "keys_before": before,
                },
            )
        verb = "would be" if dry_run else "were"
        self.stdout.write(
            f"Checked {counts['checked']} encrypted identifiers: {counts['reencrypted']} "
            f"{verb} re-encrypted with key {current}, {counts['already_current']} already used "
            f"it; {counts['hashes_refreshed']} look-up hashes {verb} refreshed."
        )
        old = [kid for kid, _ in ring.keys if kid != current]
        if old and not dry_run:
            self.stdout.write(
                f"No identifier uses key{'s' if len(old) > 1 else ''} {', '.join(old)} any more: "
                "remove them from the ring once no backup made with them needs restoring, then run "
                "this command once more (it refreshes the look-up hashes if the index key was "
                "derived from a removed key)."
            )
