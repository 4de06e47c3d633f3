"""The legal document record's actions: draft → sign → amend/correct → entered in error,
addenda, filed documents, attachments, late entries, and the refusals of each."""

import datetime as dt
import hashlib

import pytest
import time_machine
from django.core.exceptions import ValidationError

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from documents import actions, workflow
from documents.access import ActionRefused
from documents.integrity import version_sha256
from documents.models import (
    Document,
    DocumentStatus,
    DocumentStatusChange,
    DocumentType,
    DocumentVersion,
)
from documents.testing import (
    BODY,
    PDF_BYTES,
    PNG_BYTES,
    amend,
    doc_type,
    file_scanned,
    pdf,
    sign,
    signed,
    stored_files,
    temporary_storage,
    upload,
    write,
)
from documents.workflow import Conflict
from recordroom.testing import PASSWORD, register_patient

pytestmark = pytest.mark.django_db
UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Files go to a folder of the test's own."""
    return temporary_storage(settings, tmp_path)


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


def history(document):
    return [
        (c.from_status, c.to_status) for c in DocumentStatusChange.objects.filter(document=document)
    ]


# --- document types ---------------------------------------------------------------------


def test_the_required_loinc_document_types_are_seeded(db):
    codes = dict(DocumentType.objects.values_list("loinc_code", "display"))
    for code in ["34117-2", "11506-3", "11488-4", "11504-8", "18842-5", "46209-3"]:
        assert code in codes
    for code in ["11502-2", "47045-0", "51852-2", "59284-0", "11503-0"]:
        assert code in codes
    assert codes["18842-5"] == "Discharge summary"


def test_seeding_the_types_again_changes_nothing(db):
    import importlib

    from django.apps import apps

    seed = importlib.import_module("documents.migrations.0002_seed_loinc_document_types").seed
    before = list(DocumentType.objects.order_by("loinc_code").values())
    seed(apps, None)
    assert list(DocumentType.objects.order_by("loinc_code").values()) == before


# --- the state machine ---------------------------------------------------------------------


def test_the_transition_table():
    S = DocumentStatus
    assert workflow.can_transition("", S.DRAFT)
    assert workflow.can_transition(S.DRAFT, S.FINAL)
    assert workflow.can_transition(S.FINAL, S.AMENDED)
    assert workflow.can_transition(S.AMENDED, S.CORRECTED)
    assert not workflow.can_transition(S.FINAL, S.DRAFT)
    assert not workflow.can_transition(S.DRAFT, S.AMENDED)
    for status in S.values:
        assert not workflow.can_transition(S.ENTERED_IN_ERROR, status)
    with pytest.raises(Conflict, match="never goes back to draft"):
        workflow.check_transition(S.FINAL, S.DRAFT)


# --- drafts ------------------------------------------------------------------------------


def test_a_clinician_writes_a_draft(personas, patient, audit_rows):
    document = write(patient, personas.clinician)
    assert document.status == DocumentStatus.DRAFT
    assert document.entered_at == NOW
    assert not document.late_entry
    assert document.current_version.number == 1
    assert document.current_version.body == BODY
    assert not document.current_version.signed_at
    assert history(document) == [("", "draft")]
    (created,) = audit_rows(action=Action.CREATE, object_type="document")
    assert created.object_id == str(document.public_id)
    assert created.patient_id == patient.public_id
    assert created.detail["doc_type"] == "11506-3"
    assert "cough" not in str(created.detail)


def test_a_document_entered_more_than_24_hours_after_service_is_a_late_entry(personas, patient):
    late = write(patient, personas.clinician, service_at=NOW - dt.timedelta(hours=25))
    on_time = write(patient, personas.clinician, service_at=NOW - dt.timedelta(hours=23))
    assert late.late_entry
    assert not on_time.late_entry


def test_the_author_may_mark_a_late_entry(personas, patient):
    assert write(patient, personas.clinician, late_entry=True).late_entry


