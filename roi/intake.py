"""Intake and validation of release-of-information requests.

1. **Log** (:func:`do_log_request`): who asks (requester type, identity, address), for
   which patient (chosen through the MPI by public id), received when, what (``scope``:
   all, a date range, encounters, document types), in which format and delivery, how
   urgent. The due date comes from the ROI policy (:mod:`roi.policy`).
2. **Attach** (:func:`do_attach`) the scanned request, authorization, proof of identity or
   authority, subpoena, court order or satisfactory assurance — checked by content, size
   limited, hashed, never overwritten.
3. **Authorization** (:func:`do_record_authorization`): the specialist ticks the
   164.508(c) checklist (:mod:`roi.authorizations`); expiry and revocation are checked.
4. **Revoke** (:func:`do_revoke_authorization`): a written revocation pends an open
   request that relied on the authorization.
5. **Check** (:func:`do_check`): what the requester type needs (:func:`missing`). Anything
   missing pends the request with the reasons and a letter to the requester; when nothing
   is missing the request moves to *in process* for :mod:`roi.processing`.
6. **Extend** (:func:`do_extend`): once, inside the first period, with a written notice.

Every function takes the acting user, checks the permission (audited refusal before
raising, outside the transaction) and audits the work in the same transaction; every
status change is a :class:`roi.models.RequestEvent`.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from accounts.access import require_permission
from audit.models import Action
from documents import integrity
from documents.models import SensitiveCategory
from patients.access import access_patient, facility_ids
from patients.models import IdentifierKind
from recordroom import clock
from roi import authorizations, policy
from roi.letters import issue_letter
from roi.models import (
    AttachmentKind,
    Authorization,
    Delivery,
    Format,
    LetterKind,
    RequestAttachment,
    RequesterType,
    RequestStatus,
    RoiRequest,
    Urgency,
)
from roi.permissions import RoiPermission as RP
from roi.processing import audit, event, find_request, refuse

# Requester types whose disclosure needs the patient's authorization (164.508). A payer
# asking for payment needs none (164.506: treatment, payment and operations).
NEEDS_AUTHORIZATION = {
    RequesterType.ATTORNEY,
    RequesterType.RESEARCH,
    RequesterType.OTHER,
}
# Statuses that validation may act on; with QC, the statuses whose clock still runs.
OPEN_STATUSES = (RequestStatus.LOGGED, RequestStatus.PENDED, RequestStatus.IN_PROCESS)
RUNNING_STATUSES = (*OPEN_STATUSES, RequestStatus.QC)
_NUMBER = re.compile(r"^REQ-(\d{4})-(\d{6})$")


@dataclass(frozen=True)
class RequestInput:
    requester_type: str
    requester_name: str
    received_on: dt.date
    requester_organization: str = ""
    requester_address: str = ""
    requester_email: str = ""
    requester_phone: str = ""
    identity_verified: str = ""
    purpose: str = ""
    urgency: str = Urgency.ROUTINE
    scope: dict | None = None
    format: str = Format.ELECTRONIC
    delivery: str = Delivery.PORTAL


def _clean_scope(scope: dict | None) -> dict:
    scope = dict(scope or {})
    cleaned: dict = {"all": bool(scope.get("all"))}
    for key in ("date_from", "date_to"):
        value = scope.get(key)
        if value:
            try:
                cleaned[key] = dt.date.fromisoformat(str(value)).isoformat()
            except ValueError as exc:
                raise ValidationError({key: f"{value!s:.20} is not a date (YYYY-MM-DD)."}) from exc
    if (
        cleaned.get("date_from")
        and cleaned.get("date_to")
        and cleaned["date_from"] > cleaned["date_to"]
    ):
        raise ValidationError({"date_to": "The end of the date range is before its start."})
    cleaned["encounters"] = [str(uuid.UUID(str(e))) for e in scope.get("encounters") or []]
    cleaned["document_types"] = [str(t)[:10] for t in scope.get("document_types") or []]
    asked = [str(c) for c in scope.get("sensitive_categories") or []]
    if any(c not in SensitiveCategory.values for c in asked):
        raise ValidationError({"sensitive_categories": "Unknown sensitive category."})
    cleaned["sensitive_categories"] = sorted(set(asked))
    if not (
        cleaned["all"]
        or cleaned.get("date_from")
        or cleaned.get("date_to")
        or cleaned["encounters"]
        or cleaned["document_types"]
    ):
        raise ValidationError(
            {"scope": "Say what is asked for: all records, a date range, or document types."}
        )
    return cleaned


def _validate(data: RequestInput, today: dt.date) -> None:
    errors = {}
    if data.requester_type not in RequesterType.values:
        errors["requester_type"] = "Choose who is asking."
    if not data.requester_name.strip():
        errors["requester_name"] = "Give the requester's name."
    if data.received_on > today:
        errors["received_on"] = "The date received cannot be in the future."
    if data.urgency not in Urgency.values:
        errors["urgency"] = "Choose routine or urgent."
    if data.format not in Format.values:
        errors["format"] = "Choose a format."
    if data.delivery not in Delivery.values:
        errors["delivery"] = "Choose a delivery."
    if (
        data.delivery in (Delivery.PORTAL, Delivery.SECURE_EMAIL)
        and data.format != Format.ELECTRONIC
    ):
        errors["delivery"] = "Portal and secure e-mail deliver an electronic copy."
    if data.delivery == Delivery.MAIL and not data.requester_address.strip():
        errors["requester_address"] = "Paper mail needs the requester's address."
    if data.delivery == Delivery.SECURE_EMAIL and "@" not in data.requester_email:
        errors["requester_email"] = "Secure e-mail needs the requester's e-mail address."
    if errors:
        raise ValidationError(errors)


def _next_number(year: int) -> str:
    last = (
        RoiRequest.objects.filter(number__startswith=f"REQ-{year}-")
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    sequence = int(_NUMBER.match(last).group(2)) + 1 if last and _NUMBER.match(last) else 1
    return f"REQ-{year}-{sequence:06d}"


def _facility_for(user, patient):
    mine = facility_ids(user)
    identifier = (
        patient.identifiers.filter(kind=IdentifierKind.MRN, facility_id__in=mine)
        .select_related("facility")
        .order_by("pk")
        .first()
    )
    if identifier is None:
        raise Http404("No such patient")
    return identifier.facility


def open_request(user, public_id, *, permission=RP.PROCESS, action=Action.VIEW) -> RoiRequest:
    """The request door (:func:`roi.processing.find_request`): permission, facility and
    the patient's restriction, each refusal audited before it is raised."""
    return find_request(user, public_id, permission=permission, action=action)


