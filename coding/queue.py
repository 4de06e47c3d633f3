"""The coding work queue: discharged encounters whose records are ready for coding, and
claiming and releasing them.

An encounter is **ready for coding** when it is discharged (finished, with a discharge
time, neither cancelled nor entered in error), at one of the user's facilities, its
abstract is not final (no abstract yet, not started, in progress or on hold), and

- chart completion found its record complete, or
- the facility's coding policy allows coding before the record is complete
  (``CodingPolicy.code_before_complete``), or
- coding has already begun on it (in progress or on hold).

The queue is sorted by discharge date (oldest first unless asked otherwise) and filtered
by service, payer, encounter class, discharge dates, abstract status and who claimed it.
The payer is the abstract's, else the issuer of the patient's payer member id, else
Medicare when the patient has a Medicare beneficiary id.

A coder **claims** an encounter (its abstract's ``coder``; the abstract is opened, not
started, if it did not exist) and **releases** it. A claim held by another coder is
refused; a coder releases only their own claim, a reviewer (``coding.review``) anyone's.
Both are audited.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, NullIf
from django.http import Http404

from audit.models import Action
from coding import work_access as wa
from coding.models import Abstract, AbstractStatus, PhysicianQuery, QueryStatus
from coding.permissions import CodingPermission as K
from completion.models import RecordStatus
from encounters.models import VOID_ENCOUNTER, Encounter, EncounterClass, EncounterStatus
from patients.models import IdentifierKind, PatientIdentifier
from recordroom import clock

PAGE_SIZE = 50
DAY = dt.timedelta(days=1)
DONE = [AbstractStatus.FINAL, AbstractStatus.REBILLED]
BEGUN = [AbstractStatus.IN_PROGRESS, AbstractStatus.ON_HOLD]
NO_PAYER = "No payer recorded"
SORTS = {
    "discharged": ("ended_at", "pk"),
    "-discharged": ("-ended_at", "-pk"),
    "service": ("service", "ended_at", "pk"),
    "payer": ("payer_name", "ended_at", "pk"),
}


# --- the set of encounters ----------------------------------------------------------------


def _member_payer():
    return Subquery(
        PatientIdentifier.objects.filter(
            patient=OuterRef("patient_id"), kind=IdentifierKind.MEMBER_ID, active=True
        )
        .exclude(issuer="")
        .order_by("pk")
        .values("issuer")[:1]
    )


def _medicare():
    return Subquery(
        PatientIdentifier.objects.filter(
            patient=OuterRef("patient_id"), kind=IdentifierKind.MEDICARE, active=True
        )
        .annotate(payer=Value("Medicare"))
        .values("payer")[:1]
    )


def _mrn():
    return Subquery(
        PatientIdentifier.objects.filter(
            patient=OuterRef("patient_id"),
            kind=IdentifierKind.MRN,
            facility=OuterRef("facility_id"),
        )
        .order_by("-active", "pk")
        .values("value")[:1]
    )


def _open_query_count():
    return Subquery(
        PhysicianQuery.objects.filter(abstract__encounter=OuterRef("pk"), status=QueryStatus.OPEN)
        .order_by()
        .values("abstract__encounter")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )


def has_open_query():
    return Exists(
        PhysicianQuery.objects.filter(abstract__encounter=OuterRef("pk"), status=QueryStatus.OPEN)
    )


def payer_expression():
    return Coalesce(
        NullIf(F("abstract__payer"), Value("")), _member_payer(), _medicare(), Value("")
    )


def discharged_not_final(facility_ids):
    """Discharged encounters at ``facility_ids`` whose abstract is not final (or that
    have none): the DNFB population, annotated with what the lists show."""
    return (
        Encounter.objects.filter(
            facility_id__in=facility_ids, status=EncounterStatus.FINISHED, ended_at__isnull=False
        )
        .exclude(abstract__status__in=DONE)
        .annotate(
            payer_name=payer_expression(),
            abstract_status=Coalesce(F("abstract__status"), Value(AbstractStatus.NOT_STARTED)),
            record_status=Coalesce(F("completion__status"), Value(RecordStatus.NOT_ANALYSED)),
            open_queries=Count(
                "abstract__queries", filter=Q(abstract__queries__status=QueryStatus.OPEN)
            ),
        )
    )


def ready_condition(facility_ids) -> Q:
    """Ready for coding: record complete, or the policy allows coding before, or begun."""
    early = [
        fid
        for fid, policy in wa.policies_today(set(facility_ids)).items()
        if policy.code_before_complete
    ]
    return (
        Q(completion__status=RecordStatus.COMPLETE)
        | Q(facility_id__in=early)
        | Q(abstract__status__in=BEGUN)
    )


def ready_for_coding(facility_ids):
    return discharged_not_final(facility_ids).filter(ready_condition(facility_ids))


# --- rows ---------------------------------------------------------------------------------


def days_since(moment: dt.datetime | None, now: dt.datetime) -> int:
    if moment is None or moment > now:
        return 0
    return math.floor((now - moment) / DAY)


@dataclass(frozen=True)
class QueueRow:
    encounter: Encounter
    abstract: Abstract | None
    patient_name: str
    mrn: str
    restricted: bool
    service: str
    payer: str
    discharged_at: dt.datetime
    days_since_discharge: int
    status: str
    status_label: str
    record_status: str
    coder: object | None
    claimed_at: dt.datetime | None
    open_queries: int
    drg: str
    mine: bool


def _row(encounter: Encounter, now: dt.datetime, user) -> QueueRow:
    abstract = getattr(encounter, "abstract", None) if _has_abstract(encounter) else None
    status = encounter.abstract_status
    return QueueRow(
        encounter=encounter,
        abstract=abstract,
        patient_name=encounter.patient.display_name,
        mrn=encounter.mrn or "",
        restricted=encounter.patient.is_restricted,
        service=encounter.service,
        payer=encounter.payer_name or "",
        discharged_at=encounter.ended_at,
        days_since_discharge=days_since(encounter.ended_at, now),
        status=status,
        status_label=dict(AbstractStatus.choices).get(status, status),
        record_status=dict(RecordStatus.choices).get(encounter.record_status, ""),
        coder=abstract.coder if abstract else None,
        claimed_at=abstract.claimed_at if abstract else None,
        open_queries=encounter.open_queries,
        drg=abstract.drg if abstract else "",
        mine=bool(abstract and abstract.coder_id == user.pk),
    )


def _has_abstract(encounter: Encounter) -> bool:
    try:
        encounter.abstract  # noqa: B018 - the reverse one-to-one raises when there is none
    except Abstract.DoesNotExist:
        return False
    return True


# --- the queue ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilter:
    """What the queue is narrowed to; every field comes from the URL."""

    service: str = ""
    payer: str = ""
    encounter_class: str = ""
    status: str = ""  # an AbstractStatus value that is not final
    claim: str = ""  # "mine", "unclaimed", "claimed" or "" for all
    discharged_from: dt.date | None = None
    discharged_to: dt.date | None = None
    sort: str = "discharged"

    def as_detail(self) -> dict:
        return {k: str(v) for k, v in self.__dict__.items() if v not in (None, "")}


@dataclass
class QueuePage:
    rows: list[QueueRow]
    count: int
    page: int
    pages: int
    filters: QueueFilter = field(default_factory=QueueFilter)

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def _day_start(day: dt.date) -> dt.datetime:
    from django.utils import timezone

    return timezone.make_aware(dt.datetime.combine(day, dt.time())).astimezone(dt.UTC)


def _filtered(user, filters: QueueFilter):
    ids = wa.user_facility_ids(user)
    rows = ready_for_coding(ids).exclude(status__in=VOID_ENCOUNTER)
    if filters.service:
        rows = rows.filter(service__iexact=filters.service)
    if filters.payer == NO_PAYER:
        rows = rows.filter(payer_name="")
    elif filters.payer:
        rows = rows.filter(payer_name__iexact=filters.payer)
    if filters.encounter_class:
        rows = rows.filter(encounter_class=filters.encounter_class)
    if filters.status:
        rows = rows.filter(abstract_status=filters.status)
    if filters.claim == "mine":
        rows = rows.filter(abstract__coder=user)
    elif filters.claim == "unclaimed":
        rows = rows.filter(Q(abstract__isnull=True) | Q(abstract__coder__isnull=True))
    elif filters.claim == "claimed":
        rows = rows.filter(abstract__coder__isnull=False)
    if filters.discharged_from:
        rows = rows.filter(ended_at__gte=_day_start(filters.discharged_from))
    if filters.discharged_to:
        rows = rows.filter(ended_at__lt=_day_start(filters.discharged_to + DAY))
    order = SORTS.get(filters.sort, SORTS["discharged"])
    return (
        rows.select_related("patient", "abstract", "abstract__coder")
        .annotate(mrn=_mrn())
        .order_by(*order)
    )


def check_filters(filters: QueueFilter) -> QueueFilter:
    """Refuse filters that cannot match anything sensible (a clear message, no query)."""
    errors = {}
    if filters.status and filters.status not in {
        AbstractStatus.NOT_STARTED,
        AbstractStatus.IN_PROGRESS,
        AbstractStatus.ON_HOLD,
    }:
        errors["status"] = "The queue holds abstracts not started, in progress or on hold."
    if filters.encounter_class and filters.encounter_class not in EncounterClass.values:
        errors["encounter_class"] = "Unknown encounter class."
    if filters.claim not in ("", "mine", "unclaimed", "claimed"):
        errors["claim"] = "Choose mine, unclaimed or claimed."
    if filters.sort not in SORTS:
        errors["sort"] = "Unknown sort order."
    if (
        filters.discharged_from
        and filters.discharged_to
        and filters.discharged_from > filters.discharged_to
    ):
        errors["discharged_to"] = "The end of the discharge range is before its start."
    if errors:
        raise ValidationError(errors)
    return filters


def work_queue(user, filters: QueueFilter | None = None, *, page: int = 1, now=None) -> QueuePage:
    """A page of the queue (coders); audited with the filters and the patients shown."""
    wa.require(user, K.CODE, "coding.queue")
    filters = check_filters(filters or QueueFilter())
    now = now or clock.now()
    rows = _filtered(user, filters)
    count = rows.count()
    pages = max(1, math.ceil(count / PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = [_row(e, now, user) for e in rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]]
    wa.audit_list(
        user,
        "coding.queue",
        [r.encounter.patient.public_id for r in shown],
        filters=filters.as_detail(),
        page=page,
        total=count,
    )
    return QueuePage(shown, count, page, pages, filters)


def filter_choices(user) -> dict:
    """Services and payers seen among the ready encounters (for the filter lists)."""
    wa.require(user, K.CODE, "coding.queue")
    base = ready_for_coding(wa.user_facility_ids(user))
    services = sorted({s for s in base.values_list("service", flat=True) if s})
    payers = sorted({p for p in base.values_list("payer_name", flat=True) if p})
    return {"services": services, "payers": [*payers, NO_PAYER], "classes": EncounterClass.choices}


def queue_counts(user, *, limit: int = 5, now=None) -> dict:
    """For the home panel: how many wait, how many are the user's, and the oldest few
    (by visit number and days since discharge only, no patient names); audited without
    patients."""
    wa.require(user, K.CODE, "coding.queue")
    now = now or clock.now()
    rows = ready_for_coding(wa.user_facility_ids(user)).exclude(status__in=VOID_ENCOUNTER)
    totals = rows.aggregate(
        total=Count("pk", distinct=True),
        mine=Count("pk", distinct=True, filter=Q(abstract__coder=user)),
        unclaimed=Count(
            "pk", distinct=True, filter=Q(abstract__isnull=True) | Q(abstract__coder__isnull=True)
        ),
    )
    oldest = [
        {
            "encounter": e.public_id,
            "visit_number": e.visit_number,
            "service": e.service,
            "days": days_since(e.ended_at, now),
        }
        for e in rows.order_by("ended_at", "pk")[:limit]
    ]
    return {**totals, "oldest": oldest}


# --- claiming -----------------------------------------------------------------------------


def _encounter_for_coding(user, encounter_public_id, *, action) -> Encounter:
    """The encounter, if it is at the user's facilities and ready for coding; otherwise
    the same audited 404."""
    key = wa.parse_uuid(encounter_public_id)
    ids = wa.user_facility_ids(user)
    encounter = (
        ready_for_coding(ids).filter(public_id=key).select_related("patient").first()
        if key
        else None
    )
    if encounter is None:
        wa.deny(user, "coding.claim", encounter_public_id, "not in the coding queue", action=action)
        raise Http404("No such encounter in the coding queue")
    return encounter


def open_abstract_for_claim(encounter: Encounter, *, acting_user) -> Abstract:
    """The encounter's abstract, opened (not started) by the abstract screen's action
    when it has none yet (``coding.abstracts.do_open_abstract``, which versions and
    audits it). Called outside any transaction, so its refusals stay audited."""
    from coding.abstracts import do_open_abstract

    return do_open_abstract(encounter, acting_user=acting_user)


def do_claim(user, encounter_public_id) -> Abstract:
    """Claim an encounter for coding: the abstract's coder becomes ``user``."""
    wa.require(user, K.CODE, "coding.claim", action=Action.UPDATE, object_id=encounter_public_id)
    encounter = _encounter_for_coding(user, encounter_public_id, action=Action.UPDATE)
    opened = open_abstract_for_claim(encounter, acting_user=user)
    with transaction.atomic():
        abstract = (
            Abstract.objects.select_for_update(of=("self",))
            .select_related("coder")
            .get(pk=opened.pk)
        )
        now = clock.now()
        if abstract.coder_id == user.pk:
            raise ValidationError("You have already claimed this encounter.")
        if abstract.coder_id is not None:
            raise ValidationError(
                f"{abstract.coder.display_name} has claimed this encounter; ask them or a "
                "supervisor to release it."
            )
        abstract.coder = user
        abstract.claimed_at = now
        abstract.updated_at = now
        abstract.save(update_fields=["coder", "claimed_at", "updated_at"])
        wa.audit(
            user,
            Action.UPDATE,
            "coding.claim",
            object_id=abstract.public_id,
            patient_id=encounter.patient.public_id,
            encounter=str(encounter.public_id),
            claimed=True,
        )
    return abstract


