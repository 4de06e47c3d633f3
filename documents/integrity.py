"""Attachments and signed-content hashes.

An attachment is accepted by what its bytes are, not by what its name or the browser
says: PDF (``%PDF-``), PNG, JPEG or TIFF, no larger than ``settings.MAX_UPLOAD_MB``
(``RECORDROOM_MAX_UPLOAD_MB``, 25 by default). It is stored through Django's default
storage under a new random name, never over an existing file, with its SHA-256.

The hash kept at signing covers what the author saw and signed: the document's id and
version number (so a signature cannot be moved to another document or version), the
attachment's SHA-256 and the body text.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from recordroom import clock

DEFAULT_MAX_UPLOAD_MB = 25

# Content type by the file's first bytes.
_MAGIC = [
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
]
_EXTENSIONS = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
_KIND_NAMES = {
    "application/pdf": "a PDF",
    "image/png": "a PNG image",
    "image/jpeg": "a JPEG image",
    "image/tiff": "a TIFF image",
}
_STORED_EXTENSION = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/tiff": ".tif",
}
_MARKUP = re.compile(r"[<>]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def max_upload_bytes() -> int:
    return int(getattr(settings, "MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)) * 1024 * 1024


@dataclass(frozen=True)
class CheckedAttachment:
    """An upload that passed every check, with what will be stored about it."""

    upload: object
    name: str
    content_type: str
    size: int
    sha256: str


def _sniff(head: bytes) -> str:
    for magic, content_type in _MAGIC:
        if head.startswith(magic):
            return content_type
    return ""


def clean_file_name(raw: str) -> str:
    """The file's own name (no folders), refused if it carries markup or control codes."""
    name = os.path.basename(str(raw or "").replace("\\", "/")).strip()
    if not name:
        raise ValidationError({"attachment": "The file has no name."})
    if _MARKUP.search(name) or _CONTROL.search(name):
        raise ValidationError(
            {"attachment": "The file name contains markup or control characters; rename the file."}
        )
    if len(name) > 200:
        raise ValidationError({"attachment": "The file name is longer than 200 characters."})
    return name


def check_attachment(upload) -> CheckedAttachment:
    """Validate an uploaded file (name, size, type by content) and hash it. Nothing is
    stored here, so a refusal leaves nothing behind."""
    name = clean_file_name(getattr(upload, "name", ""))
    extension = os.path.splitext(name)[1].lower()
    claimed = _EXTENSIONS.get(extension)
    if claimed is None:
        raise ValidationError(
            {
                "attachment": f"Attach a PDF, PNG, JPEG or TIFF file; “{name}” is not one of these "
                "(by its name)."
            }
        )
    limit = max_upload_bytes()
    declared = getattr(upload, "size", None)
    if declared is not None and declared > limit:
        raise ValidationError(
            {
                "attachment": f"The file is {declared / 1024 / 1024:.1f} MB; the limit is "
                f"{limit // (1024 * 1024)} MB."
            }
        )
    upload.seek(0)
    head = upload.read(16)
    if not head:
        raise ValidationError({"attachment": "The file is empty."})
    actual = _sniff(head)
    if actual != claimed:
        if claimed == "application/pdf":
            message = f"“{name}” is not a PDF: a PDF file starts with %PDF-, and this one does not."
        else:
            message = (
                f"“{name}” is not {_KIND_NAMES[claimed]}: its content does not match its name."
            )
        raise ValidationError({"attachment": message})
    upload.seek(0)
    digest = hashlib.sha256()
    size = 0
    for chunk in upload.chunks():
        size += len(chunk)
        if size > limit:
            raise ValidationError(
                {"attachment": f"The file is larger than the {limit // (1024 * 1024)} MB limit."}
            )
        digest.update(chunk)
    upload.seek(0)
    return CheckedAttachment(
        upload=upload, name=name, content_type=actual, size=size, sha256=digest.hexdigest()
    )


def store_attachment(checked: CheckedAttachment) -> str:
    """Save the file under a new random name and return that name. The storage refuses
    to overwrite; a name that is somehow taken is an error, never a replacement."""
    now = clock.now()
    wanted = (
        f"documents/{now:%Y}/{now:%m}/{uuid.uuid4().hex}{_STORED_EXTENSION[checked.content_type]}"
    )
    if default_storage.exists(wanted):
        raise ValidationError({"attachment": "A stored file already has this name; try again."})
    checked.upload.seek(0)
    saved = default_storage.save(wanted, checked.upload)
    if saved != wanted:
        # The storage chose another name: keep nothing ambiguous in the record.
        default_storage.delete(saved)
        raise ValidationError({"attachment": "The file could not be stored under a new name."})
    return saved


def discard_unrecorded(name: str) -> None:
    """Remove a file stored for a change that was then rolled back: it never became part
    of the record, so removing it deletes nothing from the record."""
    if name and default_storage.exists(name):
        default_storage.delete(name)


def file_sha256(name: str) -> str:
    digest = hashlib.sha256()
    with default_storage.open(name, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def signed_content_sha256(
    document_public_id, number: int, body: str, attachment_sha256: str
) -> str:
    """SHA-256 of what is signed: document id, version number, attachment hash, body."""
    digest = hashlib.sha256()
    digest.update(b"RecordRoom signed content v1\n")
    digest.update(f"document:{document_public_id}\nversion:{number}\n".encode())
    digest.update(f"attachment-sha256:{attachment_sha256 or '-'}\n".encode())
    digest.update(b"body:\n")
    digest.update(body.encode("utf-8"))
    return digest.hexdigest()


def version_sha256(version) -> str:
    return signed_content_sha256(
        version.document.public_id, version.number, version.body, version.attachment_sha256
    )


def version_is_intact(version) -> bool:
    """The kept hash still matches the version's content (False if nothing was kept)."""
    return bool(version.content_sha256) and version.content_sha256 == version_sha256(version)
