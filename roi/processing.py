"""Processing a release-of-information request: what goes out.

1. **Proposal** (:func:`do_propose`). Every document of the patient inside the request's
   scope (``scope``: ``all``, ``date_from``/``date_to`` on the date of service in the
   hospital's time zone, ``encounters``, ``document_types``) becomes a
   :class:`roi.models.ReleaseItem`, proposed included or excluded with the reason:

   - *entered in error* and *not authenticated* (drafts) documents are never released;
   - a *sensitive* document (``Document.sensitivity``) goes out only when the category is
     specifically authorized (:func:`roi.disclosure_rules.authorized_categories`:
     psychotherapy notes need their own authorization, substance use disorder records a
     Part 2 consent, the rest a HIPAA authorization that names them; the patient's own
     request covers all but psychotherapy notes);
   - *minimum necessary* (not for treatment, nor the patient's own request): a request for
     "all" is cut to the document categories the purpose needs
     (:func:`roi.disclosure_rules.categories_needed`); the specialist may widen it with a
     reason.

   Documents outside the scope are not listed and can never be added: nothing is
   released outside the request's scope.
2. **Review** (:func:`do_decide_item`): the specialist includes or excludes an item, with
   a reason; the blocks above cannot be overridden.
3. **Quality check** (:func:`do_submit_for_check`, :func:`do_quality_check`) when the ROI
   policy asks for one: a second person — never one who processed the request — passes
   it (ready to release) or sends it back with notes.

Every function takes the acting user, checks ``roi.process`` (``roi.quality_check`` for
the check), audits a refusal before raising and outside the transaction, and audits the
work in the same transaction as the change. The request's history is kept in
:class:`roi.models.RequestEvent` rows.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts.access import require_permission
from audit.actions import record_event
from audit.models import Action, Outcome
from documents.models import Document, DocumentStatus, DocumentVersion, SensitiveCategory
from documents.workflow import AUTHENTICATED
from patients.access import RestrictedRecord, facility_ids, may_open_restricted
from recordroom import clock
from roi import disclosure_rules as rules
from roi.models import (
    Authorization,
    QualityCheck,
    ReleaseItem,
    RequestEvent,
    RequestStatus,
    RoiPolicy,
    RoiRequest,
)
from roi.permissions import RoiPermission as RP

REQUEST = "roi.request"
PROCESSING_STATUSES = (RequestStatus.LOGGED, RequestStatus.IN_PROCESS)
SENSITIVE_LABELS = dict(SensitiveCategory.choices)


class Refused(ValidationError):
    """A step refused for the request's state (already audited); the message says why."""


# --- the door -------------------------------------------------------------------------


def _parse(public_id) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(public_id))
    except ValueError:
        return None


def find_request(user, public_id, *, permission=RP.PROCESS, action=Action.VIEW) -> RoiRequest:
    """The request, for a user holding ``permission`` at the request's facility. A
    refusal (no permission; no such request at the user's facilities: 404) is audited
    before it is raised. Writes no allowed event: the caller audits what it does."""
    require_permission(
        user, permission, action=action, object_type=REQUEST, object_id=str(public_id)[:64]
    )
    key = _parse(public_id)
    found = (
        RoiRequest.objects.select_related("patient", "facility").filter(public_id=key).first()
        if key
        else None
    )
    if found is None or found.facility_id not in facility_ids(user):
        record_event(
            user,
            action,
            outcome=Outcome.DENIED,
            object_type=REQUEST,
            object_id=str(public_id)[:64],
            reason="no such request at the user's facilities",
        )
        raise Http404("No such request")
    patient = found.patient
    if patient.is_restricted and not may_open_restricted(user, patient):
        # A request for a restricted record opens only with a relationship (job-duty
        # grant, treatment, break-the-glass), as the record itself does.
        record_event(
            user,
            action,
            outcome=Outcome.DENIED,
            patient_id=patient.public_id,
            object_type=REQUEST,
            object_id=str(found.public_id),
            reason=f"restricted record ({patient.restriction}) without a relationship",
        )
        raise RestrictedRecord(patient)
    return found


