"""Denials of a request, in whole or in part (45 CFR 164.524(a)(2)-(4), (d)).

The basis comes from the rule's lists, as data (:data:`BASES`):

- **unreviewable** (164.524(a)(2)): psychotherapy notes; information compiled for
  litigation; an inmate's request that would endanger others; research the patient
  agreed to suspend access for while it is under way; Privacy Act records; information
  obtained from someone other than a provider under a promise of confidentiality;
- **reviewable** (164.524(a)(3)), by a licensed health care professional who did not
  take part in the first decision: danger to the life or physical safety of the patient
  or another person; the information names another person and access is likely to cause
  them substantial harm; a personal representative's access is likely to cause
  substantial harm;
- for a **third party** (not the right of access): no valid authorization, no authority,
  no records within the scope.

A **whole** denial closes the processing (status *denied*); a **partial** one leaves the
rest of the release to go on. Either way the letter (kind ``denial``) is generated and
kept: the basis in plain language, whether it may be reviewed and how to ask, how to
complain to the organization and to HHS, and — for a partial denial — that the rest is
released. A review (:func:`do_record_review`) is recorded by a designated licensed
health care professional (``roi.review_denials``, clinicians by default; not the HIM
administrator's by default) who did not take part in the denial; the denials waiting
for one are listed by :func:`reviews_waiting` (/roi/denial-reviews/).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from recordroom import clock
from roi.letters import issue_letter
from roi.models import Denial, LetterKind, RequestStatus, RoiRequest
from roi.permissions import RoiPermission as RP
from roi.processing import Refused, audit, event, find_request, locked, refuse

# value: (label, reviewable, the sentence in the letter)
BASES: dict[str, tuple[str, bool, str]] = {
    "psychotherapy_notes": (
        "Psychotherapy notes (164.524(a)(1)(i))",
        False,
        "The records asked for are psychotherapy notes, which are not part of the right of access.",
    ),
    "litigation": (
        "Compiled for a legal proceeding (164.524(a)(1)(ii))",
        False,
        "The information was compiled in reasonable anticipation of, or for use in, a civil, "
        "criminal or administrative action or proceeding.",
    ),
    "inmate": (
        "Inmate request endangering safety (164.524(a)(2)(ii))",
        False,
        "Providing a copy would jeopardize the health, safety, security, custody or "
        "rehabilitation of you or other inmates, or the safety of others at the "
        "correctional institution.",
    ),
    "research": (
        "Research in progress (164.524(a)(2)(iii))",
        False,
        "The information was created or obtained in research that includes treatment, and "
        "you agreed to the suspension of access while the research is in progress; access "
        "will be restored when it is completed.",
    ),
    "privacy_act": (
        "Privacy Act records (164.524(a)(2)(iv))",
        False,
        "The records are subject to the Privacy Act, 5 U.S.C. 552a, and the denial is "
        "permitted under that Act.",
    ),
    "confidential_source": (
        "Obtained in confidence from someone else (164.524(a)(2)(v))",
        False,
        "The information was obtained from someone other than a health care provider under "
        "a promise of confidentiality, and access would likely reveal the source.",
    ),
    "endanger_life": (
        "Danger to life or physical safety (164.524(a)(3)(i))",
        True,
        "A licensed health care professional has determined that access is reasonably "
        "likely to endanger the life or physical safety of you or another person.",
    ),
    "harm_to_other": (
        "Substantial harm to another person named (164.524(a)(3)(ii))",
        True,
        "The information refers to another person, and a licensed health care professional "
        "has determined that access is reasonably likely to cause that person substantial "
        "harm.",
    ),
    "representative_harm": (
        "Substantial harm via a personal representative (164.524(a)(3)(iii))",
        True,
        "The request is made by a personal representative, and a licensed health care "
        "professional has determined that access by that representative is reasonably "
        "likely to cause substantial harm to the patient or another person.",
    ),
    "invalid_authorization": (
        "No valid authorization (164.508)",
        False,
        "The request does not come with a valid authorization signed by the patient (or "
        "their personal representative) for this disclosure.",
    ),
    "no_authority": (
        "Authority not shown",
        False,
        "The requester's identity or authority to receive these records could not be verified.",
    ),
    "no_records": (
        "No records within the request",
        False,
        "We hold no records within the dates and types asked for.",
    ),
}
BASIS_CHOICES = [(value, label) for value, (label, _, _) in BASES.items()]
HHS_COMPLAINT = (
    "the Secretary of the U.S. Department of Health and Human Services, Office for Civil "
    "Rights, 200 Independence Avenue S.W., Washington, D.C. 20201, or online at "
    "https://www.hhs.gov/ocr/complaints"
)
DENIABLE = (RequestStatus.LOGGED, RequestStatus.PENDED, RequestStatus.IN_PROCESS, RequestStatus.QC)


def is_reviewable(basis: str) -> bool:
    return BASES[basis][1]


def letter_body(request: RoiRequest, denial: Denial) -> str:
    label, reviewable, sentence = BASES[denial.basis]
    paragraphs = [
        f"To: {request.requester_name}",
        f"Re: your request {request.number}, received {request.received_on.isoformat()}.",
        (
            "We have denied part of your request. "
            if denial.partial
            else "We have denied your request. "
        )
        + f"The reason: {sentence}",
    ]
    if denial.explanation:
        paragraphs.append(denial.explanation)
    if denial.partial:
        paragraphs.append(
            "The rest of the records you asked for are released to you; only the part "
            "described above is withheld."
        )
    if reviewable:
        paragraphs.append(
            "You have the right to have this denial reviewed by a licensed health care "
            "professional chosen by us who did not take part in the original decision. To ask "
            "for a review, write to the Health Information Management department quoting the "
            f"request number {request.number}. We will tell you the outcome of the review in "
            "writing and act on it."
        )
    else:
        paragraphs.append("This denial is not subject to review.")
    paragraphs.append(
        "If you believe your privacy rights have been violated, you may complain to our "
        "Privacy Officer (write to the Privacy Officer at this address, or call the Health "
        f"Information Management department), or to {HHS_COMPLAINT}. We will not retaliate "
        "against you for filing a complaint."
    )
    if denial.basis in ("psychotherapy_notes", "confidential_source", "privacy_act"):
        paragraphs.append(
            "If we do not hold the information but know who does, we will tell you where to "
            "direct your request."
        )
    return "\n\n".join(paragraphs)


def _determiner(user, determined_by):
    """The licensed professional a reviewable denial's determination is recorded as
    made by: given as a user's public id, one of ``roi.access.licensed_professionals``."""
    from roi.access import licensed_professionals

    wanted = str(determined_by or "").strip()
    for candidate in licensed_professionals(user):
        if wanted and str(candidate.public_id) == wanted:
            return candidate
    raise ValidationError(
        {
            "determined_by": "A reviewable denial rests on a licensed health care "
            "professional's determination (45 CFR 164.524(a)(3)): choose who made it."
        }
    )


