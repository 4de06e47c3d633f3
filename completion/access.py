"""Reads of chart completion: the clinician's work queue, the analysts' deficiency
lists, a record's completion status, delinquency (per record, per clinician, the rate
by month and quarter, the suspension list) and the HIM analyst's counts.

Who sees what:

- ``completion.view_deficiencies`` (HIM staff, coders): every deficiency and record of
  the user's facilities, and the department's figures.
- ``completion.complete_own`` (clinicians): their own deficiencies only — the queue,
  the list filtered to themselves, a deficiency they are responsible for.
- Anyone else is refused, and the refusal is audited before it is raised.

Lists and figures are computed in the database (filters, aggregates and annotations);
no count is made by walking records in Python. A page that names patients is audited
once, with the public ids of the patients it shows (as patient search does); opening
one deficiency or record goes through the patient's door
(:func:`patients.access.access_patient`), which audits it.

Delinquency follows the bylaws' definition kept in the completion policy: a record is
delinquent when it is still incomplete after its due date (discharge + the policy's
completion days). The delinquency rate of a period is the number of records delinquent
at the end of the period (or now, for the period under way) divided by the average
monthly discharges of the period, times 100 — the Joint Commission's former measure,
with the policy's alert threshold (50 % by default).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Min, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from accounts.access import AccessDenied, has_permission, require_permission
from accounts.models import Facility
from accounts.roles import ROLE_PERMISSIONS
from audit.actions import record_event
from audit.models import Action, Outcome
from completion.models import (
    CompletionPolicy,
    Deficiency,
    DeficiencyKind,
    DeficiencyStatus,
    RecordCompletion,
    RecordStatus,
)
from completion.permissions import CompletionPermission as CP
from completion.policy import policy_for
from documents.models import Document, DocumentSource, DocumentStatus, OrderMode
from documents.permissions import DocumentsPermission as DP
from encounters.models import VOID_ENCOUNTER, Encounter, EncounterStatus
from patients.access import Scope, access_patient, default_purpose, facility_ids
from patients.models import IdentifierKind, PatientIdentifier
from recordroom import clock

PAGE_SIZE = 50
BULK_SIGN_ORDER_MODES = (OrderMode.VERBAL, OrderMode.TELEPHONE)
BULK_SIGN_LIMIT = 100
DAY = dt.timedelta(days=1)


# --- policy ---------------------------------------------------------------------------


def policy_in_force(facility, on_date: dt.date) -> CompletionPolicy:
    """The completion policy for ``facility`` on ``on_date`` (``completion.policy``)."""
    return policy_for(facility, on_date)


# --- who may read ---------------------------------------------------------------------


def sees_all(user) -> bool:
    return has_permission(user, CP.VIEW_DEFICIENCIES)


def _require_view(user, *, own_ok: bool, object_type: str, object_id: str = "") -> bool:
    """True when the user sees every deficiency of their facilities; False when only
    their own (``own_ok`` and ``completion.complete_own``). Anyone else is refused."""
    if sees_all(user):
        return True
    if own_ok and has_permission(user, CP.COMPLETE_OWN):
        return False
    require_permission(
        user,
        CP.VIEW_DEFICIENCIES,
        purpose=default_purpose(user),
        object_type=object_type,
        object_id=object_id,
    )
    return True  # not reached: require_permission raised


def _audit_list(user, object_type: str, patient_ids, **detail) -> None:
    shown = list(dict.fromkeys(str(p) for p in patient_ids))
    record_event(
        user,
        Action.VIEW,
        purpose=default_purpose(user),
        object_type=object_type,
        detail={**detail, "count": len(shown), "shown": shown},
    )


def _deny(user, object_type: str, object_id, reason: str, action=Action.VIEW) -> None:
    record_event(
        user,
        action,
        outcome=Outcome.DENIED,
        purpose=default_purpose(user),
        object_type=object_type,
        object_id=str(object_id)[:64],
        reason=reason,
    )


def parse_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError):
        return None


# --- facilities -------------------------------------------------------------------------


def facilities_of(user) -> list[Facility]:
    return list(Facility.objects.filter(pk__in=facility_ids(user)).order_by("name"))


def analyst_facility(user, public_id=None) -> Facility | None:
    """The facility an analyst's page is about: the one asked for (one of the user's,
    otherwise 404), or the user's first by name; None for a user with no facility.
    Analysts only (``completion.view_deficiencies``; a refusal is audited)."""
    require_figures(user, "completion.counts")
    facilities = facilities_of(user)
    if public_id in (None, ""):
        return facilities[0] if facilities else None
    key = parse_uuid(public_id)
    for facility in facilities:
        if facility.public_id == key:
            return facility
    raise Http404("No such facility")


# --- rows as the screens show them -----------------------------------------------------


def _mrn_subquery():
    return Subquery(
        PatientIdentifier.objects.filter(
            patient=OuterRef("patient_id"),
            kind=IdentifierKind.MRN,
            facility=OuterRef("encounter__facility_id"),
        )
        .order_by("-active", "pk")
        .values("value")[:1]
    )


def _deficiencies(user):
    """Deficiencies of encounters at the user's facilities, with what the lists show."""
    return (
        Deficiency.objects.filter(encounter__facility_id__in=facility_ids(user))
        .exclude(encounter__status__in=VOID_ENCOUNTER)
        .select_related(
            "patient",
            "encounter",
            "encounter__facility",
            "document",
            "document_type",
            "responsible",
        )
        .annotate(
            mrn=_mrn_subquery(),
            delinquent_on=Coalesce("delinquent_at", "encounter__completion__due_at"),
        )
    )


