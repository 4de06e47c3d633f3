"""Who reads what in the document record: sensitive categories, drafts, superseded
versions, entered-in-error documents, and the chart's list (its query count)."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from documents import access, actions
from documents.access import RESTRICTED_TITLE, RestrictedDocument
from documents.models import Document, DocumentStatus, DocumentVersion
from documents.testing import BODY, amend, doc_type, sign, signed, temporary_storage, treats, write
from patients.actions import do_break_the_glass, do_set_restriction
from patients.models import AccessGrant
from recordroom.testing import make_user, register_patient

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


@pytest.fixture
def psych_note(personas, patient):
    """A signed behavioural-health note by ``clinician``; ``other_clinician`` has no
    relationship with the patient."""
    return signed(
        patient,
        personas.clinician,
        title="Psychiatric evaluation",
        sensitivity=["behavioral", "sud_part2"],
        body="Alcohol use disorder, in early remission.",
    )


def opens(user, document) -> bool:
    try:
        access.access_document(user, document.public_id)
    except RestrictedDocument:
        return False
    return True


# --- sensitive documents ------------------------------------------------------------------


def test_the_author_reads_their_sensitive_document(personas, psych_note):
    assert opens(personas.clinician, psych_note)


def test_a_clinician_without_a_relationship_is_refused_and_audited(
    personas, psych_note, audit_rows
):
    with pytest.raises(RestrictedDocument):
        access.access_document(personas.other_clinician, psych_note.public_id)
    (denied,) = audit_rows(outcome=Outcome.DENIED, object_type="document")
    assert denied.actor == personas.other_clinician
    assert denied.object_id == str(psych_note.public_id)
    assert denied.patient_id == psych_note.patient.public_id
    assert "sensitive" in denied.reason
    assert sorted(denied.detail["sensitivity"]) == ["behavioral", "sud_part2"]


def test_a_treating_clinician_with_the_permission_reads_it(
    personas, patient, psych_note, audit_rows
):
    treats(personas.other_clinician, patient, personas.facility, personas.technician)
    assert opens(personas.other_clinician, psych_note)
    (viewed,) = audit_rows(action=Action.VIEW, object_type="document")
    assert viewed.detail["sensitive_via"] == "treatment"


def test_a_relationship_without_the_permission_is_not_enough(personas, patient, psych_note):
    # A coder assigned to the encounter still lacks documents.read_sensitive.
    AccessGrant.objects.create(
        patient=patient,
        user=personas.coder,
        kind=AccessGrant.Kind.TREATMENT,
        reason="coding the stay",
        granted_at=NOW,
    )
    assert not opens(personas.coder, psych_note)


def test_break_the_glass_opens_it_until_the_grant_expires(
    personas, patient, psych_note, audit_rows
):
    do_set_restriction(
        patient,
        "confidential",
        reason="At the patient's request",
        acting_user=personas.administrator,
    )
    do_break_the_glass(
        patient,
        reason="Unresponsive in the ED, history needed",
        acting_user=personas.other_clinician,
    )
    assert opens(personas.other_clinician, psych_note)
    viewed = audit_rows(action=Action.VIEW, object_type="document")[-1]
    assert viewed.detail["sensitive_via"] == "break_the_glass"
    with time_machine.travel(NOW + dt.timedelta(hours=2), tick=False), pytest.raises(AccessDenied):
        opens(personas.other_clinician, psych_note)


def test_a_standing_relationship_without_the_permission_needs_break_the_glass(
    personas, patient, psych_note
):
    AccessGrant.objects.create(
        patient=patient,
        user=personas.coder,
        kind=AccessGrant.Kind.JOB,
        reason="coding",
        granted_at=NOW,
    )
    do_set_restriction(patient, "vip", reason="Public figure", acting_user=personas.administrator)
    assert not opens(personas.coder, psych_note)
    do_break_the_glass(patient, reason="Urgent records request for ICU", acting_user=personas.coder)
    assert opens(personas.coder, psych_note)


def test_a_non_sensitive_document_needs_no_relationship(personas, patient):
    document = signed(patient, personas.clinician)
    assert opens(personas.other_clinician, document)
    assert opens(personas.coder, document)


def test_an_addendum_inherits_the_restriction(personas, patient, psych_note):
    addendum = actions.do_add_addendum(
        psych_note, body="Family meeting held.", acting_user=personas.clinician
    )
    sign(addendum)
    assert not opens(personas.other_clinician, addendum)


# --- drafts, pending amendments, superseded versions -------------------------------------


def test_a_draft_is_listed_but_its_content_is_its_authors(personas, patient):
    draft = write(patient, personas.clinician)
    page = access.document_page(personas.other_clinician, draft.public_id)
    assert page.hidden_reason == "draft"
    assert page.version is None
    own = access.document_page(personas.clinician, draft.public_id)
    assert own.version.body == BODY
    assert own.permitted.sign and own.permitted.edit


def test_others_read_the_signed_version_until_the_amendment_is_signed(personas, patient):
    document = signed(patient, personas.clinician)
    amend(document, "Amended text")
    other = access.document_page(personas.other_clinician, document.public_id)
    assert other.version.number == 1
    assert other.pending is None
    own = access.document_page(personas.clinician, document.public_id)
    assert own.pending.number == 2
    assert own.permitted.sign
    sign(document)
    other = access.document_page(personas.other_clinician, document.public_id)
    assert other.version.number == 2
    assert other.version.body == "Amended text"
    assert other.signature_intact is True


def test_the_signed_original_stays_readable_to_those_allowed_only(personas, patient, audit_rows):
    document = signed(patient, personas.clinician)
    amend(document, "Amended text")
    sign(document)
    for allowed in (personas.clinician, personas.administrator):
        page = access.diff_page(allowed, document.public_id, 1, 2)
        assert page.old.body == BODY and page.old.signed_at == NOW
        history = access.history_page(allowed, document.public_id)
        assert [e.viewable for e in history.entries] == [True, True]
        assert history.entries[1].diff_from == 1
    with pytest.raises(AccessDenied):
        access.diff_page(personas.other_clinician, document.public_id, 1, 2)
    denied = audit_rows(outcome=Outcome.DENIED)[-1]
    assert denied.actor == personas.other_clinician
    assert "superseded" in denied.reason
    history = access.history_page(personas.other_clinician, document.public_id)
    assert [e.viewable for e in history.entries] == [False, True]
    assert history.entries[1].diff_from is None
    assert history.entries[0].version.signed_by == personas.clinician  # who/when/why is shown
    assert history.entries[0].intact is True


def test_a_version_that_does_not_exist_is_404(personas, patient):
    document = signed(patient, personas.clinician)
    with pytest.raises(Http404):
        access.diff_page(personas.clinician, document.public_id, 1, 7)


# --- entered in error ------------------------------------------------------------------------


def test_entered_in_error_is_hidden_from_ordinary_views_but_kept(personas, patient, audit_rows):
    document = signed(patient, personas.clinician)
    actions.do_mark_entered_in_error(
        document, reason="Duplicate of the 9:00 note", acting_user=personas.administrator
    )
    with pytest.raises(Http404):
        access.access_document(personas.other_clinician, document.public_id)
    denied = audit_rows(outcome=Outcome.DENIED)[-1]
    assert "entered in error" in denied.reason
    assert opens(personas.administrator, document)
    assert opens(personas.clinician, document)  # the author
    assert Document.objects.filter(pk=document.pk).exists()
    assert DocumentVersion.objects.filter(document=document).count() == 1


# --- the door ----------------------------------------------------------------------------------


def test_an_outsider_gets_404_and_it_is_audited(personas, patient, audit_rows):
    document = signed(patient, personas.clinician)
    with pytest.raises(Http404):
        access.access_document(personas.outsider, document.public_id)
    assert audit_rows(outcome=Outcome.DENIED)[-1].actor == personas.outsider


def test_a_role_without_clinical_read_is_refused(personas, patient, audit_rows):
    document = signed(patient, personas.clinician)
    with pytest.raises(AccessDenied):
        access.access_document(personas.privacy_officer, document.public_id)
    assert audit_rows(outcome=Outcome.DENIED)[-1].actor == personas.privacy_officer


def test_an_unknown_document_is_404(personas):
    with pytest.raises(Http404):
        access.access_document(personas.clinician, "00000000-0000-4000-8000-000000000000")
    with pytest.raises(Http404):
        access.access_document(personas.clinician, "not-a-uuid")


def test_a_view_is_audited_once_with_the_version(personas, patient, audit_rows):
    document = signed(patient, personas.clinician)
    access.document_page(personas.other_clinician, document.public_id)
    (event,) = audit_rows(action=Action.VIEW, object_type="document")
    assert event.detail == {"version": 1}
    assert audit_rows(action=Action.VIEW, object_type="patient")


# --- the chart's list ---------------------------------------------------------------------------


def test_the_chart_lists_restricted_documents_by_type_and_date_only(personas, patient, psych_note):
    (row,) = access.documents_for_chart(personas.other_clinician, patient)
    assert row.title == RESTRICTED_TITLE
    assert row.restricted and row.content_hidden and row.hidden_reason == "sensitive"
    assert row.author is None and row.encounter is None and row.document is None
    assert row.doc_type.loinc_code == "11506-3"
    assert row.service_at == psych_note.service_at
    (own,) = access.documents_for_chart(personas.clinician, patient)
    assert own.title == "Psychiatric evaluation"
    assert not own.content_hidden


def test_the_chart_hides_entered_in_error_unless_asked_by_those_allowed(personas, patient):
    kept = signed(patient, personas.clinician)
    wrong = signed(patient, personas.clinician, title="Wrong patient note")
    actions.do_mark_entered_in_error(
        wrong, reason="Filed to the wrong patient", acting_user=personas.administrator
    )
    for user in (personas.other_clinician, personas.administrator, personas.clinician):
        assert [r.public_id for r in access.documents_for_chart(user, patient)] == [kept.public_id]
    assert (
        len(
            access.documents_for_chart(
                personas.other_clinician, patient, include_entered_in_error=True
            )
        )
        == 1
    )
    rows = access.documents_for_chart(
        personas.administrator, patient, include_entered_in_error=True
    )
    assert {r.public_id: r.entered_in_error for r in rows} == {
        kept.public_id: False,
        wrong.public_id: True,
    }


def test_the_chart_marks_drafts_addenda_late_entries_and_pending_amendments(personas, patient):
    draft = write(patient, personas.clinician, service_at=NOW - dt.timedelta(days=3))
    document = signed(patient, personas.clinician)
    amend(document, "Amended")
    addendum = actions.do_add_addendum(document, body="More", acting_user=personas.clinician)
    rows = {r.public_id: r for r in access.documents_for_chart(personas.other_clinician, patient)}
    assert rows[draft.public_id].hidden_reason == "draft"
    assert rows[draft.public_id].late_entry
    assert rows[document.public_id].amendment_pending
    assert rows[addendum.public_id].is_addendum
    assert rows[addendum.public_id].addendum_to == document.public_id
    assert rows[document.public_id].url == f"/documents/{document.public_id}/"


def test_the_chart_can_be_narrowed_to_an_encounter(personas, patient):
    visit = treats(personas.clinician, patient, personas.facility, personas.technician)
    inside = signed(patient, personas.clinician, encounter=visit)
    signed(patient, personas.clinician)
    rows = access.documents_for_chart(personas.clinician, patient, encounter=visit)
    assert [r.public_id for r in rows] == [inside.public_id]


def test_the_chart_can_be_narrowed_to_a_page_of_encounters_and_the_unfiled(personas, patient):
    visit = treats(personas.clinician, patient, personas.facility, personas.technician)
    inside = signed(patient, personas.clinician, encounter=visit)
    hidden = signed(
        patient, personas.clinician, encounter=visit, title="Psych", sensitivity=["behavioral"]
    )
    loose = signed(patient, personas.clinician)
    wrong = signed(patient, personas.clinician, encounter=visit, title="Wrong patient")
    actions.do_mark_entered_in_error(
        wrong, reason="Filed to the wrong patient", acting_user=personas.administrator
    )

    def ids(**kwargs):
        rows = access.documents_for_chart(personas.other_clinician, patient, **kwargs)
        return {r.public_id: r for r in rows}

    page = ids(encounters=[visit])
    assert set(page) == {inside.public_id, hidden.public_id}
    # The restricted row keeps its encounter's key, and nothing of its content.
    restricted = page[hidden.public_id]
    assert restricted.restricted and restricted.title == RESTRICTED_TITLE
    assert restricted.encounter is None and restricted.author is None
    assert restricted.encounter_id == visit.pk == page[inside.public_id].encounter_id
    assert set(ids(unfiled=True)) == {loose.public_id}
    assert ids(unfiled=True)[loose.public_id].encounter_id is None
    assert set(ids(encounters=[visit], unfiled=True)) == {
        inside.public_id,
        hidden.public_id,
        loose.public_id,
    }
    assert ids(encounters=[]) == {}
    assert set(ids()) == {inside.public_id, hidden.public_id, loose.public_id}


def _bulk_documents(patient, author, count):
    """Many signed-looking rows at once (the list reads rows, it does not sign them)."""
    progress = doc_type("11506-3")
    documents = Document.objects.bulk_create(
        [
            Document(
                patient=patient,
                doc_type=progress,
                title=f"Progress note {n}",
                author=author,
                service_at=NOW - dt.timedelta(hours=n),
                entered_at=NOW,
                status=DocumentStatus.FINAL,
                sensitivity=["hiv_sti"] if n % 10 == 0 else [],
                is_sensitive=n % 10 == 0,
                created_at=NOW,
                updated_at=NOW,
            )
            for n in range(count)
        ]
    )
    versions = DocumentVersion.objects.bulk_create(
        [
            DocumentVersion(document=d, number=1, body="text", created_by=author, created_at=NOW)
            for d in documents
        ]
    )
    for document, version in zip(documents, versions, strict=True):
        document.current_version = version
    Document.objects.bulk_update(documents, ["current_version"])


def _count_queries(user, patient) -> tuple[int, int]:
    from django.contrib.auth import get_user_model

    fresh = get_user_model().objects.get(pk=user.pk)  # no cached permissions
    with CaptureQueriesContext(connection) as queries:
        rows = access.documents_for_chart(fresh, patient)
    return len(queries), len(rows)


def test_the_chart_list_costs_the_same_few_queries_for_2000_documents(personas, patient):
    other = register_patient(personas, family="Smallchart", given="Ivy")
    _bulk_documents(other, personas.clinician, 20)
    _bulk_documents(patient, personas.clinician, 2000)
    small, small_rows = _count_queries(personas.other_clinician, other)
    large, large_rows = _count_queries(personas.other_clinician, patient)
    assert (small_rows, large_rows) == (20, 2000)
    assert small == large
    # permissions (3, once per request in practice), the list itself (1), and the one-off
    # decision about sensitive content (treatment relationship and grant: at most 4)
    assert large <= 8


def test_a_user_with_no_role_cannot_list(personas, patient):
    user = make_user("nobody.here")
    with pytest.raises(AccessDenied):
        access.documents_for_chart(user, patient)
    assert not access.may_list_documents(user)