def do_deny(
    user,
    public_id,
    *,
    basis: str,
    explanation: str = "",
    partial: bool = False,
    determined_by=None,
) -> Denial:
    """Deny the request in whole or in part, with the letter. A reviewable basis needs
    ``determined_by``: the public id of the licensed professional who made the
    determination."""
    request = find_request(user, public_id, action=Action.UPDATE)
    explanation = (explanation or "").strip()
    if basis not in BASES:
        raise ValidationError("Choose the basis of the denial.")
    determiner = _determiner(user, determined_by) if is_reviewable(basis) else None
    if len(explanation) > 4000:
        raise ValidationError("The explanation is too long (4,000 characters at most).")
    if request.status not in DENIABLE:
        raise refuse(
            user,
            request,
            Action.UPDATE,
            f"A request that is {request.get_status_display().lower()} cannot be denied.",
        )
    if partial and not request.items.filter(included=True).exists():
        raise ValidationError(
            "A partial denial needs something released: include documents, or deny in whole."
        )
    with transaction.atomic():
        request = locked(request)
        if request.status not in DENIABLE:
            raise Refused("The request changed meanwhile; reload it.")
        denial = Denial.objects.create(
            request=request,
            partial=partial,
            basis=basis,
            explanation=explanation,
            reviewable=is_reviewable(basis),
            denied_by=user,
            determined_by=determiner,
            denied_at=clock.now(),
        )
        letter = issue_letter(
            LetterKind.DENIAL, request.patient, letter_body(request, denial), user, request=request
        )
        event(
            request,
            "denied_in_part" if partial else "denied",
            user,
            to_status="" if partial else RequestStatus.DENIED,
            basis=basis,
            letter=str(letter.public_id),
        )
        audit(
            user,
            request,
            Action.UPDATE,
            step="deny",
            basis=basis,
            partial=partial,
            reviewable=denial.reviewable,
            letter=str(letter.public_id),
        )
    return denial


