"""Changes to deficiencies made by people: an analyst adds, reassigns or waives one
(always with a reason), and a clinician signs many of their own verbal and telephone
orders at once.

Each action checks its permission first (outside its transaction, so a refusal's audit
row is kept), validates everything, then in one transaction writes the deficiency, a
:class:`DeficiencyEvent` (who, when, why, from whom to whom), the record's completion
status and the audit event. The analysis (``completion.analysis``) opens and closes
deficiencies on its own; a deficiency added here has no rule, ``opened_by`` set and a
key of its own, and the analysis leaves such deficiencies alone.

Bulk signing, where the law allows it: verbal and telephone orders only (42 CFR
482.24(c)(3): authenticated by the ordering practitioner within the state's limit; the
rules of other documents ask that each be read and signed on its own page). An order is
signed in bulk only when the bulk-signing page showed its full text to this user in
this session (the page keeps the ids it displayed) and the user ticked it. The password
is checked once for the batch; each order is then signed on its own, through
:func:`documents.actions.do_sign_document`, so one that cannot be signed (changed
meanwhile, not the user's) leaves the others signed, and the result says which failed
and why.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404

from accounts.access import AccessDenied, require_permission
from audit.actions import record_event
from audit.models import Action, Outcome
from completion.access import BULK_SIGN_LIMIT, BULK_SIGN_ORDER_MODES, responsible_choices
from completion.analysis import refresh_record
from completion.models import (
    Deficiency,
    DeficiencyEvent,
    DeficiencyKind,
    DeficiencyStatus,
    RecordCompletion,
)
from completion.permissions import CompletionPermission as CP
from completion.policy import delinquent_at as policy_delinquent_at
from completion.policy import policy_for_encounter
from documents.models import Document, DocumentType
from documents.permissions import DocumentsPermission as DP
from encounters.models import VOID_ENCOUNTER
from patients.access import default_purpose, facility_ids
from recordroom import clock

OBJECT_TYPE = "completion.deficiency"
_MARKUP = re.compile(r"[<>]")
MIN_REASON = 5


class Event:
    """What a :class:`DeficiencyEvent` records."""

    OPENED = "opened"
    REASSIGNED = "reassigned"
    WAIVED = "waived"
    COMPLETED = "completed"


# --- validation -------------------------------------------------------------------------


def _line(errors: dict, key: str, value, *, label: str, max_length: int = 300, min_length=1):
    text = " ".join(str(value or "").split())
    if len(text) < min_length:
        errors.setdefault(key, []).append(
            f"{label} is required."
            if min_length <= 1 or not text
            else f"{label} needs at least {min_length} characters."
        )
    elif len(text) > max_length:
        errors.setdefault(key, []).append(f"{label} is longer than {max_length} characters.")
    elif _MARKUP.search(text):
        errors.setdefault(key, []).append(f"{label} cannot contain markup (< or >).")
    return text


def _check_responsible(errors: dict, user, facility, *, key: str = "responsible") -> None:
    """An active clinician who writes documents and works at the encounter's facility."""
    if user is None:
        errors.setdefault(key, []).append("Choose the clinician responsible.")
    elif not user.is_active:
        errors.setdefault(key, []).append(
            "That clinician's account is inactive (left the staff): choose another."
        )
    elif user not in responsible_choices(facility):
        errors.setdefault(key, []).append(
            "That person does not write documents at this encounter's facility."
        )


def _raise(errors: dict) -> None:
    if errors:
        raise ValidationError(errors)


def _target(deficiency: Deficiency) -> dict:
    return {
        "patient_id": deficiency.patient.public_id,
        "object_type": OBJECT_TYPE,
        "object_id": str(deficiency.public_id),
    }


def _require_manage(user, action: str, **target) -> None:
    require_permission(
        user, CP.MANAGE_DEFICIENCIES, action=action, purpose=default_purpose(user), **target
    )


# --- adding -----------------------------------------------------------------------------