def days_until(moment: dt.datetime | None, now: dt.datetime) -> int | None:
    """Whole days from ``now`` to ``moment``; negative once it has passed."""
    if moment is None:
        return None
    return math.floor((moment - now) / DAY)


def days_since(moment: dt.datetime | None, now: dt.datetime) -> int:
    """Whole days elapsed since ``moment`` (0 when it has not come yet)."""
    if moment is None or moment > now:
        return 0
    return math.floor((now - moment) / DAY)


def _new_document_url(deficiency: Deficiency) -> str:
    url = reverse("documents:new", args=[deficiency.patient.public_id])
    query = {"encounter": str(deficiency.encounter.public_id)}
    if deficiency.document_type is not None:
        query["doc_type"] = deficiency.document_type.loinc_code
    return f"{url}?{urlencode(query)}"


def open_link(deficiency: Deficiency) -> tuple[str, str]:
    """(URL, label) of the one click that lets the clinician resolve a deficiency: the
    signing page of an unsigned document, the document itself for other gaps, or the
    new-document form for the patient and encounter (and type) of a missing one."""
    document = deficiency.document
    if document is None:
        return _new_document_url(deficiency), "Write the document"
    if deficiency.kind == DeficiencyKind.UNSIGNED and document.status == DocumentStatus.DRAFT:
        return reverse("documents:sign", args=[document.public_id]), "Open and sign"
    return reverse("documents:detail", args=[document.public_id]), "Open the document"


@dataclass(frozen=True)
class DeficiencyRow:
    deficiency: Deficiency
    patient_name: str
    mrn: str
    restricted: bool
    encounter: Encounter
    document_type: object | None
    kind_label: str
    status_label: str
    due_at: dt.datetime
    delinquent_on: dt.datetime | None
    days_to_delinquent: int | None
    days_overdue: int
    overdue: bool
    open_url: str
    open_label: str
    bulk_signable: bool


def _row(deficiency: Deficiency, now: dt.datetime, user) -> DeficiencyRow:
    kinds = dict(DeficiencyKind.choices)
    statuses = dict(DeficiencyStatus.choices)
    days = days_until(deficiency.delinquent_on, now)
    is_open = deficiency.status == DeficiencyStatus.OPEN
    url, label = open_link(deficiency)
    document = deficiency.document
    return DeficiencyRow(
        deficiency=deficiency,
        patient_name=deficiency.patient.display_name,
        mrn=deficiency.mrn or "",
        restricted=deficiency.patient.is_restricted,
        encounter=deficiency.encounter,
        document_type=deficiency.document_type or (document.doc_type if document else None),
        kind_label=kinds.get(deficiency.kind, deficiency.kind),
        status_label=statuses.get(deficiency.status, deficiency.status),
        due_at=deficiency.due_at,
        delinquent_on=deficiency.delinquent_on,
        days_to_delinquent=days,
        days_overdue=days_since(deficiency.delinquent_on, now),
        overdue=is_open
        and deficiency.delinquent_on is not None
        and deficiency.delinquent_on <= now,
        open_url=url,
        open_label=label,
        bulk_signable=bool(
            is_open
            and document is not None
            and document.author_id == user.pk
            and document.status == DocumentStatus.DRAFT
            and document.order_mode in BULK_SIGN_ORDER_MODES
        ),
    )


_QUEUE_ORDER = [
    F("delinquent_on").asc(nulls_last=True),
    F("due_at").asc(),
    F("opened_at").asc(),
    F("pk").asc(),
]


# --- the clinician's queue --------------------------------------------------------------


def my_queue(user, *, now: dt.datetime | None = None) -> list[DeficiencyRow]:
    """The user's open deficiencies, nearest to delinquency first (records already
    delinquent at the top, oldest first), then by due date and age; audited once with
    the patients shown."""
    if not has_permission(user, CP.COMPLETE_OWN):
        _require_view(user, own_ok=True, object_type="completion.queue")
    now = now or clock.now()
    rows = [
        _row(d, now, user)
        for d in _deficiencies(user)
        .filter(responsible=user, status=DeficiencyStatus.OPEN)
        .order_by(*_QUEUE_ORDER)
    ]
    _audit_list(user, "completion.queue", [r.deficiency.patient.public_id for r in rows])
    return rows