def _denial(user, request: RoiRequest, denial_id) -> Denial:
    try:
        denial = request.denials.filter(pk=int(denial_id)).first()
    except (TypeError, ValueError):
        denial = None
    if denial is None:
        raise refuse(user, request, Action.UPDATE, "No such denial on this request.")
    return denial


def do_request_review(user, public_id, denial_id) -> Denial:
    """Record that the requester asked for a review of a reviewable denial."""
    request = find_request(user, public_id, action=Action.UPDATE)
    denial = _denial(user, request, denial_id)
    if not denial.reviewable:
        raise refuse(user, request, Action.UPDATE, "This denial is not subject to review.")
    if denial.review_requested_at:
        raise refuse(user, request, Action.UPDATE, "A review was already asked for.")
    with transaction.atomic():
        Denial.objects.filter(pk=denial.pk).update(review_requested_at=clock.now())
        event(request, "review_requested", user, denial=denial.pk)
        audit(user, request, Action.UPDATE, step="review_requested", denial=denial.pk)
    denial.refresh_from_db()
    return denial


def took_part(denial: Denial, user) -> bool:
    """Whether ``user`` took part in the denial: entered it or made the determination
    it rests on (neither may review it, 164.524(a)(4))."""
    return user.pk in (denial.denied_by_id, denial.determined_by_id)


def review_letter_body(request: RoiRequest, denial: Denial, *, upheld: bool, note: str) -> str:
    """The written notice of the reviewing official's decision (164.524(d)(4))."""
    label = BASES[denial.basis][0] if denial.basis in BASES else denial.basis
    day = timezone.localdate(denial.denied_at)
    paragraphs = [
        f"You asked for a review of our decision of {day:%B} {day.day}, {day.year} to deny "
        f"{'part of ' if denial.partial else ''}your request {request.number} ({label}).",
        "The review was made by a licensed health care professional designated by us who "
        "did not take part in the original decision.",
    ]
    if upheld:
        paragraphs.append("The reviewing official upheld the denial.")
        paragraphs.append(
            "You may complain to us (write to the Health Information Management department) "
            f"or to {HHS_COMPLAINT}. We will not retaliate against you for filing a complaint."
        )
    else:
        paragraphs.append(
            "The reviewing official overturned the denial: we will now give you access to "
            "the information as you asked, and write to you when it is ready."
        )
    if note:
        paragraphs.append(f"The reviewer's note: {note}")
    return "\n\n".join(paragraphs)


