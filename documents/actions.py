"""Every change to the legal document record.

Each action checks permission first (outside its transaction, so a refusal's audit row
is kept), validates everything it was given, then in one transaction writes the new
rows, the status change (through the one transition table in ``documents.workflow``)
and the audit event. Nothing is updated in place except the document's pointers
(status, current version, when signed) and a version's signature, written once.

Who may do what:

- **Write** (``documents.author``): a clinician writes a draft, revises it (each save a
  new version) and signs it by entering the password again. Only the author signs.
- **File** (``documents.file``): HIM staff file scanned paper and imported documents;
  these are final at once (authenticated on paper or by the sending system), with the
  SHA-256 of what was filed.
- **Amend / correct**: a signed document is changed only by its author (or, for a filed
  document, by HIM staff with ``documents.file``). HIM administrators do not change a
  clinician's words: a wrong document is marked entered in error instead. An amendment
  or correction of an authored document is a new version that waits for its author's
  signature; until then everyone else reads the version last signed, and the status
  becomes amended/corrected when the author signs it. A filed document's correction is
  filed, so it takes effect at once.
- **Addendum**: a new document pointing to a signed one (``addendum_to``), written and
  signed by its own author.
- **Entered in error** (``documents.mark_in_error``; or the author of a draft never
  signed, withdrawing it): hidden from ordinary views, kept for ever.
"""

from __future__ import annotations

import datetime as dt
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.access import has_permission, require_permission
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from documents import integrity, workflow
from documents.access import ActionRefused
from documents.models import (
    Document,
    DocumentSource,
    DocumentStatus,
    DocumentStatusChange,
    DocumentType,
    DocumentVersion,
    OrderMode,
    SensitiveCategory,
    VersionKind,
)
from documents.permissions import DocumentsPermission as DP
from documents.signals import document_changed
from documents.workflow import Conflict
from encounters.models import VOID_ENCOUNTER
from patients.access import default_purpose
from recordroom import clock