def test_the_late_entry_window_is_a_setting(personas, patient, settings):
    settings.LATE_ENTRY_HOURS = 48
    assert not write(
        patient, personas.clinician, service_at=NOW - dt.timedelta(hours=30)
    ).late_entry


def test_revising_a_draft_keeps_every_version(personas, patient, audit_rows):
    document = write(patient, personas.clinician)
    version = actions.do_revise_draft(
        document, body=BODY + "\nFollow up in a week.", acting_user=personas.clinician
    )
    assert version.number == 2
    assert version.kind == "revision"
    assert document.current_version == version
    assert list(
        DocumentVersion.objects.filter(document=document).values_list("body", flat=True)
    ) == [
        BODY,
        BODY + "\nFollow up in a week.",
    ]
    assert audit_rows(action=Action.UPDATE, object_type="document")


def test_only_the_author_revises_a_draft(personas, patient, audit_rows):
    document = write(patient, personas.clinician)
    with pytest.raises(ActionRefused, match="Only the author"):
        actions.do_revise_draft(document, body="changed", acting_user=personas.other_clinician)
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.other_clinician
    assert DocumentVersion.objects.filter(document=document).count() == 1


def test_a_revision_that_changes_nothing_is_refused(personas, patient):
    document = write(patient, personas.clinician)
    with pytest.raises(ValidationError, match="Nothing changed"):
        actions.do_revise_draft(document, body=BODY, acting_user=personas.clinician)


def test_a_signed_document_is_not_revised(personas, patient):
    document = signed(patient, personas.clinician)
    with pytest.raises(Conflict, match="Only a draft"):
        actions.do_revise_draft(document, body="changed", acting_user=personas.clinician)


# --- signing -------------------------------------------------------------------------------


def test_the_author_signs_with_the_password(personas, patient, audit_rows):
    document = write(patient, personas.clinician)
    version = sign(document)
    document.refresh_from_db()
    version.refresh_from_db()
    assert document.status == DocumentStatus.FINAL
    assert document.signed_at == NOW
    assert version.signed_by == personas.clinician
    assert version.signed_at == NOW
    assert version.content_sha256 == version_sha256(version)
    assert len(version.content_sha256) == 64
    assert history(document) == [("", "draft"), ("draft", "final")]
    (event,) = audit_rows(action=Action.SIGN)
    assert event.outcome == Outcome.ALLOWED
    assert event.detail["sha256"] == version.content_sha256


def test_the_signed_hash_covers_the_body_and_the_attachment(personas, patient, media):
    document = write(patient, personas.clinician, attachment=pdf("ecg.pdf"))
    version = sign(document)
    assert version.attachment_sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
    assert version.content_sha256 == version_sha256(version)
    version.body += " "
    assert version_sha256(version) != version.content_sha256
    version.body = version.body[:-1]
    version.attachment_sha256 = "0" * 64
    assert version_sha256(version) != version.content_sha256


def test_a_wrong_password_signs_nothing_and_is_audited(personas, patient, audit_rows):
    document = write(patient, personas.clinician)
    with pytest.raises(ValidationError, match="password is not correct"):
        actions.do_sign_document(document, password="guess", acting_user=personas.clinician)
    document.refresh_from_db()
    assert document.status == DocumentStatus.DRAFT
    assert not document.current_version.signed_at
    (denied,) = audit_rows(action=Action.SIGN)
    assert denied.outcome == Outcome.DENIED
    assert denied.reason == "wrong password at signing"


def test_a_second_signature_is_refused(personas, patient, audit_rows):
    document = signed(patient, personas.clinician)
    with (
        time_machine.travel(NOW + dt.timedelta(hours=1), tick=False),
        pytest.raises(Conflict, match="already signed"),
    ):
        sign(document)
    version = document.versions.get()
    assert version.signed_at == NOW
    assert len(audit_rows(action=Action.SIGN)) == 1


@pytest.mark.parametrize("who", ["other_clinician", "administrator"])
def test_someone_not_the_author_cannot_sign(personas, patient, audit_rows, who):
    document = write(patient, personas.clinician)
    user = getattr(personas, who)
    with pytest.raises(AccessDenied):
        actions.do_sign_document(document, password=PASSWORD, acting_user=user)
    document.refresh_from_db()
    assert document.status == DocumentStatus.DRAFT
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == user
    assert denied.action == Action.SIGN


