"""PDF building blocks for release of information (ReportLab and pypdf).

- :func:`letter_pdf`: a letter (letterhead, date, title, paragraphs) as PDF bytes.
- :func:`text_pages`: plain text laid out on letter-size pages, written to a file object
  (used for document bodies, the cover letter, the index and the notices of a packet).
- :func:`stamp_overlay`: one small PDF page carrying a footer stamp
  ("REQ-2026-000123, page 7 of 112") to merge onto a page with pypdf.

Everything is written to file objects handed in by the caller, so a large packet never
has to sit in memory as a whole (see ``roi.packets``).
"""

from __future__ import annotations

import datetime as dt
import io
from array import array
from collections.abc import Iterable
from typing import BinaryIO
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

PAGE_WIDTH, PAGE_HEIGHT = LETTER
MARGIN = 0.9 * inch
FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"
FONT_SIZE = 10
LEADING = 13
FOOTER_Y = 0.45 * inch


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    return {
        "letterhead": ParagraphStyle(
            "letterhead", parent=base["Normal"], fontName=FONT_BOLD, fontSize=13, leading=16
        ),
        "small": ParagraphStyle("small", parent=base["Normal"], fontSize=9, leading=11),
        "title": ParagraphStyle(
            "title", parent=base["Normal"], fontName=FONT_BOLD, fontSize=12, leading=15
        ),
        "body": ParagraphStyle("body", parent=base["Normal"], fontSize=FONT_SIZE, leading=LEADING),
    }


def _para(text: str, style: ParagraphStyle) -> Paragraph:
    # Paragraph takes a mini-markup: escape everything, keep line breaks.
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def letter_pdf(
    *,
    title: str,
    paragraphs: Iterable[str],
    letterhead: str,
    letterhead_lines: Iterable[str] = (),
    date: dt.date | None = None,
    footer: str = "",
) -> bytes:
    """A letter as PDF bytes: the letterhead (name, then address lines), the date, the
    title, and the paragraphs (each may hold line breaks). ``footer`` is printed at the
    foot of every page (e.g. a reference number)."""
    styles = _styles()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=LETTER,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=title,
        author=letterhead,
    )
    story: list = [_para(letterhead, styles["letterhead"])]
    for line in letterhead_lines:
        story.append(_para(line, styles["small"]))
    story.append(Spacer(1, 0.25 * inch))
    if date is not None:
        story.append(_para(date.strftime("%B %-d, %Y"), styles["body"]))
        story.append(Spacer(1, 0.15 * inch))
    story.append(_para(title, styles["title"]))
    story.append(Spacer(1, 0.15 * inch))
    for paragraph in paragraphs:
        story.append(_para(paragraph, styles["body"]))
        story.append(Spacer(1, 0.1 * inch))

    def on_page(pdf_canvas, doc):
        if footer:
            pdf_canvas.saveState()
            pdf_canvas.setFont(FONT, 8)
            pdf_canvas.drawString(MARGIN, FOOTER_Y, f"{footer} - page {doc.page}")
            pdf_canvas.restoreState()

    document.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buffer.getvalue()


def wrap_text(text: str, *, font: str = FONT, size: float = FONT_SIZE) -> list[str]:
    """``text`` broken into lines that fit the page width (words kept whole where they
    fit; a word longer than a line is cut)."""
    width = PAGE_WIDTH - 2 * MARGIN
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\t", "    ").split("\n"):
        if not raw.strip():
            lines.append("")
            continue
        if stringWidth(raw, font, size) <= width:
            lines.append(raw)
            continue
        current = ""
        for word in raw.split(" "):
            candidate = f"{current} {word}" if current else word
            if stringWidth(candidate, font, size) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            while stringWidth(word, font, size) > width:
                cut = len(word)
                while cut > 1 and stringWidth(word[:cut], font, size) > width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
            current = word
        lines.append(current)
    return lines


