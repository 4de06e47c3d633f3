"""An import asks for the same few document types thousands of times: the types of a
batch are looked up once, and the answer is the same as looking each one up."""

import base64

import pytest

from documents.imports import OUTSIDE_RECORDS_LOINC, _doc_type
from documents.models import DocumentType

pytestmark = pytest.mark.django_db

DISCHARGE = {"type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]}}
UNKNOWN = {"type": {"coding": [{"system": "http://loinc.org", "code": "00000-0"}]}}


def test_a_known_type_is_looked_up_once_per_batch(django_assert_num_queries):
    known: dict = {}
    first = _doc_type(DISCHARGE, known)
    assert first == DocumentType.objects.get(loinc_code="18842-5")
    with django_assert_num_queries(0):
        assert _doc_type(DISCHARGE, known) == first


def test_an_unknown_code_is_filed_as_outside_records_every_time(django_assert_num_queries):
    known: dict = {}
    outside = DocumentType.objects.get(loinc_code=OUTSIDE_RECORDS_LOINC)
    assert _doc_type(UNKNOWN, known) == outside
    with django_assert_num_queries(0):
        assert _doc_type(UNKNOWN, known) == outside
    assert _doc_type(UNKNOWN) == outside  # without a batch's memory: looked up again


def test_documents_filed_together_get_their_versions_and_status_rows(personas):
    """create_imported_documents files a batch's documents together: each its first
    version (content hash intact), its status rows — final, draft, or through final to
    entered-in-error — and its current version."""
    import datetime as dt
    import uuid

    from documents.imports import NewDocument, create_imported_documents, document_values
    from documents.integrity import version_is_intact
    from documents.models import DocumentStatusChange
    from recordroom.testing import register_patient

    patient = register_patient(personas)
    now = dt.datetime(2025, 3, 4, 5, 6, tzinfo=dt.UTC)

    def resource(status: str | None, doc_status: str | None, text: str) -> dict:
        body = base64.b64encode(text.encode()).decode()
        return {
            **DISCHARGE,
            **({"status": status} if status else {}),
            **({"docStatus": doc_status} if doc_status else {}),
            "date": "2025-03-01T10:00:00Z",
            "content": [{"attachment": {"contentType": "text/plain", "data": body}}],
        }

    sent = {
        "final": resource("current", "final", "Discharged home."),
        "draft": resource(None, "preliminary", "Draft note."),  # neither current nor final
        "entered-in-error": resource("entered-in-error", None, "Wrong patient."),
    }
    stored: list[str] = []
    documents = create_imported_documents(
        [
            NewDocument(patient, None, document_values(r, now=now), uuid.uuid4())
            for r in sent.values()
        ],
        acting_user=personas.integration,
        now=now,
        stored=stored,
    )
    steps = {
        d.status: list(
            DocumentStatusChange.objects.filter(document=d)
            .order_by("pk")
            .values_list("from_status", "to_status", "reason")
        )
        for d in documents
    }
    assert steps == {
        "final": [("", "final", "filed (imported)")],
        "draft": [("", "draft", "filed (imported)")],
        "entered-in-error": [
            ("", "final", "filed (imported)"),
            ("final", "entered-in-error", "as received (imported)"),
        ],
    }
    for document, text in zip(
        documents, ["Discharged home.", "Draft note.", "Wrong patient."], strict=True
    ):
        document.refresh_from_db()
        version = document.current_version
        assert version.number == 1 and version.body == text and version_is_intact(version)
        assert (document.signed_at is None) == (document.status == "draft")