def do_log_request(user, patient_public_id, data: RequestInput) -> RoiRequest:
    """Log a request for the patient (found through the MPI door, which audits the
    look-up and refuses restricted records without a relationship)."""
    require_permission(user, RP.LOG_REQUESTS, action=Action.CREATE, object_type="roi.request")
    patient = access_patient(user, patient_public_id)
    now = clock.now()
    today = policy.local_date(now)
    _validate(data, today)
    scope = _clean_scope(data.scope)
    facility = _facility_for(user, patient)
    # The moment of receipt: now for today's mail, else the start of the local day it
    # came (turnaround is then never understated for a request logged late).
    received_at = (
        now
        if data.received_on == today
        else timezone.make_aware(dt.datetime.combine(data.received_on, dt.time.min))
    )
    rules = policy.policy_for(facility, data.received_on)
    due_on = policy.due_date(rules, data.requester_type, data.received_on, data.urgency)
    for _attempt in range(3):
        try:
            with transaction.atomic():
                request = RoiRequest.objects.create(
                    number=_next_number(data.received_on.year),
                    patient=patient,
                    facility=facility,
                    requester_type=data.requester_type,
                    requester_name=data.requester_name.strip()[:200],
                    requester_organization=data.requester_organization.strip()[:200],
                    requester_address=data.requester_address.strip(),
                    requester_email=data.requester_email.strip()[:254],
                    requester_phone=data.requester_phone.strip()[:40],
                    identity_verified=data.identity_verified.strip()[:200],
                    purpose=data.purpose.strip()[:300],
                    received_on=data.received_on,
                    received_at=received_at,
                    due_on=due_on,
                    urgency=data.urgency,
                    scope=scope,
                    format=data.format,
                    delivery=data.delivery,
                    status=RequestStatus.LOGGED,
                    logged_by=user,
                    assigned_to=user,
                    created_at=now,
                    updated_at=now,
                )
                event(request, "logged", user, to_status=RequestStatus.LOGGED, due_on=str(due_on))
                audit(user, request, Action.CREATE, number=request.number, due_on=str(due_on))
                return request
        except IntegrityError:
            continue  # another specialist took the number at the same moment
    raise ValidationError("Could not give the request a number; try again.")


