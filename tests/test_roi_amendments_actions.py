"""Amendments at the patient's request (164.526): logged against documents, decided
within 60 days (one 30-day extension with a written notice), accepted (the amendment
filed as a document of its own, linked, the original untouched, a letter) or denied (a
basis from 164.526(a)(2), a letter with the patient's rights), statements of
disagreement and rebuttals, and what travels with later disclosures."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.http import Http404

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from documents.actions import do_create_document, do_mark_entered_in_error
from documents.models import Document, DocumentSource, DocumentStatus, DocumentType
from recordroom.testing import register_patient
from roi import amendments
from roi.models import Amendment, AmendmentStatus, Letter, LetterKind, StatementKind

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 1, 30, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


def file_document(personas, patient, title="Progress note", body="BP 150/90. Smoker.", **kw):
    return do_create_document(
        patient,
        doc_type=DocumentType.objects.get(loinc_code="11506-3"),
        title=title,
        service_at=NOW - dt.timedelta(days=10),
        acting_user=personas.administrator,
        body=body,
        source=DocumentSource.IMPORTED,
        **kw,
    )


@pytest.fixture
def document(personas, patient):
    return file_document(personas, patient)


def log(personas, patient, documents, **overrides):
    values = {
        "acting_user": personas.roi_specialist,
        "received_on": dt.date(2026, 1, 30),
        "document_ids": [d.public_id for d in documents],
        "requested_change": "I have never smoked; please correct the social history.",
        "requester_reason": "The note confuses me with my brother.",
    }
    values.update(overrides)
    return amendments.do_log_amendment(patient.public_id, **values)


# --- logging ---------------------------------------------------------------------------


def test_a_request_is_logged_due_in_60_days_and_audited(personas, patient, document, audit_rows):
    amendment = log(personas, patient, [document])
    assert amendment.status == AmendmentStatus.RECEIVED
    assert amendment.due_on == dt.date(2026, 3, 31)
    assert list(amendment.documents.all()) == [document]
    (event,) = audit_rows(object_type="roi.amendment")
    assert event.action == Action.CREATE and event.patient_id == patient.public_id
    assert event.detail["documents"] == [str(document.public_id)]


def test_a_deadline_across_february_of_a_leap_year(personas, patient, document):
    with time_machine.travel(dt.datetime(2028, 1, 31, 15, 0, tzinfo=dt.UTC), tick=False):
        amendment = log(personas, patient, [document], received_on=dt.date(2028, 1, 31))
    assert amendment.due_on == dt.date(2028, 3, 31)  # 29 days in February 2028


def test_a_document_of_another_patient_is_refused(personas, patient, document):
    other = register_patient(personas, family="Brightwater", given="Tobias")
    theirs = file_document(personas, other)
    with pytest.raises(ValidationError, match="not this patient's"):
        log(personas, patient, [document, theirs])
    assert not Amendment.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"document_ids": []}, "Choose the documents"),
        ({"document_ids": ["not-a-uuid"]}, "not a valid document id"),
        ({"document_ids": [uuid.uuid4()]}, "not this patient's"),
        ({"requested_change": "  "}, "The change asked for is required"),
        ({"received_on": dt.date(2026, 1, 31)}, "future"),
        ({"received_on": None}, "Give the date"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_kept(personas, patient, document, overrides, message):
    with pytest.raises(ValidationError) as error:
        log(personas, patient, [document], **overrides)
    assert message in str(error.value)
    assert not Amendment.objects.exists()


def test_a_coder_may_not_log_and_the_refusal_is_audited(personas, patient, document, audit_rows):
    with pytest.raises(AccessDenied):
        log(personas, patient, [document], acting_user=personas.coder)
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.object_type == "roi.amendment"


# --- extension ------------------------------------------------------------------------


def test_one_extension_with_a_letter_giving_the_reason_and_the_date(personas, patient, document):
    amendment = log(personas, patient, [document])
    extended = amendments.do_extend_amendment(
        amendment.public_id, acting_user=personas.roi_specialist, reason="The author is on leave"
    )
    assert extended.extended_due_on == dt.date(2026, 4, 30)
    assert extended.status == AmendmentStatus.EXTENDED
    (letter,) = Letter.objects.filter(amendment=amendment)
    assert letter.kind == LetterKind.AMENDMENT_EXTENSION
    assert "on leave" in letter.body and "2026-04-30" in letter.body
    with pytest.raises(ValidationError, match="only one"):
        amendments.do_extend_amendment(
            amendment.public_id, acting_user=personas.roi_specialist, reason="Still on leave"
        )


def test_no_extension_after_the_first_due_date(personas, patient, document):
    amendment = log(personas, patient, [document])
    late = dt.datetime(2026, 4, 1, 15, 0, tzinfo=dt.UTC)
    with time_machine.travel(late, tick=False), pytest.raises(ValidationError, match="has passed"):
        amendments.do_extend_amendment(
            amendment.public_id, acting_user=personas.roi_specialist, reason="Too late"
        )


# --- accept ----------------------------------------------------------------------------


def test_accepting_files_the_amendment_and_keeps_the_original(
    personas, patient, document, audit_rows
):
    amendment = log(personas, patient, [document])
    accepted = amendments.do_accept_amendment(
        amendment.public_id,
        acting_user=personas.administrator,
        notify="Dr Hollis Greenway, Springfield Family Practice",
    )
    assert accepted.status == AmendmentStatus.ACCEPTED and accepted.decided_at == NOW
    filed = accepted.amendment_document
    assert filed.patient == patient and filed.status == DocumentStatus.FINAL
    assert "I have never smoked" in filed.current_version.body
    assert "Progress note" in filed.current_version.body
    document.refresh_from_db()
    assert document.current_version.body == "BP 150/90. Smoker."
    assert document.versions.count() == 1
    (letter,) = Letter.objects.filter(amendment=amendment)
    assert letter.kind == LetterKind.AMENDMENT_ACCEPTED and "Hollis Greenway" in letter.body
    assert audit_rows(object_type="roi.amendment", action=Action.UPDATE)
    assert audit_rows(object_type="document", action=Action.CREATE)


def test_the_amendment_of_a_sensitive_document_is_as_protected(personas, patient):
    sensitive = file_document(personas, patient, sensitivity=["behavioral"])
    amendment = log(personas, patient, [sensitive])
    accepted = amendments.do_accept_amendment(
        amendment.public_id, acting_user=personas.administrator
    )
    assert accepted.amendment_document.sensitivity == ["behavioral"]


def test_accepting_needs_the_filing_permission(personas, patient, document, audit_rows):
    from django.contrib.auth.models import Group, Permission

    # ROI specialists hold documents.file; a department that takes it away from them
    # leaves accepting to those who file documents.
    Group.objects.get(name="roi_specialist").permissions.remove(
        Permission.objects.get(content_type__app_label="documents", codename="file")
    )
    for cache in ("_perm_cache", "_group_perm_cache", "_user_perm_cache"):
        personas.roi_specialist.__dict__.pop(cache, None)
    amendment = log(personas, patient, [document])
    with pytest.raises(AccessDenied):
        amendments.do_accept_amendment(amendment.public_id, acting_user=personas.roi_specialist)
    assert audit_rows(outcome=Outcome.DENIED, object_type="document")
    amendment.refresh_from_db()
    assert amendment.status == AmendmentStatus.RECEIVED


def test_a_decision_is_final(personas, patient, document):
    amendment = log(personas, patient, [document])
    amendments.do_accept_amendment(amendment.public_id, acting_user=personas.administrator)
    with pytest.raises(ValidationError, match="already accepted"):
        amendments.do_deny_amendment(
            amendment.public_id, acting_user=personas.administrator, basis="accurate_complete"
        )
    assert Document.objects.filter(patient=patient).count() == 2


def test_an_roi_specialist_accepts_and_files_the_amendment(personas, patient, document):
    amendment = log(personas, patient, [document])
    amendments.do_accept_amendment(amendment.public_id, acting_user=personas.roi_specialist)
    amendment.refresh_from_db()
    assert amendment.status == AmendmentStatus.ACCEPTED and amendment.amendment_document


# --- entered in error ------------------------------------------------------------------


def test_a_request_on_an_entered_in_error_document_is_logged_but_only_denied(
    personas, patient, document, audit_rows
):
    do_mark_entered_in_error(
        document, reason="Filed to the wrong patient chart", acting_user=personas.administrator
    )
    amendment = log(personas, patient, [document])
    (event,) = audit_rows(object_type="roi.amendment")
    assert event.detail["entered_in_error"] == [str(document.public_id)]
    with pytest.raises(ValidationError, match="entered in error"):
        amendments.do_accept_amendment(amendment.public_id, acting_user=personas.administrator)
    amendment.refresh_from_db()
    assert amendment.status == AmendmentStatus.RECEIVED and amendment.amendment_document is None
    denied = amendments.do_deny_amendment(
        amendment.public_id,
        acting_user=personas.roi_specialist,
        basis="not_designated_record_set",
    )
    assert "marked entered in error" in denied.decision_note
    letter = Letter.objects.get(amendment=amendment)
    assert "not part of the designated record set" in letter.body


# --- deny and statements ----------------------------------------------------------------


def deny(personas, amendment, **overrides):
    values = {"acting_user": personas.roi_specialist, "basis": "accurate_complete"}
    values.update(overrides)
    return amendments.do_deny_amendment(amendment.public_id, **values)


def test_the_denial_letter_gives_the_basis_and_the_patients_rights(personas, patient, document):
    amendment = log(personas, patient, [document])
    denied = deny(personas, amendment, explanation="Confirmed with the patient at the visit.")
    assert denied.status == AmendmentStatus.DENIED and denied.denial_basis == "accurate_complete"
    body = Letter.objects.get(amendment=amendment, kind=LetterKind.AMENDMENT_DENIED).body
    assert "accurate and complete" in body
    assert "statement disagreeing" in body
    assert "send your request and this denial with any later disclosure" in body
    assert "RecordRoom General Hospital" in body and "Office for Civil Rights" in body
    assert "Confirmed with the patient" in body


def test_an_unknown_basis_is_refused(personas, patient, document):
    amendment = log(personas, patient, [document])
    with pytest.raises(ValidationError, match="basis"):
        deny(personas, amendment, basis="we_do_not_feel_like_it")
    amendment.refresh_from_db()
    assert amendment.status == AmendmentStatus.RECEIVED


def test_a_statement_and_a_rebuttal_travel_with_later_disclosures(personas, patient, document):
    amendment = log(personas, patient, [document])
    deny(personas, amendment)
    assert amendments.statements_for_documents([document.public_id]) == []
    with pytest.raises(ValidationError, match="answers a statement"):
        amendments.do_record_statement(
            amendment.public_id,
            acting_user=personas.roi_specialist,
            kind=StatementKind.REBUTTAL,
            text="We stand by the note.",
            received_on=dt.date(2026, 1, 30),
        )
    amendments.do_record_statement(
        amendment.public_id,
        acting_user=personas.roi_specialist,
        kind=StatementKind.DISAGREEMENT,
        text="I have never smoked in my life.",
        received_on=dt.date(2026, 1, 30),
    )
    amendments.do_record_statement(
        amendment.public_id,
        acting_user=personas.roi_specialist,
        kind=StatementKind.REBUTTAL,
        text="The history was taken from the patient directly.",
        received_on=dt.date(2026, 1, 30),
    )
    copy = Letter.objects.get(amendment=amendment, kind=LetterKind.AMENDMENT_REBUTTAL)
    assert "taken from the patient directly" in copy.body
    material = amendments.statements_for_documents([str(document.public_id)])
    assert [m.kind for m in material] == ["request", "denial", "disagreement", "rebuttal"]
    assert "never smoked in my life" in material[2].text
    assert all(m.title and m.document_ids == (str(document.public_id),) for m in material)
    # Keys of any kind: primary keys, UUIDs, Document objects.
    assert amendments.statements_for_documents([document.pk]) == material
    assert amendments.statements_for_documents([document]) == material


def test_without_a_statement_the_request_and_denial_travel_only_if_asked(
    personas, patient, document
):
    amendment = log(personas, patient, [document])
    deny(personas, amendment)
    assert amendments.statements_for_documents([document.public_id]) == []
    amendments.do_set_send_with_disclosures(
        amendment.public_id, acting_user=personas.roi_specialist, send=True
    )
    material = amendments.statements_for_documents([document.public_id])
    assert [m.kind for m in material] == ["request", "denial"]


def test_an_accepted_amendment_travels(personas, patient, document):
    other = file_document(personas, patient, title="Discharge summary")
    amendment = log(personas, patient, [document])
    amendments.do_accept_amendment(amendment.public_id, acting_user=personas.administrator)
    (material,) = amendments.statements_for_documents([document.public_id, other.public_id])
    assert material.kind == "accepted_amendment" and "never smoked" in material.text
    assert amendments.statements_for_documents([other.public_id]) == []


def test_an_open_request_and_junk_ids_send_nothing(personas, patient, document):
    log(personas, patient, [document])
    assert amendments.statements_for_documents([document.public_id]) == []
    assert amendments.statements_for_documents(["junk", None, True]) == []
    assert amendments.statements_for_documents([]) == []


def test_a_statement_needs_a_denial_and_a_sensible_date(personas, patient, document):
    amendment = log(personas, patient, [document])
    with pytest.raises(ValidationError, match="follows a denial"):
        amendments.do_record_statement(
            amendment.public_id,
            acting_user=personas.roi_specialist,
            kind=StatementKind.DISAGREEMENT,
            text="I disagree.",
            received_on=dt.date(2026, 1, 30),
        )
    deny(personas, amendment)
    for day, message in ((dt.date(2026, 1, 29), "predate"), (dt.date(2026, 1, 31), "future")):
        with pytest.raises(ValidationError, match=message):
            amendments.do_record_statement(
                amendment.public_id,
                acting_user=personas.roi_specialist,
                kind=StatementKind.DISAGREEMENT,
                text="I disagree.",
                received_on=day,
            )
    assert not amendment.statements.exists()


def test_the_statement_length_is_policy(personas, patient, document):
    from roi.models import RoiPolicy

    RoiPolicy.objects.create(
        effective_from=dt.date(2024, 1, 1),
        due_days={},
        created_at=NOW,
        parameters={"statement_max_chars": 20},
    )
    amendment = log(personas, patient, [document])
    deny(personas, amendment)
    with pytest.raises(ValidationError, match="longer than 20"):
        amendments.do_record_statement(
            amendment.public_id,
            acting_user=personas.roi_specialist,
            kind=StatementKind.DISAGREEMENT,
            text="x" * 21,
            received_on=dt.date(2026, 1, 30),
        )


def test_an_unknown_request_is_a_404_and_audited(personas, audit_rows):
    with pytest.raises(Http404):
        amendments.do_extend_amendment(
            uuid.uuid4(), acting_user=personas.roi_specialist, reason="Whatever it is"
        )
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.amendment")
