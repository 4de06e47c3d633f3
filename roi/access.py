"""Read doors of release of information: the work queue and one request's page.

The queue lists requests at the user's facilities (``roi.log_requests``), with the clock
of each (days open, days left, overdue), filterable by status, requester type and
specialist; it shows request numbers and requester names, never the patient's name, so a
list of requests leaks no diagnosis-bearing context. Opening a request goes through the
request door (:func:`roi.intake.open_request`: permission, facility and the patient's
restriction) and is audited with the patient.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from accounts.access import has_permission, require_permission, users_holding
from audit.actions import record_event
from audit.models import Action
from documents.models import SensitiveCategory
from patients.access import facility_ids
from recordroom import clock
from roi import authorizations, policy
from roi.intake import RUNNING_STATUSES, missing, open_request
from roi.models import RequesterType, RequestStatus, RoiRequest
from roi.permissions import RoiPermission as RP
from roi.processing import audit

QUEUE_LIMIT = 300


@dataclass
class QueueRow:
    request: RoiRequest
    days_open: int
    days_left: int | None
    due_on: dt.date

    @property
    def overdue(self) -> bool:
        return self.days_left is not None and self.days_left < 0

    @property
    def days_overdue(self) -> int:
        return -self.days_left if self.overdue else 0


@dataclass
class QueueFilters:
    status: str = ""
    requester_type: str = ""
    specialist: str = ""  # a user's public id, or "me"


def _row(request: RoiRequest, today: dt.date) -> QueueRow:
    due = request.extended_due_on or request.due_on
    open_until = (
        policy.local_date(request.closed_at or request.released_at)
        if (request.closed_at or request.released_at)
        else today
    )
    left = None if request.status not in RUNNING_STATUSES else policy.days_left(due, today)
    return QueueRow(request, (open_until - request.received_on).days, left, due)


def queue(user, filters: QueueFilters) -> list[QueueRow]:
    """Requests at the user's facilities: open ones by days left (overdue first), then
    the most recently closed; filtered as asked."""
    require_permission(user, RP.LOG_REQUESTS, action=Action.SEARCH, object_type="roi.request")
    rows = RoiRequest.objects.filter(facility_id__in=facility_ids(user)).select_related(
        "assigned_to"
    )
    if filters.status in RequestStatus.values:
        rows = rows.filter(status=filters.status)
    elif filters.status == "open" or not filters.status:
        rows = rows.filter(status__in=RUNNING_STATUSES)
    if filters.requester_type in RequesterType.values:
        rows = rows.filter(requester_type=filters.requester_type)
    if filters.specialist == "me":
        rows = rows.filter(assigned_to=user)
    elif filters.specialist:
        try:
            rows = rows.filter(assigned_to__public_id=uuid.UUID(filters.specialist))
        except ValueError:
            rows = rows.none()  # not a user's public id: nobody matches
    today = policy.local_date(clock.now())
    found = [_row(r, today) for r in rows.order_by("due_on", "pk")[:QUEUE_LIMIT]]
    found.sort(key=lambda r: (r.days_left is None, r.days_left if r.days_left is not None else 0))
    record_event(
        user,
        Action.SEARCH,
        object_type="roi.request",
        detail={
            "status": filters.status,
            "requester_type": filters.requester_type,
            "specialist": bool(filters.specialist),
            "count": len(found),
        },
    )
    return found


def require_logging(user, patient_public_id) -> None:
    """The logging form opens (and is read) only for users who may log requests; a
    refusal is audited before anything of the form is parsed."""
    require_permission(
        user,
        RP.LOG_REQUESTS,
        action=Action.CREATE,
        object_type="roi.request",
        object_id=str(patient_public_id)[:64],
    )


def licensed_professionals(user) -> list:
    """Active users at the user's facilities who write clinical documentation or are
    designated to review denials: who a reviewable denial's determination may be
    recorded as made by (45 CFR 164.524(a)(3))."""
    from documents.permissions import DocumentsPermission

    return users_holding(
        DocumentsPermission.AUTHOR, RP.REVIEW_DENIALS, facility_ids=facility_ids(user)
    )


def specialists(user) -> list:
    """Users at the user's facilities who may process requests (for the filter)."""
    return users_holding(RP.PROCESS, facility_ids=facility_ids(user))