DEFAULT_LATE_ENTRY_HOURS = 24
ORDERS_LOINC = "46209-3"  # Provider orders: the one type that carries an order mode
MAX_BODY_CHARS = 200_000
_MARKUP = re.compile(r"[<>]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def late_entry_hours() -> int:
    return int(getattr(settings, "LATE_ENTRY_HOURS", DEFAULT_LATE_ENTRY_HOURS))


def is_late(service_at: dt.datetime, entered_at: dt.datetime) -> bool:
    """Entered more than LATE_ENTRY_HOURS (24 by default) after the care it records."""
    return entered_at - service_at > dt.timedelta(hours=late_entry_hours())


# --- validation ------------------------------------------------------------------------


def _line(errors: dict, key: str, value, *, label: str, max_length: int, min_length: int = 1):
    """A one-line text (a title, a reason): required, no markup, no control codes."""
    text = " ".join(str(value or "").split())
    if len(text) < min_length:
        errors.setdefault(key, []).append(
            f"{label} is required."
            if min_length <= 1
            else f"{label} needs at least {min_length} characters."
        )
    elif len(text) > max_length:
        errors.setdefault(key, []).append(f"{label} is longer than {max_length} characters.")
    elif _MARKUP.search(text):
        errors.setdefault(key, []).append(f"{label} cannot contain markup (< or >).")
    return text


def _body(errors: dict, value) -> str:
    """Body text is kept exactly as written (it is escaped wherever it is shown), but
    line endings are made uniform so versions compare line by line."""
    text = str(value or "").replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > MAX_BODY_CHARS:
        errors.setdefault("body", []).append(
            f"The text is longer than {MAX_BODY_CHARS:,} characters."
        )
    elif _CONTROL.search(text):
        errors.setdefault("body", []).append("The text contains control characters.")
    return text


def _attachment(errors: dict, upload):
    if upload is None:
        return None
    try:
        return integrity.check_attachment(upload)
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            errors.setdefault(key, []).extend(messages)
        return None


def _sensitivity(errors: dict, values) -> list[str]:
    chosen = {str(v) for v in values or ()}
    unknown = chosen - set(SensitiveCategory.values)
    if unknown:
        errors.setdefault("sensitivity", []).append("Unknown sensitive category.")
    return [value for value in SensitiveCategory.values if value in chosen]


def _raise(errors: dict) -> None:
    if errors:
        raise ValidationError(errors)


# --- shared steps ------------------------------------------------------------------------


def _target(document: Document) -> dict:
    return {
        "patient_id": document.patient.public_id,
        "object_type": "document",
        "object_id": str(document.public_id),
    }


def _require(user, permission: str, document: Document, *, action: str) -> None:
    require_permission(
        user, permission, action=action, purpose=default_purpose(user), **_target(document)
    )


def _require_author(user, document: Document, *, action: str, doing: str) -> None:
    if document.author_id == user.pk:
        return
    record_event(
        user,
        action,
        outcome=Outcome.DENIED,
        purpose=default_purpose(user),
        reason=f"not the author: only the author may {doing}",
        **_target(document),
    )
    raise ActionRefused(
        f"Only the author of this document ({document.author.display_name}) can {doing} it."
    )


def _transition(
    document: Document, to_status: str, *, acting_user, reason: str, now, from_status=None
) -> DocumentStatusChange:
    """The one place a document's status changes: checked against the table, recorded
    as a status-change row. The caller saves the document."""
    old = document.status if from_status is None else from_status
    workflow.check_transition(old, to_status)
    change = DocumentStatusChange.objects.create(
        document=document,
        from_status=old,
        to_status=to_status,
        changed_by=acting_user,
        changed_at=now,
        reason=reason[:300],
    )
    document.status = to_status
    return change


def _locked(document: Document) -> Document:
    locked = (
        Document.objects.select_for_update(of=("self",))
        .select_related("current_version")
        .get(pk=document.pk)
    )
    locked.patient = document.patient
    locked.author = document.author
    return locked


def _latest(document: Document) -> DocumentVersion:
    version = document.versions.order_by("-number")[0]
    version.document = document
    return version


def _new_version(
    document: Document,
    *,
    number: int,
    kind: str,
    body: str,
    acting_user,
    now,
    reason: str = "",
    stored: str = "",
    checked=None,
    carry: DocumentVersion | None = None,
    filed: bool = False,
) -> DocumentVersion:
    """A new version row: a new attachment (``stored``/``checked``), or the previous
    version's attachment carried over (the same stored file, never copied or replaced)."""
    version = DocumentVersion(
        document=document,
        number=number,
        kind=kind,
        body=body,
        reason=reason,
        created_by=acting_user,
        created_at=now,
    )
    if checked is not None:
        version.attachment = stored
        version.attachment_name = checked.name
        version.attachment_content_type = checked.content_type
        version.attachment_size = checked.size
        version.attachment_sha256 = checked.sha256
    elif carry is not None and carry.attachment:
        version.attachment = carry.attachment.name
        version.attachment_name = carry.attachment_name
        version.attachment_content_type = carry.attachment_content_type
        version.attachment_size = carry.attachment_size
        version.attachment_sha256 = carry.attachment_sha256
    if filed:
        # Filed content is authenticated by filing: keep the hash of what was filed.
        version.content_sha256 = integrity.version_sha256(version)
    version.full_clean(exclude=["document", "created_by", "attachment"])
    version.save(force_insert=True)
    return version


def _audit(acting_user, action: str, document: Document, **detail) -> None:
    record_event(
        acting_user,
        action,
        purpose=default_purpose(acting_user),
        detail=detail,
        **_target(document),
    )


def _changed(document: Document, change: str) -> None:
    """Tell listeners (chart completion) inside the action's transaction."""
    document_changed.send(sender=Document, document=document, change=change)


# --- creating ----------------------------------------------------------------------------


def do_create_document(
    patient,
    *,
    doc_type: DocumentType,
    title: str,
    service_at: dt.datetime,
    acting_user,
    body: str = "",
    encounter=None,
    source: str = DocumentSource.AUTHORED,
    sensitivity=(),
    late_entry: bool = False,
    attachment=None,
    author=None,
    written_at: dt.datetime | None = None,
    order_mode: str = OrderMode.NOT_AN_ORDER,
) -> Document:
    """Write a draft (``source=authored``, ``documents.author``), or file a scanned or
    imported document (``documents.file``), which is final at once.

    ``patient`` comes from ``patients.access.access_patient``. A late entry is marked
    when the author says so or when it is entered more than LATE_ENTRY_HOURS after
    ``service_at``. ``order_mode`` (written, verbal, telephone) is given for provider
    orders (LOINC 46209-3) only.
    """
    authored = source == DocumentSource.AUTHORED
    require_permission(
        acting_user,
        DP.AUTHOR if authored else DP.FILE,
        action=Action.CREATE,
        purpose=default_purpose(acting_user),
        patient_id=patient.public_id,
        object_type="document",
    )
    now = clock.now()
    errors: dict[str, list[str]] = {}
    if source not in DocumentSource.values:
        errors.setdefault("source", []).append("Unknown source.")
    if not isinstance(doc_type, DocumentType) or not doc_type.active:
        errors.setdefault("doc_type", []).append("Choose a document type.")
    title = _line(errors, "title", title, label="The title", max_length=200)
    body = _body(errors, body)
    categories = _sensitivity(errors, sensitivity)
    if not isinstance(service_at, dt.datetime) or service_at.tzinfo is None:
        errors.setdefault("service_at", []).append("Give the date and time of service.")
    elif service_at > now:
        errors.setdefault("service_at", []).append("The date of service is in the future.")
    elif service_at.date() < patient.birth_date:
        errors.setdefault("service_at", []).append(
            "The date of service is before the patient's date of birth."
        )
    if encounter is not None and encounter.patient_id != patient.pk:
        errors.setdefault("encounter", []).append("That encounter is not this patient's.")
    elif encounter is not None and encounter.status in VOID_ENCOUNTER:
        errors.setdefault("encounter", []).append(
            "That encounter was cancelled or entered in error; file the document elsewhere."
        )
    # A filed document (scanned, imported) names the clinician who wrote it and when it
    # was written in the source system; the filer is recorded on its version and audit.
    if authored and author is not None and author.pk != acting_user.pk:
        errors.setdefault("author", []).append("A document written here is its writer's own.")
    if written_at is not None:
        if authored:
            errors.setdefault("written_at", []).append("A document written here is written now.")
        elif not isinstance(written_at, dt.datetime) or written_at.tzinfo is None:
            errors.setdefault("written_at", []).append("Give the date and time it was written.")
        elif written_at > now:
            errors.setdefault("written_at", []).append("The date it was written is in the future.")
    order_mode = order_mode or OrderMode.NOT_AN_ORDER
    if order_mode not in OrderMode.values:
        errors.setdefault("order_mode", []).append("Choose written, verbal or telephone.")
    elif order_mode and isinstance(doc_type, DocumentType) and doc_type.loinc_code != ORDERS_LOINC:
        errors.setdefault("order_mode", []).append(
            "Only provider orders have an order mode (written, verbal or telephone)."
        )
    checked = _attachment(errors, attachment)
    if source == DocumentSource.SCANNED and attachment is None:
        errors.setdefault("attachment", []).append("A scanned document needs its scanned file.")
    if not body.strip() and attachment is None:
        errors.setdefault("body", []).append("Write the document, or attach its file.")
    _raise(errors)
    entered_at = written_at or now
    late = bool(late_entry) or is_late(service_at, entered_at)
    stored = integrity.store_attachment(checked) if checked else ""
    try:
        with transaction.atomic():
            document = Document(
                patient=patient,
                encounter=encounter,
                doc_type=doc_type,
                title=title,
                author=author or acting_user,
                service_at=service_at,
                entered_at=entered_at,
                late_entry=late,
                status=DocumentStatus.DRAFT if authored else DocumentStatus.FINAL,
                source=source,
                order_mode=order_mode,
                sensitivity=categories,
                is_sensitive=bool(categories),
                created_at=now,
                updated_at=now,
            )
            document.save(force_insert=True)
            version = _new_version(
                document,
                number=1,
                kind=VersionKind.ORIGINAL,
                body=body,
                acting_user=acting_user,
                now=now,
                stored=stored,
                checked=checked,
                filed=not authored,
            )
            document.current_version = version
            document.save(update_fields=["current_version"])
            _transition(
                document,
                document.status,
                acting_user=acting_user,
                reason="written" if authored else f"filed ({source})",
                now=now,
                from_status=workflow.NEW,
            )
            _audit(
                acting_user,
                Action.CREATE,
                document,
                doc_type=doc_type.loinc_code,
                source=source,
                status=document.status,
                version=1,
                late_entry=late,
                sensitivity=categories,
                attachment_sha256=version.attachment_sha256 or None,
                **({"order_mode": order_mode} if order_mode else {}),
            )
            _changed(document, "created")
    except BaseException:
        integrity.discard_unrecorded(stored)
        raise
    return document


# --- drafts and signatures ---------------------------------------------------------------


def check_revise(document: Document, *, acting_user) -> None:
    """Refuse (audited) anyone but the author; refuse (Conflict) anything but a draft."""
    _require(acting_user, DP.AUTHOR, document, action=Action.UPDATE)
    _require_author(acting_user, document, action=Action.UPDATE, doing="edit")
    if document.status != DocumentStatus.DRAFT:
        raise Conflict(
            "Only a draft can be edited; a signed document changes by amendment or addendum."
        )


def do_revise_draft(document: Document, *, body: str, acting_user, attachment=None):
    """Save a draft again: a new version, by its author only, while it is a draft."""
    check_revise(document, acting_user=acting_user)
    errors: dict[str, list[str]] = {}
    body = _body(errors, body)
    checked = _attachment(errors, attachment)
    _raise(errors)
    stored = integrity.store_attachment(checked) if checked else ""
    try:
        with transaction.atomic():
            locked = _locked(document)
            if locked.status != DocumentStatus.DRAFT:
                raise Conflict("This document was signed meanwhile; amend it instead.")
            latest = _latest(locked)
            if body == latest.body and checked is None:
                raise ValidationError({"body": "Nothing changed: the text is as it was saved."})
            if not body.strip() and not (checked or latest.attachment):
                raise ValidationError({"body": "A draft needs text or an attached file."})
            now = clock.now()
            version = _new_version(
                locked,
                number=latest.number + 1,
                kind=VersionKind.REVISION,
                body=body,
                acting_user=acting_user,
                now=now,
                stored=stored,
                checked=checked,
                carry=latest,
            )
            locked.current_version = version
            locked.updated_at = now
            locked.save(update_fields=["current_version", "updated_at"])
            _audit(acting_user, Action.UPDATE, locked, version=version.number, draft=True)
            _changed(locked, "revised")
    except BaseException:
        integrity.discard_unrecorded(stored)
        raise
    document.current_version, document.updated_at = version, now
    return version


def check_sign(document: Document, *, acting_user) -> DocumentVersion:
    """The version its author would sign now. Anyone else is refused (audited); a
    document with nothing to sign, or already signed, is a Conflict."""
    _require(acting_user, DP.AUTHOR, document, action=Action.SIGN)
    _require_author(acting_user, document, action=Action.SIGN, doing="sign")
    if document.source != DocumentSource.AUTHORED:
        raise Conflict(
            "A filed (scanned or imported) document is authenticated on paper or by the "
            "sending system; it is not signed here."
        )
    if document.status == DocumentStatus.ENTERED_IN_ERROR:
        raise Conflict("This document is marked entered in error and cannot be signed.")
    latest = _latest(document)
    if latest.signed_at:
        raise Conflict(_already_signed(latest))
    if not latest.body.strip() and not latest.attachment:
        raise Conflict("There is nothing to sign: the document has no text and no file.")
    return latest


def do_sign_document(document: Document, *, password: str, acting_user) -> DocumentVersion:
    """Authenticate the document's newest version: its author, re-entering the password.

    Keeps who signed, when, and the SHA-256 of what was signed (document id, version
    number, attachment hash, body). Signs a draft (→ final) or an amendment/correction
    waiting for signature (→ amended/corrected). A version is signed once: a second
    signature is refused.
    """
    check_sign(document, acting_user=acting_user)
    if not password or not acting_user.check_password(password):
        record_event(
            acting_user,
            Action.SIGN,
            outcome=Outcome.DENIED,
            purpose=default_purpose(acting_user),
            reason="wrong password at signing",
            **_target(document),
        )
        raise ValidationError(
            {"password": "The password is not correct; the document was not signed."}
        )
    with transaction.atomic():
        locked = _locked(document)
        version = _latest(locked)
        if version.signed_at:
            raise Conflict(_already_signed(version))
        now = clock.now()
        version.signed_by = acting_user
        version.signed_at = now
        version.content_sha256 = integrity.version_sha256(version)
        version.save(update_fields=["signed_by", "signed_at", "content_sha256"])
        to_status = workflow.STATUS_AFTER[version.kind]
        _transition(
            locked,
            to_status,
            acting_user=acting_user,
            reason=f"signed version {version.number}",
            now=now,
        )
        locked.current_version = version
        locked.signed_at = now
        locked.updated_at = now
        locked.save(update_fields=["status", "current_version", "signed_at", "updated_at"])
        _audit(
            acting_user,
            Action.SIGN,
            locked,
            version=version.number,
            kind=version.kind,
            sha256=version.content_sha256,
            status=to_status,
        )
        _changed(locked, "signed")
    document.status, document.current_version = locked.status, version
    document.signed_at, document.updated_at = now, now
    return version


def _already_signed(version: DocumentVersion) -> str:
    who = version.signed_by.display_name if version.signed_by else "its author"
    when = version.signed_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Version {version.number} was already signed by {who} on {when}. A signed "
        "document changes only by amendment or addendum."
    )


