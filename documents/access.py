"""The one door to the legal document record.

Every read goes through :func:`patients.access.access_patient` with the clinical scope
(permission, facility, restricted patient), then the document's own rules:

- **Entered in error** documents are hidden from ordinary views (the same 404 as a
  document that does not exist); their author and holders of
  ``documents.view_entered_in_error`` still see them, marked as such.
- **Sensitive** documents (:class:`documents.models.SensitiveCategory`) show their content
  only to their author, to a user with ``documents.read_sensitive`` *and* a treatment
  relationship with the patient, or to a user with a live break-the-glass grant. Anyone
  else sees them listed as "Restricted document" (type and date), and opening one is
  refused (:class:`RestrictedDocument`) and audited.
- **Unauthenticated content** — a draft, or an amendment waiting for its author's
  signature — is shown to its author (and to ``documents.view_entered_in_error``
  holders) only; everyone else reads the document as it was last signed.
- **Superseded versions** (the signed original of an amended document, earlier draft
  revisions) are readable by the author and ``documents.view_entered_in_error`` holders.

Allowed reads are audited once per page (plus the patient access that
``access_patient`` records); refusals are audited where they are decided.
"""

from __future__ import annotations

import difflib
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, F, OuterRef, Q
from django.http import Http404
from django.urls import reverse

from accounts.access import AccessDenied, has_permission, require_permission
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from documents import integrity
from documents.models import (
    Document,
    DocumentSource,
    DocumentStatus,
    DocumentStatusChange,
    DocumentType,
    DocumentVersion,
    SensitiveCategory,
)
from documents.permissions import DocumentsPermission as DP
from documents.workflow import AUTHENTICATED
from patients.access import (
    Scope,
    access_patient,
    active_grant,
    default_purpose,
    has_treatment_relationship,
)
from patients.models import AccessGrant
from patients.permissions import PatientsPermission

RESTRICTED_TITLE = "Restricted document"


class RestrictedDocument(AccessDenied):
    """A sensitive document the user may not read. Already audited; show its type and
    date only."""

    def __init__(self, document: Document):
        super().__init__("restricted document")
        self.document = document