def refuse(user, request: RoiRequest, action, message: str) -> Refused:
    """Audit a refusal for the request's state (outside any transaction) and return the
    exception to raise."""
    record_event(
        user,
        action,
        outcome=Outcome.DENIED,
        patient_id=request.patient.public_id,
        object_type=REQUEST,
        object_id=str(request.public_id),
        reason=message,
    )
    return Refused(message)


def audit(user, request: RoiRequest, action, *, purpose: str = "", reason: str = "", **detail):
    return record_event(
        user,
        action,
        purpose=purpose,
        patient_id=request.patient.public_id,
        object_type=REQUEST,
        object_id=str(request.public_id),
        reason=reason,
        detail=detail,
    )


def event(request: RoiRequest, kind: str, by, *, to_status: str = "", **detail) -> RequestEvent:
    """Append a history row (and move the status when ``to_status`` is given)."""
    now = clock.now()
    row = RequestEvent.objects.create(
        request=request,
        kind=kind,
        from_status=request.status if to_status else "",
        to_status=to_status,
        at=now,
        by=by,
        detail=detail,
    )
    if to_status:
        request.status = to_status
    request.updated_at = now
    request.version += 1
    request.save(update_fields=["status", "updated_at", "version"])
    return row


def locked(request: RoiRequest) -> RoiRequest:
    return (
        RoiRequest.objects.select_related("patient", "facility")
        .select_for_update()
        .get(pk=request.pk)
    )


# --- policy and authorizations ----------------------------------------------------------


def policy_for(request: RoiRequest) -> RoiPolicy:
    """The ROI policy in force for the request's facility on its date of receipt
    (:func:`roi.policy.policy_for`: the facility's own before the default)."""
    from roi import policy

    return policy.policy_for(request.facility, request.received_on)


def valid_authorizations(request: RoiRequest, on: dt.date | None = None) -> list[Authorization]:
    """The request's authorizations that are valid, not revoked and not expired on ``on``."""
    on = on or timezone.localdate(clock.now())
    return [
        a
        for a in Authorization.objects.filter(request=request, valid=True, revoked_on__isnull=True)
        if a.expires_on is None or a.expires_on >= on
    ]


@dataclass
class Rules:
    """What the request may receive: computed once per call."""

    requester_type: str
    categories: set[str]
    needed: set[str] | None
    authorized: bool

    @classmethod
    def of(cls, request: RoiRequest) -> Rules:
        authorizations = valid_authorizations(request)
        policy = policy_for(request)
        return cls(
            requester_type=request.requester_type,
            categories=rules.authorized_categories(request.requester_type, authorizations),
            needed=rules.categories_needed(request.requester_type, policy.parameters),
            authorized=any(a.kind in ("hipaa", "part2") for a in authorizations),
        )


# --- scope ------------------------------------------------------------------------------


def _date(value) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def documents_in_scope(request: RoiRequest):
    """The patient's documents inside the request's scope (database filters)."""
    scope = request.scope or {}
    documents = Document.objects.filter(patient=request.patient).select_related(
        "doc_type", "encounter", "current_version"
    )
    tz = timezone.get_current_timezone()
    date_from, date_to = _date(scope.get("date_from")), _date(scope.get("date_to"))
    if date_from:
        documents = documents.filter(
            service_at__gte=dt.datetime.combine(date_from, dt.time.min, tzinfo=tz)
        )
    if date_to:
        documents = documents.filter(
            service_at__lt=dt.datetime.combine(
                date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz
            )
        )
    if not scope.get("all"):
        encounters = [k for k in (_parse(e) for e in scope.get("encounters") or []) if k]
        types = [str(t) for t in scope.get("document_types") or []]
        if not encounters and not types and not date_from and not date_to:
            return documents.none()
        if encounters:
            documents = documents.filter(encounter__public_id__in=encounters)
        if types:
            documents = documents.filter(doc_type__loinc_code__in=types)
    return documents.order_by("service_at", "pk")


