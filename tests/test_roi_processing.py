"""Processing a request: the proposal (scope, minimum necessary, sensitive categories,
entered in error, drafts), the specialist's decisions, and the quality check by a second
person."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.http import Http404

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from documents.actions import do_mark_entered_in_error
from documents.models import SensitiveCategory
from roi import processing
from roi.models import QualityCheck, ReleaseItem, RequestStatus, RoiPolicy
from roi.processing import Refused
from tests.test_roi_processing_support import (  # noqa: F401 - fixtures
    NOW,
    authorize,
    checker_fixture,
    file_document,
    make_request,
    media_fixture,
    patient_fixture,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(media):
    with time_machine.travel(NOW, tick=False):
        yield


def items_by_title(request):
    return {i.document.title: i for i in processing.items_of(request)}


def test_the_proposal_keeps_the_scope_and_excludes_what_may_not_go(personas, patient, audit_rows):
    file_document(personas, patient, title="Old note", days_ago=400)
    file_document(personas, patient, title="Recent note", days_ago=5)
    file_document(personas, patient, title="Consent", loinc="59284-0", days_ago=5)
    file_document(
        personas,
        patient,
        title="Therapy",
        days_ago=5,
        sensitivity=[SensitiveCategory.PSYCHOTHERAPY],
    )
    file_document(
        personas,
        patient,
        title="SUD note",
        days_ago=5,
        sensitivity=[SensitiveCategory.SUBSTANCE_USE],
    )
    wrong = file_document(personas, patient, title="Wrong chart", days_ago=5)
    do_mark_entered_in_error(wrong, reason="Wrong patient", acting_user=personas.administrator)
    request = make_request(
        personas,
        patient,
        requester_type="attorney",
        requester_name="Lee Counsel",
        scope={"all": True, "date_from": "2025-12-01", "date_to": "2026-03-10"},
    )
    authorize(personas, request)
    processing.do_propose(personas.roi_specialist, request.public_id)
    items = items_by_title(request)
    assert "Old note" not in items  # outside the dates: not even listed
    assert items["Recent note"].included and items["Recent note"].proposed
    assert not items["Consent"].included
    assert items["Consent"].reason.startswith("Minimum necessary")
    assert not items["Therapy"].included and "Psychotherapy" in items["Therapy"].reason
    assert not items["SUD note"].included and "Part 2" in items["SUD note"].reason
    assert not items["Wrong chart"].included and "Entered in error" in items["Wrong chart"].reason
    assert items["Recent note"].page_count == 1
    (event,) = audit_rows(object_type="roi.request", action=Action.UPDATE)
    assert event.detail["step"] == "propose" and event.patient_id == patient.public_id


def test_the_patients_own_request_gets_all_but_psychotherapy_notes(personas, patient):
    file_document(personas, patient, title="Consent", loinc="59284-0")
    file_document(
        personas, patient, title="SUD note", sensitivity=[SensitiveCategory.SUBSTANCE_USE]
    )
    file_document(personas, patient, title="Therapy", sensitivity=[SensitiveCategory.PSYCHOTHERAPY])
    request = make_request(personas, patient)
    processing.do_propose(personas.roi_specialist, request.public_id)
    items = items_by_title(request)
    assert items["Consent"].included  # no minimum necessary for the patient
    assert items["SUD note"].included
    assert not items["Therapy"].included


def test_specific_authorizations_open_their_categories_only(personas, patient):
    file_document(
        personas, patient, title="SUD note", sensitivity=[SensitiveCategory.SUBSTANCE_USE]
    )
    file_document(personas, patient, title="HIV result", sensitivity=[SensitiveCategory.HIV_STI])
    file_document(personas, patient, title="Therapy", sensitivity=[SensitiveCategory.PSYCHOTHERAPY])
    request = make_request(personas, patient, requester_type="payer", requester_name="Acme Health")
    # A HIPAA authorization naming SUD is not a Part 2 consent; one naming HIV is enough.
    authorize(
        personas, request, categories=[SensitiveCategory.SUBSTANCE_USE, SensitiveCategory.HIV_STI]
    )
    authorize(personas, request, kind="psychotherapy", categories=[SensitiveCategory.PSYCHOTHERAPY])
    processing.do_propose(personas.roi_specialist, request.public_id)
    items = items_by_title(request)
    assert items["HIV result"].included
    assert items["Therapy"].included
    assert not items["SUD note"].included


def test_an_expired_or_revoked_authorization_opens_nothing(personas, patient):
    file_document(personas, patient, title="HIV result", sensitivity=[SensitiveCategory.HIV_STI])
    request = make_request(personas, patient, requester_type="payer", requester_name="Acme Health")
    authorize(
        personas, request, categories=["hiv_sti"], expires_on=NOW.date() - dt.timedelta(days=1)
    )
    authorize(personas, request, categories=["hiv_sti"], revoked_on=NOW.date())
    processing.do_propose(personas.roi_specialist, request.public_id)
    assert not items_by_title(request)["HIV result"].included


def test_a_request_for_named_types_and_encounters(personas, patient):
    file_document(personas, patient, title="Note")
    file_document(personas, patient, title="Summary", loinc="18842-5")
    request = make_request(
        personas,
        patient,
        requester_type="payer",
        requester_name="Acme Health",
        scope={"all": False, "document_types": ["18842-5"]},
    )
    processing.do_propose(personas.roi_specialist, request.public_id)
    assert list(items_by_title(request)) == ["Summary"]


def test_a_request_with_an_empty_scope_proposes_nothing(personas, patient):
    file_document(personas, patient, title="Note")
    request = make_request(personas, patient, scope={"all": False})
    assert processing.do_propose(personas.roi_specialist, request.public_id) == []


def test_proposing_again_keeps_decisions_and_adds_new_documents(personas, patient):
    file_document(personas, patient, title="First")
    request = make_request(personas, patient)
    first = processing.do_propose(personas.roi_specialist, request.public_id)[0]
    processing.do_decide_item(
        personas.roi_specialist,
        request.public_id,
        first.document.public_id,
        include=False,
        reason="Duplicate",
    )
    file_document(personas, patient, title="Second", days_ago=3)
    processing.do_propose(personas.roi_specialist, request.public_id)
    items = items_by_title(request)
    assert not items["First"].included and items["Second"].included


def test_the_specialist_adjusts_with_a_reason(personas, patient, audit_rows):
    document = file_document(personas, patient, title="Consent", loinc="59284-0")
    request = make_request(personas, patient, requester_type="payer", requester_name="Acme")
    processing.do_propose(personas.roi_specialist, request.public_id)
    with pytest.raises(ValidationError, match="reason"):
        processing.do_decide_item(
            personas.roi_specialist, request.public_id, document.public_id, include=True, reason=" "
        )
    item = processing.do_decide_item(
        personas.roi_specialist,
        request.public_id,
        document.public_id,
        include=True,
        reason="The payer asked for the consent to the procedure",
    )
    assert item.included and not item.proposed and item.decided_by == personas.roi_specialist
    assert audit_rows(action=Action.UPDATE)[-1].detail["included"] is True


def test_what_can_never_go_out_cannot_be_included(personas, patient, audit_rows):
    document = file_document(
        personas, patient, title="Therapy", sensitivity=[SensitiveCategory.PSYCHOTHERAPY]
    )
    request = make_request(personas, patient)
    processing.do_propose(personas.roi_specialist, request.public_id)
    with pytest.raises(Refused, match="not specifically authorized"):
        processing.do_decide_item(
            personas.roi_specialist, request.public_id, document.public_id, include=True, reason="x"
        )
    assert not ReleaseItem.objects.get(document=document).included
    assert audit_rows(outcome=Outcome.DENIED)[-1].reason.startswith("Sensitive")


def test_a_document_outside_the_scope_cannot_be_added(personas, patient, audit_rows):
    old = file_document(personas, patient, title="Old", days_ago=400)
    request = make_request(personas, patient, scope={"all": True, "date_from": "2026-01-01"})
    processing.do_propose(personas.roi_specialist, request.public_id)
    with pytest.raises(Refused, match="outside the request's scope"):
        processing.do_decide_item(
            personas.roi_specialist, request.public_id, old.public_id, include=True, reason="x"
        )
    assert audit_rows(outcome=Outcome.DENIED)


def test_a_coder_is_refused_and_the_refusal_is_audited(personas, patient, audit_rows):
    request = make_request(personas, patient)
    with pytest.raises(AccessDenied):
        processing.do_propose(personas.coder, request.public_id)
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.object_type == "roi.request"
    assert not ReleaseItem.objects.exists()


def test_an_outsider_gets_404_audited(personas, patient, audit_rows):
    request = make_request(personas, patient)
    from recordroom.testing import make_user

    other = make_user("rita.elsewhere", "roi_specialist")
    other.facilities.add(personas.other_facility)
    with pytest.raises(Http404):
        processing.do_propose(other, request.public_id)
    assert audit_rows(outcome=Outcome.DENIED)[-1].reason.startswith("no such request")


def test_a_pended_request_cannot_be_processed(personas, patient):
    request = make_request(personas, patient, status=RequestStatus.PENDED)
    with pytest.raises(Refused, match="pended"):
        processing.do_propose(personas.roi_specialist, request.public_id)


# --- the quality check -----------------------------------------------------------------


def submitted(personas, patient):
    file_document(personas, patient, title="Note")
    request = make_request(personas, patient)
    processing.do_propose(personas.roi_specialist, request.public_id)
    processing.do_submit_for_check(personas.roi_specialist, request.public_id)
    request.refresh_from_db()
    return request


def test_the_processor_cannot_check_their_own_work(personas, patient, audit_rows):
    request = submitted(personas, patient)
    assert request.status == RequestStatus.QC
    with pytest.raises(Refused, match="someone else"):
        processing.do_quality_check(personas.roi_specialist, request.public_id, passed=True)
    assert not QualityCheck.objects.exists()
    assert audit_rows(outcome=Outcome.DENIED)


def test_a_second_person_passes_the_check(personas, patient, checker):
    request = submitted(personas, patient)
    assert processing.ready_to_release(request)
    processing.do_quality_check(checker, request.public_id, passed=True)
    request.refresh_from_db()
    assert processing.ready_to_release(request) == ""


def test_a_failed_check_sends_it_back_with_notes(personas, patient, checker):
    request = submitted(personas, patient)
    with pytest.raises(ValidationError, match="what is wrong"):
        processing.do_quality_check(checker, request.public_id, passed=False)
    processing.do_quality_check(checker, request.public_id, passed=False, notes="Wrong dates")
    request.refresh_from_db()
    assert request.status == RequestStatus.IN_PROCESS
    assert "quality check" in processing.ready_to_release(request)


def test_without_a_required_check_it_is_released_from_in_process(personas, patient):
    RoiPolicy.objects.create(
        effective_from=dt.date(2020, 1, 1),
        due_days={"patient": 30},
        quality_check_required=False,
        created_at=NOW,
    )
    file_document(personas, patient, title="Note")
    request = make_request(personas, patient)
    processing.do_propose(personas.roi_specialist, request.public_id)
    assert processing.ready_to_release(request) == ""
    with pytest.raises(Refused, match="no quality check"):
        processing.do_submit_for_check(personas.roi_specialist, request.public_id)


def test_no_minimum_necessary_for_continuing_care(personas, patient):
    file_document(personas, patient, title="Consent", loinc="59284-0")
    file_document(
        personas, patient, title="SUD note", sensitivity=[SensitiveCategory.SUBSTANCE_USE]
    )
    request = make_request(personas, patient, requester_type="provider", requester_name="Dr Far")
    processing.do_propose(personas.roi_specialist, request.public_id)
    items = items_by_title(request)
    assert items["Consent"].included  # treatment: the whole record
    assert not items["SUD note"].included  # but Part 2 still needs consent


def test_law_enforcement_gets_nothing_by_default(personas, patient):
    file_document(personas, patient, title="Note")
    request = make_request(personas, patient, requester_type="law_enforcement", requester_name="PD")
    processing.do_propose(personas.roi_specialist, request.public_id)
    assert not items_by_title(request)["Note"].included