class ActionRefused(AccessDenied):
    """A change refused because of who asks (e.g. not the author). Already audited; the
    message says why and may be shown to the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- who sees what -------------------------------------------------------------------


class Reader:
    """What one user may see of one patient's documents.

    Made afresh for each call: the answer about sensitive content is computed once,
    lazily, and never kept across calls, so a break-the-glass grant given a minute ago
    counts at once.
    """

    def __init__(self, user, patient):
        self.user = user
        self.patient = patient
        self.sees_hidden = has_permission(user, DP.VIEW_ENTERED_IN_ERROR)
        self._sensitive_via: str | None = None

    def is_author(self, document: Document) -> bool:
        return document.author_id == self.user.pk

    @property
    def sensitive_via(self) -> str:
        """How the user may read sensitive content: "treatment", "break_the_glass" or ""."""
        if self._sensitive_via is None:
            via = ""
            if has_permission(self.user, DP.READ_SENSITIVE) and has_treatment_relationship(
                self.user, self.patient
            ):
                via = "treatment"
            elif active_grant(self.user, self.patient, kinds=[AccessGrant.Kind.BREAK_THE_GLASS]):
                via = "break_the_glass"
            self._sensitive_via = via
        return self._sensitive_via

    def may_list(self, document: Document) -> bool:
        if document.status == DocumentStatus.ENTERED_IN_ERROR:
            return self.sees_hidden or self.is_author(document)
        return True

    def restricted(self, document: Document) -> bool:
        """Sensitive content the user may not read."""
        return bool(
            document.is_sensitive and not self.is_author(document) and not self.sensitive_via
        )

    def sees_unauthenticated(self, document: Document) -> bool:
        return self.is_author(document) or self.sees_hidden

    def hidden_reason(self, document: Document) -> str:
        if self.restricted(document):
            return "sensitive"
        if document.status == DocumentStatus.DRAFT and not self.sees_unauthenticated(document):
            return "draft"
        return ""

    def sees_all_versions(self, document: Document) -> bool:
        return self.is_author(document) or self.sees_hidden


def may_list_documents(user) -> bool:
    """Whether a chart may list documents for this user at all (clinical read)."""
    return has_permission(user, PatientsPermission.READ_CLINICAL)


def _find(public_id) -> Document | None:
    try:
        key = uuid.UUID(str(public_id))
    except ValueError:
        return None
    return (
        Document.objects.select_related(
            "patient", "doc_type", "author", "encounter", "current_version", "addendum_to"
        )
        .filter(public_id=key)
        .first()
    )


def _deny(user, action, *, reason: str, document: Document | None = None, object_id="", **kw):
    record_event(
        user,
        action,
        outcome=Outcome.DENIED,
        purpose=default_purpose(user),
        patient_id=document.patient.public_id if document else None,
        object_type="document",
        object_id=str(document.public_id) if document else str(object_id)[:64],
        reason=reason,
        **kw,
    )


def _open(user, public_id, *, action: str = Action.VIEW) -> tuple[Document, Reader]:
    """Fetch a document the user may open, auditing every refusal (not the success)."""
    purpose = default_purpose(user)
    require_permission(
        user,
        PatientsPermission.READ_CLINICAL,
        action=action,
        purpose=purpose,
        object_type="document",
        object_id=str(public_id)[:64],
    )
    document = _find(public_id)
    if document is None:
        _deny(user, action, reason="no such document", object_id=public_id)
        raise Http404("No such document")
    document.patient = access_patient(
        user, document.patient.public_id, scope=Scope.CLINICAL, purpose=purpose
    )
    reader = Reader(user, document.patient)
    if not reader.may_list(document):
        _deny(
            user, action, document=document, reason="entered in error: hidden from ordinary views"
        )
        raise Http404("No such document")
    if reader.restricted(document):
        _deny(
            user,
            action,
            document=document,
            reason="sensitive document without permission and a treatment relationship, "
            "and no break-the-glass grant",
            detail={"sensitivity": list(document.sensitivity)},
        )
        raise RestrictedDocument(document)
    return document, reader


def _audit_view(user, document: Document, reader: Reader, **detail) -> None:
    if document.is_sensitive and not reader.is_author(document):
        detail["sensitive_via"] = reader.sensitive_via
    record_event(
        user,
        Action.VIEW,
        purpose=default_purpose(user),
        patient_id=document.patient.public_id,
        object_type="document",
        object_id=str(document.public_id),
        detail=detail,
    )


def access_document(user, public_id, *, write: bool = False) -> Document:
    """The document, if the user may open it; raise Http404, AccessDenied or
    RestrictedDocument (each audited) otherwise.

    ``write=True`` is for a change about to be made by a ``do_*`` action, which audits
    the change itself; a read (``write=False``) is audited here as a view.
    """
    document, reader = _open(user, public_id, action=Action.UPDATE if write else Action.VIEW)
    if not write:
        shown = None if reader.hidden_reason(document) else document.current_version
        _audit_view(user, document, reader, version=shown.number if shown else None)
    return document


# --- the document page -------------------------------------------------------------------


@dataclass(frozen=True)
class Permitted:
    """Which changes the page offers. The actions check again (and audit) on their own."""

    edit: bool = False
    sign: bool = False
    amend: bool = False
    addendum: bool = False
    mark_in_error: bool = False


def permitted_actions(user, document: Document, *, pending: DocumentVersion | None = None):
    is_author = document.author_id == user.pk
    status = document.status
    authored = document.source == DocumentSource.AUTHORED
    author_may = is_author and has_permission(user, DP.AUTHOR)
    return Permitted(
        edit=status == DocumentStatus.DRAFT and author_may,
        sign=authored
        and author_may
        and (status == DocumentStatus.DRAFT or (status in AUTHENTICATED and pending is not None)),
        amend=status in AUTHENTICATED
        and (author_may if authored else has_permission(user, DP.FILE)),
        addendum=status in AUTHENTICATED
        and document.addendum_to_id is None
        and has_permission(user, DP.AUTHOR),
        mark_in_error=status != DocumentStatus.ENTERED_IN_ERROR
        and (
            has_permission(user, DP.MARK_IN_ERROR) or (is_author and status == DocumentStatus.DRAFT)
        ),
    )


def latest_version(document: Document) -> DocumentVersion:
    version = document.versions.select_related("created_by", "signed_by").order_by("-number")[0]
    version.document = document
    return version


def pending_version(document: Document) -> DocumentVersion | None:
    """An amendment or correction written after the current version and not yet signed."""
    if document.status == DocumentStatus.DRAFT or document.current_version is None:
        return None
    version = (
        document.versions.select_related("created_by")
        .filter(number__gt=document.current_version.number)
        .order_by("-number")
        .first()
    )
    if version is not None:
        version.document = document
    return version


@dataclass
class AddendumEntry:
    document: Document
    hidden_reason: str
    version: DocumentVersion | None


@dataclass
class DocumentPage:
    document: Document
    version: DocumentVersion | None  # the version shown
    current: DocumentVersion | None  # the current version, when the user may read it
    hidden_reason: str
    pending: DocumentVersion | None
    permitted: Permitted
    addenda: list[AddendumEntry]
    status_changes: list[DocumentStatusChange]
    signature_intact: bool | None
    sensitivity_labels: list[str]

    @property
    def reading_other_version(self) -> bool:
        return self.version is not None and self.version is not self.current


def _sensitivity_labels(document: Document) -> list[str]:
    names = dict(SensitiveCategory.choices)
    return [names.get(value, value) for value in document.sensitivity]


def document_page(user, public_id, *, version: int | None = None) -> DocumentPage:
    """Everything the document screen shows, audited as one view. ``version`` asks for
    an earlier (or a waiting) version instead of the current one: its author's and
    ``documents.view_entered_in_error`` holders' only (a refusal is audited)."""
    document, reader = _open(user, public_id)
    hidden = reader.hidden_reason(document)
    current = None if hidden else document.current_version
    shown = current
    if version is not None and (current is None or version != current.number):
        shown = _version(user, document, reader, version)
    if shown is not None:
        shown.document = document
    pending = (
        pending_version(document)
        if shown is current and reader.sees_unauthenticated(document)
        else None
    )
    addenda = []
    for addendum in (
        Document.objects.filter(addendum_to=document)
        .select_related("author", "doc_type", "current_version")
        .order_by("entered_at", "pk")
    ):
        addendum.patient = document.patient
        if not reader.may_list(addendum):
            continue
        reason = reader.hidden_reason(addendum)
        addenda.append(
            AddendumEntry(addendum, reason, None if reason else addendum.current_version)
        )
    _audit_view(user, document, reader, version=shown.number if shown else None)
    return DocumentPage(
        document=document,
        version=shown,
        current=current,
        hidden_reason=hidden,
        pending=pending,
        permitted=permitted_actions(user, document, pending=pending),
        addenda=addenda,
        status_changes=list(document.status_changes.select_related("changed_by")),
        signature_intact=(
            integrity.version_is_intact(shown)
            if shown is not None and shown.content_sha256
            else None
        ),
        sensitivity_labels=_sensitivity_labels(document),
    )