def do_attach(user, public_id, kind: str, upload) -> RequestAttachment:
    """Attach a scanned document to the request (checked by content; nothing is kept of
    a refused file)."""
    request = open_request(user, public_id, permission=RP.LOG_REQUESTS, action=Action.UPDATE)
    if kind not in AttachmentKind.values:
        raise ValidationError({"kind": "Choose what the document is."})
    checked = integrity.check_attachment(upload)
    stored = integrity.store_attachment(checked)
    try:
        with transaction.atomic():
            attachment = RequestAttachment.objects.create(
                request=request,
                kind=kind,
                file=stored,
                name=checked.name,
                content_type=checked.content_type,
                size=checked.size,
                sha256=checked.sha256,
                uploaded_by=user,
                uploaded_at=clock.now(),
            )
            event(request, "attached", user, attachment_kind=kind, sha256=checked.sha256)
            audit(user, request, Action.UPDATE, attached=kind, sha256=checked.sha256)
    except Exception:
        integrity.discard_unrecorded(stored)
        raise
    return attachment


@dataclass(frozen=True)
class AuthorizationInput:
    kind: str
    checklist: dict
    signed_on: dt.date | None
    expires_on: dt.date | None = None
    expiry_event: str = ""
    information_described: str = ""
    discloser: str = ""
    recipient: str = ""
    purpose: str = ""
    signed_by_representative: bool = False
    representative_authority: str = ""
    sensitive_categories: tuple = ()
    revoked_on: dt.date | None = None
    attachment_public_id: str = ""


def do_record_authorization(user, public_id, data: AuthorizationInput) -> Authorization:
    """Record the authorization as checked; it is valid only when nothing is defective."""
    request = open_request(user, public_id, action=Action.UPDATE)
    from documents.models import SensitiveCategory

    unknown = [c for c in data.sensitive_categories if c not in SensitiveCategory.values]
    if unknown:
        raise ValidationError({"sensitive_categories": "Unknown sensitive category."})
    attachment = None
    if data.attachment_public_id:
        attachment = request.attachments.filter(public_id=data.attachment_public_id).first()
        if attachment is None:
            raise ValidationError({"attachment": "That document is not attached to this request."})
    today = policy.local_date(clock.now())
    checklist = {e.key: bool(data.checklist.get(e.key)) for e in authorizations.CHECKLIST}
    found = authorizations.problems(
        checklist,
        kind=data.kind,
        today=today,
        signed_on=data.signed_on,
        expires_on=data.expires_on,
        expiry_event=data.expiry_event,
        revoked_on=data.revoked_on,
        signed_by_representative=data.signed_by_representative,
        representative_authority=data.representative_authority,
    )
    with transaction.atomic():
        authorization = Authorization.objects.create(
            request=request,
            patient=request.patient,
            attachment=attachment,
            kind=data.kind,
            information_described=data.information_described.strip(),
            discloser=data.discloser.strip()[:200],
            recipient=data.recipient.strip()[:200],
            purpose=data.purpose.strip()[:300],
            expires_on=data.expires_on,
            expiry_event=data.expiry_event.strip()[:200],
            signed_on=data.signed_on,
            signed_by_representative=data.signed_by_representative,
            representative_authority=data.representative_authority.strip()[:200],
            sensitive_categories=sorted(set(data.sensitive_categories)),
            checklist=checklist,
            problems=found,
            valid=not found,
            revoked_on=data.revoked_on,
            checked_by=user,
            checked_at=clock.now(),
        )
        event(
            request,
            "authorization",
            user,
            authorization_kind=data.kind,
            valid=not found,
            problems=found,
        )
        audit(user, request, Action.UPDATE, authorization=data.kind, valid=not found)
    return authorization