# --- amendments, addenda, entered in error ---------------------------------------------


def check_amend(document: Document, *, acting_user) -> None:
    authored = document.source == DocumentSource.AUTHORED
    _require(acting_user, DP.AUTHOR if authored else DP.FILE, document, action=Action.UPDATE)
    if authored:
        _require_author(acting_user, document, action=Action.UPDATE, doing="amend")
    if document.status == DocumentStatus.DRAFT:
        raise Conflict("A draft is edited, not amended: it is not signed yet.")
    if document.status not in workflow.AUTHENTICATED:
        workflow.check_transition(document.status, DocumentStatus.AMENDED)


def do_amend_document(
    document: Document, *, body: str, reason: str, kind: str, acting_user, attachment=None
) -> DocumentVersion:
    """A new version of a signed document, with the reason (``kind``: amendment or
    correction). The signed original is kept and stays readable to its author and to
    ``documents.view_entered_in_error`` holders.

    Authored documents: the author only, and the new version waits for the author's
    signature (``do_sign_document``), which makes the status amended/corrected; until
    then everyone else reads the version last signed. Amending again before signing
    writes another version (the unsigned one is kept in the history). Filed documents:
    HIM staff with ``documents.file``; the new version is filed, so it applies at once.
    """
    check_amend(document, acting_user=acting_user)
    authored = document.source == DocumentSource.AUTHORED
    errors: dict[str, list[str]] = {}
    if kind not in (VersionKind.AMENDMENT, VersionKind.CORRECTION):
        errors.setdefault("kind", []).append("Choose amendment or correction.")
    reason = _line(errors, "reason", reason, label="The reason", max_length=300, min_length=5)
    body = _body(errors, body)
    checked = _attachment(errors, attachment)
    _raise(errors)
    stored = integrity.store_attachment(checked) if checked else ""
    try:
        with transaction.atomic():
            locked = _locked(document)
            if locked.status not in workflow.AUTHENTICATED:
                workflow.check_transition(locked.status, DocumentStatus.AMENDED)
            latest = _latest(locked)
            current = locked.current_version
            proposed = (body, checked.sha256 if checked else latest.attachment_sha256)
            if proposed in {
                (latest.body, latest.attachment_sha256),
                (current.body, current.attachment_sha256),
            }:
                raise ValidationError(
                    {"body": "The amendment changes nothing: change the text or attach a new file."}
                )
            if not body.strip() and not (checked or latest.attachment):
                raise ValidationError({"body": "The new version needs text or an attached file."})
            now = clock.now()
            version = _new_version(
                locked,
                number=latest.number + 1,
                kind=kind,
                body=body,
                acting_user=acting_user,
                now=now,
                reason=reason,
                stored=stored,
                checked=checked,
                carry=latest,
                filed=not authored,
            )
            fields = ["updated_at"]
            if not authored:
                _transition(
                    locked,
                    workflow.STATUS_AFTER[kind],
                    acting_user=acting_user,
                    reason=f"{kind} filed as version {version.number}: {reason}",
                    now=now,
                )
                locked.current_version = version
                fields += ["status", "current_version"]
            locked.updated_at = now
            locked.save(update_fields=fields)
            _audit(
                acting_user,
                Action.UPDATE,
                locked,
                version=version.number,
                kind=kind,
                awaiting_signature=authored,
                attachment_sha256=version.attachment_sha256 or None,
            )
            _changed(locked, "amended")
    except BaseException:
        integrity.discard_unrecorded(stored)
        raise
    document.status, document.current_version = locked.status, locked.current_version
    document.updated_at = now
    return version