def restricted_summary(user, document: Document) -> dict:
    """What may be said of a restricted document: its type and date, nothing else; and
    whether the user may ask for emergency access (break-the-glass) to the patient."""
    patient = document.patient
    return {
        "title": RESTRICTED_TITLE,
        "doc_type": document.doc_type,
        "service_at": document.service_at,
        "patient": patient,
        "banner": patient_banner(patient),
        "chart_url": reverse("patients:chart", args=[patient.public_id]),
        "document": document,
        "may_break_glass": may_break_glass(user, patient),
    }


def may_break_glass(user, patient) -> bool:
    """Whether emergency access can be offered from a restricted document's page
    (patients.actions.do_break_the_glass with the document)."""
    return has_permission(user, PatientsPermission.BREAK_THE_GLASS)


def document_for_break_the_glass(user, public_id) -> tuple[Document, bool]:
    """(document, whether it is still closed to the user) for an emergency-access
    request from a restricted document's page. The permission is checked first (refusal
    audited), then the same door as any read; ``do_break_the_glass`` audits the grant."""
    require_permission(
        user,
        PatientsPermission.BREAK_THE_GLASS,
        action=Action.BREAK_THE_GLASS,
        purpose=Purpose.EMERGENCY,
        object_type="document",
        object_id=str(public_id)[:64],
    )
    try:
        document, _reader = _open(user, public_id, action=Action.BREAK_THE_GLASS)
    except RestrictedDocument as exc:
        return exc.document, True
    return document, False