def lines_per_page(with_heading: bool = True) -> int:
    usable = PAGE_HEIGHT - 2 * MARGIN - (2 * LEADING if with_heading else 0)
    return int(usable // LEADING)


def paginate(text: str) -> list[list[str]]:
    """The wrapped lines of ``text`` grouped by page (at least one page)."""
    lines = wrap_text(text)
    per_page = lines_per_page()
    pages = [lines[i : i + per_page] for i in range(0, len(lines), per_page)]
    return pages or [[]]


def text_pages(out: BinaryIO, pages: Iterable[list[str]], *, heading: str = "") -> int:
    """Write pages of prepared lines (see :func:`paginate`) as a PDF to ``out``, with
    ``heading`` in bold at the top of each; returns the number of pages written."""
    pdf_canvas = canvas.Canvas(out, pagesize=LETTER, pageCompression=1)
    count = 0
    for lines in pages:
        y = PAGE_HEIGHT - MARGIN
        if heading:
            pdf_canvas.setFont(FONT_BOLD, 11)
            pdf_canvas.drawString(MARGIN, y, heading[:110])
            y -= 2 * LEADING
        text = pdf_canvas.beginText(MARGIN, y)
        text.setFont(FONT, FONT_SIZE)
        text.setLeading(LEADING)
        for line in lines:
            text.textLine(line)
        pdf_canvas.drawText(text)
        pdf_canvas.showPage()
        count += 1
    if count == 0:
        pdf_canvas.showPage()
        count = 1
    pdf_canvas.save()
    return count


def stamp_overlay(label: str, width: float = PAGE_WIDTH, height: float = PAGE_HEIGHT) -> bytes:
    """A one-page PDF of ``width`` x ``height`` points with ``label`` at the foot, to
    merge over a page."""
    buffer = io.BytesIO()
    pdf_canvas = canvas.Canvas(buffer, pagesize=(width, height))
    pdf_canvas.setFont(FONT, 8)
    text_width = stringWidth(label, FONT, 8)
    x = max(12.0, width - text_width - 0.5 * inch)
    y = min(FOOTER_Y, height / 20)
    pdf_canvas.setFillGray(1)
    pdf_canvas.rect(x - 3, y - 3, text_width + 6, 12, stroke=0, fill=1)
    pdf_canvas.setFillGray(0)
    pdf_canvas.drawString(x, y, label)
    pdf_canvas.showPage()
    pdf_canvas.save()
    return buffer.getvalue()


# --- a PDF written as it goes (memory flat) -----------------------------------------


def _pdf_string(text: str) -> bytes:
    """``text`` as a PDF literal string for a standard font (WinAnsi)."""
    raw = text.encode("cp1252", errors="replace")
    raw = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    raw = raw.replace(b"\r", b" ").replace(b"\n", b" ")
    return b"(" + raw + b")"


class _Hashing:
    """A file wrapper that counts and hashes what is written."""

    def __init__(self, out: BinaryIO):
        import hashlib

        self.out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


class StreamingPdf:
    """A PDF written object by object to ``out`` (a binary file), so that a document of
    thousands of pages never sits in memory: only the byte offset of each object and the
    ids of the pages are kept until the end.

    Pages are added as text (:meth:`add_text_page`, standard Helvetica) or copied from
    another PDF read with pypdf (:meth:`add_pdf_page`); every page can carry a footer
    stamp. :meth:`close` writes the page tree, the cross-reference table and the
    trailer; ``sha256`` and ``size`` then describe the file.
    """

    PAGES_ID = 1
    CATALOG_ID = 2
    FONT_ID = 3
    FONT_BOLD_ID = 4

    def __init__(self, out: BinaryIO, *, title: str = ""):
        self._out = _Hashing(out)
        # Offsets by object number and the page ids, as compact arrays (8 and 4 bytes an
        # entry): the only things kept per page.
        self._offsets = array("q", [-1] * 5)
        self._next_id = 5
        self._pages = array("L")
        self._title = title
        self._out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        for font_id, name in ((self.FONT_ID, b"Helvetica"), (self.FONT_BOLD_ID, b"Helvetica-Bold")):
            self._object(
                font_id,
                b"<< /Type /Font /Subtype /Type1 /BaseFont /"
                + name
                + b" /Encoding /WinAnsiEncoding >>",
            )

    # -- low level --
    def _new_id(self) -> int:
        number = self._next_id
        self._next_id += 1
        self._offsets.append(-1)
        return number

    def _object(self, number: int, body: bytes) -> None:
        self._offsets[number] = self._out.size
        self._out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    def _stream(self, data: bytes, extra: bytes = b"") -> int:
        import zlib

        packed = zlib.compress(data)
        number = self._new_id()
        self._object(
            number,
            b"<< /Length %d /Filter /FlateDecode %s>>\nstream\n" % (len(packed), extra)
            + packed
            + b"\nendstream",
        )
        return number

    @staticmethod
    def _stamp_ops(label: str, width: float) -> bytes:
        if not label:
            return b""
        text_width = stringWidth(label, FONT, 8)
        x = max(12.0, width - text_width - 0.5 * inch)
        y = FOOTER_Y
        return (
            b"q 1 g %.2f %.2f %.2f 12 re f Q\n" % (x - 3, y - 3, text_width + 6)
            + b"BT /RRStampF 8 Tf 0 g %.2f %.2f Td " % (x, y)
            + _pdf_string(label)
            + b" Tj ET\n"
        )

    @property
    def page_count(self) -> int:
        return len(self._pages)

    # -- pages --
    def add_text_page(self, lines: list[str], *, heading: str = "", stamp: str = "") -> None:
        """A letter-size page of prepared lines (see :func:`paginate`)."""
        ops = [b"BT"]
        y = PAGE_HEIGHT - MARGIN
        if heading:
            ops.append(
                b"/F2 11 Tf %.2f %.2f Td " % (MARGIN, y) + _pdf_string(heading[:110]) + b" Tj"
            )
            ops.append(b"/F1 %d Tf %d TL 0 %d Td" % (FONT_SIZE, LEADING, -2 * LEADING))
        else:
            ops.append(b"/F1 %d Tf %d TL %.2f %.2f Td" % (FONT_SIZE, LEADING, MARGIN, y))
        for index, line in enumerate(lines):
            ops.append((b"" if index == 0 else b"T* ") + _pdf_string(line) + b" Tj")
        ops.append(b"ET")
        content = b"\n".join(ops) + b"\n" + self._stamp_ops(stamp, PAGE_WIDTH)
        content_id = self._stream(content)
        page_id = self._new_id()
        self._object(
            page_id,
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %.2f %.2f] "
            % (self.PAGES_ID, PAGE_WIDTH, PAGE_HEIGHT)
            + b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R /RRStampF %d 0 R >> >> "
            % (self.FONT_ID, self.FONT_BOLD_ID, self.FONT_ID)
            + b"/Contents %d 0 R >>" % content_id,
        )
        self._pages.append(page_id)

    def add_pdf(self, reader, *, stamps: Iterable[str]) -> None:
        """Copy every page of a pypdf ``PdfReader`` (one source at a time: what is copied
        is written at once, the source's objects are not kept)."""
        copier = _Copier(self, reader)
        for page, stamp in zip(reader.pages, stamps, strict=False):
            copier.copy_page(page, stamp)

    def close(self) -> None:
        kids = b" ".join(b"%d 0 R" % page for page in self._pages)
        self._object(
            self.PAGES_ID,
            b"<< /Type /Pages /Count %d /Kids [" % len(self._pages) + kids + b"] >>",
        )
        self._object(self.CATALOG_ID, b"<< /Type /Catalog /Pages %d 0 R >>" % self.PAGES_ID)
        info_id = self._new_id()
        self._object(
            info_id, b"<< /Title " + _pdf_string(self._title) + b" /Producer (RecordRoom) >>"
        )
        xref_at = self._out.size
        size = self._next_id
        self._out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
        for number in range(1, size):
            offset = self._offsets[number] if number < len(self._offsets) else -1
            if offset < 0:
                self._out.write(b"0000000000 65535 f \n")
            else:
                self._out.write(b"%010d 00000 n \n" % offset)
        self._out.write(
            b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (size, self.CATALOG_ID, info_id, xref_at)
        )

    @property
    def sha256(self) -> str:
        return self._out.sha256.hexdigest()

    @property
    def size(self) -> int:
        return self._out.size