def do_add_deficiency(
    encounter,
    *,
    kind: str,
    description: str,
    reason: str,
    responsible,
    due_at: dt.datetime,
    acting_user,
    document: Document | None = None,
    document_type: DocumentType | None = None,
) -> Deficiency:
    """An analyst records a deficiency the analysis did not find (a missing consent, an
    illegible entry), with the reason, the clinician responsible and the due date.

    ``encounter`` comes from ``completion.access.access_encounter_for_deficiency``. A
    missing document names its type; an unsigned, incomplete or late one names the
    document (of this encounter). The record becomes incomplete.
    """
    _require_manage(
        acting_user,
        Action.CREATE,
        patient_id=encounter.patient.public_id,
        object_type=OBJECT_TYPE,
    )
    now = clock.now()
    errors: dict[str, list[str]] = {}
    if kind not in DeficiencyKind.values:
        errors.setdefault("kind", []).append("Choose the kind of deficiency.")
    description = _line(errors, "description", description, label="The description")
    reason = _line(errors, "reason", reason, label="The reason", min_length=MIN_REASON)
    if encounter.status in VOID_ENCOUNTER:
        errors.setdefault("encounter", []).append(
            "That encounter was cancelled or entered in error."
        )
    if encounter.facility_id not in facility_ids(acting_user):
        errors.setdefault("encounter", []).append("You do not work at this encounter's facility.")
    _check_responsible(errors, responsible, encounter.facility)
    if not isinstance(due_at, dt.datetime) or due_at.tzinfo is None:
        errors.setdefault("due_at", []).append("Give the date and time it is due.")
    elif due_at < encounter.started_at:
        errors.setdefault("due_at", []).append("The due date is before the encounter began.")
    if document is not None and document.encounter_id != encounter.pk:
        errors.setdefault("document", []).append("That document is not in this encounter.")
    if document_type is not None and not isinstance(document_type, DocumentType):
        errors.setdefault("document_type", []).append("Choose a document type.")
    if kind == DeficiencyKind.MISSING:
        if document is not None:
            errors.setdefault("document", []).append(
                "A missing document cannot point at a document: choose its type instead."
            )
        if document_type is None:
            errors.setdefault("document_type", []).append("Say which type of document is missing.")
    elif kind in DeficiencyKind.values and document is None:
        errors.setdefault("document", []).append(
            "Choose the document that is unsigned, incomplete or late."
        )
    _raise(errors)
    with transaction.atomic():
        existing = RecordCompletion.objects.filter(encounter=encounter).first()
        record_due = existing.due_at if existing and existing.due_at else None
        deficiency = Deficiency.objects.create(
            encounter=encounter,
            patient=encounter.patient,
            kind=kind,
            document=document,
            document_type=document_type or (document.doc_type if document else None),
            key=f"manual:{uuid.uuid4().hex}",
            description=description,
            responsible=responsible,
            due_at=due_at,
            delinquent_at=record_due
            or policy_delinquent_at(encounter.ended_at, policy_for_encounter(encounter)),
            opened_at=now,
            opened_by=acting_user,
        )
        DeficiencyEvent.objects.create(
            deficiency=deficiency,
            event=Event.OPENED,
            at=now,
            by=acting_user,
            to_user=responsible,
            reason=reason,
        )
        refresh_record(encounter, now=now)
        record_event(
            acting_user,
            Action.CREATE,
            purpose=default_purpose(acting_user),
            detail={
                "kind": kind,
                "encounter": str(encounter.public_id),
                "responsible": str(responsible.public_id),
                "document": str(document.public_id) if document else None,
                "manual": True,
            },
            **_target(deficiency),
        )
    return deficiency


# --- reassigning and waiving ----------------------------------------------------------


def _locked_open(deficiency: Deficiency) -> Deficiency:
    locked = Deficiency.objects.select_for_update().get(pk=deficiency.pk)
    if locked.status != DeficiencyStatus.OPEN:
        raise ValidationError(
            f"This deficiency is no longer open "
            f"({DeficiencyStatus(locked.status).label.lower()}); nothing was changed.",
            code="closed",
        )
    locked.patient = deficiency.patient
    return locked


def do_reassign_deficiency(deficiency: Deficiency, *, to_user, reason: str, acting_user):
    """Give an open deficiency to another clinician (e.g. the one who wrote the
    document, or a colleague when the responsible clinician left the staff), with the
    reason. The new clinician must be active, write documents and work at the
    encounter's facility."""
    _require_manage(acting_user, Action.UPDATE, **_target(deficiency))
    errors: dict[str, list[str]] = {}
    reason = _line(errors, "reason", reason, label="The reason", min_length=MIN_REASON)
    _check_responsible(errors, to_user, deficiency.encounter.facility, key="to_user")
    if to_user is not None and to_user.pk == deficiency.responsible_id:
        errors.setdefault("to_user", []).append("That clinician is already responsible.")
    _raise(errors)
    with transaction.atomic():
        locked = _locked_open(deficiency)
        now = clock.now()
        before = locked.responsible
        locked.responsible = to_user
        locked.save(update_fields=["responsible"])
        DeficiencyEvent.objects.create(
            deficiency=locked,
            event=Event.REASSIGNED,
            at=now,
            by=acting_user,
            from_user=before,
            to_user=to_user,
            reason=reason,
        )
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=default_purpose(acting_user),
            detail={
                "change": Event.REASSIGNED,
                "from": str(before.public_id) if before else None,
                "to": str(to_user.public_id),
            },
            **_target(locked),
        )
    deficiency.responsible = to_user
    return deficiency