def patient_banner(patient) -> dict:
    """Who the page is about, as every document page heads it."""
    from patients.actions import mrn_of

    return {"name": patient.display_name, "mrn": mrn_of(patient), "birth_date": patient.birth_date}


# --- history, versions, diff, attachments ------------------------------------------------


@dataclass
class VersionEntry:
    version: DocumentVersion
    viewable: bool
    is_current: bool
    is_pending: bool
    intact: bool | None
    diff_from: int | None = None  # the previous version, when both may be read


@dataclass
class HistoryPage:
    document: Document
    entries: list[VersionEntry]
    status_changes: list[DocumentStatusChange]
    sees_all: bool


def _viewable(reader: Reader, document: Document, version: DocumentVersion) -> bool:
    if reader.hidden_reason(document):
        return False
    if reader.sees_all_versions(document):
        return True
    return document.current_version_id == version.pk


def history_page(user, public_id) -> HistoryPage:
    """Every version with who, when, why and its signature; content links only where
    the user may read that version."""
    document, reader = _open(user, public_id)
    versions = list(document.versions.select_related("created_by", "signed_by").order_by("number"))
    current = document.current_version.number if document.current_version else 0
    entries = []
    for version in versions:
        version.document = document
        entries.append(
            VersionEntry(
                version=version,
                viewable=_viewable(reader, document, version),
                is_current=version.number == current,
                is_pending=version.number > current and document.status != DocumentStatus.DRAFT,
                intact=integrity.version_is_intact(version) if version.content_sha256 else None,
            )
        )
    for previous, entry in zip(entries, entries[1:], strict=False):
        if previous.viewable and entry.viewable:
            entry.diff_from = previous.version.number
    _audit_view(user, document, reader, page="history")
    return HistoryPage(
        document=document,
        entries=entries,
        status_changes=list(document.status_changes.select_related("changed_by")),
        sees_all=reader.sees_all_versions(document),
    )


def _version(user, document: Document, reader: Reader, number: int) -> DocumentVersion:
    version = (
        document.versions.select_related("created_by", "signed_by").filter(number=number).first()
    )
    if version is None:
        _deny(user, Action.VIEW, document=document, reason=f"no version {number}")
        raise Http404("No such version")
    version.document = document
    if not _viewable(reader, document, version):
        _deny(
            user,
            Action.VIEW,
            document=document,
            reason=f"version {number} is superseded or unsigned: author and "
            "view_entered_in_error only",
        )
        raise AccessDenied("version not viewable")
    return version


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "same", "removed", "added", "gap"
    old_number: int | None
    new_number: int | None
    text: str