def test_a_non_author_is_told_who_signs(personas, patient):
    document = write(patient, personas.clinician)
    with pytest.raises(ActionRefused) as refused:
        actions.do_sign_document(document, password=PASSWORD, acting_user=personas.other_clinician)
    assert "Only the author of this document (Dr.Carl Testperson)" in refused.value.message


# --- amendments and corrections --------------------------------------------------------


def test_an_amendment_waits_for_its_authors_signature(personas, patient, audit_rows):
    document = signed(patient, personas.clinician)
    original = document.current_version
    pending = amend(document, BODY + "\nAddendum to plan: chest X-ray.")
    document.refresh_from_db()
    assert pending.number == 2
    assert pending.kind == "amendment"
    assert pending.reason == "Clarified the plan"
    assert not pending.signed_at
    assert document.status == DocumentStatus.FINAL
    assert document.current_version == original
    with time_machine.travel(NOW + dt.timedelta(minutes=5), tick=False):
        sign(document)
    document.refresh_from_db()
    assert document.status == DocumentStatus.AMENDED
    assert document.current_version.number == 2
    original.refresh_from_db()
    assert original.signed_at == NOW
    assert original.body == BODY
    assert original.content_sha256 == version_sha256(original)
    assert history(document) == [("", "draft"), ("draft", "final"), ("final", "amended")]
    assert [e.detail["version"] for e in audit_rows(action=Action.SIGN)] == [1, 2]


def test_a_correction_makes_the_document_corrected(personas, patient):
    document = signed(patient, personas.clinician)
    amend(document, BODY.replace("37.9", "38.9"), kind="correction", reason="Wrong temperature")
    sign(document)
    document.refresh_from_db()
    assert document.status == DocumentStatus.CORRECTED


def test_a_document_may_be_amended_again(personas, patient):
    document = signed(patient, personas.clinician)
    amend(document, "second")
    sign(document)
    amend(document, "third")
    sign(document)
    document.refresh_from_db()
    assert document.status == DocumentStatus.AMENDED
    assert document.versions.count() == 3
    assert all(v.signed_at for v in document.versions.all())


def test_amending_refusals(personas, patient, audit_rows):
    draft = write(patient, personas.clinician)
    with pytest.raises(Conflict, match="draft is edited"):
        amend(draft, "x")
    document = signed(patient, personas.clinician)
    with pytest.raises(ActionRefused):
        actions.do_amend_document(
            document,
            body="x",
            reason="because",
            kind="amendment",
            acting_user=personas.other_clinician,
        )
    with pytest.raises(AccessDenied):
        actions.do_amend_document(
            document,
            body="x",
            reason="because",
            kind="amendment",
            acting_user=personas.administrator,
        )
    assert len(audit_rows(outcome=Outcome.DENIED)) == 2
    with pytest.raises(ValidationError) as invalid:
        amend(document, "x", reason="", kind="rewrite")
    assert set(invalid.value.message_dict) == {"reason", "kind"}
    with pytest.raises(ValidationError, match="changes nothing"):
        amend(document, BODY)
    assert document.versions.count() == 1


# --- addenda -------------------------------------------------------------------------------


def test_an_addendum_attaches_to_a_signed_document(personas, patient, audit_rows):
    document = signed(patient, personas.clinician, sensitivity=["behavioral"])
    addendum = actions.do_add_addendum(
        document, body="Spoke with the family.", acting_user=personas.other_clinician
    )
    assert addendum.addendum_to == document
    assert addendum.author == personas.other_clinician
    assert addendum.status == DocumentStatus.DRAFT
    assert addendum.doc_type == document.doc_type
    assert addendum.sensitivity == ["behavioral"] and addendum.is_sensitive
    assert addendum.title == "Addendum to Progress note"
    sign(addendum)
    addendum.refresh_from_db()
    assert addendum.status == DocumentStatus.FINAL
    document.refresh_from_db()
    assert document.status == DocumentStatus.FINAL  # the signed document itself is unchanged
    (created,) = audit_rows(action=Action.CREATE, object_id=str(addendum.public_id))
    assert created.detail["addendum_to"] == str(document.public_id)