def do_waive_deficiency(deficiency: Deficiency, *, reason: str, acting_user):
    """Close an open deficiency without the document (it does not apply to this
    patient, the record was completed on paper), with the reason; the record becomes
    complete when it was the last one open."""
    _require_manage(acting_user, Action.UPDATE, **_target(deficiency))
    errors: dict[str, list[str]] = {}
    reason = _line(errors, "reason", reason, label="The reason", min_length=MIN_REASON)
    _raise(errors)
    with transaction.atomic():
        locked = _locked_open(deficiency)
        now = clock.now()
        locked.status = DeficiencyStatus.WAIVED
        locked.closed_at = now
        locked.closed_by = acting_user
        locked.close_reason = reason
        locked.save(update_fields=["status", "closed_at", "closed_by", "close_reason"])
        DeficiencyEvent.objects.create(
            deficiency=locked, event=Event.WAIVED, at=now, by=acting_user, reason=reason
        )
        record = refresh_record(locked.encounter, now=now)
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=default_purpose(acting_user),
            detail={"change": Event.WAIVED, "record_status": record.status},
            **_target(locked),
        )
    deficiency.status, deficiency.closed_at = locked.status, now
    deficiency.closed_by, deficiency.close_reason = acting_user, reason
    return deficiency


# --- bulk signing -----------------------------------------------------------------------


@dataclass
class BulkSignResult:
    signed: list = field(default_factory=list)  # documents
    failed: list = field(default_factory=list)  # (public id, message)


def _close_signed(document: Document, *, acting_user, now) -> None:
    """Close the open "unsigned" deficiencies of a document its author just signed
    (the analysis does the same when it re-runs; whichever comes second finds nothing
    open)."""
    rows = list(
        Deficiency.objects.select_for_update().filter(
            document=document, kind=DeficiencyKind.UNSIGNED, status=DeficiencyStatus.OPEN
        )
    )
    for deficiency in rows:
        deficiency.status = DeficiencyStatus.COMPLETED
        deficiency.closed_at = now
        deficiency.closed_by = acting_user
        deficiency.close_reason = "signed"
        deficiency.save(update_fields=["status", "closed_at", "closed_by", "close_reason"])
        DeficiencyEvent.objects.create(
            deficiency=deficiency,
            event=Event.COMPLETED,
            at=now,
            by=acting_user,
            reason="signed with other orders (bulk signing)",
        )
    if rows and document.encounter_id:
        refresh_record(document.encounter, now=now)


def _parse_ids(values) -> list[uuid.UUID]:
    ids = []
    for value in values or ():
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            raise ValidationError({"documents": "An order in the list is not valid."}) from None
    return list(dict.fromkeys(ids))


def do_bulk_sign(user, document_public_ids, password: str, viewed_ids) -> BulkSignResult:
    """Sign several of ``user``'s own unsigned verbal and telephone orders with one
    password entry. ``viewed_ids``: the orders the bulk-signing page showed in full to
    this user in this session; an order not among them is not signed.

    A wrong password signs nothing (the attempt is audited). Otherwise each order is
    signed on its own; the result lists what was signed and what failed, and why. The
    batch is audited once, besides each signature's own audit row.
    """
    from documents.access import access_document
    from documents.actions import check_sign, do_sign_document
    from documents.workflow import Conflict

    for permission in (CP.COMPLETE_OWN, DP.AUTHOR):
        require_permission(
            user,
            permission,
            action=Action.SIGN,
            purpose=default_purpose(user),
            object_type="completion.bulk_sign",
        )
    ids = _parse_ids(document_public_ids)
    viewed = set(_parse_ids(viewed_ids))
    if not ids:
        raise ValidationError({"documents": "Tick the orders you have read and want to sign."})
    if len(ids) > BULK_SIGN_LIMIT:
        raise ValidationError({"documents": f"Sign at most {BULK_SIGN_LIMIT} orders at a time."})
    if not password or not user.check_password(password):
        record_event(
            user,
            Action.SIGN,
            outcome=Outcome.DENIED,
            purpose=default_purpose(user),
            object_type="completion.bulk_sign",
            reason="wrong password at bulk signing",
            detail={"documents": [str(i) for i in ids]},
        )
        raise ValidationError({"password": "The password is not correct; nothing was signed."})
    result = BulkSignResult()
    for public_id in ids:
        if public_id not in viewed:
            result.failed.append(
                (public_id, "Not shown to you on the signing page: open it there first.")
            )
            continue
        try:
            document = access_document(user, public_id, write=True)
            if document.order_mode not in BULK_SIGN_ORDER_MODES:
                result.failed.append(
                    (public_id, "Not a verbal or telephone order: sign it on its own page.")
                )
                continue
            check_sign(document, acting_user=user)
            with transaction.atomic():
                do_sign_document(document, password=password, acting_user=user)
                _close_signed(document, acting_user=user, now=clock.now())
        except Http404:
            result.failed.append((public_id, "No such order."))
        except AccessDenied as exc:
            result.failed.append((public_id, getattr(exc, "message", "") or "Not allowed."))
        except (Conflict, ValidationError) as exc:
            result.failed.append((public_id, " ".join(exc.messages)))
        else:
            result.signed.append(document)
    record_event(
        user,
        Action.SIGN,
        purpose=default_purpose(user),
        object_type="completion.bulk_sign",
        detail={
            "signed": [str(d.public_id) for d in result.signed],
            "failed": [str(i) for i, _ in result.failed],
        },
    )
    return result
