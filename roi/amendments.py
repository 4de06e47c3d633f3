"""Amendments of the record at the patient's request (45 CFR 164.526).

A request is logged against the documents it concerns and decided within the policy's
days (60 by default, one extension of 30 with a written notice and its reason).

- **Accepted**: the patient's change is filed into the legal record as a document of
  its own (``Amendment.amendment_document``), linked to the affected documents through
  the amendment; the originals are never overwritten. The patient gets a letter, and
  the people to be told are recorded (``notify``).
- **Denied**: on one of the 164.526(a)(2) bases; the letter gives the basis, the right
  to a statement of disagreement, the option to have the request and the denial sent
  with future disclosures, and how to complain (to the entity and to HHS). A statement
  of disagreement and the entity's rebuttal are recorded and linked to the amendment.

What travels with every later disclosure of an affected document is given by
:func:`statements_for_documents` (the release packet calls it).

**Entered-in-error documents.** A request that names a document marked entered in
error is still logged: the patient's request has a date of receipt and the clock runs
from it, so refusing to log it would lose it. Such a request cannot be accepted (the
document is kept for the legal record but no longer used to make decisions about the
patient, so there is nothing left to amend); it is denied on the basis
"not part of the designated record set", and the letter says the document was marked
entered in error.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from accounts.access import require_permission
from audit.models import Action, Purpose
from documents.actions import do_create_document
from documents.models import Document, DocumentSource, DocumentStatus, DocumentType
from documents.permissions import DocumentsPermission as DP
from patients.access import access_patient, default_purpose
from recordroom import clock
from roi import accounting as acc
from roi.models import (
    Amendment,
    AmendmentStatement,
    AmendmentStatus,
    LetterKind,
    StatementKind,
)
from roi.permissions import RoiPermission as RP

# --- what travels with later disclosures ---------------------------------------------


@dataclass(frozen=True)
class TravellingStatement:
    """One piece of amendment material to include in a release packet.

    ``kind``: ``accepted_amendment``, ``request``, ``denial``, ``disagreement`` or
    ``rebuttal``. ``document_ids``: the public ids (strings) of the affected documents
    it concerns. ``title`` is a heading for the packet; ``text`` the content to print.
    """

    kind: str
    title: str
    text: str
    amendment_id: str
    document_ids: tuple[str, ...] = field(default_factory=tuple)


DENIAL_BASES = {
    "not_created": "The information was not created by this organization, and the "
    "originator is available to act on the request.",
    "not_designated_record_set": "The information is not part of the designated record set.",
    "not_available_for_access": "The information would not be available for inspection "
    "under 45 CFR 164.524.",
    "accurate_complete": "The information is accurate and complete.",
}
DENIAL_BASIS_LABELS = {
    "not_created": "Not created by this organization (164.526(a)(2)(i))",
    "not_designated_record_set": "Not part of the designated record set (164.526(a)(2)(ii))",
    "not_available_for_access": "Not available for access under 164.524 (164.526(a)(2)(iii))",
    "accurate_complete": "Accurate and complete (164.526(a)(2)(iv))",
}


def _document_keys(document_ids) -> tuple[list[int], list[uuid.UUID]]:
    pks: list[int] = []
    public_ids: list[uuid.UUID] = []
    for value in document_ids or ():
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            pks.append(value)
        elif isinstance(value, uuid.UUID):
            public_ids.append(value)
        elif hasattr(value, "pk") and hasattr(value, "public_id"):
            pks.append(value.pk)
        else:
            try:
                public_ids.append(uuid.UUID(str(value)))
            except ValueError:
                continue
    return pks, public_ids


def statements_for_documents(document_ids) -> list[TravellingStatement]:
    """The amendment material that must go out with a disclosure of these documents.

    ``document_ids``: documents as public ids (UUID or str), primary keys (int) or
    Document objects, in any mix; unknown values are ignored. Returned, oldest
    amendment first, for every amendment that names at least one of them:

    - an **accepted** amendment: one ``accepted_amendment`` entry with the change made;
    - a **denied** amendment with a statement of disagreement: the ``request``, the
      ``denial``, the ``disagreement`` and any ``rebuttal`` (164.526(d)(5)(i));
    - a **denied** amendment without a statement: the ``request`` and the ``denial``
      only when the patient asked for them to go with future disclosures
      (``Amendment.send_with_disclosures``, 164.526(d)(5)(ii)).

    Open (received, extended) requests send nothing. This is a helper for a caller that
    already checked its permission and audits the disclosure itself (the release
    packet): it reads no patient data beyond the amendments of the documents given and
    writes no audit event.
    """
    pks, public_ids = _document_keys(document_ids)
    if not pks and not public_ids:
        return []
    amendments = (
        Amendment.objects.filter(
            Q(documents__pk__in=pks) | Q(documents__public_id__in=public_ids),
            status__in=[AmendmentStatus.ACCEPTED, AmendmentStatus.DENIED],
        )
        .distinct()
        .order_by("received_on", "pk")
        .prefetch_related("documents", "statements")
        .select_related("amendment_document")
    )
    result: list[TravellingStatement] = []
    for amendment in amendments:
        result.extend(_material(amendment))
    return result


def _material(amendment: Amendment) -> list[TravellingStatement]:
    docs = tuple(str(d.public_id) for d in amendment.documents.all())
    aid = str(amendment.public_id)
    received = amendment.received_on.isoformat()
    decided = timezone.localdate(amendment.decided_at).isoformat() if amendment.decided_at else ""

    def entry(kind: str, title: str, text: str) -> TravellingStatement:
        return TravellingStatement(kind, title, text, aid, docs)

    if amendment.status == AmendmentStatus.ACCEPTED:
        text = f"Amendment requested on {received} and accepted on {decided}:\n\n"
        text += amendment.requested_change
        if amendment.decision_note:
            text += f"\n\nNote: {amendment.decision_note}"
        return [entry("accepted_amendment", f"Amendment accepted {decided}", text)]
    statements = sorted(amendment.statements.all(), key=lambda s: (s.recorded_at, s.pk))
    disagreements = [s for s in statements if s.kind == StatementKind.DISAGREEMENT]
    rebuttals = [s for s in statements if s.kind == StatementKind.REBUTTAL]
    if not disagreements and not amendment.send_with_disclosures:
        return []
    request_text = amendment.requested_change
    if amendment.requester_reason:
        request_text += f"\n\nReason given: {amendment.requester_reason}"
    denial_text = DENIAL_BASES.get(amendment.denial_basis, amendment.denial_basis)
    if amendment.decision_note:
        denial_text += f"\n\n{amendment.decision_note}"
    out = [
        entry("request", f"Request for amendment received {received}", request_text),
        entry("denial", f"Denial of the amendment {decided}", denial_text),
    ]
    for statement in disagreements:
        out.append(
            entry(
                "disagreement",
                f"Statement of disagreement received {statement.received_on.isoformat()}",
                statement.text,
            )
        )
    for statement in rebuttals:
        out.append(
            entry(
                "rebuttal",
                f"Rebuttal {statement.received_on.isoformat()}",
                statement.text,
            )
        )
    return out


# --- the workflow ------------------------------------------------------------------------

AMENDMENT = "roi.amendment"
OPEN = (AmendmentStatus.RECEIVED, AmendmentStatus.EXTENDED)
DEFAULT_STATEMENT_MAX_CHARS = 10_000
DEFAULT_AMENDMENT_LOINC = "51852-2"  # Letter: the patient's amendment, filed as correspondence
HHS_COMPLAINT = (
    "the Secretary of the U.S. Department of Health and Human Services, Office for Civil "
    "Rights, 200 Independence Avenue S.W., Washington, D.C. 20201, or online at "
    "https://www.hhs.gov/ocr/complaints"
)


def due(amendment: Amendment):
    return amendment.extended_due_on or amendment.due_on


def _in_error_documents(amendment: Amendment) -> list:
    return [d for d in amendment.documents.all() if d.status == DocumentStatus.ENTERED_IN_ERROR]


def _documents_of(patient, document_ids) -> tuple[list, list[str]]:
    errors: list[str] = []
    keys = []
    for value in document_ids or ():
        key = acc.parse_uuid(value)
        if key is None:
            errors.append("One of the documents is not a valid document id.")
            continue
        keys.append(key)
    keys = list(dict.fromkeys(keys))
    found = list(Document.objects.filter(public_id__in=keys, patient=patient))
    if len(found) != len(keys):
        errors.append("One of the documents is not this patient's.")
    if not keys and not errors:
        errors.append("Choose the documents the patient asks to amend.")
    return found, errors


def do_log_amendment(
    patient_public_id,
    *,
    acting_user,
    received_on,
    document_ids,
    requested_change: str,
    requester_reason: str = "",
) -> Amendment:
    """Log a patient's request to amend these documents (public ids). Due the policy's
    ``amendment_due_days`` after receipt. A document marked entered in error may be
    named (the request is kept and its clock runs); the request can then only be
    denied (see the module's docstring)."""
    patient = acc.patient_for(
        acting_user,
        patient_public_id,
        RP.MANAGE_AMENDMENTS,
        object_type=AMENDMENT,
        action=Action.CREATE,
    )
    errors: dict[str, list[str]] = {}
    if not isinstance(received_on, dt.date):
        errors.setdefault("received_on", []).append("Give the date the request was received.")
    elif received_on > acc.today():
        errors.setdefault("received_on", []).append("The date of receipt is in the future.")
    change = acc.clean_text(
        errors,
        "requested_change",
        requested_change,
        label="The change asked for",
        max_length=10_000,
    )
    reason = acc.clean_text(
        errors,
        "requester_reason",
        requester_reason,
        label="The patient's reason",
        max_length=4000,
        required=False,
    )
    documents, problems = _documents_of(patient, document_ids)
    if problems:
        errors.setdefault("documents", []).extend(problems)
    acc.raise_errors(errors)
    policy = acc.policy_in_force(acc.facility_for(acting_user, patient), received_on)
    due_on = received_on + dt.timedelta(days=policy.amendment_due_days)
    in_error = [str(d.public_id) for d in documents if d.status == DocumentStatus.ENTERED_IN_ERROR]
    with transaction.atomic():
        amendment = Amendment(
            patient=patient,
            received_on=received_on,
            due_on=due_on,
            requested_change=change,
            requester_reason=reason,
            logged_by=acting_user,
            created_at=clock.now(),
        )
        amendment.full_clean(exclude=["patient", "logged_by"])
        amendment.save(force_insert=True)
        amendment.documents.set(documents)
        acc.audit_event(
            acting_user,
            Action.CREATE,
            amendment,
            AMENDMENT,
            purpose=Purpose.PATIENT_REQUEST,
            received_on=received_on.isoformat(),
            due_on=due_on.isoformat(),
            documents=[str(d.public_id) for d in documents],
            entered_in_error=in_error,
        )
    return amendment


def _amendment_for_write(user, public_id, permission=None) -> Amendment:
    require_permission(
        user,
        permission or RP.MANAGE_AMENDMENTS,
        action=Action.UPDATE,
        purpose=default_purpose(user),
        object_type=AMENDMENT,
        object_id=str(public_id)[:64],
    )
    key = acc.parse_uuid(public_id)
    amendment = (
        Amendment.objects.select_related("patient").filter(public_id=key).first() if key else None
    )
    if amendment is None:
        acc.deny(
            user,
            Action.UPDATE,
            object_type=AMENDMENT,
            object_id=public_id,
            reason="no such amendment request",
        )
        raise Http404("No such amendment request")
    access_patient(user, amendment.patient.public_id)
    return amendment


def _locked(amendment: Amendment) -> Amendment:
    locked = Amendment.objects.select_for_update().get(pk=amendment.pk)
    locked.patient = amendment.patient
    return locked


def _require_open(amendment: Amendment) -> None:
    if amendment.status not in OPEN:
        raise ValidationError(
            f"This request was already {amendment.get_status_display().lower()}; "
            "a decision is final."
        )


def do_extend_amendment(public_id, *, acting_user, reason: str) -> Amendment:
    """The one extension (``amendment_extension_days``, 30): given before the first
    due date, with a written notice of the reason and the date of the decision."""
    amendment = _amendment_for_write(acting_user, public_id)
    errors: dict[str, list[str]] = {}
    reason = acc.clean_line(errors, "reason", reason, label="The reason", max_length=300)
    if reason and len(reason) < 5:
        errors.setdefault("reason", []).append("The reason needs at least 5 characters.")
    acc.raise_errors(errors)
    with transaction.atomic():
        locked = _locked(amendment)
        _require_open(locked)
        if locked.extended_due_on is not None:
            raise ValidationError("The deadline was already extended once; only one is allowed.")
        if acc.today() > locked.due_on:
            raise ValidationError(
                "The extension must be given before the first due date "
                f"({locked.due_on.isoformat()}), which has passed."
            )
        policy = acc.policy_in_force(
            acc.facility_for(acting_user, locked.patient), locked.received_on
        )
        new_due = locked.due_on + dt.timedelta(days=policy.amendment_extension_days)
        locked.extended_due_on = new_due
        locked.extension_reason = reason
        locked.status = AmendmentStatus.EXTENDED
        locked.save(update_fields=["extended_due_on", "extension_reason", "status"])
        body = (
            "Your request to amend your health record\n\n"
            f"We received your request on {locked.received_on.isoformat()}. We need more "
            f"time to decide on it, because: {reason}\n\n"
            f"You will have our decision by {new_due.isoformat()}."
        )
        letter = acc.issue_letter(
            LetterKind.AMENDMENT_EXTENSION, locked.patient, body, acting_user, amendment=locked
        )
        acc.audit_event(
            acting_user,
            Action.UPDATE,
            locked,
            AMENDMENT,
            purpose=Purpose.PATIENT_REQUEST,
            extended_due_on=new_due.isoformat(),
            letter=str(letter.public_id),
        )
    return locked


def _amendment_body(amendment: Amendment, documents, now) -> str:
    listed = "\n".join(
        f"- {d.title} ({d.doc_type.display}, {timezone.localtime(d.service_at).date().isoformat()})"
        for d in documents
    )
    text = (
        "Amendment at the patient's request (45 CFR 164.526)\n\n"
        f"Requested on {amendment.received_on.isoformat()}; accepted on "
        f"{timezone.localtime(now).date().isoformat()}.\n\n"
        f"It amends:\n{listed}\n\n"
        f"The amendment:\n{amendment.requested_change}"
    )
    if amendment.requester_reason:
        text += f"\n\nThe patient's reason:\n{amendment.requester_reason}"
    return text


def check_accept(amendment: Amendment, *, acting_user) -> None:
    """Filing into the legal record needs ``documents.file`` as well (refusal audited);
    a document marked entered in error cannot be amended."""
    require_permission(
        acting_user,
        DP.FILE,
        action=Action.CREATE,
        purpose=default_purpose(acting_user),
        patient_id=amendment.patient.public_id,
        object_type="document",
    )
    if _in_error_documents(amendment):
        raise ValidationError(
            "A document this request names is marked entered in error: it is no longer "
            "used to make decisions about the patient, so it cannot be amended. Deny the "
            "request on the basis “not part of the designated record set”."
        )


def do_accept_amendment(public_id, *, acting_user, notify: str = "", note: str = "") -> Amendment:
    """Accept: file the patient's amendment into the record as a document of its own
    (the originals are never changed), linked to the affected documents through this
    request; write the letter to the patient; record whom to notify (the people the
    patient names and those known to rely on the information)."""
    amendment = _amendment_for_write(acting_user, public_id)
    check_accept(amendment, acting_user=acting_user)
    errors: dict[str, list[str]] = {}
    notify = acc.clean_text(
        errors, "notify", notify, label="Whom to notify", max_length=2000, required=False
    )
    note = acc.clean_text(errors, "note", note, label="The note", max_length=4000, required=False)
    acc.raise_errors(errors)
    policy = acc.policy_in_force(
        acc.facility_for(acting_user, amendment.patient), amendment.received_on
    )
    loinc = (policy.parameters or {}).get("amendment_document_loinc", DEFAULT_AMENDMENT_LOINC)
    doc_type = DocumentType.objects.filter(loinc_code=loinc, active=True).first()
    if doc_type is None:
        raise ValidationError(
            f"The document type for amendments (LOINC {loinc}) is missing or inactive; "
            "ask an administrator to check the ROI policy."
        )
    with transaction.atomic():
        locked = _locked(amendment)
        _require_open(locked)
        if _in_error_documents(locked):
            raise ValidationError("A document this request names was marked entered in error.")
        documents = list(locked.documents.select_related("doc_type").order_by("service_at", "pk"))
        encounters = {d.encounter_id for d in documents}
        sensitivity = sorted({c for d in documents for c in (d.sensitivity or [])})
        now = clock.now()
        filed = do_create_document(
            locked.patient,
            doc_type=doc_type,
            title="Amendment at the patient's request (45 CFR 164.526)",
            service_at=now,
            acting_user=acting_user,
            body=_amendment_body(locked, documents, now),
            encounter=documents[0].encounter if len(encounters) == 1 else None,
            source=DocumentSource.IMPORTED,
            sensitivity=sensitivity,
        )
        locked.status = AmendmentStatus.ACCEPTED
        locked.decided_at = now
        locked.decided_by = acting_user
        locked.decision_note = note
        locked.notify = notify
        locked.amendment_document = filed
        locked.save(
            update_fields=[
                "status",
                "decided_at",
                "decided_by",
                "decision_note",
                "notify",
                "amendment_document",
            ]
        )
        body = (
            "Your request to amend your health record\n\n"
            f"We received your request on {locked.received_on.isoformat()} and have "
            "accepted it. The amendment is now part of your record, linked to the "
            "information it corrects, and is sent with that information from now on.\n\n"
            "We will tell the people you name, and those we know have this information and "
            "may rely on it, about the amendment. Please tell us whom you want us to tell."
        )
        if notify:
            body += f"\n\nWe will notify: {notify}"
        letter = acc.issue_letter(
            LetterKind.AMENDMENT_ACCEPTED, locked.patient, body, acting_user, amendment=locked
        )
        acc.audit_event(
            acting_user,
            Action.UPDATE,
            locked,
            AMENDMENT,
            purpose=Purpose.PATIENT_REQUEST,
            status={"from": amendment.status, "to": AmendmentStatus.ACCEPTED},
            amendment_document=str(filed.public_id),
            letter=str(letter.public_id),
            late=acc.today() > due(locked),
        )
    return locked


def denial_letter_text(amendment: Amendment, facility_name: str, contact: str) -> str:
    basis = DENIAL_BASES[amendment.denial_basis]
    parts = [
        "Your request to amend your health record",
        "",
        f"We received your request on {amendment.received_on.isoformat()} and have denied it.",
        "",
        f"The reason: {basis}",
    ]
    if amendment.decision_note:
        parts += ["", amendment.decision_note]
    parts += [
        "",
        "Your right to disagree: you may send us a written statement disagreeing with "
        "this denial and saying why. Send it to "
        f"{contact}. We will add it to your record, and it will be sent with any later "
        "disclosure of the information you asked us to amend. We may write a rebuttal to "
        "your statement; if we do, we will send you a copy.",
        "",
        "If you do not send a statement of disagreement, you may ask us to send your "
        "request and this denial with any later disclosure of that information.",
        "",
        f"How to complain: you may complain to {facility_name} by writing to {contact}, "
        f"or to {HHS_COMPLAINT}. You will not be retaliated against for complaining.",
    ]
    return "\n".join(parts)


def do_deny_amendment(
    public_id,
    *,
    acting_user,
    basis: str,
    explanation: str = "",
    send_with_disclosures: bool = False,
) -> Amendment:
    """Deny on a 164.526(a)(2) basis, with the letter: the basis, the right to a
    statement of disagreement, the option to have the request and the denial sent with
    future disclosures, and how to complain (to the entity and to HHS)."""
    amendment = _amendment_for_write(acting_user, public_id)
    errors: dict[str, list[str]] = {}
    if basis not in DENIAL_BASES:
        errors.setdefault("basis", []).append("Choose the basis of the denial.")
    explanation = acc.clean_text(
        errors, "explanation", explanation, label="The explanation", max_length=4000, required=False
    )
    acc.raise_errors(errors)
    facility = acc.facility_for(acting_user, amendment.patient)
    policy = acc.policy_in_force(facility, amendment.received_on)
    facility_name = facility.name if facility is not None else "this organization"
    contact = (policy.parameters or {}).get(
        "privacy_contact", f"the Privacy Officer, {facility_name}"
    )
    with transaction.atomic():
        locked = _locked(amendment)
        _require_open(locked)
        in_error = _in_error_documents(locked)
        if in_error and not explanation:
            explanation = (
                "A document your request names was marked entered in error: it is kept in "
                "the legal record but is no longer used to make decisions about you."
            )
        now = clock.now()
        old = locked.status
        locked.status = AmendmentStatus.DENIED
        locked.denial_basis = basis
        locked.decision_note = explanation
        locked.decided_at = now
        locked.decided_by = acting_user
        locked.send_with_disclosures = bool(send_with_disclosures)
        locked.save(
            update_fields=[
                "status",
                "denial_basis",
                "decision_note",
                "decided_at",
                "decided_by",
                "send_with_disclosures",
            ]
        )
        letter = acc.issue_letter(
            LetterKind.AMENDMENT_DENIED,
            locked.patient,
            denial_letter_text(locked, facility_name, contact),
            acting_user,
            amendment=locked,
        )
        acc.audit_event(
            acting_user,
            Action.UPDATE,
            locked,
            AMENDMENT,
            purpose=Purpose.PATIENT_REQUEST,
            status={"from": old, "to": AmendmentStatus.DENIED},
            basis=basis,
            entered_in_error=[str(d.public_id) for d in in_error],
            letter=str(letter.public_id),
            late=acc.today() > due(locked),
        )
    return locked


def do_set_send_with_disclosures(public_id, *, acting_user, send: bool) -> Amendment:
    """The patient's choice, after a denial without a statement of disagreement, to have
    the request and the denial sent with future disclosures (164.526(d)(1)(iii))."""
    amendment = _amendment_for_write(acting_user, public_id)
    with transaction.atomic():
        locked = _locked(amendment)
        if locked.status != AmendmentStatus.DENIED:
            raise ValidationError("Only a denied request travels with later disclosures.")
        old = locked.send_with_disclosures
        locked.send_with_disclosures = bool(send)
        locked.save(update_fields=["send_with_disclosures"])
        acc.audit_event(
            acting_user,
            Action.UPDATE,
            locked,
            AMENDMENT,
            purpose=Purpose.PATIENT_REQUEST,
            send_with_disclosures={"from": old, "to": bool(send)},
        )
    return locked


def do_record_statement(
    public_id, *, acting_user, kind: str, text: str, received_on
) -> AmendmentStatement:
    """Record the patient's statement of disagreement (after a denial), or the
    entity's rebuttal to one (a copy goes to the patient as a letter). Both are linked
    to the request and travel with later disclosures of the affected documents."""
    amendment = _amendment_for_write(acting_user, public_id)
    errors: dict[str, list[str]] = {}
    if kind not in StatementKind.values:
        errors.setdefault("kind", []).append("Choose a statement of disagreement or a rebuttal.")
    policy = acc.policy_in_force(
        acc.facility_for(acting_user, amendment.patient), amendment.received_on
    )
    limit = int((policy.parameters or {}).get("statement_max_chars", DEFAULT_STATEMENT_MAX_CHARS))
    text = acc.clean_text(errors, "text", text, label="The statement", max_length=limit)
    if not isinstance(received_on, dt.date):
        errors.setdefault("received_on", []).append("Give the date of the statement.")
    elif received_on > acc.today():
        errors.setdefault("received_on", []).append("The date is in the future.")
    acc.raise_errors(errors)
    with transaction.atomic():
        locked = _locked(amendment)
        if locked.status != AmendmentStatus.DENIED:
            raise ValidationError(
                "A statement of disagreement or a rebuttal follows a denial; this request "
                "is not denied."
            )
        decided_on = timezone.localtime(locked.decided_at).date()
        if received_on < decided_on:
            raise ValidationError(
                {"received_on": f"The statement cannot predate the denial ({decided_on})."}
            )
        has_disagreement = locked.statements.filter(kind=StatementKind.DISAGREEMENT).exists()
        if kind == StatementKind.REBUTTAL and not has_disagreement:
            raise ValidationError(
                "A rebuttal answers a statement of disagreement; none is recorded."
            )
        now = clock.now()
        statement = AmendmentStatement(
            amendment=locked,
            kind=kind,
            text=text,
            received_on=received_on,
            recorded_by=acting_user,
            recorded_at=now,
        )
        statement.save(force_insert=True)
        letter = None
        if kind == StatementKind.REBUTTAL:
            body = (
                "Our response to your statement of disagreement\n\n"
                f"About your request of {locked.received_on.isoformat()} to amend your "
                "health record: this is a copy of the rebuttal we have added to your "
                "record. It will be sent, with your statement, whenever the information "
                f"is disclosed.\n\n{text}"
            )
            letter = acc.issue_letter(
                LetterKind.AMENDMENT_REBUTTAL, locked.patient, body, acting_user, amendment=locked
            )
        acc.audit_event(
            acting_user,
            Action.CREATE,
            locked,
            AMENDMENT,
            purpose=Purpose.PATIENT_REQUEST,
            statement=str(statement.public_id),
            kind=kind,
            **({"letter": str(letter.public_id)} if letter else {}),
        )
    return statement