def test_addenda_only_attach_to_signed_originals(personas, patient):
    draft = write(patient, personas.clinician)
    with pytest.raises(Conflict, match="still a draft"):
        actions.do_add_addendum(draft, body="x", acting_user=personas.clinician)
    document = signed(patient, personas.clinician)
    addendum = actions.do_add_addendum(document, body="more", acting_user=personas.clinician)
    sign(addendum)
    with pytest.raises(Conflict, match="original document"):
        actions.do_add_addendum(addendum, body="x", acting_user=personas.clinician)
    with pytest.raises(AccessDenied):
        actions.do_add_addendum(document, body="x", acting_user=personas.technician)
    with pytest.raises(ValidationError, match="Write the addendum"):
        actions.do_add_addendum(document, body="  ", acting_user=personas.clinician)


# --- entered in error ----------------------------------------------------------------------


def test_an_administrator_marks_a_document_entered_in_error_and_it_is_kept(
    personas, patient, audit_rows
):
    document = signed(patient, personas.clinician)
    actions.do_mark_entered_in_error(
        document, reason="Filed to the wrong patient", acting_user=personas.administrator
    )
    document.refresh_from_db()
    assert document.status == DocumentStatus.ENTERED_IN_ERROR
    assert document.current_version.body == BODY
    assert document.current_version.signed_at == NOW
    change = DocumentStatusChange.objects.filter(document=document).last()
    assert (change.from_status, change.to_status) == ("final", "entered-in-error")
    assert change.reason == "Filed to the wrong patient"
    assert change.changed_by == personas.administrator
    with pytest.raises(Conflict, match="already marked"):
        actions.do_mark_entered_in_error(
            document, reason="Filed to the wrong patient", acting_user=personas.administrator
        )
    with pytest.raises(Conflict, match="entered in error"):
        amend(document, "new text")
    with pytest.raises(Conflict):
        actions.do_add_addendum(document, body="x", acting_user=personas.clinician)


def test_marking_in_error_needs_the_permission_and_a_reason(personas, patient, audit_rows):
    document = signed(patient, personas.clinician)
    with pytest.raises(AccessDenied):
        actions.do_mark_entered_in_error(
            document, reason="I regret writing it", acting_user=personas.clinician
        )
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.clinician
    with pytest.raises(ValidationError, match="at least 10"):
        actions.do_mark_entered_in_error(
            document, reason="oops", acting_user=personas.administrator
        )
    document.refresh_from_db()
    assert document.status == DocumentStatus.FINAL


def test_the_author_withdraws_their_own_draft(personas, patient):
    document = write(patient, personas.clinician)
    actions.do_mark_entered_in_error(
        document, reason="Started on the wrong patient", acting_user=personas.clinician
    )
    assert Document.objects.get(pk=document.pk).status == DocumentStatus.ENTERED_IN_ERROR
    other = write(patient, personas.clinician)
    with pytest.raises(AccessDenied):
        actions.do_mark_entered_in_error(
            other, reason="Not my draft to withdraw", acting_user=personas.other_clinician
        )


# --- filed documents and attachments --------------------------------------------------------


def test_a_technician_files_a_scanned_record_final_at_once(personas, patient, media, audit_rows):
    document = file_scanned(patient, personas.technician)
    version = document.current_version
    assert document.status == DocumentStatus.FINAL
    assert document.signed_at is None
    assert version.attachment_sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
    assert version.attachment_content_type == "application/pdf"
    assert version.attachment_name == "outside-records.pdf"
    assert version.content_sha256 == version_sha256(version)
    assert history(document) == [("", "final")]
    (stored,) = stored_files(media)
    assert stored.read_bytes() == PDF_BYTES
    assert stored.name != "outside-records.pdf"  # stored under a new random name
    (created,) = audit_rows(action=Action.CREATE, object_type="document")
    assert created.detail["attachment_sha256"] == version.attachment_sha256