def in_scope(request: RoiRequest, document: Document) -> bool:
    return documents_in_scope(request).filter(pk=document.pk).exists()


def released_version(document: Document) -> DocumentVersion | None:
    """The version a release sends: the one last authenticated."""
    if document.status not in AUTHENTICATED:
        return None
    return document.current_version


def sensitive_categories(document: Document) -> set[str]:
    categories = {str(c) for c in document.sensitivity or []}
    if document.is_sensitive and not categories:
        categories.add("unspecified")
    return categories


def block_reason(document: Document, checks: Rules) -> str:
    """Why the document can never go out on this request ('' when it may)."""
    if document.status == DocumentStatus.ENTERED_IN_ERROR:
        return "Entered in error: never released."
    if released_version(document) is None:
        return "Not authenticated (draft): not part of the released record."
    missing = sensitive_categories(document) - checks.categories
    if missing:
        labels = ", ".join(
            sorted(SENSITIVE_LABELS.get(c, "unspecified sensitive") for c in missing)
        )
        return f"Sensitive ({labels}): not specifically authorized for this request."
    return ""


def minimum_necessary_reason(request: RoiRequest, document: Document, checks: Rules) -> str:
    """Why minimum necessary leaves the document out of the proposal ('' when it does not):
    only for a request that did not name the document types it wants."""
    if checks.needed is None or (request.scope or {}).get("document_types"):
        return ""
    category = document.doc_type.category or "uncategorized"
    if category in checks.needed:
        return ""
    purpose = dict(RoiRequest._meta.get_field("requester_type").choices).get(
        request.requester_type, request.requester_type
    )
    return f"Minimum necessary: {category} documents are not needed for this purpose ({purpose})."


def page_count(version: DocumentVersion | None) -> int:
    if version is None:
        return 0
    from roi.packets import document_pages

    try:
        return document_pages(version)
    except Exception:  # noqa: BLE001 - a damaged attachment counts as unknown here
        return 0


# --- proposal ---------------------------------------------------------------------------


def do_propose(user, public_id) -> list[ReleaseItem]:
    """List the documents in scope as release items with the system's proposal. Items
    already decided are kept; documents filed since are added. The request moves to *in
    process*."""
    request = find_request(user, public_id, action=Action.UPDATE)
    if request.status not in PROCESSING_STATUSES:
        raise refuse(
            user,
            request,
            Action.UPDATE,
            f"A request that is {request.get_status_display().lower()} cannot be processed.",
        )
    with transaction.atomic():
        request = locked(request)
        if request.status not in PROCESSING_STATUSES:
            raise Refused("The request changed meanwhile; reload it.")
        checks = Rules.of(request)
        known = set(
            ReleaseItem.objects.filter(request=request).values_list("document_id", flat=True)
        )
        added = []
        for document in documents_in_scope(request):
            if document.pk in known:
                continue
            reason = block_reason(document, checks) or minimum_necessary_reason(
                request, document, checks
            )
            version = released_version(document)
            added.append(
                ReleaseItem(
                    request=request,
                    document=document,
                    document_version=version.number if version else 0,
                    included=not reason,
                    proposed=not reason,
                    reason=reason,
                    page_count=page_count(version),
                )
            )
        ReleaseItem.objects.bulk_create(added)
        if request.status != RequestStatus.IN_PROCESS:
            event(request, "processing_started", user, to_status=RequestStatus.IN_PROCESS)
        else:
            event(request, "items_proposed", user, added=len(added))
        audit(
            user,
            request,
            Action.UPDATE,
            step="propose",
            added=len(added),
            included=sum(1 for i in added if i.included),
        )
    return list(items_of(request))