def missing(request: RoiRequest, today: dt.date | None = None) -> list[str]:
    """What the requester type still needs before the request can be processed
    (RULES §8), in words for the pend letter."""
    from roi.processing import valid_authorizations

    today = today or policy.local_date(clock.now())
    kinds = set(request.attachments.values_list("kind", flat=True))
    kind = request.requester_type
    reasons = []
    if (
        kind in (RequesterType.PATIENT, RequesterType.REPRESENTATIVE, RequesterType.PROVIDER)
        and not request.identity_verified.strip()
    ):
        reasons.append(
            "The requester's identity has not been verified (164.514(h)): "
            "send a copy of photo identification."
        )
    if kind == RequesterType.REPRESENTATIVE and AttachmentKind.AUTHORITY not in kinds:
        reasons.append(
            "Proof of authority to act for the patient (e.g. power of attorney, "
            "guardianship or letters of administration) is missing (164.502(g))."
        )
    if kind in NEEDS_AUTHORIZATION:
        # A Part 2 consent is the authorization for what it names (42 CFR 2.31); an
        # authorization for psychotherapy notes covers nothing else (164.508(b)(3)(ii)).
        valid = [a for a in valid_authorizations(request, today) if a.kind != "psychotherapy"]
        if not valid:
            latest = (
                request.authorizations.exclude(kind="psychotherapy")
                .order_by("-checked_at", "-pk")
                .first()
            )
            if latest is None or not latest.problems:
                reasons.append(
                    "A signed authorization of the patient (164.508) is missing"
                    + (
                        "; an authorization for psychotherapy notes covers nothing else."
                        if request.authorizations.filter(kind="psychotherapy").exists()
                        else "."
                    )
                )
            else:
                reasons.append("The authorization is not valid:")
                reasons.extend(f"  – {problem}" for problem in latest.problems)
    if kind == RequesterType.SUBPOENA:
        if AttachmentKind.SUBPOENA not in kinds:
            reasons.append("A copy of the subpoena is missing.")
        if AttachmentKind.COURT_ORDER not in kinds and AttachmentKind.ASSURANCE not in kinds:
            reasons.append(
                "A subpoena without a court order needs written satisfactory assurance that "
                "the patient was notified and the time to object has passed, or that a "
                "qualified protective order was sought (164.512(e)(1)(ii)). Substance use "
                "disorder (Part 2) records need a court order (42 CFR 2.64)."
            )
    if kind == RequesterType.COURT_ORDER and AttachmentKind.COURT_ORDER not in kinds:
        reasons.append("A copy of the court order is missing.")
    if kind == RequesterType.LAW_ENFORCEMENT and not kinds & {
        AttachmentKind.COURT_ORDER,
        AttachmentKind.SUBPOENA,
        AttachmentKind.REQUEST,
    }:
        reasons.append(
            "Law enforcement requests need court process or a specific, limited written "
            "administrative request (164.512(f))."
        )
    if kind == RequesterType.PUBLIC_HEALTH and not request.identity_verified.strip():
        reasons.append("The public health authority has not been verified (164.514(h)).")
    reasons.extend(_sensitive_reasons(request, kinds, today))
    return reasons


def _sensitive_reasons(request: RoiRequest, kinds: set, today: dt.date) -> list[str]:
    """What the sensitive categories the requester specifically asks for
    (``scope["sensitive_categories"]``) still need. A court order releases what it
    orders. For the patient's own request psychotherapy notes are outside the right of
    access (164.524(a)(1)(i)): processing leaves them out and a denial says so, so they
    do not hold the rest of the request."""
    from roi import disclosure_rules
    from roi.processing import valid_authorizations

    asked = set((request.scope or {}).get("sensitive_categories") or [])
    kind = request.requester_type
    if not asked or kind == RequesterType.COURT_ORDER:
        return []
    if kind in disclosure_rules.SELF_REQUESTERS:
        return []
    allowed = disclosure_rules.authorized_categories(kind, valid_authorizations(request, today))
    labels = dict(SensitiveCategory.choices)
    reasons = []
    for category in sorted(asked - allowed):
        label = labels[category]
        if category == SensitiveCategory.PSYCHOTHERAPY:
            reasons.append(
                f"{label} are asked for: they need an authorization of their own for "
                "psychotherapy notes (164.508(a)(2)); a general authorization does not "
                "cover them."
            )
        elif category == SensitiveCategory.SUBSTANCE_USE:
            if kind == RequesterType.SUBPOENA and AttachmentKind.COURT_ORDER in kinds:
                continue  # a court order under 42 CFR 2.64 authorizes the disclosure
            reasons.append(
                f"{label} records are asked for: they need the patient's written Part 2 "
                "consent naming them (42 CFR 2.31)"
                + (
                    ", or a court order under 42 CFR 2.64 — a subpoena alone is not enough."
                    if kind == RequesterType.SUBPOENA
                    else "."
                )
            )
        else:
            reasons.append(
                f"{label} records are asked for: the patient's authorization must name "
                "them specifically."
            )
    return reasons