def test_a_clinician_cannot_file_and_a_technician_cannot_author(
    personas, patient, media, audit_rows
):
    with pytest.raises(AccessDenied):
        file_scanned(patient, personas.clinician)
    with pytest.raises(AccessDenied):
        write(patient, personas.technician)
    assert len(audit_rows(outcome=Outcome.DENIED)) == 2
    assert not Document.objects.exists()
    assert not stored_files(media)


def test_a_filed_document_is_corrected_by_him_with_a_new_file(personas, patient, media):
    document = file_scanned(patient, personas.technician)
    first = document.current_version
    rescanned = PDF_BYTES.replace(b"612 792", b"595 842")
    version = actions.do_amend_document(
        document,
        body="",
        reason="Page 2 was unreadable; rescanned",
        kind="correction",
        attachment=pdf("rescan.pdf", rescanned),
        acting_user=personas.administrator,
    )
    document.refresh_from_db()
    assert document.status == DocumentStatus.CORRECTED
    assert document.current_version == version
    assert version.attachment_sha256 == hashlib.sha256(rescanned).hexdigest()
    assert len(stored_files(media)) == 2  # the first file is kept
    first.refresh_from_db()
    assert first.attachment_sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
    with pytest.raises(AccessDenied):  # filed documents are not e-signed in RecordRoom
        sign(document, personas.technician)


def test_a_filed_document_is_never_e_signed_even_by_a_clinician_who_filed_it(
    personas, patient, media
):
    from recordroom.testing import make_user

    both = make_user("dr.hybrid", "clinician", "him_technician")
    both.facilities.add(personas.facility)
    document = file_scanned(patient, both)
    with pytest.raises(Conflict, match="not signed here"):
        sign(document, both)


def test_a_revision_without_a_new_file_keeps_the_same_stored_file(personas, patient, media):
    document = write(patient, personas.clinician, attachment=upload("wound.png", PNG_BYTES))
    version = actions.do_revise_draft(
        document, body="Wound photo, day 2.", acting_user=personas.clinician
    )
    assert version.attachment.name == document.versions.get(number=1).attachment.name
    assert len(stored_files(media)) == 1


@pytest.mark.parametrize(
    "attachment, message",
    [
        (upload("scan.pdf", b"<html><script>alert(1)</script></html>"), "is not a PDF"),
        (upload("scan.pdf", PNG_BYTES), "is not a PDF"),
        (upload("photo.png", PDF_BYTES), "is not a PNG image"),
        (upload("notes.docx", b"PK\x03\x04"), "PDF, PNG, JPEG or TIFF"),
        (upload("empty.pdf", b""), "empty"),
        (upload("<img src=x onerror=alert(1)>.pdf", PDF_BYTES), "markup"),
    ],
)
def test_bad_files_are_refused_and_nothing_is_stored(
    personas, patient, media, audit_rows, attachment, message
):
    with pytest.raises(ValidationError) as refused:
        file_scanned(patient, personas.technician, attachment=attachment)
    assert message in " ".join(refused.value.message_dict["attachment"])
    assert not Document.objects.exists()
    assert not DocumentVersion.objects.exists()
    assert not stored_files(media)
    assert not audit_rows(action=Action.CREATE)


def test_an_oversized_file_is_refused(personas, patient, media, settings):
    settings.MAX_UPLOAD_MB = 1
    big = PDF_BYTES + b"0" * (1024 * 1024)
    with pytest.raises(ValidationError, match="limit is 1 MB"):
        file_scanned(patient, personas.technician, attachment=pdf("big.pdf", big))
    assert not Document.objects.exists()
    assert not stored_files(media)


