"""The release packet: ONE PDF with everything that goes out for a request.

In order: the cover letter; the index of what was released (each document with its
date, type, version and pages); the notices the release requires (the Part 2 notice of
42 CFR 2.32 with an explanation of the consent when substance use disorder records go
out; the redisclosure statement for a release under an authorization); the documents
(body text laid out as pages, PDF attachments copied page by page, images placed on a
page); the amendment material that travels with those documents
(:func:`roi.amendments.statements_for_documents`). Every page carries
"REQ-…, page n of N".

Only the items the review kept (``ReleaseItem.included``), at the version the review
saw, are read: nothing outside the approved scope can get in.

The PDF is written object by object to a temporary file (:class:`roi.pdf.StreamingPdf`)
and handed to storage in chunks: memory stays flat however many pages (one source
document at a time is open), and the SHA-256 of exactly what was written is kept.
Page numbers are known before writing: a first pass counts the pages of each part.
"""

from __future__ import annotations

import gc
import io
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.core.files import File
from django.utils import timezone
from pypdf import PdfReader

from documents import integrity
from documents.models import DocumentVersion, SensitiveCategory
from roi import disclosure_rules as rules
from roi.models import Packet, ReleaseItem, RoiRequest
from roi.pdf import (
    PAGE_HEIGHT,
    PAGE_WIDTH,
    StreamingPdf,
    lines_per_page,
    paginate,
    wrap_text,
)

GC_EVERY_PAGES = 200
IMAGE_TYPES = {"image/png", "image/jpeg", "image/tiff"}


class PacketError(Exception):
    """The packet cannot be built (a stored attachment is damaged or unreadable); the
    message names the document by its public id only."""


# --- reading one document version ---------------------------------------------------------


def _open_attachment(version: DocumentVersion):
    if integrity.file_sha256(version.attachment.name) != version.attachment_sha256:
        raise PacketError(
            f"The stored attachment of document {version.document.public_id} does not match "
            "its checksum."
        )
    return version.attachment.open("rb")


def _image_pdf(version: DocumentVersion) -> bytes:
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    with _open_attachment(version) as handle:
        image = ImageReader(io.BytesIO(handle.read()))
    width, height = image.getSize()
    margin = 36
    scale = min((PAGE_WIDTH - 2 * margin) / width, (PAGE_HEIGHT - 3 * margin) / height, 1.0)
    buffer = io.BytesIO()
    pdf_canvas = canvas.Canvas(buffer, pagesize=(PAGE_WIDTH, PAGE_HEIGHT))
    pdf_canvas.drawImage(
        image,
        margin,
        PAGE_HEIGHT - margin - height * scale,
        width=width * scale,
        height=height * scale,
    )
    pdf_canvas.showPage()
    pdf_canvas.save()
    return buffer.getvalue()


def _attachment_reader(version: DocumentVersion) -> PdfReader | None:
    if not version.attachment:
        return None
    if version.attachment_content_type in IMAGE_TYPES:
        return PdfReader(io.BytesIO(_image_pdf(version)))
    if version.attachment_content_type == "application/pdf":
        handle = _open_attachment(version)
        try:
            return PdfReader(getattr(handle, "file", handle))
        except Exception as error:
            handle.close()
            raise PacketError(
                f"The PDF attached to document {version.document.public_id} cannot be read."
            ) from error
    raise PacketError(
        f"Document {version.document.public_id} has an attachment of a type that cannot be "
        "put in a packet."
    )


def _body_pages(version: DocumentVersion) -> list[list[str]]:
    if version.body.strip():
        return paginate(version.body)
    if version.attachment:
        return []
    return [["(This document has no text.)"]]


def document_pages(version: DocumentVersion) -> int:
    """How many packet pages a document version takes."""
    pages = len(_body_pages(version))
    reader = _attachment_reader(version)
    if reader is not None:
        pages += len(reader.pages)
        _close(reader)
    return pages


def _close(reader: PdfReader) -> None:
    stream = getattr(reader, "stream", None)
    if stream is not None and hasattr(stream, "close"):
        stream.close()


