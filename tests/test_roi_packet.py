"""The packet is written as it goes: a 5,000-page packet keeps memory flat (peak traced
with tracemalloc stays bounded by one source document, not by the packet), and every
page is numbered; the streaming writer's PDF is valid; the letter helpers."""

from __future__ import annotations

import io
import time
import tracemalloc

import pytest
import time_machine
from pypdf import PdfReader

from roi import packets
from roi.letters import issue_letter
from roi.models import LetterKind, ReleaseItem
from roi.pdf import StreamingPdf, letter_pdf, paginate
from tests.test_roi_processing_support import (  # noqa: F401 - fixtures
    NOW,
    file_document,
    make_request,
    media_fixture,
    patient_fixture,
    pdf_upload,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(media):
    with time_machine.travel(NOW, tick=False):
        yield


def approve_all(request):
    from roi.processing import Rules, block_reason, documents_in_scope, page_count, released_version

    checks = Rules.of(request)
    for document in documents_in_scope(request):
        version = released_version(document)
        ReleaseItem.objects.create(
            request=request,
            document=document,
            document_version=version.number,
            included=not block_reason(document, checks),
            proposed=True,
            page_count=page_count(version),
        )


def build(personas, request):
    cover = letter_pdf(title="Cover", paragraphs=["Enclosed."], letterhead="RecordRoom General")
    return packets.build_packet(
        request, cover_pdf=cover, basis="to_patient", by=personas.roi_specialist
    )


def test_a_5000_page_packet_streams_with_flat_memory(personas, patient):
    # 42 scanned documents of 100 pages and 20 typed ones of 40 pages each.
    scan = pdf_upload(100, text="Scanned page")
    for number in range(42):
        scan.seek(0)
        file_document(
            personas, patient, title=f"Scan {number}", body="", loinc="11503-0", attachment=scan
        )
    line = "Vital signs stable. Plan unchanged; continue current medication and follow up. " * 1
    lines_per = len(paginate("x\n" * 1000)[0])
    typed_body = "\n".join([line] * (lines_per * 40))
    for number in range(20):
        file_document(personas, patient, title=f"Typed {number}", body=typed_body)
    request = make_request(personas, patient)
    approve_all(request)
    expected = sum(ReleaseItem.objects.filter(request=request).values_list("page_count", flat=True))
    assert expected == 5000

    tracemalloc.start()
    started = time.monotonic()
    try:
        built = build(personas, request)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    packet = built.packet
    assert packet.pages == 5000 + 1 + 2  # cover letter, two index pages
    # The packet is several megabytes; the peak stays near one source document's worth.
    assert packet.size > 3 * 1024 * 1024
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert elapsed < 240
    with packet.file.open("rb") as handle:
        reader = PdfReader(handle)
        assert len(reader.pages) == packet.pages
        total = packet.pages
        for number in (1, 2, 3, 700, 4000, total):
            text = reader.pages[number - 1].extract_text()
            assert f"{request.number}, page {number} of {total}" in text


def test_memory_does_not_grow_with_the_number_of_pages(personas, patient):
    scan = pdf_upload(100)
    for number in range(12):
        scan.seek(0)
        file_document(
            personas, patient, title=f"Scan {number}", body="", loinc="11503-0", attachment=scan
        )
    small = make_request(personas, patient, scope={"all": True})
    approve_all(small)
    ReleaseItem.objects.filter(request=small).exclude(
        pk__in=ReleaseItem.objects.filter(request=small).order_by("pk").values("pk")[:2]
    ).update(included=False)
    large = make_request(personas, patient, scope={"all": True})
    approve_all(large)
    peaks, sizes = [], []
    for request in (small, large):
        tracemalloc.start()
        try:
            sizes.append(build(personas, request).packet.size)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    # Six times the pages: the memory grows by the offsets of the objects and the page
    # ids kept for the cross-reference table (a few dozen bytes a page) and the garbage
    # of the last source between two collections, not by what was written.
    assert sizes[1] > 5 * sizes[0]
    assert (peaks[1] - peaks[0]) / 1000 < 600, (peaks, sizes)


def test_the_streamed_pdf_is_valid_and_escapes_text(media):
    out = io.BytesIO()
    pdf = StreamingPdf(out, title="T")
    pdf.add_text_page(
        ["Paren ( and ) and back\\slash", "Café ünïcode"],
        heading="Head",
        stamp="REQ-1, page 1 of 2",
    )
    source = PdfReader(
        io.BytesIO(letter_pdf(title="Letter", paragraphs=["Hello"], letterhead="RR"))
    )
    pdf.add_pdf(source, stamps=iter(["REQ-1, page 2 of 2"]))
    pdf.close()
    reader = PdfReader(io.BytesIO(out.getvalue()), strict=True)
    texts = [page.extract_text() for page in reader.pages]
    assert "Paren ( and ) and back\\slash" in texts[0] and "Café ünïcode" in texts[0]
    assert "REQ-1, page 2 of 2" in texts[1] and "Hello" in texts[1]
    assert pdf.size == len(out.getvalue())


def test_a_damaged_attachment_stops_the_packet(personas, patient):
    document = file_document(
        personas, patient, title="Scan", body="", loinc="11503-0", attachment=pdf_upload(2)
    )
    with open(document.current_version.attachment.path, "ab") as handle:
        handle.write(b"x")
    request = make_request(personas, patient)
    ReleaseItem.objects.create(
        request=request, document=document, document_version=1, included=True, proposed=True
    )
    with pytest.raises(packets.PacketError, match="does not match its checksum"):
        build(personas, request)


def test_issue_letter_keeps_the_pdf_and_its_checksum(personas, patient):
    import hashlib

    request = make_request(personas, patient)
    letter = issue_letter(
        LetterKind.PEND,
        patient,
        "First paragraph.\n\nSecond <b>paragraph</b> & more.",
        personas.roi_specialist,
        request=request,
    )
    with letter.file.open("rb") as handle:
        content = handle.read()
    assert hashlib.sha256(content).hexdigest() == letter.sha256
    text = PdfReader(io.BytesIO(content)).pages[0].extract_text()
    assert "Second <b>paragraph</b> & more." in text and request.number in text
    assert "RecordRoom General Hospital" in text
    with pytest.raises(ValueError, match="body"):
        issue_letter(LetterKind.PEND, patient, "  ", personas.roi_specialist)
    with pytest.raises(ValueError, match="kind"):
        issue_letter("nonsense", patient, "x", personas.roi_specialist)


def test_an_image_attachment_gets_a_numbered_page(personas, patient):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(buffer, format="PNG")
    upload = SimpleUploadedFile("photo.png", buffer.getvalue(), content_type="image/png")
    file_document(
        personas, patient, title="Wound photo", body="Photo of the wound.", attachment=upload
    )
    request = make_request(personas, patient)
    approve_all(request)
    assert ReleaseItem.objects.get(request=request).page_count == 2  # the text, the image
    packet = build(personas, request).packet
    with packet.file.open("rb") as handle:
        reader = PdfReader(handle)
        assert len(reader.pages) == packet.pages == 1 + 1 + 2
        assert f"{request.number}, page 4 of 4" in reader.pages[3].extract_text()
