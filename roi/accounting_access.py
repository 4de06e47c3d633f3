"""Reads of the accounting of disclosures and of amendment requests.

- ``roi.view_disclosures`` (ROI specialists, privacy officers, HIM administrators): a
  patient's disclosures and accounting requests, the open accounting requests with
  their deadlines, one accounting request with a preview of its report.
- ``roi.manage_amendments`` (ROI specialists, HIM administrators): the amendment
  requests with their deadlines, one request with its documents, letters, statements
  and what travels with later disclosures.

Each read checks the permission first (a refusal is audited before it is raised), then
opens the patient through the patient door (facility, restriction; audited there) and
writes its own view event. A list that names patients is audited once with the public
ids it shows. An unknown id and one at another facility are the same 404.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Exists, OuterRef
from django.http import Http404

from accounts.access import require_permission
from audit.actions import record_event
from audit.models import Action
from documents.access import Reader, documents_for_chart
from patients.access import access_patient, default_purpose, facility_ids
from patients.models import IdentifierKind, PatientIdentifier
from patients.search import search_patients
from roi import accounting as acc
from roi import amendments as amd
from roi.models import (
    AccountingRequest,
    Amendment,
    AmendmentStatus,
    DeadlineStatus,
    Disclosure,
    Letter,
)
from roi.permissions import RoiPermission as RP

LIST_LIMIT = 200


def _require(user, permission: str, object_type: str, object_id="") -> None:
    require_permission(
        user,
        permission,
        purpose=default_purpose(user),
        object_type=object_type,
        object_id=str(object_id)[:64],
    )


def _audit_view(user, object_type: str, *, patient=None, object_id="", **detail) -> None:
    record_event(
        user,
        Action.VIEW,
        purpose=default_purpose(user),
        patient_id=patient.public_id if patient is not None else None,
        object_type=object_type,
        object_id=str(object_id)[:64],
        detail=detail,
    )


def _visible(queryset, user):
    at_facility = PatientIdentifier.objects.filter(
        patient=OuterRef("patient"), kind=IdentifierKind.MRN, facility_id__in=facility_ids(user)
    )
    return queryset.filter(Exists(at_facility))


def _find(model, user, public_id, object_type: str):
    key = acc.parse_uuid(public_id)
    found = model.objects.select_related("patient").filter(public_id=key).first() if key else None
    if found is None or not _visible(model.objects.filter(pk=found.pk), user).exists():
        acc.deny(
            user,
            Action.VIEW,
            object_type=object_type,
            object_id=public_id,
            reason="no such object at the user's facilities",
        )
        raise Http404("Not found")
    access_patient(user, found.patient.public_id)
    return found


# --- choosing a patient ------------------------------------------------------------------


def find_patients(user, query, permission: str):
    """The MPI search (``patients.search``, audited there) for users who hold
    ``permission``: the accounting and amendment screens choose a patient with it."""
    _require(user, permission, "patient")
    return search_patients(user, query)


# --- the accounting ------------------------------------------------------------------------


@dataclass
class DisclosureRow:
    disclosure: Disclosure
    basis_label: str
    suspended: bool


@dataclass
class RequestRow:
    request: AccountingRequest
    due_on: dt.date
    days_left: int | None
    overdue: bool

    @property
    def days_overdue(self) -> int:
        return -self.days_left if self.overdue else 0


def _request_row(request: AccountingRequest, today: dt.date) -> RequestRow:
    due = acc.current_due(request)
    answered = request.status == DeadlineStatus.ANSWERED
    left = None if answered else acc.days_left(due, today)
    return RequestRow(request, due, left, left is not None and left < 0)


@dataclass
class PatientAccounting:
    patient: object
    disclosures: list[DisclosureRow]
    requests: list[RequestRow]
    window_from: dt.date
    today: dt.date


def patient_accounting(user, patient_public_id) -> PatientAccounting:
    """Every disclosure of the patient (accountable or not, newest first, with the
    suspended ones marked) and their accounting requests."""
    _require(user, RP.VIEW_DISCLOSURES, acc.DISCLOSURE, patient_public_id)
    patient = access_patient(user, patient_public_id)
    today = acc.today()
    disclosures = list(
        Disclosure.objects.filter(patient=patient)
        .select_related("request", "entered_by")
        .order_by("-disclosed_on", "-pk")[: LIST_LIMIT * 5]
    )
    rows = [
        DisclosureRow(
            d,
            acc.BASES.get(d.basis, d.get_requester_type_display() or "Recorded at release"),
            bool(d.suspended_until and d.suspended_until >= today),
        )
        for d in disclosures
    ]
    requests = [
        _request_row(r, today)
        for r in AccountingRequest.objects.filter(patient=patient).order_by("-received_on", "-pk")
    ]
    policy = acc.policy_in_force(acc.facility_for(user, patient), today)
    _audit_view(user, acc.DISCLOSURE, patient=patient, count=len(rows))
    return PatientAccounting(
        patient, rows, requests, acc.years_before(today, policy.accounting_years), today
    )


def open_accounting_requests(user) -> list[RequestRow]:
    """Open and extended accounting requests at the user's facilities, nearest due
    first."""
    _require(user, RP.VIEW_DISCLOSURES, acc.ACCOUNTING_REQUEST)
    today = acc.today()
    requests = _visible(
        AccountingRequest.objects.exclude(status=DeadlineStatus.ANSWERED).select_related("patient"),
        user,
    ).order_by("due_on", "pk")[:LIST_LIMIT]
    rows = sorted((_request_row(r, today) for r in requests), key=lambda row: row.due_on)
    record_event(
        user,
        Action.VIEW,
        purpose=default_purpose(user),
        object_type=acc.ACCOUNTING_REQUEST,
        detail={
            "count": len(rows),
            "shown": list(dict.fromkeys(str(r.request.patient.public_id) for r in rows)),
        },
    )
    return rows


@dataclass
class AccountingRequestPage:
    row: RequestRow
    entries: list
    letters: list[Letter]
    may_answer: bool


def accounting_request_page(user, public_id) -> AccountingRequestPage:
    """One accounting request, the entries its report lists today, and its letters."""
    _require(user, RP.VIEW_DISCLOSURES, acc.ACCOUNTING_REQUEST, public_id)
    request = _find(AccountingRequest, user, public_id, acc.ACCOUNTING_REQUEST)
    entries = acc.accounting_entries(
        acc.accountable_disclosures(request.patient, request.period_from, request.period_to)
    )
    letters = list(request.letters.order_by("created_at", "pk"))
    _audit_view(user, acc.ACCOUNTING_REQUEST, patient=request.patient, object_id=request.public_id)
    return AccountingRequestPage(
        _request_row(request, acc.today()),
        entries,
        letters,
        request.status != DeadlineStatus.ANSWERED,
    )


# --- amendments -----------------------------------------------------------------------------


@dataclass
class AmendmentRow:
    amendment: Amendment
    due_on: dt.date
    days_left: int | None
    overdue: bool

    @property
    def days_overdue(self) -> int:
        return -self.days_left if self.overdue else 0


def _amendment_row(amendment: Amendment, today: dt.date) -> AmendmentRow:
    due = amd.due(amendment)
    open_ = amendment.status in amd.OPEN
    left = acc.days_left(due, today) if open_ else None
    return AmendmentRow(amendment, due, left, left is not None and left < 0)


def amendments_list(user, *, status: str = "open") -> list[AmendmentRow]:
    """Amendment requests at the user's facilities: open ones nearest due first, or
    those of one status (``all`` for every one, newest first)."""
    _require(user, RP.MANAGE_AMENDMENTS, amd.AMENDMENT)
    rows = _visible(Amendment.objects.select_related("patient"), user)
    if status == "open":
        rows = rows.filter(status__in=amd.OPEN).order_by("due_on", "pk")
    elif status in AmendmentStatus.values:
        rows = rows.filter(status=status).order_by("-received_on", "-pk")
    else:
        rows = rows.order_by("-received_on", "-pk")
    today = acc.today()
    result = [_amendment_row(a, today) for a in rows[:LIST_LIMIT]]
    if status == "open":
        result.sort(key=lambda row: row.due_on)
    record_event(
        user,
        Action.VIEW,
        purpose=default_purpose(user),
        object_type=amd.AMENDMENT,
        detail={
            "count": len(result),
            "status": status,
            "shown": list(dict.fromkeys(str(r.amendment.patient.public_id) for r in result)),
        },
    )
    return result


@dataclass
class DocumentRow:
    document: object
    title: str


@dataclass
class AmendmentPage:
    row: AmendmentRow
    documents: list
    in_error: list
    statements: list
    letters: list[Letter]
    travelling: list
    is_open: bool
    has_disagreement: bool
    basis_label: str = ""


def amendment_page(user, public_id) -> AmendmentPage:
    """One amendment request with its documents (entered-in-error ones marked), its
    statements, letters and what travels with later disclosures."""
    _require(user, RP.MANAGE_AMENDMENTS, amd.AMENDMENT, public_id)
    amendment = _find(Amendment, user, public_id, amd.AMENDMENT)
    documents = list(amendment.documents.select_related("doc_type").order_by("service_at", "pk"))
    reader = Reader(user, amendment.patient)
    shown = [
        DocumentRow(d, "Restricted document" if reader.restricted(d) else d.title)
        for d in documents
    ]
    statements = list(amendment.statements.order_by("recorded_at", "pk"))
    _audit_view(user, amd.AMENDMENT, patient=amendment.patient, object_id=amendment.public_id)
    return AmendmentPage(
        row=_amendment_row(amendment, acc.today()),
        documents=shown,
        in_error=[d for d in documents if d.status == "entered-in-error"],
        statements=statements,
        letters=list(amendment.letters.order_by("created_at", "pk")),
        travelling=amd.statements_for_documents([d.pk for d in documents])
        if amendment.status not in amd.OPEN
        else [],
        is_open=amendment.status in amd.OPEN,
        has_disagreement=any(s.kind == "disagreement" for s in statements),
        basis_label=amd.DENIAL_BASIS_LABELS.get(amendment.denial_basis, ""),
    )


def amendment_log_page(user, patient_public_id):
    """The patient and the documents a request may name (as the chart lists them to
    this user, entered-in-error ones included where the user may see them)."""
    _require(user, RP.MANAGE_AMENDMENTS, amd.AMENDMENT, patient_public_id)
    patient = access_patient(user, patient_public_id)
    documents = documents_for_chart(user, patient, include_entered_in_error=True)
    return patient, documents