class _Copier:
    """Copies pages of one source PDF into a :class:`StreamingPdf`, renumbering the
    objects they use and writing each object once."""

    def __init__(self, target: StreamingPdf, reader):
        self.target = target
        self.reader = reader
        self.numbers: dict[tuple[int, int], int] = {}
        self.pending: list[tuple[int, object]] = []

    def _ref(self, indirect):
        from pypdf.generic import IndirectObject

        key = (indirect.idnum, indirect.generation)
        number = self.numbers.get(key)
        if number is None:
            number = self.target._new_id()
            self.numbers[key] = number
            self.pending.append((number, indirect))
        return IndirectObject(number, 0, None)

    def _translate(self, value, *, skip=()):
        from pypdf.generic import (
            ArrayObject,
            DictionaryObject,
            IndirectObject,
            NameObject,
            StreamObject,
        )

        if isinstance(value, IndirectObject):
            return self._ref(value)
        if isinstance(value, StreamObject):
            clone = StreamObject()
            clone._data = value._data
            for key, item in value.items():
                clone[NameObject(key)] = self._translate(item)
            return clone
        if isinstance(value, DictionaryObject):
            clone = DictionaryObject()
            for key, item in value.items():
                if key in skip:
                    continue
                clone[NameObject(key)] = self._translate(item)
            return clone
        if isinstance(value, ArrayObject):
            return ArrayObject(self._translate(item) for item in value)
        return value

    def _serialize(self, value) -> bytes:
        buffer = io.BytesIO()
        value.write_to_stream(buffer)
        return buffer.getvalue()

    def _flush(self) -> None:
        while self.pending:
            number, indirect = self.pending.pop()
            resolved = indirect.get_object()
            if getattr(resolved, "get", None) and resolved.get("/Type") == "/Page":
                # A link to another page (an annotation's destination): not copied.
                self.target._object(number, b"null")
                continue
            self.target._object(number, self._serialize(self._translate(resolved)))

    def copy_page(self, page, stamp: str) -> None:
        from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

        target = self.target
        clone = self._translate(page, skip={"/Parent", "/Annots", "/B", "/StructParents"})
        clone[NameObject("/Parent")] = IndirectObject(target.PAGES_ID, 0, None)
        box = page.mediabox
        width = float(box.width)
        resources = clone.get("/Resources")
        if isinstance(resources, IndirectObject):
            resources = self._translate(self.reader.get_object(page["/Resources"].idnum))
        resources = resources if isinstance(resources, DictionaryObject) else DictionaryObject()
        fonts = resources.get("/Font")
        if isinstance(fonts, IndirectObject):
            original = page["/Resources"].get_object()["/Font"]
            fonts = self._translate(original.get_object())
        fonts = fonts if isinstance(fonts, DictionaryObject) else DictionaryObject()
        fonts[NameObject("/RRStampF")] = IndirectObject(target.FONT_ID, 0, None)
        resources[NameObject("/Font")] = fonts
        clone[NameObject("/Resources")] = resources
        contents = clone.get("/Contents")
        parts = ArrayObject()
        parts.append(IndirectObject(target._stream(b"q\n"), 0, None))
        if isinstance(contents, ArrayObject):
            parts.extend(contents)
        elif contents is not None:
            parts.append(contents)
        origin = b"1 0 0 1 %.2f %.2f cm\n" % (float(box.left), float(box.bottom))
        parts.append(
            IndirectObject(
                target._stream(b"Q\nq " + origin + target._stamp_ops(stamp, width) + b"Q\n"),
                0,
                None,
            )
        )
        clone[NameObject("/Contents")] = parts
        page_id = target._new_id()
        target._object(page_id, self._serialize(clone))
        target._pages.append(page_id)
        self._flush()
