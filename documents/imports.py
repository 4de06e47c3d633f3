"""Documents arriving through an interface (a FHIR DocumentReference).

An imported document is filed (``source=imported``): final when the sender says it is
final or current, and authenticated by filing, as ``do_create_document`` files a
scanned or imported document — the same version, status-change and content-hash rows.
Its attachments are decoded: text becomes the version's body; a PDF, an image or any
other binary content becomes the version's attachment file, stored under a new random
name with its SHA-256. An attachment given only by ``url`` is not fetched: the
reference stays in the stored resource.

The author of an imported document is the importing account (the sender's author
reference stays in the stored FHIR resource). The caller (``interop.importer``) checks
the import permission, holds the unit's transaction, removes stored files when the
unit is rolled back (``stored``) and audits the unit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from documents import integrity
from documents.actions import MAX_BODY_CHARS, is_late
from documents.models import (
    Document,
    DocumentSource,
    DocumentStatus,
    DocumentStatusChange,
    DocumentType,
    DocumentVersion,
    VersionKind,
)
from documents.workflow import NEW, can_transition
from encounters.imports import parse_moment

OUTSIDE_RECORDS_LOINC = "11503-0"
_LOINC = "http://loinc.org"
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/tiff": ".tif",
}


class DocumentMappingError(ValueError):
    def __init__(self, element: str, message: str) -> None:
        super().__init__(message)
        self.element = element
        self.message = message


@dataclass
class DecodedContent:
    body: str
    file_bytes: bytes | None
    file_name: str
    content_type: str


def _decode(resource: dict) -> DecodedContent:
    texts: list[str] = []
    file_bytes, file_name, content_type = None, "", ""
    for index, content in enumerate(resource.get("content") or []):
        attachment = (content or {}).get("attachment") or {}
        data = attachment.get("data")
        if not data:
            continue
        try:
            raw = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            raise DocumentMappingError(
                f"DocumentReference.content[{index}].attachment.data",
                "The attachment's data is not base64.",
            ) from None
        declared = str(attachment.get("contentType") or "").split(";")[0].strip().lower()
        sniffed = integrity._sniff(raw[:16])
        if not sniffed and (declared.startswith("text/") or declared in ("", "application/json")):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is not None:
                texts.append(text.replace("\r\n", "\n").replace("\r", "\n"))
                continue
        if file_bytes is None:
            file_bytes = raw
            content_type = sniffed or declared or "application/octet-stream"
            file_name = integrity._CONTROL.sub("", str(attachment.get("title") or ""))[:200]
            file_name = file_name.replace("<", "").replace(">", "")
    body = "\n\n".join(texts)
    if len(body) > MAX_BODY_CHARS:
        raise DocumentMappingError(
            "DocumentReference.content.attachment.data",
            f"The text is longer than {MAX_BODY_CHARS:,} characters.",
        )
    return DecodedContent(body, file_bytes, file_name, content_type)


def _doc_type(resource: dict, known: dict | None = None) -> DocumentType:
    """The document type of the resource's LOINC code (the first RecordRoom has), else
    outside records. ``known``: the types already looked up (a batch of an import asks
    for the same few types thousands of times)."""
    codes = tuple(
        c.get("code")
        for c in (resource.get("type") or {}).get("coding") or []
        if c.get("system") in (_LOINC, None) and c.get("code")
    )
    if known is not None and codes in known:
        return known[codes]
    found = {
        t.loinc_code: t for t in DocumentType.objects.filter(loinc_code__in=codes, active=True)
    }
    doc_type = next((found[code] for code in codes if code in found), None)
    if doc_type is None:
        doc_type = DocumentType.objects.get(loinc_code=OUTSIDE_RECORDS_LOINC)
    if known is not None:
        known[codes] = doc_type
    return doc_type


def _status(resource: dict) -> str:
    if resource.get("status") == "entered-in-error":
        return DocumentStatus.ENTERED_IN_ERROR
    if resource.get("docStatus") == "amended":
        return DocumentStatus.AMENDED
    if resource.get("docStatus") == "final" or resource.get("status") in ("current", "superseded"):
        return DocumentStatus.FINAL
    return DocumentStatus.DRAFT


def document_values(resource: dict, *, now, known_types: dict | None = None) -> dict:
    context = resource.get("context") or {}
    service_at = parse_moment((context.get("period") or {}).get("start")) or parse_moment(
        resource.get("date")
    )
    entered_at = parse_moment(resource.get("date")) or now
    service_at = service_at or entered_at
    doc_type = _doc_type(resource, known_types)
    type_text = (resource.get("type") or {}).get("text") or ""
    title = " ".join(str(resource.get("description") or type_text or doc_type.display).split())
    return {
        "doc_type": doc_type,
        "title": title[:200] or doc_type.display,
        "service_at": service_at,
        "entered_at": entered_at,
        "status": _status(resource),
        "content": _decode(resource),
    }


def _store(content: DecodedContent, now, stored: list[str]) -> tuple[str, str]:
    extension = _EXTENSIONS.get(content.content_type, ".bin")
    wanted = f"documents/{now:%Y}/{now:%m}/{uuid.uuid4().hex}{extension}"
    saved = default_storage.save(wanted, ContentFile(content.file_bytes))
    stored.append(saved)
    return saved, hashlib.sha256(content.file_bytes).hexdigest()


def _new_version(
    document, *, number, kind, content, acting_user, now, reason, stored
) -> DocumentVersion:
    """A version of ``document`` (not saved): its attachment stored and its content hash
    computed."""
    version = DocumentVersion(
        document=document,
        number=number,
        kind=kind,
        body=content.body,
        reason=reason[:300],
        created_by=acting_user,
        created_at=now,
    )
    if content.file_bytes is not None:
        name, sha256 = _store(content, now, stored)
        version.attachment = name
        version.attachment_name = content.file_name or name.rsplit("/", 1)[-1]
        version.attachment_content_type = content.content_type[:100]
        version.attachment_size = len(content.file_bytes)
        version.attachment_sha256 = sha256
    version.content_sha256 = integrity.version_sha256(version)
    return version


def _version(document, **kwargs) -> DocumentVersion:
    version = _new_version(document, **kwargs)
    version.save(force_insert=True)
    return version


@dataclass
class NewDocument:
    """A document to file: what :func:`create_imported_documents` needs of each."""

    patient: object
    encounter: object
    values: dict
    public_id: uuid.UUID


def create_imported_documents(
    new: list[NewDocument], *, acting_user, now, stored: list[str]
) -> list[Document]:
    """File new documents together (an import batch's): the document rows, their first
    versions and status rows each inserted in one statement, then the documents pointed
    at their versions. The encounters must have their keys."""
    if not new:
        return []
    documents: list[Document] = []
    for item in new:
        values = item.values
        status = values["status"]
        documents.append(
            Document(
                public_id=item.public_id,
                patient=item.patient,
                encounter=item.encounter,
                doc_type=values["doc_type"],
                title=values["title"],
                author=acting_user,
                service_at=values["service_at"],
                entered_at=values["entered_at"],
                late_entry=is_late(values["service_at"], values["entered_at"]),
                status=status,
                source=DocumentSource.IMPORTED,
                signed_at=now if status != DocumentStatus.DRAFT else None,
                created_at=now,
                updated_at=now,
            )
        )
    Document.objects.bulk_create(documents, batch_size=500)
    versions = [
        _new_version(
            document,
            number=1,
            kind=VersionKind.ORIGINAL,
            content=item.values["content"],
            acting_user=acting_user,
            now=now,
            reason="filed (imported)",
            stored=stored,
        )
        for document, item in zip(documents, new, strict=True)
    ]
    DocumentVersion.objects.bulk_create(versions, batch_size=500)
    changes: list[DocumentStatusChange] = []
    for document, version in zip(documents, versions, strict=True):
        document.current_version = version
        # The first status row: an imported document arrives filed (final) or as a
        # draft; one the sender already marked in error arrives so, through final.
        status = document.status
        first = DocumentStatus.DRAFT if status == DocumentStatus.DRAFT else DocumentStatus.FINAL
        steps = [(NEW, first, "filed (imported)")]
        if status != first:
            steps.append((first, status, "as received (imported)"))
        changes.extend(
            DocumentStatusChange(
                document=document,
                from_status=from_status,
                to_status=to_status,
                changed_by=acting_user,
                changed_at=now,
                reason=reason,
            )
            for from_status, to_status, reason in steps
        )
    Document.objects.bulk_update(documents, ["current_version"], batch_size=500)
    DocumentStatusChange.objects.bulk_create(changes, batch_size=500)
    return documents


def update_imported_document(
    document: Document, *, encounter, values: dict, acting_user, now, stored: list[str]
) -> list[str]:
    """A new version when the sender's content changed; a status row when its status
    changed (where the document's workflow allows it). Returns what changed."""
    locked = (
        Document.objects.select_for_update(of=("self",))
        .select_related("current_version")
        .get(pk=document.pk)
    )
    changes: list[str] = []
    current = locked.current_version
    content: DecodedContent = values["content"]
    new_sha = hashlib.sha256(content.file_bytes).hexdigest() if content.file_bytes else ""
    if current is None or current.body != content.body or current.attachment_sha256 != new_sha:
        number = (current.number if current else 0) + 1
        kind = (
            VersionKind.CORRECTION
            if locked.status != DocumentStatus.DRAFT
            else VersionKind.REVISION
        )
        version = _version(
            locked,
            number=number,
            kind=kind,
            content=content,
            acting_user=acting_user,
            now=now,
            reason="updated by the sender (imported)",
            stored=stored,
        )
        locked.current_version = version
        changes.append("content")
    for field in ("title", "service_at", "doc_type"):
        if getattr(locked, field) != values[field]:
            setattr(locked, field, values[field])
            changes.append(field)
    if encounter is not None and locked.encounter_id != encounter.pk:
        locked.encounter = encounter
        changes.append("encounter")
    wanted = values["status"]
    if "content" in changes and locked.status in (DocumentStatus.FINAL, DocumentStatus.AMENDED):
        wanted = DocumentStatus.CORRECTED if wanted == DocumentStatus.FINAL else wanted
    if wanted != locked.status and can_transition(locked.status, wanted):
        DocumentStatusChange.objects.create(
            document=locked,
            from_status=locked.status,
            to_status=wanted,
            changed_by=acting_user,
            changed_at=now,
            reason="as received (imported)",
        )
        locked.status = wanted
        changes.append("status")
    if changes:
        locked.updated_at = now
        locked.save()
    return changes
