"""Denials in whole or part: the basis from the 164.524 lists, reviewable or not, the
letter (basis, review right, complaint to the entity and HHS) generated and kept, and
the review by a designated licensed health care professional who did not deny."""

from __future__ import annotations

import io

import pytest
import time_machine
from django.core.exceptions import ValidationError
from pypdf import PdfReader

from accounts.access import AccessDenied
from accounts.roles import Role
from audit.models import Action, Outcome
from recordroom.testing import make_user, sign_in
from roi import denials, processing
from roi.models import Denial, Letter, LetterKind, RequestStatus
from roi.processing import Refused
from tests.test_roi_processing_support import (  # noqa: F401 - fixtures
    NOW,
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


@pytest.fixture
def reviewer(personas):
    """A clinician the organization designated to review denials."""
    user = make_user("dr.reviewer", Role.CLINICIAN, Role.DENIAL_REVIEWER)
    user.facilities.add(personas.facility)
    return user


def deny(personas, request, basis, **kwargs):
    """A denial by the ROI specialist; a reviewable one on the clinician's determination."""
    if denials.is_reviewable(basis):
        kwargs.setdefault("determined_by", str(personas.clinician.public_id))
    return denials.do_deny(personas.roi_specialist, request.public_id, basis=basis, **kwargs)


def letter_text(letter: Letter) -> str:
    with letter.file.open("rb") as handle:
        reader = PdfReader(io.BytesIO(handle.read()))
    return " ".join(page.extract_text() for page in reader.pages).replace("\n", " ")


def test_a_whole_unreviewable_denial_with_its_letter(personas, patient, audit_rows):
    request = make_request(personas, patient)
    denial = denials.do_deny(
        personas.roi_specialist, request.public_id, basis="psychotherapy_notes", explanation=""
    )
    assert not denial.reviewable and not denial.partial
    request.refresh_from_db()
    assert request.status == RequestStatus.DENIED
    letter = Letter.objects.get(request=request, kind=LetterKind.DENIAL)
    text = letter_text(letter)
    assert "psychotherapy notes" in text and "not subject to review" in text
    assert "Department of Health and Human Services" in text and "Privacy Officer" in text
    assert len(letter.sha256) == 64
    event = audit_rows(action=Action.UPDATE)[-1]
    assert event.detail["step"] == "deny" and event.detail["reviewable"] is False


def test_a_reviewable_denial_says_how_to_ask_for_review(personas, patient):
    request = make_request(personas, patient)
    with pytest.raises(ValidationError, match="licensed health care professional's determination"):
        denials.do_deny(personas.roi_specialist, request.public_id, basis="endanger_life")
    with pytest.raises(ValidationError, match="choose who made it"):
        denials.do_deny(
            personas.roi_specialist,
            request.public_id,
            basis="endanger_life",
            determined_by=str(personas.coder.public_id),  # not a licensed professional
        )
    denial = deny(personas, request, "endanger_life")
    assert denial.reviewable and denial.determined_by == personas.clinician
    text = letter_text(Letter.objects.get(request=request, kind=LetterKind.DENIAL))
    assert "right to have this denial reviewed" in text and "licensed health care" in text


def test_a_partial_denial_leaves_the_rest_to_release(personas, patient):
    file_document(personas, patient, title="Note")
    request = make_request(personas, patient)
    with pytest.raises(ValidationError, match="needs something released"):
        deny(personas, request, "harm_to_other", partial=True)
    processing.do_propose(personas.roi_specialist, request.public_id)
    deny(personas, request, "harm_to_other", partial=True)
    request.refresh_from_db()
    assert request.status == RequestStatus.IN_PROCESS
    assert "rest of the records" in letter_text(Letter.objects.get(request=request))


def test_an_unknown_basis_changes_nothing(personas, patient):
    request = make_request(personas, patient)
    with pytest.raises(ValidationError, match="basis"):
        denials.do_deny(personas.roi_specialist, request.public_id, basis="because")
    assert not Denial.objects.exists() and not Letter.objects.exists()


def test_a_released_request_cannot_be_denied(personas, patient, audit_rows):
    request = make_request(personas, patient, status=RequestStatus.RELEASED)
    with pytest.raises(Refused, match="released cannot be denied"):
        denials.do_deny(personas.roi_specialist, request.public_id, basis="no_records")
    assert audit_rows(outcome=Outcome.DENIED)


def test_a_coder_cannot_deny_and_it_is_audited(personas, patient, audit_rows):
    request = make_request(personas, patient)
    with pytest.raises(AccessDenied):
        denials.do_deny(personas.coder, request.public_id, basis="no_records")
    assert audit_rows(outcome=Outcome.DENIED)[0].object_type == "roi.request"


def test_the_review_is_by_a_designated_professional_who_took_no_part_and_may_reopen(
    personas, patient, checker, reviewer, audit_rows
):
    request = make_request(personas, patient)
    denial = deny(personas, request, "endanger_life")
    with pytest.raises(Refused, match="No review was asked"):
        denials.do_record_review(reviewer, request.public_id, denial.pk, upheld=True)
    denials.do_request_review(personas.roi_specialist, request.public_id, denial.pk)
    # Neither an ROI specialist, the HIM administrator nor a clinician who was not
    # designated is the reviewing official: refused, and the refusal audited.
    for user in (checker, personas.administrator, personas.other_clinician):
        with pytest.raises(AccessDenied):
            denials.do_record_review(user, request.public_id, denial.pk, upheld=False)
        refused = audit_rows(outcome=Outcome.DENIED)[-1]
        assert refused.actor == user and refused.object_id == str(request.public_id)
    # The professional whose determination the denial rests on may not review it.
    determiner = make_user("dr.determiner", Role.CLINICIAN, Role.DENIAL_REVIEWER)
    determiner.facilities.add(personas.facility)
    other = make_request(personas, patient)
    own = deny(personas, other, "endanger_life", determined_by=str(determiner.public_id))
    denials.do_request_review(personas.roi_specialist, other.public_id, own.pk)
    with pytest.raises(Refused, match="did not take part"):
        denials.do_record_review(determiner, other.public_id, own.pk, upheld=False)
    # Nor may the one who entered it.
    both = make_user("dr.both", Role.ROI_SPECIALIST, Role.CLINICIAN, Role.DENIAL_REVIEWER)
    both.facilities.add(personas.facility)
    third = make_request(personas, patient)
    entered = denials.do_deny(
        both, third.public_id, basis="endanger_life", determined_by=str(reviewer.public_id)
    )
    denials.do_request_review(both, third.public_id, entered.pk)
    with pytest.raises(Refused, match="did not take part"):
        denials.do_record_review(both, third.public_id, entered.pk, upheld=False)

    denial = denials.do_record_review(
        reviewer, request.public_id, denial.pk, upheld=False, note="Safe"
    )
    assert denial.reviewed_by == reviewer and denial.review_outcome == "Denial overturned: Safe"
    request.refresh_from_db()
    assert request.status == RequestStatus.IN_PROCESS
    text = letter_text(Letter.objects.get(request=request, kind=LetterKind.DENIAL_REVIEW))
    assert "overturned the denial" in text and request.number in text and "Safe" in text
    with pytest.raises(Refused, match="already recorded"):
        denials.do_record_review(reviewer, request.public_id, denial.pk, upheld=True)


def test_an_upheld_review_says_where_to_complain(personas, patient, reviewer):
    request = make_request(personas, patient)
    denial = deny(personas, request, "harm_to_other")
    denials.do_request_review(personas.roi_specialist, request.public_id, denial.pk)
    denials.do_record_review(reviewer, request.public_id, denial.pk, upheld=True)
    text = letter_text(Letter.objects.get(request=request, kind=LetterKind.DENIAL_REVIEW))
    assert "upheld the denial" in text and "Department of Health and Human Services" in text
    request.refresh_from_db()
    assert request.status == RequestStatus.DENIED


def test_the_reviews_waiting_page_is_the_designated_reviewers(
    client, personas, patient, reviewer, audit_rows
):
    request = make_request(personas, patient)
    denial = deny(personas, request, "endanger_life", explanation="Risk")
    unasked = make_request(personas, patient)
    deny(personas, unasked, "endanger_life")
    denials.do_request_review(personas.roi_specialist, request.public_id, denial.pk)

    for outsider in (personas.roi_specialist, personas.clinician):
        sign_in(client, outsider)
        response = client.get("/roi/denial-reviews/")
        assert response.status_code == 403
        assert audit_rows(outcome=Outcome.DENIED)[-1].object_type == "roi.denial"

    sign_in(client, reviewer)
    page = client.get("/roi/denial-reviews/")
    assert page.status_code == 200
    text = page.content.decode()
    assert request.number in text and unasked.number not in text and "Risk" in text
    seen = audit_rows(object_type="roi.denial", outcome=Outcome.ALLOWED)[-1]
    assert seen.detail["patients"] == [str(patient.public_id)]
    answer = client.post(
        f"/roi/requests/{request.public_id}/denials/{denial.pk}/review/",
        {"upheld": "1", "note": "Risk confirmed"},
    )
    assert answer.status_code == 302 and answer["Location"] == "/roi/denial-reviews/"
    denial.refresh_from_db()
    assert denial.reviewed_by == reviewer
    assert denial.review_outcome == "Denial upheld: Risk confirmed"
    assert request.number not in client.get("/roi/denial-reviews/").content.decode()


def test_an_unreviewable_denial_cannot_be_reviewed(personas, patient):
    request = make_request(personas, patient)
    denial = deny(personas, request, "litigation")
    with pytest.raises(Refused, match="not subject to review"):
        denials.do_request_review(personas.roi_specialist, request.public_id, denial.pk)


def test_the_licensed_professionals_offered_on_the_deny_form(personas, reviewer):
    """Who a reviewable denial's determination may be recorded as made by: those who
    author clinical documentation or review denials, at the specialist's facilities —
    found in one query, not by checking every user."""
    from roi.access import licensed_professionals, specialists

    offered = licensed_professionals(personas.roi_specialist)
    assert personas.clinician in offered and reviewer in offered
    assert personas.coder not in offered and personas.roi_specialist not in offered
    assert personas.roi_specialist in specialists(personas.roi_specialist)
    assert personas.clinician not in specialists(personas.roi_specialist)