def check_addendum(document: Document, *, acting_user) -> None:
    _require(acting_user, DP.AUTHOR, document, action=Action.CREATE)
    if document.addendum_to_id is not None:
        raise Conflict("Add the addendum to the original document, not to another addendum.")
    if document.status == DocumentStatus.DRAFT:
        raise Conflict(
            "Addenda attach to a signed document; this one is still a draft — edit it instead."
        )
    if document.status not in workflow.AUTHENTICATED:
        raise Conflict("This document is marked entered in error; nothing can be added to it.")


def do_add_addendum(
    document: Document, *, body: str, acting_user, late_entry: bool = False
) -> Document:
    """An addendum: a new document (``addendum_to`` the signed one) by the acting
    clinician, a draft until they sign it. It inherits the patient, encounter, type and
    sensitive categories of the document it adds to."""
    check_addendum(document, acting_user=acting_user)
    errors: dict[str, list[str]] = {}
    body = _body(errors, body)
    if not body.strip():
        errors.setdefault("body", []).append("Write the addendum.")
    _raise(errors)
    with transaction.atomic():
        parent = _locked(document)
        if parent.status not in workflow.AUTHENTICATED:
            raise Conflict("This document changed meanwhile; reload it.")
        now = clock.now()
        addendum = Document(
            patient=document.patient,
            encounter_id=parent.encounter_id,
            doc_type_id=parent.doc_type_id,
            title=f"Addendum to {parent.title}"[:200],
            author=acting_user,
            service_at=now,
            entered_at=now,
            late_entry=bool(late_entry),
            status=DocumentStatus.DRAFT,
            source=DocumentSource.AUTHORED,
            addendum_to=parent,
            sensitivity=list(parent.sensitivity),
            is_sensitive=parent.is_sensitive,
            created_at=now,
            updated_at=now,
        )
        addendum.save(force_insert=True)
        version = _new_version(
            addendum,
            number=1,
            kind=VersionKind.ORIGINAL,
            body=body,
            acting_user=acting_user,
            now=now,
        )
        addendum.current_version = version
        addendum.save(update_fields=["current_version"])
        _transition(
            addendum,
            DocumentStatus.DRAFT,
            acting_user=acting_user,
            reason=f"addendum to {parent.public_id}",
            now=now,
            from_status=workflow.NEW,
        )
        _audit(
            acting_user,
            Action.CREATE,
            addendum,
            addendum_to=str(parent.public_id),
            version=1,
            late_entry=bool(late_entry),
        )
        _changed(addendum, "addendum")
    return addendum