# --- the analysts' deficiency list -------------------------------------------------------


@dataclass(frozen=True)
class DeficiencyFilter:
    """What the analysts' list is narrowed to; every field comes from the URL."""

    status: str = DeficiencyStatus.OPEN  # or "" for every status
    kind: str = ""
    responsible: uuid.UUID | None = None
    unassigned: bool = False
    service: str = ""
    doc_type: str = ""  # LOINC code
    delinquent: bool = False
    encounter: uuid.UUID | None = None
    facility: uuid.UUID | None = None

    def as_detail(self) -> dict:
        return {
            key: str(value)
            for key, value in self.__dict__.items()
            if value not in (None, "", False)
        }


@dataclass
class DeficiencyPage:
    rows: list[DeficiencyRow]
    count: int
    page: int
    pages: int
    own_only: bool
    filters: DeficiencyFilter = field(default_factory=DeficiencyFilter)

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def _filtered(user, filters: DeficiencyFilter, *, own_only: bool, now: dt.datetime):
    rows = _deficiencies(user)
    if own_only:
        rows = rows.filter(responsible=user)
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    if filters.unassigned:
        rows = rows.filter(responsible__isnull=True)
    elif filters.responsible:
        rows = rows.filter(responsible__public_id=filters.responsible)
    if filters.service:
        rows = rows.filter(encounter__service__iexact=filters.service)
    if filters.doc_type:
        rows = rows.filter(
            Q(document_type__loinc_code=filters.doc_type)
            | Q(document_type__isnull=True, document__doc_type__loinc_code=filters.doc_type)
        )
    if filters.delinquent:
        rows = rows.filter(status=DeficiencyStatus.OPEN, delinquent_on__lte=now)
    if filters.encounter:
        rows = rows.filter(encounter__public_id=filters.encounter)
    if filters.facility:
        rows = rows.filter(encounter__facility__public_id=filters.facility)
    return rows.order_by(*_QUEUE_ORDER)