# --- the parts of a packet --------------------------------------------------------------


@dataclass
class Part:
    """One section of the packet: ``count`` pages, written by ``write(pdf, stamps)``."""

    title: str
    count: int
    write: Callable[[StreamingPdf, Iterator[str]], None]
    index_line: str = ""
    first_page: int = 0


def _text_part(title: str, text: str, *, heading: str = "", index_line: str = "") -> Part:
    pages = paginate(text)

    def write(pdf: StreamingPdf, stamps: Iterator[str]) -> None:
        for lines in pages:
            pdf.add_text_page(lines, heading=heading or title, stamp=next(stamps))

    return Part(title, len(pages), write, index_line)


def _pdf_bytes_part(title: str, content: bytes) -> Part:
    count = len(PdfReader(io.BytesIO(content)).pages)

    def write(pdf: StreamingPdf, stamps: Iterator[str]) -> None:
        pdf.add_pdf(PdfReader(io.BytesIO(content)), stamps=stamps)

    return Part(title, count, write)


def _document_part(item: ReleaseItem) -> Part:
    document = item.document
    version = DocumentVersion.objects.only(
        "pk", "number", "document_id", "attachment", "attachment_content_type", "attachment_sha256"
    ).get(document=document, number=item.document_version)
    version.document = document
    service = timezone.localtime(document.service_at).date().isoformat()
    heading = (
        f"{document.title} | {document.doc_type.display} | {service} | version {version.number}"
    )

    def body() -> list[list[str]]:
        text = DocumentVersion.objects.values_list("body", flat=True).get(pk=version.pk)
        version.body = text
        pages = _body_pages(version)
        version.body = ""
        return pages

    body_count = len(body())
    reader = _attachment_reader(version)
    attachment_count = len(reader.pages) if reader is not None else 0
    if reader is not None:
        _close(reader)

    def write(pdf: StreamingPdf, stamps: Iterator[str]) -> None:
        for number, lines in enumerate(body()):
            pdf.add_text_page(lines, heading=heading if number == 0 else "", stamp=next(stamps))
        source = _attachment_reader(version)
        if source is not None:
            try:
                pdf.add_pdf(source, stamps=stamps)
            finally:
                _close(source)

    line = f"{service}  {document.doc_type.display}: {document.title} (version {version.number})"
    return Part(heading, body_count + attachment_count, write, line)


def _index_text(request: RoiRequest, parts: list[Part], entries: list[Part]) -> str:
    patient = request.patient
    lines = [
        f"Request {request.number}",
        f"Patient: {patient.display_name}, born {patient.birth_date.isoformat()}",
        f"Documents released: {len(entries)}",
        "",
        "Pages       Content",
    ]
    for part in parts:
        if not part.index_line:
            continue
        last = part.first_page + part.count - 1
        lines.append(f"{part.first_page:>5}-{last:<5} {part.index_line}")
    return "\n".join(_one_line(line) if line else "" for line in lines)