def line_diff(old: str, new: str, *, context: int = 3) -> list[DiffLine]:
    """A line diff (difflib), with long unchanged runs folded to ``context`` lines either
    side. Text is returned as text: the template escapes it."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[DiffLine] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    opcodes = matcher.get_opcodes()
    for index, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            same = [DiffLine("same", i1 + k + 1, j1 + k + 1, a[i1 + k]) for k in range(i2 - i1)]
            head = context if index > 0 else 0
            tail = context if index < len(opcodes) - 1 else 0
            if len(same) > head + tail + 1:
                folded = len(same) - head - tail
                rows.extend(same[:head])
                rows.append(DiffLine("gap", None, None, f"{folded} unchanged lines"))
                rows.extend(same[len(same) - tail :] if tail else [])
            else:
                rows.extend(same)
            continue
        rows.extend(DiffLine("removed", k + 1, None, a[k]) for k in range(i1, i2))
        rows.extend(DiffLine("added", None, k + 1, b[k]) for k in range(j1, j2))
    return rows


@dataclass
class DiffPage:
    document: Document
    old: DocumentVersion
    new: DocumentVersion
    lines: list[DiffLine]
    attachment_changed: bool
    added: int
    removed: int


def diff_page(user, public_id, a: int, b: int) -> DiffPage:
    document, reader = _open(user, public_id)
    if a == b:
        _deny(user, Action.VIEW, document=document, reason="diff of a version with itself")
        raise Http404("Choose two different versions")
    old, new = sorted(
        (_version(user, document, reader, a), _version(user, document, reader, b)),
        key=lambda v: v.number,
    )
    lines = line_diff(old.body, new.body)
    _audit_view(user, document, reader, page="diff", versions=[old.number, new.number])
    return DiffPage(
        document=document,
        old=old,
        new=new,
        lines=lines,
        attachment_changed=old.attachment_sha256 != new.attachment_sha256,
        added=sum(1 for line in lines if line.kind == "added"),
        removed=sum(1 for line in lines if line.kind == "removed"),
    )


class AttachmentDamaged(Exception):
    """The stored file no longer matches the checksum kept when it was filed."""


def open_attachment(user, public_id, number: int):
    """(version, open file) for a version's attachment, after checking its SHA-256;
    audited as a view of the attachment."""
    document, reader = _open(user, public_id)
    version = _version(user, document, reader, number)
    if not version.attachment:
        _deny(user, Action.VIEW, document=document, reason=f"version {number} has no attachment")
        raise Http404("No attachment")
    if integrity.file_sha256(version.attachment.name) != version.attachment_sha256:
        record_event(
            user,
            Action.SECURITY,
            outcome=Outcome.DENIED,
            patient_id=document.patient.public_id,
            object_type="document",
            object_id=str(document.public_id),
            reason=f"stored attachment of version {number} does not match its SHA-256",
        )
        raise AttachmentDamaged(str(document.public_id))
    _audit_view(
        user, document, reader, attachment_of_version=number, sha256=version.attachment_sha256
    )
    return version, version.attachment.open("rb")


# --- creating: the patient, and the choices for the form -----------------------------


def access_patient_for_new_document(user, patient_id):
    """(patient, the sources the user may use) for the new-document form.

    Clinicians (``documents.author``) write documents; HIM staff (``documents.file``)
    file scanned paper and imported documents. A user with neither is refused (audited).
    """
    sources = []
    if has_permission(user, DP.AUTHOR):
        sources.append(DocumentSource.AUTHORED)
    if has_permission(user, DP.FILE):
        sources += [DocumentSource.SCANNED, DocumentSource.IMPORTED]
    if not sources:
        require_permission(
            user,
            DP.AUTHOR,
            action=Action.CREATE,
            purpose=default_purpose(user),
            object_type="document",
            object_id=str(patient_id)[:64],
        )
    patient = access_patient(user, patient_id, scope=Scope.CLINICAL)
    return patient, sources


def document_types():
    return DocumentType.objects.filter(active=True).order_by("display")


def encounter_choices(patient):
    """The patient's encounters a document may be filed to (not cancelled or entered in
    error), newest first, read through the encounters app's door."""
    from encounters.access import encounters_for_chart

    return encounters_for_chart(patient)


# --- the chart's list -------------------------------------------------------------------


@dataclass(frozen=True)
class ChartDocument:
    """One row of a chart's document list. For a restricted (sensitive) document only
    its type, date and status are filled in: title reads "Restricted document" and
    author, encounter and ``document`` are None. ``encounter_id`` (the key of the
    encounter it is filed to, or None) is filled in for every row, restricted or not: a
    document's encounter is not secret, so the chart keeps it with its encounter."""

    public_id: uuid.UUID
    url: str
    doc_type: DocumentType
    service_at: datetime
    entered_at: datetime
    status: str
    status_label: str
    title: str
    content_hidden: bool
    hidden_reason: str  # "", "sensitive" (restricted) or "draft" (its author's only)
    restricted: bool
    late_entry: bool
    is_addendum: bool
    addendum_to: uuid.UUID | None
    source: str
    signed_at: datetime | None
    amendment_pending: bool
    entered_in_error: bool
    author: object | None
    encounter: object | None
    document: Document | None
    encounter_id: int | None = None


CHART_DOCUMENT_FIELDS = [
    field.name for field in Document._meta.concrete_fields if field.name != "id"
]