def deficiency_list(
    user, filters: DeficiencyFilter | None = None, *, page: int = 1, now=None
) -> DeficiencyPage:
    """The analysts' list of deficiencies (a clinician's own only), filtered, a page of
    PAGE_SIZE at a time, in queue order; audited with the filters and patients shown."""
    filters = filters or DeficiencyFilter()
    own_only = not _require_view(user, own_ok=True, object_type="completion.deficiency")
    now = now or clock.now()
    rows = _filtered(user, filters, own_only=own_only, now=now)
    count = rows.count()
    pages = max(1, math.ceil(count / PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = [_row(d, now, user) for d in rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]]
    _audit_list(
        user,
        "completion.deficiency",
        [r.deficiency.patient.public_id for r in shown],
        filters=filters.as_detail(),
        page=page,
        total=count,
    )
    return DeficiencyPage(shown, count, page, pages, own_only, filters)


def export_deficiencies(user, filters: DeficiencyFilter | None = None, *, now=None):
    """Every deficiency matching ``filters``, for the CSV export (analysts only); the
    export is audited as one, with the patients it contains."""
    filters = filters or DeficiencyFilter()
    require_permission(
        user,
        CP.VIEW_DEFICIENCIES,
        action=Action.EXPORT,
        purpose=default_purpose(user),
        object_type="completion.deficiency",
    )
    now = now or clock.now()
    rows = [_row(d, now, user) for d in _filtered(user, filters, own_only=False, now=now)]
    patients = list(dict.fromkeys(str(r.deficiency.patient.public_id) for r in rows))
    record_event(
        user,
        Action.EXPORT,
        purpose=default_purpose(user),
        object_type="completion.deficiency",
        detail={
            "format": "csv",
            "filters": filters.as_detail(),
            "count": len(rows),
            "patients": patients,
        },
    )
    return rows


def filter_choices(user) -> dict:
    """Choices for the list's filters: clinicians responsible for a deficiency at the
    user's facilities, and services with one; two queries."""
    base = Deficiency.objects.filter(encounter__facility_id__in=facility_ids(user))
    clinicians = (
        get_user_model()
        .objects.filter(pk__in=base.values("responsible"))
        .order_by("last_name", "first_name", "username")
    )
    services = (
        base.exclude(encounter__service="")
        .values_list("encounter__service", flat=True)
        .distinct()
        .order_by("encounter__service")
    )
    return {"clinicians": list(clinicians), "services": list(services)}


# --- one deficiency -------------------------------------------------------------------


@dataclass
class DeficiencyDetail:
    deficiency: Deficiency
    row: DeficiencyRow
    events: list
    record: RecordCompletion | None
    may_manage: bool


def access_deficiency(user, public_id, *, write: bool = False, now=None) -> DeficiencyDetail:
    """One deficiency with its history. Analysts see any at their facilities; a
    clinician sees their own. ``write`` (reassign, waive) needs
    ``completion.manage_deficiencies`` first; the action audits the change itself.
    A deficiency that does not exist, is at another facility or is not the
    clinician's answers the same audited 404."""
    if write:
        require_permission(
            user,
            CP.MANAGE_DEFICIENCIES,
            action=Action.UPDATE,
            purpose=default_purpose(user),
            object_type="completion.deficiency",
            object_id=str(public_id)[:64],
        )
        own_only = False
    else:
        own_only = not _require_view(
            user, own_ok=True, object_type="completion.deficiency", object_id=str(public_id)[:64]
        )
    action = Action.UPDATE if write else Action.VIEW
    key = parse_uuid(public_id)
    deficiency = _deficiencies(user).filter(public_id=key).first() if key else None
    if deficiency is None or (own_only and deficiency.responsible_id != user.pk):
        _deny(user, "completion.deficiency", public_id, "no such deficiency for this user", action)
        raise Http404("No such deficiency")
    deficiency.patient = access_patient(
        user, deficiency.patient.public_id, scope=Scope.CLINICAL, purpose=default_purpose(user)
    )
    now = now or clock.now()
    if not write:
        record_event(
            user,
            Action.VIEW,
            purpose=default_purpose(user),
            patient_id=deficiency.patient.public_id,
            object_type="completion.deficiency",
            object_id=str(deficiency.public_id),
        )
    return DeficiencyDetail(
        deficiency=deficiency,
        row=_row(deficiency, now, user),
        events=list(deficiency.events.select_related("by", "from_user", "to_user")),
        record=RecordCompletion.objects.filter(encounter_id=deficiency.encounter_id).first(),
        may_manage=has_permission(user, CP.MANAGE_DEFICIENCIES),
    )


def responsible_choices(facility) -> list:
    """Who a deficiency may be assigned to: active people (not system accounts) who
    write documents (a role with ``documents.author``) and work at ``facility``."""
    author_roles = [role.value for role, perms in ROLE_PERMISSIONS.items() if DP.AUTHOR in perms]
    return list(
        get_user_model()
        .objects.filter(
            is_active=True,
            is_system_account=False,
            groups__name__in=author_roles,
            facilities=facility,
        )
        .distinct()
        .order_by("last_name", "first_name", "username")
    )


# --- one record ------------------------------------------------------------------------


@dataclass
class RecordView:
    encounter: Encounter
    record: RecordCompletion | None
    status: str
    status_label: str
    delinquent: bool
    days_delinquent: int
    rows: list[DeficiencyRow]
    own_only: bool
    may_manage: bool
    policy: CompletionPolicy


def access_record(user, encounter_public_id, *, now=None) -> RecordView:
    """An encounter's record status with its deficiencies (every one for analysts,
    their own for a clinician). The encounter is opened through the encounters app's
    door, which audits it."""
    from encounters.access import access_encounter

    own_only = not _require_view(
        user, own_ok=True, object_type="completion.record", object_id=str(encounter_public_id)[:64]
    )
    encounter = access_encounter(user, encounter_public_id)
    if encounter.facility_id not in facility_ids(user):
        _deny(user, "completion.record", encounter_public_id, "encounter at another facility")
        raise Http404("No such record")
    now = now or clock.now()
    record = RecordCompletion.objects.filter(encounter=encounter).first()
    rows = Deficiency.objects.filter(encounter=encounter)
    if own_only:
        rows = rows.filter(responsible=user)
    deficiencies = (
        rows.select_related("patient", "encounter", "document", "document_type", "responsible")
        .annotate(
            mrn=_mrn_subquery(),
            delinquent_on=Coalesce("delinquent_at", "encounter__completion__due_at"),
        )
        .order_by(F("status").desc(), *_QUEUE_ORDER)
    )
    status = record.status if record else RecordStatus.NOT_ANALYSED
    delinquent = bool(
        record
        and record.status == RecordStatus.INCOMPLETE
        and record.due_at
        and record.due_at < now
    )
    return RecordView(
        encounter=encounter,
        record=record,
        status=status,
        status_label=dict(RecordStatus.choices)[status],
        delinquent=delinquent,
        days_delinquent=days_since(record.due_at, now) if delinquent else 0,
        rows=[_row(d, now, user) for d in deficiencies],
        own_only=own_only,
        may_manage=has_permission(user, CP.MANAGE_DEFICIENCIES),
        policy=policy_in_force(encounter.facility, now.date()),
    )


def access_encounter_for_deficiency(user, encounter_public_id):
    """The encounter an analyst adds a deficiency to: ``completion.manage_deficiencies``
    first (refusal audited), then the encounters app's door (audited); another
    facility's encounter answers 404."""
    from encounters.access import access_encounter

    require_permission(
        user,
        CP.MANAGE_DEFICIENCIES,
        action=Action.CREATE,
        purpose=default_purpose(user),
        object_type="completion.deficiency",
        object_id=str(encounter_public_id)[:64],
    )
    encounter = access_encounter(user, encounter_public_id)
    if encounter.facility_id not in facility_ids(user):
        _deny(
            user,
            "completion.deficiency",
            encounter_public_id,
            "encounter at another facility",
            Action.CREATE,
        )
        raise Http404("No such encounter")
    return encounter


def encounter_documents(user, encounter) -> list:
    """The encounter's documents a deficiency may point at, through the documents
    app's door (restricted ones appear with their type only and cannot be chosen)."""
    from documents.access import documents_for_chart

    return [
        entry.document
        for entry in documents_for_chart(user, encounter.patient, encounter=encounter)
        if entry.document is not None
    ]


# --- bulk signing -----------------------------------------------------------------------


@dataclass
class SignableOrder:
    document: Document
    version: object
    patient_name: str
    mrn: str
    encounter: Encounter | None


def bulk_sign_candidates(user, *, limit: int = BULK_SIGN_LIMIT) -> list[SignableOrder]:
    """The user's own unsigned verbal and telephone orders, oldest first, each opened
    through the documents app's door (so each is audited as viewed) with the full text
    of the version to be signed: the page shows every order in full before it may be
    signed."""
    from documents.access import access_document, latest_version

    for permission in (CP.COMPLETE_OWN, DP.AUTHOR):
        require_permission(
            user,
            permission,
            action=Action.SIGN,
            purpose=default_purpose(user),
            object_type="completion.bulk_sign",
        )
    ids = list(
        Document.objects.filter(
            author=user,
            status=DocumentStatus.DRAFT,
            source=DocumentSource.AUTHORED,
            order_mode__in=BULK_SIGN_ORDER_MODES,
            patient__identifiers__kind=IdentifierKind.MRN,
            patient__identifiers__facility_id__in=facility_ids(user),
        )
        .distinct()
        .order_by("service_at", "pk")
        .values_list("public_id", flat=True)[:limit]
    )
    orders = []
    for public_id in ids:
        try:
            document = access_document(user, public_id)
        except (AccessDenied, Http404):
            # A restricted patient the user has no relationship with any more: refused
            # and audited by the door; the order is signed from its own page after
            # break-the-glass, not here.
            continue
        mrn = (
            PatientIdentifier.objects.filter(
                patient=document.patient,
                kind=IdentifierKind.MRN,
                facility_id__in=facility_ids(user),
            )
            .order_by("-active", "pk")
            .values_list("value", flat=True)
            .first()
        )
        orders.append(
            SignableOrder(
                document=document,
                version=latest_version(document),
                patient_name=document.patient.display_name,
                mrn=mrn or "",
                encounter=document.encounter,
            )
        )
    return orders


# --- delinquency ------------------------------------------------------------------------


def _tz():
    return timezone.get_default_timezone()


@dataclass(frozen=True)
class Period:
    """A calendar month or quarter in the hospital's local time."""

    year: int
    month: int  # the first month
    months: int  # 1 or 3

    @classmethod
    def of_month(cls, year: int, month: int) -> Period:
        if not 1 <= month <= 12:
            raise ValueError("month out of range")
        return cls(year, month, 1)

    @classmethod
    def of_quarter(cls, year: int, quarter: int) -> Period:
        if not 1 <= quarter <= 4:
            raise ValueError("quarter out of range")
        return cls(year, 3 * (quarter - 1) + 1, 3)

    @classmethod
    def parse(cls, text: str) -> Period:
        """``2024-05`` (a month) or ``2024-Q2`` (a quarter); ValueError otherwise."""
        text = (text or "").strip().upper()
        year, _, rest = text.partition("-")
        if len(year) != 4 or not year.isdigit() or not rest:
            raise ValueError("give a month as YYYY-MM or a quarter as YYYY-Qn")
        if rest.startswith("Q") and rest[1:].isdigit():
            return cls.of_quarter(int(year), int(rest[1:]))
        if rest.isdigit() and len(rest) == 2:
            return cls.of_month(int(year), int(rest))
        raise ValueError("give a month as YYYY-MM or a quarter as YYYY-Qn")

    @classmethod
    def containing(cls, moment: dt.datetime, *, quarter: bool = False) -> Period:
        local = moment.astimezone(_tz())
        if quarter:
            return cls.of_quarter(local.year, (local.month - 1) // 3 + 1)
        return cls.of_month(local.year, local.month)

    @property
    def is_quarter(self) -> bool:
        return self.months == 3

    @property
    def label(self) -> str:
        if self.is_quarter:
            return f"{self.year}-Q{(self.month - 1) // 3 + 1}"
        return f"{self.year}-{self.month:02d}"

    def _shift(self, months: int) -> tuple[int, int]:
        index = self.year * 12 + self.month - 1 + months
        return index // 12, index % 12 + 1

    @property
    def start(self) -> dt.datetime:
        return dt.datetime(self.year, self.month, 1, tzinfo=_tz())

    @property
    def end(self) -> dt.datetime:
        """The first moment after the period (local midnight, DST-correct)."""
        year, month = self._shift(self.months)
        return dt.datetime(year, month, 1, tzinfo=_tz())

    def previous(self, count: int = 1) -> Period:
        year, month = self._shift(-self.months * count)
        return Period(year, month, self.months)


@dataclass(frozen=True)
class Rate:
    period: Period
    delinquent: int
    discharges: int
    measured_at: dt.datetime
    threshold: Decimal

    @property
    def average_monthly_discharges(self) -> Decimal:
        return (Decimal(self.discharges) / Decimal(self.period.months)).quantize(Decimal("0.01"))

    @property
    def percent(self) -> Decimal | None:
        """Delinquent ÷ average monthly discharges × 100, to one decimal; None when the
        period had no discharge."""
        if not self.discharges:
            return None
        value = Decimal(self.delinquent) * 100 * self.period.months / Decimal(self.discharges)
        return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)

    @property
    def alert(self) -> bool:
        """Above the policy's threshold (no more than 50 % by the former standard)."""
        percent = self.percent
        return percent is not None and percent > self.threshold


def _delinquent_at(moment: dt.datetime) -> Q:
    """Records delinquent at ``moment``: due before it and not complete by then.

    A record counts while it is incomplete now, or was completed after ``moment``.
    (A record completed before ``moment`` and reopened later counts as delinquent in
    between; the completion table keeps only the latest completion.)"""
    return Q(due_at__lt=moment) & (
        Q(status=RecordStatus.INCOMPLETE) | Q(status=RecordStatus.COMPLETE, completed_at__gt=moment)
    )


def _records(facility):
    return RecordCompletion.objects.filter(encounter__facility=facility).exclude(
        encounter__status__in=VOID_ENCOUNTER
    )


def _discharges(facility):
    return Encounter.objects.filter(
        facility=facility, status=EncounterStatus.FINISHED, ended_at__isnull=False
    )


def require_figures(user, object_type: str) -> None:
    require_permission(
        user, CP.VIEW_DEFICIENCIES, purpose=default_purpose(user), object_type=object_type
    )


def _rates(facility, periods: list[Period], now: dt.datetime) -> list[Rate]:
    """The rate of each period in two aggregate queries (one for discharges, one for
    delinquent records), whatever the number of periods."""
    if not periods:
        return []
    policy = policy_in_force(facility, now.date())
    threshold = Decimal(policy.delinquency_alert_percent)
    measured = {p: min(p.end, now) for p in periods}
    discharges = _discharges(facility).aggregate(
        **{
            f"p{i}": Count("pk", filter=Q(ended_at__gte=p.start, ended_at__lt=p.end))
            for i, p in enumerate(periods)
        }
    )
    delinquent = _records(facility).aggregate(
        **{f"p{i}": Count("pk", filter=_delinquent_at(measured[p])) for i, p in enumerate(periods)}
    )
    return [
        Rate(p, delinquent[f"p{i}"], discharges[f"p{i}"], measured[p], threshold)
        for i, p in enumerate(periods)
    ]


def delinquency_rate(user, period: Period, *, facility, now=None) -> Rate:
    """The delinquency rate of one month or quarter at ``facility``."""
    require_figures(user, "completion.delinquency")
    return _rates(facility, [period], now or clock.now())[0]


def delinquency_trend(user, *, facility, months: int = 12, quarters: int = 4, now=None) -> dict:
    """The monthly rates of the last ``months`` months and the quarterly rates of the
    last ``quarters`` quarters (the current ones included, measured now)."""
    require_figures(user, "completion.delinquency")
    now = now or clock.now()
    month = Period.containing(now)
    quarter = Period.containing(now, quarter=True)
    return {
        "monthly": _rates(facility, [month.previous(n) for n in range(months - 1, -1, -1)], now),
        "quarterly": _rates(
            facility, [quarter.previous(n) for n in range(quarters - 1, -1, -1)], now
        ),
    }


@dataclass(frozen=True)
class DelinquentRecord:
    record: RecordCompletion
    encounter: Encounter
    patient_name: str
    mrn: str
    days_delinquent: int
    open_count: int
    responsible: list


def delinquent_records(user, *, facility, now=None, limit: int = 500) -> list[DelinquentRecord]:
    """Records delinquent now at ``facility``, longest delinquent first, with who holds
    their open deficiencies; audited with the patients shown."""
    require_figures(user, "completion.record")
    now = now or clock.now()
    records = list(
        _records(facility)
        .filter(status=RecordStatus.INCOMPLETE, due_at__lt=now)
        .select_related("encounter", "encounter__patient", "encounter__attending")
        .annotate(
            mrn=Subquery(
                PatientIdentifier.objects.filter(
                    patient=OuterRef("encounter__patient_id"),
                    kind=IdentifierKind.MRN,
                    facility=OuterRef("encounter__facility_id"),
                )
                .order_by("-active", "pk")
                .values("value")[:1]
            ),
            open_deficiencies=Count(
                "encounter__deficiencies",
                filter=Q(encounter__deficiencies__status=DeficiencyStatus.OPEN),
            ),
        )
        .order_by("due_at", "pk")[:limit]
    )
    holders: dict[int, list] = {}
    for encounter_id, clinician in (
        Deficiency.objects.filter(
            encounter_id__in=[r.encounter_id for r in records], status=DeficiencyStatus.OPEN
        )
        .values_list("encounter_id", "responsible")
        .distinct()
    ):
        holders.setdefault(encounter_id, []).append(clinician)
    users = get_user_model().objects.in_bulk(
        {pk for pks in holders.values() for pk in pks if pk is not None}
    )
    rows = [
        DelinquentRecord(
            record=r,
            encounter=r.encounter,
            patient_name=r.encounter.patient.display_name,
            mrn=r.mrn or "",
            days_delinquent=days_since(r.due_at, now),
            open_count=r.open_deficiencies,
            responsible=sorted(
                (users[pk] for pk in holders.get(r.encounter_id, []) if pk in users),
                key=lambda u: (u.last_name, u.first_name, u.username),
            ),
        )
        for r in records
    ]
    _audit_list(
        user,
        "completion.record",
        [r.encounter.patient.public_id for r in rows],
        delinquent=True,
        facility=str(facility.public_id),
    )
    return rows


@dataclass(frozen=True)
class ClinicianDelinquency:
    clinician: object | None  # None: deficiencies with no one responsible
    records: int
    deficiencies: int
    oldest_due_at: dt.datetime
    days_delinquent: int


def _by_clinician(facility, since: dt.datetime, now: dt.datetime) -> list[ClinicianDelinquency]:
    """Per responsible clinician: the records delinquent (due before ``since``) where
    they hold an open deficiency; one aggregate query and one for the names."""
    rows = list(
        Deficiency.objects.filter(
            status=DeficiencyStatus.OPEN,
            encounter__facility=facility,
            encounter__completion__status=RecordStatus.INCOMPLETE,
            encounter__completion__due_at__lt=since,
        )
        .exclude(encounter__status__in=VOID_ENCOUNTER)
        .values("responsible")
        .annotate(
            records=Count("encounter", distinct=True),
            deficiencies=Count("pk"),
            oldest=Min("encounter__completion__due_at"),
        )
        .order_by("oldest", "responsible")
    )
    users = get_user_model().objects.in_bulk([r["responsible"] for r in rows if r["responsible"]])
    return [
        ClinicianDelinquency(
            clinician=users.get(r["responsible"]),
            records=r["records"],
            deficiencies=r["deficiencies"],
            oldest_due_at=r["oldest"],
            days_delinquent=days_since(r["oldest"], now),
        )
        for r in rows
    ]


def delinquency_by_clinician(user, *, facility, now=None) -> list[ClinicianDelinquency]:
    """Delinquent records counted per clinician (a record with open deficiencies of two
    clinicians counts for each), the longest delinquent first."""
    require_figures(user, "completion.delinquency")
    now = now or clock.now()
    return _by_clinician(facility, now, now)


def suspension_list(user, *, facility, days: int | None = None, now=None) -> dict:
    """Clinicians holding an open deficiency on a record delinquent for more than
    ``days`` days (the policy's ``suspension_days`` unless given), for the medical
    staff's suspension policy."""
    require_figures(user, "completion.suspension")
    now = now or clock.now()
    if days is None:
        days = policy_in_force(facility, now.date()).suspension_days
    if days < 0:
        raise ValueError("days cannot be negative")
    rows = [r for r in _by_clinician(facility, now - dt.timedelta(days=days), now) if r.clinician]
    record_event(
        user,
        Action.VIEW,
        purpose=default_purpose(user),
        object_type="completion.suspension",
        detail={"facility": str(facility.public_id), "days": days, "count": len(rows)},
    )
    return {"days": days, "rows": rows}


# --- the HIM analyst's counts ----------------------------------------------------------


@dataclass(frozen=True)
class AgeBucket:
    """Days since discharge, both ends included; ``high`` None: no upper end."""

    label: str
    low: int
    high: int | None

    def q(self, now: dt.datetime) -> Q:
        query = Q(discharged_at__lte=now - dt.timedelta(days=self.low))
        if self.high is not None:
            query &= Q(discharged_at__gt=now - dt.timedelta(days=self.high + 1))
        return query


AGE_BUCKETS: tuple[AgeBucket, ...] = (
    AgeBucket("0–7 days", 0, 7),
    AgeBucket("8–14 days", 8, 14),
    AgeBucket("15–30 days", 15, 30),
    AgeBucket("31–60 days", 31, 60),
    AgeBucket("Over 60 days", 61, None),
)
NOT_DISCHARGED = "Not yet discharged"


@dataclass(frozen=True)
class CountRow:
    label: str
    incomplete: int
    delinquent: int
    key: str = ""


@dataclass
class Counts:
    facility: Facility
    now: dt.datetime
    by_service: list[CountRow]
    by_clinician: list[CountRow]
    by_age: list[CountRow]
    incomplete: int
    delinquent: int

    @property
    def max_service(self) -> int:
        return max([r.incomplete for r in self.by_service], default=0) or 1

    @property
    def max_clinician(self) -> int:
        return max([r.incomplete for r in self.by_clinician], default=0) or 1

    @property
    def max_age(self) -> int:
        return max([r.incomplete for r in self.by_age], default=0) or 1


def _counts(facility, now: dt.datetime) -> Counts:
    incomplete = _records(facility).filter(status=RecordStatus.INCOMPLETE)
    late = Q(due_at__lt=now)
    services = (
        incomplete.values("encounter__service")
        .annotate(incomplete=Count("pk"), delinquent=Count("pk", filter=late))
        .order_by("encounter__service")
    )
    by_service = [
        CountRow(s["encounter__service"] or "No service recorded", s["incomplete"], s["delinquent"])
        for s in services
    ]
    clinicians = list(
        Deficiency.objects.filter(
            status=DeficiencyStatus.OPEN,
            encounter__facility=facility,
            encounter__completion__status=RecordStatus.INCOMPLETE,
        )
        .exclude(encounter__status__in=VOID_ENCOUNTER)
        .values("responsible")
        .annotate(
            incomplete=Count("encounter", distinct=True),
            delinquent=Count(
                "encounter", distinct=True, filter=Q(encounter__completion__due_at__lt=now)
            ),
        )
    )
    users = get_user_model().objects.in_bulk(
        [c["responsible"] for c in clinicians if c["responsible"]]
    )
    by_clinician = sorted(
        (
            CountRow(
                users[c["responsible"]].display_name if c["responsible"] in users else "Unassigned",
                c["incomplete"],
                c["delinquent"],
                str(users[c["responsible"]].public_id) if c["responsible"] in users else "",
            )
            for c in clinicians
        ),
        key=lambda r: (-r.incomplete, r.label),
    )
    aggregates = {
        f"b{i}": Count("pk", filter=bucket.q(now)) for i, bucket in enumerate(AGE_BUCKETS)
    }
    aggregates.update(
        {f"d{i}": Count("pk", filter=bucket.q(now) & late) for i, bucket in enumerate(AGE_BUCKETS)}
    )
    aggregates.update(
        total=Count("pk"),
        total_late=Count("pk", filter=late),
        in_house=Count("pk", filter=Q(discharged_at__isnull=True)),
        in_house_late=Count("pk", filter=Q(discharged_at__isnull=True) & late),
    )
    totals = incomplete.aggregate(**aggregates)
    by_age = [
        CountRow(bucket.label, totals[f"b{i}"], totals[f"d{i}"])
        for i, bucket in enumerate(AGE_BUCKETS)
    ]
    if totals["in_house"]:
        by_age.append(CountRow(NOT_DISCHARGED, totals["in_house"], totals["in_house_late"]))
    return Counts(
        facility=facility,
        now=now,
        by_service=by_service,
        by_clinician=by_clinician,
        by_age=by_age,
        incomplete=totals["total"],
        delinquent=totals["total_late"],
    )


def completion_counts(user, *, facility, now=None) -> Counts:
    """Incomplete and delinquent records at ``facility`` by service, by clinician (a
    record counts for each clinician with an open deficiency in it) and by age bucket
    (days since discharge, :data:`AGE_BUCKETS`); no patient is named, so the view is
    audited without patients."""
    require_figures(user, "completion.counts")
    now = now or clock.now()
    counts = _counts(facility, now)
    record_event(
        user,
        Action.VIEW,
        purpose=default_purpose(user),
        object_type="completion.counts",
        detail={"facility": str(facility.public_id)},
    )
    return counts


def export_counts(user, *, facility, now=None) -> Counts:
    """The same counts for the CSV export, audited as an export."""
    require_permission(
        user,
        CP.VIEW_DEFICIENCIES,
        action=Action.EXPORT,
        purpose=default_purpose(user),
        object_type="completion.counts",
    )
    now = now or clock.now()
    counts = _counts(facility, now)
    record_event(
        user,
        Action.EXPORT,
        purpose=default_purpose(user),
        object_type="completion.counts",
        detail={"format": "csv", "facility": str(facility.public_id)},
    )
    return counts