def items_of(request: RoiRequest):
    return (
        ReleaseItem.objects.filter(request=request)
        .select_related("document", "document__doc_type", "document__encounter", "decided_by")
        .order_by("document__service_at", "pk")
    )


# --- review -----------------------------------------------------------------------------


def do_decide_item(user, public_id, document_id, *, include: bool, reason: str) -> ReleaseItem:
    """Include or exclude one item, with a reason. Refused: a request not in process, a
    document not on the request (outside its scope), one that can never go out (entered
    in error, draft, sensitive without authorization), or no reason."""
    request = find_request(user, public_id, action=Action.UPDATE)
    reason = (reason or "").strip()
    if request.status != RequestStatus.IN_PROCESS:
        raise refuse(user, request, Action.UPDATE, "Only a request in process can be changed.")
    key = _parse(document_id)
    item = (
        ReleaseItem.objects.select_related(
            "document", "document__doc_type", "document__current_version"
        )
        .filter(request=request, document__public_id=key)
        .first()
        if key
        else None
    )
    if item is None:
        raise refuse(user, request, Action.UPDATE, "That document is outside the request's scope.")
    if include:
        blocked = block_reason(item.document, Rules.of(request))
        if blocked:
            raise refuse(user, request, Action.UPDATE, blocked)
    if not reason:
        raise ValidationError("Give the reason for the decision.")
    if len(reason) > 300:
        raise ValidationError("The reason is too long (300 characters at most).")
    with transaction.atomic():
        request = locked(request)
        if request.status != RequestStatus.IN_PROCESS:
            raise Refused("The request changed meanwhile; reload it.")
        item = ReleaseItem.objects.select_for_update().get(pk=item.pk)
        item.included = include
        item.reason = reason
        item.decided_by = user
        item.decided_at = clock.now()
        item.save(update_fields=["included", "reason", "decided_by", "decided_at"])
        event(
            request,
            "item_decided",
            user,
            document=str(item.document.public_id),
            included=include,
        )
        audit(
            user,
            request,
            Action.UPDATE,
            step="decide",
            document=str(item.document.public_id),
            included=include,
        )
    return item


# --- quality check ----------------------------------------------------------------------


def processors(request: RoiRequest) -> set[int]:
    """Who processed the request: proposed, decided items or submitted it."""
    kinds = ["processing_started", "items_proposed", "item_decided", "submitted_for_check"]
    return set(
        RequestEvent.objects.filter(request=request, kind__in=kinds).values_list("by_id", flat=True)
    )


def do_submit_for_check(user, public_id) -> RoiRequest:
    """Send a processed request to the quality check (only when the policy asks for one;
    otherwise it is released straight from *in process*)."""
    request = find_request(user, public_id, action=Action.UPDATE)
    if request.status != RequestStatus.IN_PROCESS:
        raise refuse(user, request, Action.UPDATE, "Only a request in process can be submitted.")
    if not policy_for(request).quality_check_required:
        raise refuse(
            user,
            request,
            Action.UPDATE,
            "The policy asks for no quality check: release the request directly.",
        )
    if not ReleaseItem.objects.filter(request=request, included=True).exists():
        raise refuse(
            user, request, Action.UPDATE, "Nothing is included: include documents or deny."
        )
    with transaction.atomic():
        request = locked(request)
        if request.status != RequestStatus.IN_PROCESS:
            raise Refused("The request changed meanwhile; reload it.")
        event(request, "submitted_for_check", user, to_status=RequestStatus.QC)
        audit(user, request, Action.UPDATE, step="submit_for_check")
    return request


def last_check(request: RoiRequest) -> QualityCheck | None:
    return QualityCheck.objects.filter(request=request).order_by("-checked_at", "-pk").first()