def _pend_letter(request: RoiRequest, reasons: list[str]) -> str:
    lines = "\n".join(f"• {r}" if not r.startswith("  ") else r for r in reasons)
    return (
        f"Dear {request.requester_name},\n\n"
        f"We received your request for records (reference {request.number}) on "
        f"{request.received_on:%d %B %Y}. We cannot process it yet, because:\n\n{lines}\n\n"
        "Please send what is missing, quoting the reference above. The request stays open "
        f"and is due by {(request.extended_due_on or request.due_on):%d %B %Y}.\n\n"
        "Health Information Management — Release of Information"
    )


def _pend(user, request: RoiRequest, reasons: list[str]) -> None:
    """Pend the request with the reasons and a letter to the requester (inside the
    caller's transaction)."""
    request.pend_reasons = reasons
    request.updated_at = clock.now()
    request.save(update_fields=["pend_reasons", "updated_at"])
    event(request, "pended", user, to_status=RequestStatus.PENDED, reasons=reasons)
    issue_letter(
        LetterKind.PEND,
        request.patient,
        _pend_letter(request, reasons),
        user,
        request=request,
        title="Your request for records: what we still need",
    )
    audit(user, request, Action.UPDATE, pended=len(reasons))


def do_check(user, public_id) -> RoiRequest:
    """Check the request against what its requester type needs: pend it (with a letter)
    when something is missing, else move it to *in process*."""
    request = open_request(user, public_id, action=Action.UPDATE)
    if request.status not in OPEN_STATUSES:
        raise refuse(
            user, request, Action.UPDATE, f"The request is {request.get_status_display().lower()}."
        )
    reasons = missing(request)
    with transaction.atomic():
        if reasons:
            _pend(user, request, reasons)
        else:
            request.pend_reasons = []
            request.save(update_fields=["pend_reasons"])
            event(request, "validated", user, to_status=RequestStatus.IN_PROCESS)
            audit(user, request, Action.UPDATE, validated=True)
    return request


def do_revoke_authorization(
    user, public_id, authorization_public_id, revoked_on: dt.date | None, how: str
) -> Authorization:
    """Record that the patient revoked an authorization in writing (164.508(b)(5)). The
    authorization row keeps what was checked; the revocation is added to it with the
    request's history. An open request that relied on it is pended again (with a
    letter) when nothing else covers it; what was released before stays released."""
    request = open_request(user, public_id, action=Action.UPDATE)
    today = policy.local_date(clock.now())
    how = (how or "").strip()
    errors = {}
    if revoked_on is None:
        errors["revoked_on"] = "Give the date of the written revocation."
    elif revoked_on > today:
        errors["revoked_on"] = "The revocation date cannot be in the future."
    if not how:
        errors["how"] = "Say how the revocation came (e.g. signed letter received)."
    if errors:
        raise ValidationError(errors)
    authorization = request.authorizations.filter(public_id=authorization_public_id).first()
    if authorization is None:
        raise Http404("No such authorization on this request")
    if authorization.revoked_on is not None:
        raise refuse(user, request, Action.UPDATE, "The authorization is already revoked.")
    with transaction.atomic():
        authorization.revoked_on = revoked_on
        authorization.valid = False
        authorization.problems = [
            *authorization.problems,
            f"The authorization was revoked on {revoked_on.isoformat()}.",
        ]
        authorization.save(update_fields=["revoked_on", "valid", "problems"])
        event(
            request,
            "revoked",
            user,
            authorization=str(authorization.public_id),
            revoked_on=revoked_on.isoformat(),
            how=how[:200],
        )
        audit(user, request, Action.UPDATE, revoked=str(authorization.public_id))
        reasons = missing(request, today)
        if reasons and request.status in (RequestStatus.IN_PROCESS, RequestStatus.QC):
            _pend(user, request, reasons)
    return authorization


def do_record_identity(user, public_id, how: str) -> RoiRequest:
    """Record how the requester's identity or authority was verified."""
    request = open_request(user, public_id, permission=RP.LOG_REQUESTS, action=Action.UPDATE)
    how = (how or "").strip()
    if not how:
        raise ValidationError({"identity_verified": "Say how the identity was verified."})
    with transaction.atomic():
        request.identity_verified = how[:200]
        request.updated_at = clock.now()
        request.version += 1
        request.save(update_fields=["identity_verified", "updated_at", "version"])
        event(request, "identity", user)
        audit(user, request, Action.UPDATE, identity_verified=True)
    return request