def documents_for_chart(
    user,
    patient,
    *,
    encounter=None,
    encounters=None,
    unfiled: bool = False,
    include_entered_in_error: bool = False,
) -> list[ChartDocument]:
    """The documents a chart may list for ``patient`` (which the caller obtained through
    ``patients.access.access_patient``), newest service date first.

    All of them by default. ``encounter`` narrows the list to one encounter's documents;
    ``encounters`` (a list of the patient's encounters, e.g. one timeline page) and
    ``unfiled`` (documents filed to no encounter) narrow it, in the query, to the
    documents of those encounters and/or the unfiled ones, so a page of a long record
    reads only what it shows. ``encounters=[]`` with ``unfiled=False`` lists nothing.

    One query for the list, whatever its length (type, author and encounter joined;
    addendum parent and pending amendments annotated), plus at most three to decide, once,
    whether sensitive content may be shown. The author is loaded with its names only
    (``display_name`` works) and the encounter with its number, class, status and dates;
    other fields of theirs would cost a query per row. Entered-in-error documents are left out
    unless ``include_entered_in_error`` and the user may see them. Not audited: the
    chart's patient access is.
    """
    require_permission(
        user,
        PatientsPermission.READ_CLINICAL,
        purpose=default_purpose(user),
        patient_id=patient.public_id,
        object_type="document",
    )
    reader = Reader(user, patient)
    newer = DocumentVersion.objects.filter(
        document=OuterRef("pk"), number__gt=OuterRef("current_version__number")
    )
    rows = (
        Document.objects.filter(patient=patient)
        .select_related("doc_type", "author", "encounter")
        # All of the document's own columns; of the author and encounter, what a list
        # shows (2,000 full user and encounter rows cost more to build than to fetch).
        .only(
            *CHART_DOCUMENT_FIELDS,
            "doc_type__loinc_code",
            "doc_type__display",
            "doc_type__short_name",
            "doc_type__category",
            "doc_type__active",
            "author__username",
            "author__first_name",
            "author__last_name",
            "encounter__visit_number",
            "encounter__encounter_class",
            "encounter__status",
            "encounter__started_at",
            "encounter__ended_at",
        )
        .annotate(parent_public_id=F("addendum_to__public_id"), has_newer=Exists(newer))
        .order_by("-service_at", "-pk")
    )
    if encounter is not None:
        rows = rows.filter(encounter=encounter)
    if encounters is not None or unfiled:
        keys = [e.pk for e in encounters or []]
        wanted = Q(encounter_id__in=keys) if keys else Q(pk__in=[])
        if unfiled:
            wanted |= Q(encounter__isnull=True)
        rows = rows.filter(wanted)
    if not include_entered_in_error:
        rows = rows.exclude(status=DocumentStatus.ENTERED_IN_ERROR)
    labels = dict(DocumentStatus.choices)
    # reverse() once: 2,000 rows should not resolve the URL 2,000 times.
    placeholder = uuid.UUID(int=0)
    url_pattern = reverse("documents:detail", args=[placeholder])
    entries = []
    for document in rows:
        if not reader.may_list(document):
            continue
        reason = reader.hidden_reason(document)
        restricted = reason == "sensitive"
        entries.append(
            ChartDocument(
                public_id=document.public_id,
                url=url_pattern.replace(str(placeholder), str(document.public_id)),
                doc_type=document.doc_type,
                service_at=document.service_at,
                entered_at=document.entered_at,
                status=document.status,
                status_label=labels.get(document.status, document.status),
                title=RESTRICTED_TITLE if restricted else document.title,
                content_hidden=bool(reason),
                hidden_reason=reason,
                restricted=restricted,
                late_entry=document.late_entry,
                is_addendum=document.addendum_to_id is not None,
                addendum_to=document.parent_public_id,
                source=document.source,
                signed_at=document.signed_at,
                amendment_pending=bool(document.has_newer)
                and document.status in AUTHENTICATED
                and not restricted,
                entered_in_error=document.status == DocumentStatus.ENTERED_IN_ERROR,
                author=None if restricted else document.author,
                encounter=None if restricted else document.encounter,
                document=None if restricted else document,
                encounter_id=document.encounter_id,
            )
        )
    return entries