def do_release(user, encounter_public_id, *, reason: str = "") -> Abstract:
    """Give a claimed encounter back to the queue: its coder, or a reviewer (with a
    reason) for someone else's claim."""
    wa.require(user, K.CODE, "coding.claim", action=Action.UPDATE, object_id=encounter_public_id)
    encounter = _encounter_for_coding(user, encounter_public_id, action=Action.UPDATE)
    abstract = Abstract.objects.filter(encounter=encounter).select_related("coder").first()
    if abstract is None or abstract.coder_id is None:
        raise ValidationError("Nobody has claimed this encounter.")
    if abstract.coder_id != user.pk:
        if not wa.may(user, K.REVIEW):
            wa.deny(
                user,
                "coding.claim",
                abstract.public_id,
                "another coder's claim",
                action=Action.UPDATE,
                patient_id=encounter.patient.public_id,
            )
            raise ValidationError("Only the coder who claimed it, or a supervisor, can release it.")
        if not reason.strip():
            raise ValidationError({"reason": "Say why you release another coder's claim."})
    with transaction.atomic():
        locked = (
            Abstract.objects.select_for_update(of=("self",))
            .select_related("coder")
            .get(pk=abstract.pk)
        )
        previous = str(locked.coder.public_id) if locked.coder else ""
        now = clock.now()
        locked.coder = None
        locked.claimed_at = None
        locked.updated_at = now
        locked.save(update_fields=["coder", "claimed_at", "updated_at"])
        wa.audit(
            user,
            Action.UPDATE,
            "coding.claim",
            object_id=locked.public_id,
            patient_id=encounter.patient.public_id,
            encounter=str(encounter.public_id),
            claimed=False,
            previous_coder=previous,
            **({"reason": reason.strip()[:300]} if reason.strip() else {}),
        )
    return locked