def do_extend(user, public_id, reason: str) -> RoiRequest:
    """The one extension (164.524(b)(2)(ii)): inside the first period, with a written
    notice of the reason and the new date."""
    request = open_request(user, public_id, action=Action.UPDATE)
    reason = (reason or "").strip()
    today = policy.local_date(clock.now())
    if not reason:
        raise ValidationError({"reason": "Give the reason for the delay; it goes in the notice."})
    if request.extended_due_on:
        raise refuse(user, request, Action.UPDATE, "The request was already extended once.")
    if request.status not in RUNNING_STATUSES:
        raise refuse(
            user, request, Action.UPDATE, f"The request is {request.get_status_display().lower()}."
        )
    if today > request.due_on:
        raise refuse(
            user,
            request,
            Action.UPDATE,
            "The extension notice must be sent before the first due date, which has passed.",
        )
    rules = policy.policy_for(request.facility, request.received_on)
    new_due = policy.extended_due_date(rules, request.due_on)
    with transaction.atomic():
        request.extended_due_on = new_due
        request.extension_reason = reason[:300]
        request.extension_notice_on = today
        request.updated_at = clock.now()
        request.version += 1
        request.save(
            update_fields=[
                "extended_due_on",
                "extension_reason",
                "extension_notice_on",
                "updated_at",
                "version",
            ]
        )
        event(request, "extended", user, new_due_on=str(new_due))
        issue_letter(
            LetterKind.EXTENSION,
            request.patient,
            (
                f"Dear {request.requester_name},\n\n"
                f"We need more time to answer your request for records ({request.number}), "
                f"received on {request.received_on:%d %B %Y}, because: {reason}\n\n"
                f"We will answer by {new_due:%d %B %Y}.\n\n"
                "Health Information Management — Release of Information"
            ),
            user,
            request=request,
            title="Your request for records: more time needed",
        )
        audit(user, request, Action.UPDATE, extended_to=str(new_due))
    return request


def do_assign(user, public_id, assignee) -> RoiRequest:
    request = open_request(user, public_id, action=Action.UPDATE)
    from accounts.access import has_permission

    if assignee is None or not has_permission(assignee, RP.PROCESS):
        raise ValidationError({"assignee": "Assign the request to an ROI specialist."})
    with transaction.atomic():
        request.assigned_to = assignee
        request.updated_at = clock.now()
        request.version += 1
        request.save(update_fields=["assigned_to", "updated_at", "version"])
        event(request, "assigned", user, assignee=str(assignee.public_id))
        audit(user, request, Action.UPDATE, assigned=str(assignee.public_id))
    return request


CLOSE_REASONS = {
    "delivered": "Done: the records were delivered, or the denial letter sent",
    "withdrawn": "Withdrawn by the requester",
    "no_response": "No answer to the pend letter",
    "duplicate": "Duplicate of another request",
}


def do_close(user, public_id, reason: str, note: str = "") -> RoiRequest:
    """Close a request: a released or denied one once the work is done, or an open one
    the requester withdrew, never completed after a pend letter, or that duplicates
    another. The reason is kept in the history; a closed request leaves the queue."""
    request = open_request(user, public_id, action=Action.UPDATE)
    if reason not in CLOSE_REASONS:
        raise ValidationError({"reason": "Choose why the request is closed."})
    done = (RequestStatus.RELEASED, RequestStatus.DENIED)
    if request.status == RequestStatus.CLOSED:
        raise refuse(user, request, Action.UPDATE, "The request is already closed.")
    if reason == "delivered" and request.status not in done:
        raise refuse(
            user, request, Action.UPDATE, "Only a released or denied request is closed as done."
        )
    if reason != "delivered" and request.status not in RUNNING_STATUSES:
        raise refuse(
            user,
            request,
            Action.UPDATE,
            f"A {request.get_status_display().lower()} request is closed as done.",
        )
    with transaction.atomic():
        # event() records the status it leaves and moves the request to "closed".
        event(
            request,
            "closed",
            user,
            to_status=RequestStatus.CLOSED,
            reason=reason,
            note=(note or "").strip()[:300],
        )
        request.closed_at = clock.now()
        request.save(update_fields=["closed_at"])
        audit(user, request, Action.UPDATE, closed=reason)
    return request