def _index_pages(entries: int) -> int:
    # Five header lines, then one line per entry (entries are cut to one line each).
    return max(1, -(-(5 + entries) // lines_per_page()))


def _one_line(text: str) -> str:
    wrapped = wrap_text(text)
    return wrapped[0] if wrapped else ""


def _consent_explanation(request: RoiRequest) -> str:
    from roi.processing import valid_authorizations

    consents = [a for a in valid_authorizations(request) if a.kind == "part2"]
    if not consents:
        return ""
    lines = ["", "The patient's consent for this disclosure:"]
    for consent in consents:
        lines.append(
            f"- signed {consent.signed_on.isoformat() if consent.signed_on else 'undated'}; "
            f"recipient: {consent.recipient or 'as named in the consent'}; "
            f"purpose: {consent.purpose or 'as stated in the consent'}; "
            f"expires: {consent.expires_on.isoformat() if consent.expires_on else consent.expiry_event or 'as stated'}"
        )
    return "\n".join(lines)


def _statements(document_ids: list[str]) -> list:
    try:
        from roi.amendments import statements_for_documents
    except ImportError:  # the amendments part not installed: nothing travels
        return []
    return statements_for_documents(document_ids)


@dataclass
class Built:
    packet: Packet
    document_ids: list[str] = field(default_factory=list)
    categories: set[str] = field(default_factory=set)
    statements: int = 0


def build_packet(
    request: RoiRequest, *, cover_pdf: bytes, basis: str, by, parameters: dict | None = None
) -> Built:
    """Write the packet of the request's included items and store it as a new
    :class:`Packet` (saved). ``cover_pdf``: the cover letter's PDF."""
    items = list(
        ReleaseItem.objects.filter(request=request, included=True)
        .select_related("document", "document__doc_type")
        .order_by("document__service_at", "pk")
    )
    documents = []
    counted = 0
    for item in items:
        documents.append(_document_part(item))
        counted += documents[-1].count
        if counted >= GC_EVERY_PAGES:
            gc.collect()  # pypdf readers hold cycles: free them as we go
            counted = 0
    document_ids = [str(item.document.public_id) for item in items]
    categories: set[str] = set()
    for item in items:
        categories |= {str(c) for c in item.document.sensitivity or []}
    notices = rules.notices_for(basis=basis, categories_released=categories, parameters=parameters)
    notice_parts = []
    for title, text in notices:
        if SensitiveCategory.SUBSTANCE_USE in categories and "2.32" in title:
            text += "\n" + _consent_explanation(request)
        notice_parts.append(_text_part(title, text, index_line=f"Notice: {title}"))
    released = set(document_ids)
    statement_parts = []
    travelling = [s for s in _statements(document_ids) if released & set(s.document_ids)]
    for statement in travelling:
        concerned = [
            p
            for p, i in zip(documents, items, strict=True)
            if str(i.document.public_id) in statement.document_ids
        ]
        about = "; ".join(p.index_line for p in concerned)
        statement_parts.append(
            _text_part(
                statement.title,
                f"Concerns: {about}\n\n{statement.text}",
                index_line=_one_line(f"Amendment material: {statement.title}"),
            )
        )
    cover = _pdf_bytes_part("Cover letter", cover_pdf)
    cover.index_line = "Cover letter"
    body_parts = notice_parts + documents + statement_parts
    index_count = _index_pages(len(body_parts) + 1)
    page = 1
    cover.first_page = page
    page += cover.count
    page += index_count
    for part in body_parts:
        part.first_page = page
        page += part.count
    total = page - 1
    for part in documents:
        part.index_line = _one_line(part.index_line)
    index_text = _index_text(request, [cover, *body_parts], documents)
    index = _text_part("Index of what was released", index_text)
    if index.count != index_count:  # the layout guarantees one line per entry
        raise PacketError("The index did not fit the pages counted for it.")

    def stamps() -> Iterator[str]:
        for number in range(1, total + 1):
            yield f"{request.number}, page {number} of {total}"

    counter = stamps()
    with tempfile.TemporaryFile() as spool:
        pdf = StreamingPdf(spool, title=f"Release packet {request.number}")
        since_collect = 0
        for part in [cover, index, *body_parts]:
            before = pdf.page_count
            part.write(pdf, counter)
            if pdf.page_count - before != part.count:
                raise PacketError("A part of the packet changed while it was written.")
            since_collect += part.count
            if since_collect >= GC_EVERY_PAGES:
                gc.collect()  # the copied source's objects form cycles: free them now
                since_collect = 0
        pdf.close()
        packet = Packet(
            request=request,
            sha256=pdf.sha256,
            pages=pdf.page_count,
            size=pdf.size,
            created_at=_now(),
            created_by=by,
        )
        spool.seek(0)
        packet.file.save(f"{packet.public_id}.pdf", File(spool), save=False)
    packet.save(force_insert=True)
    return Built(packet, document_ids, categories, len(travelling))


def _now():
    from recordroom import clock

    return clock.now()
