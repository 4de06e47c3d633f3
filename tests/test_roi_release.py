"""Release: the packet (cover letter, index, numbered pages, notices, nothing outside
the approved scope), the disclosure row and audit event, a second release refused
unless re-released with a reason."""

from __future__ import annotations

import hashlib

import pytest
import time_machine

from accounts.access import AccessDenied
from audit.models import Action, Outcome, Purpose
from documents.actions import do_mark_entered_in_error
from documents.models import SensitiveCategory
from roi import processing, release
from roi.models import Disclosure, Letter, LetterKind, Packet, RequestStatus
from roi.processing import Refused
from tests.test_roi_processing_support import (  # noqa: F401 - fixtures
    NOW,
    authorize,
    checker_fixture,
    file_document,
    make_request,
    media_fixture,
    packet_text,
    patient_fixture,
    pdf_upload,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(media):
    with time_machine.travel(NOW, tick=False):
        yield


def checked(personas, checker, request):
    processing.do_propose(personas.roi_specialist, request.public_id)
    processing.do_submit_for_check(personas.roi_specialist, request.public_id)
    processing.do_quality_check(checker, request.public_id, passed=True)
    return request


def test_a_release_builds_one_numbered_packet_without_excluded_documents(
    personas, patient, checker, audit_rows
):
    file_document(
        personas, patient, title="Discharge summary", loinc="18842-5", body="Went home well."
    )
    file_document(
        personas,
        patient,
        title="Scanned outside records",
        loinc="11503-0",
        body="",
        attachment=pdf_upload(3, text="Outside clinic page"),
    )
    file_document(
        personas,
        patient,
        title="Therapy session",
        body="SECRET-THERAPY-CONTENT",
        sensitivity=[SensitiveCategory.PSYCHOTHERAPY],
    )
    request = checked(personas, checker, make_request(personas, patient))
    released = release.do_release(personas.roi_specialist, request.public_id)
    packet = released.packet
    pages = packet_text(packet)
    assert packet.pages == len(pages)
    total = len(pages)
    for number, text in enumerate(pages, start=1):
        assert f"{request.number}, page {number} of {total}" in text
    whole = "\n".join(pages)
    assert "Went home well." in whole
    assert "Outside clinic page 3" in whole
    assert "SECRET-THERAPY-CONTENT" not in whole and "Therapy session" not in whole
    assert "Cover letter" in pages[0] or request.number in pages[0]
    assert "Index of what was released" in pages[1]
    assert "Discharge summary" in pages[1] and "Scanned outside records" in pages[1]
    with packet.file.open("rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == packet.sha256
    request.refresh_from_db()
    assert request.status == RequestStatus.RELEASED and request.released_at == NOW
    assert Letter.objects.filter(request=request, kind=LetterKind.COVER).count() == 1
    (disclose,) = audit_rows(action=Action.DISCLOSE)
    assert disclose.outcome == Outcome.ALLOWED and disclose.purpose == Purpose.PATIENT_REQUEST
    assert disclose.patient_id == patient.public_id
    assert disclose.detail["sha256"] == packet.sha256 and disclose.detail["pages"] == total
    assert len(disclose.detail["documents"]) == 2
    disclosure = Disclosure.objects.get(request=request)
    assert disclosure.accountable is False and disclosure.basis == "to_patient"
    assert released.token  # electronic by default


@pytest.mark.parametrize(
    ("requester_type", "with_authorization", "basis", "accountable"),
    [
        ("provider", False, "treatment", False),
        ("payer", False, "payment", False),
        ("attorney", True, "authorized", False),
        ("subpoena", False, "judicial", True),
        ("court_order", False, "judicial", True),
        ("public_health", False, "public_health", True),
        ("law_enforcement", False, "law_enforcement", True),
    ],
)
def test_the_disclosure_row_is_accountable_by_its_basis(
    personas, patient, checker, requester_type, with_authorization, basis, accountable
):
    file_document(personas, patient, title="Note")
    request = make_request(
        personas,
        patient,
        requester_type=requester_type,
        requester_name="Recipient Name",
        format="paper",
        delivery="mail",
    )
    if with_authorization:
        authorize(personas, request)
    processing.do_propose(personas.roi_specialist, request.public_id)
    if requester_type == "law_enforcement":  # minimum necessary left it out
        item = processing.items_of(request)[0]
        processing.do_decide_item(
            personas.roi_specialist,
            request.public_id,
            item.document.public_id,
            include=True,
            reason="Court-ordered warrant names this note",
        )
    processing.do_submit_for_check(personas.roi_specialist, request.public_id)
    processing.do_quality_check(checker, request.public_id, passed=True)
    released = release.do_release(personas.roi_specialist, request.public_id)
    disclosure = released.disclosure
    assert (disclosure.basis, disclosure.accountable) == (basis, accountable)
    assert disclosure.recipient_name == "Recipient Name"
    assert released.token == ""  # paper


def test_a_second_release_is_refused_with_a_clear_message(personas, patient, checker, audit_rows):
    file_document(personas, patient, title="Note")
    request = checked(personas, checker, make_request(personas, patient))
    release.do_release(personas.roi_specialist, request.public_id)
    with pytest.raises(Refused, match="already released.*re-release it as a new packet"):
        release.do_release(personas.roi_specialist, request.public_id)
    assert Packet.objects.count() == 1 and Disclosure.objects.count() == 1
    assert audit_rows(action=Action.DISCLOSE, outcome=Outcome.DENIED)


def test_an_explicit_re_release_makes_a_new_packet_and_disclosure(
    personas, patient, checker, audit_rows
):
    file_document(personas, patient, title="Note")
    request = checked(personas, checker, make_request(personas, patient))
    first = release.do_release(personas.roi_specialist, request.public_id)
    again = release.do_release(
        personas.roi_specialist, request.public_id, rerelease_reason="Download link never arrived"
    )
    assert again.packet.pk != first.packet.pk
    assert Disclosure.objects.filter(request=request).count() == 2
    events = audit_rows(action=Action.DISCLOSE, outcome=Outcome.ALLOWED)
    assert [e.detail["rerelease"] for e in events] == [False, True]
    assert events[1].reason == "Download link never arrived"
    request.refresh_from_db()
    assert request.released_at == NOW


def test_release_before_the_check_is_refused(personas, patient, audit_rows):
    file_document(personas, patient, title="Note")
    request = make_request(personas, patient)
    processing.do_propose(personas.roi_specialist, request.public_id)
    with pytest.raises(Refused, match="quality check"):
        release.do_release(personas.roi_specialist, request.public_id)
    assert not Packet.objects.exists()
    assert audit_rows(action=Action.DISCLOSE, outcome=Outcome.DENIED)


def test_a_document_marked_in_error_after_review_stops_the_release(personas, patient, checker):
    document = file_document(personas, patient, title="Note")
    request = checked(personas, checker, make_request(personas, patient))
    do_mark_entered_in_error(
        document, reason="Filed to the wrong chart", acting_user=personas.administrator
    )
    with pytest.raises(Refused, match="can no longer be released"):
        release.do_release(personas.roi_specialist, request.public_id)
    assert not Packet.objects.exists()
    request.refresh_from_db()
    assert request.status == RequestStatus.QC


def test_a_coder_may_not_release_and_it_is_audited(personas, patient, checker, audit_rows):
    file_document(personas, patient, title="Note")
    request = checked(personas, checker, make_request(personas, patient))
    with pytest.raises(AccessDenied):
        release.do_release(personas.coder, request.public_id)
    assert audit_rows(action=Action.DISCLOSE, outcome=Outcome.DENIED)
    assert not Packet.objects.exists()


def test_part2_records_carry_the_notice_and_the_consent(personas, patient, checker):
    file_document(
        personas, patient, title="SUD note", sensitivity=[SensitiveCategory.SUBSTANCE_USE]
    )
    request = make_request(personas, patient, requester_type="payer", requester_name="Acme")
    authorize(
        personas,
        request,
        kind="part2",
        categories=[SensitiveCategory.SUBSTANCE_USE],
        purpose="Payment of claims",
    )
    checked(personas, checker, request)
    packet = release.do_release(personas.roi_specialist, request.public_id).packet
    whole = " ".join(packet_text(packet)).replace("\n", " ")
    assert "42 CFR part 2 prohibits unauthorized use or disclosure" in whole
    assert "Payment of claims" in whole  # the explanation of the consent
    assert "redisclosure" in whole.lower()  # released under the patient's authorization


def test_no_notice_for_the_patients_own_copy(personas, patient, checker):
    file_document(personas, patient, title="Note")
    request = checked(personas, checker, make_request(personas, patient))
    whole = " ".join(
        packet_text(release.do_release(personas.roi_specialist, request.public_id).packet)
    )
    assert "42 CFR part 2" not in whole and "Notice about redisclosure" not in whole


def test_amendment_statements_travel_with_the_documents(personas, patient, checker):
    from roi import amendments

    document = file_document(personas, patient, title="Note", body="Smoker.")
    file_document(personas, patient, title="Other note", body="Fine.")
    amendment = amendments.do_log_amendment(
        patient.public_id,
        acting_user=personas.roi_specialist,
        received_on=NOW.date(),
        document_ids=[document.public_id],
        requested_change="I have never smoked.",
    )
    amendments.do_deny_amendment(
        amendment.public_id, acting_user=personas.roi_specialist, basis="accurate_complete"
    )
    amendments.do_record_statement(
        amendment.public_id,
        acting_user=personas.roi_specialist,
        kind="disagreement",
        text="DISAGREE-STATEMENT-TEXT: I quit in 1990.",
        received_on=NOW.date(),
    )
    request = checked(personas, checker, make_request(personas, patient))
    whole = " ".join(
        packet_text(release.do_release(personas.roi_specialist, request.public_id).packet)
    )
    assert "DISAGREE-STATEMENT-TEXT" in whole and "I have never smoked." in whole
    assert "Statement of disagreement" in whole


def test_statements_of_a_document_not_released_stay_out(personas, patient, checker):
    from roi import amendments

    document = file_document(personas, patient, title="Old note", body="Smoker.", days_ago=400)
    file_document(personas, patient, title="Recent note", body="Fine.")
    amendment = amendments.do_log_amendment(
        patient.public_id,
        acting_user=personas.roi_specialist,
        received_on=NOW.date(),
        document_ids=[document.public_id],
        requested_change="NEVER-SMOKED-REQUEST",
    )
    amendments.do_deny_amendment(
        amendment.public_id,
        acting_user=personas.roi_specialist,
        basis="accurate_complete",
        send_with_disclosures=True,
    )
    assert amendments.statements_for_documents([document.public_id])
    request = checked(
        personas,
        checker,
        make_request(personas, patient, scope={"all": True, "date_from": "2026-01-01"}),
    )
    whole = " ".join(
        packet_text(release.do_release(personas.roi_specialist, request.public_id).packet)
    )
    assert "NEVER-SMOKED-REQUEST" not in whole and "Old note" not in whole
    assert "Recent note" in whole