def test_a_failure_after_storing_the_file_leaves_nothing(personas, patient, media, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(actions, "_audit", broken)
    with pytest.raises(RuntimeError):
        file_scanned(patient, personas.technician)
    assert not Document.objects.exists()
    assert not stored_files(media)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"title": "<b>Progress</b> note"}, "title"),
        ({"title": "   "}, "title"),
        ({"body": "", "attachment": None}, "body"),
        ({"service_at": NOW + dt.timedelta(hours=2)}, "service_at"),
        ({"service_at": dt.datetime(1950, 1, 1, tzinfo=UTC)}, "service_at"),
        ({"sensitivity": ["gossip"]}, "sensitivity"),
        ({"source": "scanned", "attachment": None}, "attachment"),
    ],
)
def test_invalid_documents_are_refused_with_the_field_named(personas, patient, overrides, field):
    author = personas.technician if overrides.get("source") else personas.clinician
    with pytest.raises(ValidationError) as refused:
        write(patient, author, **overrides)
    assert field in refused.value.message_dict
    assert not Document.objects.exists()


def test_an_encounter_of_another_patient_is_refused(personas, patient):
    from documents.testing import treats

    other = register_patient(personas, family="Otherfield", given="Basil")
    visit = treats(personas.clinician, other, personas.facility, personas.technician)
    with pytest.raises(ValidationError, match="not this patient"):
        write(patient, personas.clinician, encounter=visit)


def test_every_document_type_is_usable(personas, patient):
    document = write(
        patient, personas.clinician, doc_type=doc_type("18842-5"), title="Discharge summary"
    )
    assert document.doc_type.loinc_code == "18842-5"


# --- the database keeps the record append-only ---------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"body": "rewritten"},
        {"attachment_sha256": "0" * 64},
        {"signed_at": NOW + dt.timedelta(days=1)},
        {"content_sha256": "f" * 64},
    ],
)
def test_the_database_refuses_to_rewrite_a_signed_version(personas, patient, change):
    from django.db import DatabaseError, transaction

    document = signed(patient, personas.clinician)
    with pytest.raises(DatabaseError), transaction.atomic():
        DocumentVersion.objects.filter(document=document).update(**change)
    version = document.versions.get()
    assert version.body == BODY and version.signed_at == NOW


def test_the_database_refuses_to_rewrite_a_status_change(personas, patient):
    from django.db import DatabaseError, transaction

    document = write(patient, personas.clinician)
    with pytest.raises(DatabaseError), transaction.atomic():
        DocumentStatusChange.objects.filter(document=document).update(reason="never happened")
    assert DocumentStatusChange.objects.get(document=document).reason == "written"


def test_a_filed_document_names_its_clinician_author_and_when_it_was_written(personas, audit_rows):
    import datetime as dt

    from documents.actions import do_create_document
    from documents.models import DocumentSource, DocumentType
    from recordroom import clock
    from recordroom.testing import register_patient

    patient = register_patient(personas)
    service = clock.now() - dt.timedelta(days=3)
    document = do_create_document(
        patient,
        doc_type=DocumentType.objects.get(loinc_code="18842-5"),
        title="Discharge summary",
        service_at=service,
        acting_user=personas.technician,
        author=personas.clinician,
        written_at=service + dt.timedelta(hours=5),
        body="Imported text.",
        source=DocumentSource.IMPORTED,
    )
    assert document.author == personas.clinician
    assert document.entered_at == service + dt.timedelta(hours=5)
    assert not document.late_entry
    assert document.current_version.created_by == personas.technician


def test_a_document_written_here_cannot_name_another_author(personas):
    import datetime as dt

    import pytest
    from django.core.exceptions import ValidationError

    from documents.actions import do_create_document
    from documents.models import DocumentType
    from recordroom import clock
    from recordroom.testing import register_patient

    patient = register_patient(personas)
    with pytest.raises(ValidationError) as error:
        do_create_document(
            patient,
            doc_type=DocumentType.objects.get(loinc_code="11506-3"),
            title="Progress note",
            service_at=clock.now() - dt.timedelta(hours=1),
            acting_user=personas.clinician,
            author=personas.other_clinician,
            body="Text.",
        )
    assert "author" in error.value.message_dict
