"""Shared set-up for the release tests (processing, packets, release, fees, denials,
download): a patient with documents, a request logged straight into the table (intake
is another part's), authorizations, and reading a packet's text. No tests here."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pypdf import PdfReader

from accounts.roles import Role
from documents.actions import do_create_document
from documents.models import DocumentSource, DocumentType
from recordroom.testing import make_user, register_patient
from roi.models import Authorization, RequestAttachment, RoiRequest

NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)
_counter = iter(range(1, 10**6))


@pytest.fixture(name="media")
def media_fixture(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    return tmp_path / "media"


@pytest.fixture(name="checker")
def checker_fixture(personas):
    """A second ROI specialist, for the quality check."""
    user = make_user("quinn.checker", Role.ROI_SPECIALIST)
    user.facilities.add(personas.facility)
    return user


@pytest.fixture(name="patient")
def patient_fixture(personas):
    return register_patient(personas)


def file_document(
    personas,
    patient,
    *,
    title="Progress note",
    loinc="11506-3",
    body="Seen today. Doing well.",
    days_ago=10,
    service_at=None,
    sensitivity=(),
    attachment=None,
    encounter=None,
):
    return do_create_document(
        patient,
        doc_type=DocumentType.objects.get(loinc_code=loinc),
        title=title,
        service_at=service_at or NOW - dt.timedelta(days=days_ago),
        acting_user=personas.administrator,
        body=body,
        source=DocumentSource.IMPORTED,
        sensitivity=sensitivity,
        attachment=attachment,
        encounter=encounter,
    )


def pdf_upload(pages: int, *, text="Scanned page", name="scan.pdf") -> SimpleUploadedFile:
    from reportlab.lib.pagesizes import LETTER
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf_canvas = canvas.Canvas(buffer, pagesize=LETTER)
    for number in range(1, pages + 1):
        pdf_canvas.drawString(72, 700, f"{text} {number}")
        pdf_canvas.showPage()
    pdf_canvas.save()
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/pdf")


def make_request(personas, patient, **fields) -> RoiRequest:
    number = next(_counter)
    values = {
        "number": f"REQ-2026-{number:06d}",
        "patient": patient,
        "facility": personas.facility,
        "requester_type": "patient",
        "requester_name": "Marigold Quillfeather",
        "requester_address": "12 Lantern Way, Springfield MA 01103",
        "identity_verified": "Photo identification seen at the window",
        "received_on": NOW.date() - dt.timedelta(days=2),
        "received_at": NOW - dt.timedelta(days=2),
        "due_on": NOW.date() + dt.timedelta(days=28),
        "scope": {"all": True},
        "status": "in_process",
        "logged_by": personas.roi_specialist,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    request = RoiRequest.objects.create(**values)
    # What intake would have on file for the requester type (roi.intake.missing), so the
    # request is valid for processing unless a test says otherwise.
    for kind in _ON_FILE.get(request.requester_type, ()):
        RequestAttachment.objects.create(
            request=request,
            kind=kind,
            file=f"roi/attachments/test-{kind}.pdf",
            name=f"{kind}.pdf",
            content_type="application/pdf",
            size=1,
            sha256="0" * 64,
            uploaded_by=personas.roi_specialist,
            uploaded_at=NOW,
        )
    return request


_ON_FILE = {
    "representative": ("authority",),
    "subpoena": ("subpoena", "assurance"),
    "court_order": ("court_order",),
    "law_enforcement": ("request",),
}


def authorize(personas, request, *, kind="hipaa", categories=(), valid=True, **fields):
    values = {
        "request": request,
        "patient": request.patient,
        "kind": kind,
        "recipient": request.requester_name,
        "purpose": "Legal matter",
        "signed_on": NOW.date() - dt.timedelta(days=5),
        "expires_on": NOW.date() + dt.timedelta(days=90),
        "sensitive_categories": list(categories),
        "checklist": {},
        "valid": valid,
        "checked_by": personas.roi_specialist,
        "checked_at": NOW,
    }
    values.update(fields)
    return Authorization.objects.create(**values)


def packet_text(packet) -> list[str]:
    with packet.file.open("rb") as handle:
        reader = PdfReader(io.BytesIO(handle.read()))
        return [page.extract_text() for page in reader.pages]