def do_quality_check(user, public_id, *, passed: bool, notes: str = "") -> QualityCheck:
    """Record the second person's check: passed (ready to release) or failed (back to
    *in process* with the notes). The checker cannot be one of the processors."""
    request = find_request(user, public_id, permission=RP.QUALITY_CHECK, action=Action.UPDATE)
    notes = (notes or "").strip()
    if request.status != RequestStatus.QC:
        raise refuse(user, request, Action.UPDATE, "The request is not waiting for a check.")
    if user.pk in processors(request):
        raise refuse(
            user,
            request,
            Action.UPDATE,
            "You processed this request: the quality check must be done by someone else.",
        )
    if not passed and not notes:
        raise ValidationError("Say what is wrong when the check fails.")
    with transaction.atomic():
        request = locked(request)
        if request.status != RequestStatus.QC:
            raise Refused("The request changed meanwhile; reload it.")
        check = QualityCheck.objects.create(
            request=request, checked_by=user, checked_at=clock.now(), passed=passed, notes=notes
        )
        if passed:
            event(request, "quality_check_passed", user)
        else:
            event(request, "quality_check_failed", user, to_status=RequestStatus.IN_PROCESS)
        audit(user, request, Action.UPDATE, step="quality_check", passed=passed)
    return check


def ready_to_release(request: RoiRequest) -> str:
    """'' when the request may be released now, else why not."""
    from roi.intake import missing

    needed = missing(request)
    if needed:
        return "The request is not valid yet: " + " ".join(r.strip(" –") for r in needed)
    if request.status == RequestStatus.IN_PROCESS:
        if policy_for(request).quality_check_required:
            return "The request must pass a quality check before release."
        return ""
    if request.status == RequestStatus.QC:
        check = last_check(request)
        submitted = (
            RequestEvent.objects.filter(request=request, kind="submitted_for_check")
            .order_by("-at", "-pk")
            .first()
        )
        if check is None or not check.passed or (submitted and check.checked_at < submitted.at):
            return "The quality check has not passed yet."
        return ""
    return f"A request that is {request.get_status_display().lower()} cannot be released."


# --- the processing screen ----------------------------------------------------------------


@dataclass
class ProcessingPanel:
    request: RoiRequest
    items: list
    included_pages: int
    may_process: bool
    may_review_denials: bool
    may_check: bool
    check_required: bool
    last_check: QualityCheck | None
    release_blocker: str
    packets: list
    denials: list
    invoice: list
    professionals: list  # who a reviewable denial's determination may be recorded as made by


def processing_panel(user, request: RoiRequest) -> ProcessingPanel:
    """What ``roi/_processing.html`` shows for a request the caller has already opened
    (and audited) through the request door. Reads only the request's own rows."""
    from accounts.access import has_permission
    from roi.access import licensed_professionals

    items = list(items_of(request))
    policy = policy_for(request)
    return ProcessingPanel(
        request=request,
        items=items,
        included_pages=sum(i.page_count for i in items if i.included),
        may_process=has_permission(user, RP.PROCESS),
        may_review_denials=has_permission(user, RP.REVIEW_DENIALS),
        may_check=has_permission(user, RP.QUALITY_CHECK) and user.pk not in processors(request),
        check_required=policy.quality_check_required,
        last_check=last_check(request),
        release_blocker=ready_to_release(request),
        packets=list(request.packets.order_by("-created_at", "-pk")),
        denials=list(request.denials.order_by("-denied_at", "-pk")),
        invoice=list(request.invoice.order_by("pk")),
        professionals=licensed_professionals(user) if has_permission(user, RP.PROCESS) else [],
    )


def open_processing_page(user, public_id) -> ProcessingPanel:
    """The processing panel of a request for ``roi.process`` or ``roi.quality_check``
    holders at its facility; the view is audited (refusals too)."""
    from accounts.access import has_permission

    permission = RP.PROCESS if has_permission(user, RP.PROCESS) else RP.QUALITY_CHECK
    request = find_request(user, public_id, permission=permission)
    audit(user, request, Action.VIEW, step="processing_page")
    return processing_panel(user, request)