@dataclass
class RequestPage:
    request: RoiRequest
    row: QueueRow
    events: list
    attachments: list
    authorizations: list
    letters: list
    missing: list[str]
    checklist: list
    may_log: bool
    may_process: bool
    asked_categories: list[str]


def request_page(user, public_id) -> RequestPage:
    """One request as its page shows it; the view is audited with the patient."""
    request = open_request(user, public_id, permission=RP.LOG_REQUESTS)
    today = policy.local_date(clock.now())
    found = list(request.authorizations.order_by("-checked_at", "-pk"))
    for authorization in found:
        ticked = authorization.checklist or {}
        authorization.checklist_rows = [
            (element, bool(ticked.get(element.key))) for element in authorizations.CHECKLIST
        ]
    labels = dict(SensitiveCategory.choices)
    page = RequestPage(
        request=request,
        row=_row(request, today),
        events=list(request.events.select_related("by").order_by("at", "pk")),
        attachments=list(request.attachments.order_by("uploaded_at", "pk")),
        authorizations=found,
        letters=list(request.letters.order_by("created_at", "pk")),
        missing=missing(request, today),
        checklist=authorizations.CHECKLIST,
        may_log=has_permission(user, RP.LOG_REQUESTS),
        may_process=has_permission(user, RP.PROCESS),
        asked_categories=[
            labels.get(c, c) for c in (request.scope or {}).get("sensitive_categories") or []
        ],
    )
    audit(user, request, Action.VIEW)
    return page


@dataclass
class Dashboard:
    start: dt.date
    end: dt.date
    by_type: list
    statuses: list
    open_by_status: dict
    overdue: int
    months: list  # (first day of month, Turnaround)


def dashboard(user, *, months: int = 12) -> Dashboard:
    """Requests by status and type received in the last ``months`` months, open ones by
    status and how many are overdue, and turnaround (median, 90th percentile) per month
    of release — aggregates only, audited as a report view."""
    from django.db.models import Count

    from roi import statistics

    require_permission(user, RP.VIEW_DASHBOARD, action=Action.VIEW, object_type="roi.dashboard")
    today = policy.local_date(clock.now())
    first = today.replace(day=1)
    starts = []
    for _ in range(months):
        starts.append(first)
        first = (first - dt.timedelta(days=1)).replace(day=1)
    starts.reverse()
    mine = facility_ids(user)
    month_rows = []
    for start in starts:
        end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        month_rows.append((start, statistics.turnaround(mine, start, min(end, today))[0]))
    open_rows = RoiRequest.objects.filter(facility_id__in=mine, status__in=RUNNING_STATUSES)
    counts = dict(open_rows.values_list("status").annotate(n=Count("pk")).order_by())
    overdue = sum(
        1
        for due, extended in open_rows.values_list("due_on", "extended_due_on")
        if (extended or due) < today
    )
    result = Dashboard(
        start=starts[0],
        end=today,
        by_type=statistics.requests_by_type_and_status(mine, starts[0], today),
        statuses=RequestStatus.choices,
        open_by_status=counts,
        overdue=overdue,
        months=month_rows,
    )
    record_event(user, Action.VIEW, object_type="roi.dashboard", detail={"months": months})
    return result


def encounter_choices(user, patient_public_id) -> list[tuple[str, str]]:
    """The patient's encounters at the user's facilities, for a request that asks for
    particular encounters: (public id, "visit number · class · dates"). Opening the
    patient goes through the patient door (audited; restrictions apply)."""
    from encounters.access import encounters_for_chart
    from patients.access import access_patient

    patient = access_patient(user, patient_public_id)
    mine = facility_ids(user)
    choices = []
    for encounter in encounters_for_chart(patient)[:200]:
        if encounter.facility_id not in mine:
            continue
        start = policy.local_date(encounter.started_at).isoformat()
        end = policy.local_date(encounter.ended_at).isoformat() if encounter.ended_at else "…"
        label = f"{encounter.visit_number} · {encounter.get_encounter_class_display()} · {start} – {end}"
        choices.append((str(encounter.public_id), label))
    return choices
