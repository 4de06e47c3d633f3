"""Helpers for the document tests: synthetic files, a throw-away storage folder, and
documents written through the real actions. Everything here is invented."""

from __future__ import annotations

import datetime as dt

from django.core.files.uploadedfile import SimpleUploadedFile

from recordroom import clock
from recordroom.testing import PASSWORD

# The smallest honest files of each kind (a one-page PDF, a 1×1 PNG).
PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)
BODY = "Subjective: cough for three days.\nObjective: T 37.9 C, clear chest.\nPlan: fluids."


def pdf(name: str = "outside-records.pdf", content: bytes = PDF_BYTES) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def upload(name: str, content: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def temporary_storage(settings, tmp_path):
    """Point default storage at a fresh folder (for a test's ``settings`` fixture) and
    return the folder."""
    root = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    return root


def stored_files(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def doc_type(code: str = "11506-3"):
    from documents.models import DocumentType

    return DocumentType.objects.get(loinc_code=code)


def write(patient, author, **overrides):
    """A draft by ``author`` through the real action."""
    from documents.actions import do_create_document

    values = {
        "doc_type": doc_type(overrides.pop("code", "11506-3")),
        "title": "Progress note",
        "body": BODY,
        "service_at": clock.now() - dt.timedelta(hours=1),
        "acting_user": author,
    }
    values.update(overrides)
    return do_create_document(patient, **values)


def sign(document, author=None):
    from documents.actions import do_sign_document

    return do_sign_document(document, password=PASSWORD, acting_user=author or document.author)


def signed(patient, author, **overrides):
    document = write(patient, author, **overrides)
    sign(document, author)
    return document


def amend(document, body: str, *, kind: str = "amendment", reason: str = "Clarified the plan"):
    from documents.actions import do_amend_document

    return do_amend_document(
        document, body=body, reason=reason, kind=kind, acting_user=document.author
    )


def file_scanned(patient, technician, **overrides):
    values = {
        "code": "11503-0",
        "title": "Records from Maple Street Clinic",
        "body": "",
        "source": "scanned",
        "attachment": pdf(),
    }
    values.update(overrides)
    return write(patient, technician, **values)


def treats(clinician, patient, facility, technician):
    """Make ``clinician`` the attending of an outpatient visit of ``patient``: a treatment
    relationship, through the encounters app's action."""
    from encounters.actions import do_register_encounter
    from encounters.models import EncounterClass

    return do_register_encounter(
        patient,
        facility=facility,
        encounter_class=EncounterClass.OUTPATIENT,
        started_at=clock.now() - dt.timedelta(hours=3),
        attending=clinician,
        acting_user=technician,
    )