def reviews_waiting(user) -> list[Denial]:
    """The reviewable denials whose review was asked for and not yet recorded, at the
    user's facilities, oldest request first — for a designated licensed health care
    professional (``roi.review_denials``). Restricted records without a relationship
    are left out. Audited as one view listing the patients shown; a refusal is audited
    before it is raised."""
    from accounts.access import require_permission
    from audit.actions import record_event
    from patients.access import facility_ids, may_open_restricted

    require_permission(user, RP.REVIEW_DENIALS, action=Action.VIEW, object_type="roi.denial")
    rows = (
        Denial.objects.filter(
            reviewable=True,
            review_requested_at__isnull=False,
            reviewed_by__isnull=True,
            request__facility_id__in=facility_ids(user),
        )
        .select_related("request", "request__patient", "denied_by", "determined_by")
        .order_by("review_requested_at", "pk")
    )
    shown = [
        d
        for d in rows[:500]
        if not d.request.patient.is_restricted or may_open_restricted(user, d.request.patient)
    ]
    for denial in shown:
        denial.basis_label = BASES[denial.basis][0] if denial.basis in BASES else denial.basis
        denial.may_review = not took_part(denial, user)
    record_event(
        user,
        Action.VIEW,
        object_type="roi.denial",
        object_id="reviews-waiting",
        detail={
            "count": len(shown),
            "patients": sorted({str(d.request.patient.public_id) for d in shown}),
        },
    )
    return shown


def do_record_review(user, public_id, denial_id, *, upheld: bool, note: str = "") -> Denial:
    """The reviewing professional's decision: a designated licensed health care
    professional (``roi.review_denials``), never the person who denied."""
    request = find_request(user, public_id, permission=RP.REVIEW_DENIALS, action=Action.UPDATE)
    denial = _denial(user, request, denial_id)
    note = (note or "").strip()
    if not denial.review_requested_at:
        raise refuse(user, request, Action.UPDATE, "No review was asked for.")
    if denial.reviewed_by_id:
        raise refuse(user, request, Action.UPDATE, "The review is already recorded.")
    if took_part(denial, user):
        raise refuse(
            user,
            request,
            Action.UPDATE,
            "The review must be made by someone who did not take part in the denial.",
        )
    if len(note) > 150:
        raise ValidationError("The reviewer's note is too long (150 characters at most).")
    outcome = ("Denial upheld" if upheld else "Denial overturned") + (f": {note}" if note else "")
    with transaction.atomic():
        request = locked(request)
        recorded = Denial.objects.filter(pk=denial.pk, reviewed_by__isnull=True).update(
            reviewed_by=user, review_outcome=outcome[:200]
        )
        if not recorded:
            raise Refused("The review was recorded meanwhile by someone else; reload.")
        denial.refresh_from_db()
        letter = issue_letter(
            LetterKind.DENIAL_REVIEW,
            request.patient,
            review_letter_body(request, denial, upheld=upheld, note=note),
            user,
            request=request,
            title="The review of our decision on your request for records",
        )
        reopen = not upheld and request.status == RequestStatus.DENIED and not denial.partial
        event(
            request,
            "review_recorded",
            user,
            to_status=RequestStatus.IN_PROCESS if reopen else "",
            denial=denial.pk,
            upheld=upheld,
            letter=str(letter.public_id),
        )
        audit(
            user,
            request,
            Action.UPDATE,
            step="review_recorded",
            denial=denial.pk,
            upheld=upheld,
            letter=str(letter.public_id),
        )
    denial.refresh_from_db()
    return denial


def open_letter(user, public_id, letter_id):
    """(letter, open file) of one of the request's letters (denial, cover, …) for
    ``roi.process`` holders; audited as a view of the letter."""
    from django.http import Http404

    from audit.actions import record_event
    from audit.models import Outcome
    from roi.processing import _parse

    request = find_request(user, public_id)
    key = _parse(letter_id)
    letter = request.letters.filter(public_id=key).first() if key else None
    if letter is None or not letter.file:
        record_event(
            user,
            Action.VIEW,
            outcome=Outcome.DENIED,
            patient_id=request.patient.public_id,
            object_type="roi.letter",
            object_id=str(letter_id)[:64],
            reason="no such letter on the request",
        )
        raise Http404("No such letter")
    record_event(
        user,
        Action.VIEW,
        patient_id=request.patient.public_id,
        object_type="roi.letter",
        object_id=str(letter.public_id),
        detail={"request": str(request.public_id), "kind": letter.kind, "sha256": letter.sha256},
    )
    return letter, letter.file.open("rb")