def check_mark_in_error(document: Document, *, acting_user) -> bool:
    """True when the author withdraws their own never-signed draft; anyone else needs
    ``documents.mark_in_error`` (refusal audited)."""
    own_draft = (
        document.author_id == acting_user.pk
        and document.status == DocumentStatus.DRAFT
        and has_permission(acting_user, DP.AUTHOR)
    )
    if not own_draft:
        _require(acting_user, DP.MARK_IN_ERROR, document, action=Action.UPDATE)
    if document.status == DocumentStatus.ENTERED_IN_ERROR:
        raise Conflict("This document is already marked entered in error.")
    return own_draft


def do_mark_entered_in_error(document: Document, *, reason: str, acting_user) -> Document:
    """Hide a document from ordinary views, for ever, with the reason; nothing is removed.

    HIM administrators (``documents.mark_in_error``) mark any document; the author of a
    draft that was never signed may withdraw it the same way.
    """
    own_draft = check_mark_in_error(document, acting_user=acting_user)
    errors: dict[str, list[str]] = {}
    reason = _line(errors, "reason", reason, label="The reason", max_length=300, min_length=10)
    _raise(errors)
    with transaction.atomic():
        locked = _locked(document)
        old = locked.status
        now = clock.now()
        _transition(
            locked,
            DocumentStatus.ENTERED_IN_ERROR,
            acting_user=acting_user,
            reason=reason,
            now=now,
        )
        locked.updated_at = now
        locked.save(update_fields=["status", "updated_at"])
        _audit(
            acting_user,
            Action.UPDATE,
            locked,
            status={"from": old, "to": DocumentStatus.ENTERED_IN_ERROR},
            own_draft=own_draft,
        )
        _changed(locked, "entered_in_error")
    document.status, document.updated_at = locked.status, now
    return document


def record_refused_break_the_glass(document: Document, *, acting_user) -> None:
    """A wrong password at emergency access to a document: the attempt is kept."""
    record_event(
        acting_user,
        Action.BREAK_THE_GLASS,
        outcome=Outcome.DENIED,
        purpose=Purpose.EMERGENCY,
        reason="wrong password at break-the-glass",
        **_target(document),
    )
