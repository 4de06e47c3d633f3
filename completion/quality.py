"""Quality audits of the record: review checklists, samples of discharged records drawn
at random (seeded, so the draw can be repeated) or by target, reviewers' scores, the
corrections that not-met items open, and the audit's score.

Every change is a ``do_*`` action: the permission first (outside the transaction, so a
refusal's audit row stays), then the work and its audit event in one transaction. Reads
are ``access_*``/``list_*`` functions that check the permission and the facility and
audit what they show. A checklist in use is never edited: a new version is a new
checklist, and the old one is retired.

Scores: a record's score is the weighted share of applicable items that are met
(weight of met items ÷ weight of met and not-met items × 100, two decimals, half up);
the audit's score is the mean of its records' scores; an item's compliance is the share
of records where it applied and was met.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import Cast
from django.http import Http404
from django.utils import timezone

from accounts.access import AccessDenied, has_permission, require_permission
from accounts.models import Facility
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from completion.models import (
    AuditedRecord,
    ChecklistItem,
    Correction,
    CorrectionStatus,
    Deficiency,
    DeficiencyStatus,
    ItemResult,
    ItemScore,
    QualityAudit,
    QualityAuditStatus,
    RecordCompletion,
    RecordStatus,
    ReviewChecklist,
)
from completion.permissions import CompletionPermission
from completion.policy import add_local_days, policy_for
from encounters.models import Encounter, EncounterClass, EncounterStatus
from patients.access import Scope, access_patient, facility_ids
from patients.models import IdentifierKind
from recordroom import clock

MANAGE = CompletionPermission.MANAGE_QUALITY_AUDITS
REVIEW = CompletionPermission.REVIEW_QUALITY
PURPOSE = Purpose.OPERATIONS  # quality review is a health care operation (45 CFR 164.501)

MAX_ITEMS = 60
MAX_WEIGHT = 100
MAX_SAMPLE = 500
MIN_REASON = 5

# The random draw orders the population by a random polynomial of degree 3 over the
# prime field GF(2^31 - 1), evaluated on each encounter's key: a 4-wise independent hash
# family, so the first ``size`` rows are a uniform sample, and the same seed gives the
# same order. Every intermediate value stays below 2^62, inside a signed 64-bit integer
# on both SQLite and PostgreSQL.
_PRIME = 2_147_483_647
DRAW_HASH = "poly3-mod-2^31-1"
HUNDRED = Decimal(100)
CENT = Decimal("0.01")

O_CHECKLIST = "completion.checklist"
O_AUDIT = "completion.quality_audit"
O_RECORD = "completion.audited_record"
O_CORRECTION = "completion.correction"


class SampleMethod:
    RANDOM = "random"
    TARGETED = "targeted"
    CHOICES = [
        (RANDOM, "Random: a seeded random sample of the discharges"),
        (TARGETED, "Targeted: only records that meet a condition"),
    ]


class Target:
    DEFICIENCIES = "deficiencies"
    DELINQUENT = "delinquent"
    ATTENDING = "attending"
    CHOICES = [
        (DEFICIENCIES, "Records that had deficiencies (open or resolved)"),
        (DELINQUENT, "Delinquent records (incomplete past the completion limit)"),
        (ATTENDING, "Records of one attending clinician"),
    ]
    LABELS = dict(CHOICES)


# --- small helpers --------------------------------------------------------------------


def _clean(value) -> str:
    return " ".join(str(value or "").split())


def _percent(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * HUNDRED / Decimal(whole)).quantize(CENT, rounding=ROUND_HALF_UP)


def _mean(values: list[Decimal]) -> Decimal | None:
    if not values:
        return None
    return (sum(values, Decimal(0)) / Decimal(len(values))).quantize(CENT, rounding=ROUND_HALF_UP)


def _require_any(user, permissions, *, action=Action.VIEW, object_type="", object_id="", **kw):
    """Let in a user holding any of ``permissions``; otherwise refuse (audited) naming the
    first."""
    if any(has_permission(user, p) for p in permissions):
        return
    require_permission(
        user,
        permissions[0],
        action=action,
        purpose=PURPOSE,
        object_type=object_type,
        object_id=str(object_id)[:64],
        **kw,
    )


def _deny(user, action, *, object_type, object_id, reason, patient_id=None):
    record_event(
        user,
        action,
        outcome=Outcome.DENIED,
        purpose=PURPOSE,
        patient_id=patient_id,
        object_type=object_type,
        object_id=str(object_id)[:64],
        reason=reason,
    )


def _not_found(
    user, action, *, object_type, object_id, reason="no such object at the user's facilities"
):
    _deny(user, action, object_type=object_type, object_id=object_id, reason=reason)
    raise Http404("Not found")


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def user_facility_keys(user) -> list[str]:
    """The public ids (as stored in an audit's criteria) of the user's facilities."""
    ids = Facility.objects.filter(pk__in=facility_ids(user)).values_list("public_id", flat=True)
    return [str(key) for key in ids]


def audit_facility_pk(audit: QualityAudit) -> int | None:
    key = _uuid(audit.criteria.get("facility_id"))
    if key is None:
        return None
    return Facility.objects.filter(public_id=key).values_list("pk", flat=True).first()


def _works_at(user, audit: QualityAudit) -> bool:
    return audit_facility_pk(audit) in facility_ids(user)


def users_with_permission(permission: str, facility_pk: int):
    """Active interactive users at a facility whose roles hold ``permission``."""
    app_label, codename = str(permission).split(".", 1)
    return (
        get_user_model()
        .objects.filter(
            is_active=True,
            is_system_account=False,
            facilities__pk=facility_pk,
            groups__permissions__codename=codename,
            groups__permissions__content_type__app_label=app_label,
        )
        .distinct()
        .order_by("last_name", "first_name", "username")
    )


def correction_days(facility_pk: int | None) -> int:
    """How long a correction may stay open: the completion limit of the bylaws in force
    today (completion.policy: the facility's policy, else the organisation's, else 30)."""
    return policy_for(facility_pk).completion_days


def require_manage(user) -> None:
    """The right to define checklists and draw samples (for the screens that only show
    a form)."""
    require_permission(user, MANAGE, purpose=PURPOSE, object_type=O_AUDIT)


def facilities_of(user) -> list[Facility]:
    return list(Facility.objects.filter(pk__in=facility_ids(user)).order_by("name"))


def clinicians_at(facilities) -> list:
    from encounters.access import attending_choices

    return attending_choices(facilities)


def criteria_summary(audit: QualityAudit) -> list[tuple[str, str]]:
    """How the sample was drawn, as label/value pairs for the audit screen."""
    c = audit.criteria
    facility = Facility.objects.filter(public_id=_uuid(c.get("facility_id"))).first()
    rows = [
        ("Facility", facility.name if facility else c.get("facility", "")),
        ("Discharged", f"{c.get('period_start')} to {c.get('period_end')}"),
        ("Service", c.get("service") or "all"),
        (
            "Encounter class",
            EncounterClass(c["encounter_class"]).label if c.get("encounter_class") else "all",
        ),
        ("Method", c.get("method", "")),
    ]
    if c.get("target"):
        rows.append(("Target", Target.LABELS.get(c["target"], c["target"])))
    if c.get("attending"):
        person = get_user_model().objects.filter(public_id=_uuid(c["attending"])).first()
        rows.append(("Attending", person.display_name if person else c["attending"]))
    took_all = " (every record: the population is smaller)" if c.get("took_all") else ""
    rows += [
        ("Asked for", str(c.get("size", ""))),
        ("Population", str(c.get("population", ""))),
        ("Drawn", f"{c.get('drawn', '')}{took_all}"),
        ("Seed", str(c.get("seed", ""))),
    ]
    return rows


# --- checklists -----------------------------------------------------------------------


@dataclass(frozen=True)
class ItemData:
    text: str
    weight: int = 1


def _validate_checklist(name: str, description: str, items: list[ItemData]) -> list[ItemData]:
    errors: dict[str, list[str]] = {}
    if not name:
        errors.setdefault("name", []).append("Name the checklist.")
    elif len(name) > 200:
        errors.setdefault("name", []).append("The name is longer than 200 characters.")
    if len(description) > 2000:
        errors.setdefault("description", []).append(
            "The description is longer than 2000 characters."
        )
    cleaned: list[ItemData] = []
    seen: set[str] = set()
    for number, item in enumerate(items, start=1):
        text = _clean(item.text)
        weight = item.weight
        if not text:
            errors.setdefault("items", []).append(f"Item {number} has no text.")
            continue
        if len(text) > 300:
            errors.setdefault("items", []).append(f"Item {number} is longer than 300 characters.")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
            errors.setdefault("items", []).append(
                f"Item {number} has weight {weight!s:.20}; a weight is a whole number "
                f"from 1 to {MAX_WEIGHT}."
            )
        if text.casefold() in seen:
            errors.setdefault("items", []).append(f"Item {number} repeats an earlier item.")
        seen.add(text.casefold())
        cleaned.append(ItemData(text=text, weight=weight))
    if not items:
        errors.setdefault("items", []).append("Give the checklist at least one item.")
    elif len(items) > MAX_ITEMS:
        errors.setdefault("items", []).append(f"A checklist has at most {MAX_ITEMS} items.")
    if errors:
        raise ValidationError(errors)
    return cleaned


def do_create_checklist(
    *,
    name: str,
    items: list[ItemData],
    acting_user,
    description: str = "",
    replaces: ReviewChecklist | None = None,
) -> ReviewChecklist:
    """Define a review checklist: items in order, each with a weight. With ``replaces``,
    this is the new version of a checklist: the old one is retired (audits drawn with it
    keep it, unchanged), never edited in place."""
    require_permission(
        acting_user,
        MANAGE,
        action=Action.CREATE,
        purpose=PURPOSE,
        object_type=O_CHECKLIST,
        object_id=str(replaces.public_id) if replaces else "",
    )
    name, description = _clean(name), str(description or "").strip()
    cleaned = _validate_checklist(name, description, list(items))
    with transaction.atomic():
        now = clock.now()
        if replaces is not None:
            old = ReviewChecklist.objects.select_for_update().get(pk=replaces.pk)
            if not old.active:
                raise ValidationError(
                    {"replaces": "That checklist was already replaced or retired."}
                )
            ReviewChecklist.objects.filter(pk=old.pk).update(active=False)
            replaces.active = False
        checklist = ReviewChecklist(
            name=name, description=description, active=True, created_at=now, created_by=acting_user
        )
        checklist.full_clean()
        checklist.save()
        ChecklistItem.objects.bulk_create(
            ChecklistItem(
                checklist=checklist, position=position, text=item.text, weight=item.weight
            )
            for position, item in enumerate(cleaned, start=1)
        )
        record_event(
            acting_user,
            Action.CREATE,
            purpose=PURPOSE,
            object_type=O_CHECKLIST,
            object_id=str(checklist.public_id),
            detail={
                "items": len(cleaned),
                "total_weight": sum(item.weight for item in cleaned),
                **({"replaces": str(replaces.public_id)} if replaces else {}),
            },
        )
    return checklist


def do_retire_checklist(checklist: ReviewChecklist, *, reason: str, acting_user) -> ReviewChecklist:
    """Take a checklist out of use: no new audit is drawn with it; audits that use it
    keep it."""
    require_permission(
        acting_user,
        MANAGE,
        action=Action.UPDATE,
        purpose=PURPOSE,
        object_type=O_CHECKLIST,
        object_id=str(checklist.public_id),
    )
    reason = _clean(reason)
    if len(reason) < MIN_REASON:
        raise ValidationError(
            {"reason": "Say why the checklist is retired (at least 5 characters)."}
        )
    with transaction.atomic():
        locked = ReviewChecklist.objects.select_for_update().get(pk=checklist.pk)
        if not locked.active:
            raise ValidationError({"reason": "This checklist is already retired."})
        ReviewChecklist.objects.filter(pk=locked.pk).update(active=False)
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=PURPOSE,
            object_type=O_CHECKLIST,
            object_id=str(checklist.public_id),
            reason=reason[:300],
            detail={"event": "retire"},
        )
    checklist.active = False
    return checklist


def list_checklists(user, *, include_retired: bool = True) -> list[ReviewChecklist]:
    """Checklists, active first, newest first, each with its items and total weight."""
    require_permission(user, MANAGE, purpose=PURPOSE, object_type=O_CHECKLIST)
    checklists = ReviewChecklist.objects.select_related("created_by").prefetch_related("items")
    if not include_retired:
        checklists = checklists.filter(active=True)
    return list(checklists.order_by("-active", "-created_at", "-pk"))


def active_checklists(user) -> list[ReviewChecklist]:
    return list_checklists(user, include_retired=False)


def access_checklist(user, public_id) -> ReviewChecklist:
    require_permission(
        user, MANAGE, purpose=PURPOSE, object_type=O_CHECKLIST, object_id=str(public_id)[:64]
    )
    key = _uuid(public_id)
    checklist = (
        ReviewChecklist.objects.prefetch_related("items").filter(public_id=key).first()
        if key
        else None
    )
    if checklist is None:
        _not_found(user, Action.VIEW, object_type=O_CHECKLIST, object_id=public_id)
    return checklist


# --- drawing a sample -----------------------------------------------------------------


@dataclass
class SampleCriteria:
    """What to draw: discharges (finished encounters) of a facility in a period, narrowed
    by service and class, ``size`` of them at random, or only those meeting a target."""

    facility: Any
    period_start: dt.date | None
    period_end: dt.date | None
    size: int | None
    method: str = SampleMethod.RANDOM
    service: str = ""
    encounter_class: str = ""
    target: str = ""
    attending: Any = None
    seed: int | None = None


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _validate_criteria(criteria: SampleCriteria, acting_user) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}

    def add(key, message):
        errors.setdefault(key, []).append(message)

    if criteria.facility is None:
        add("facility", "Choose the facility whose discharges are sampled.")
    elif criteria.facility.pk not in facility_ids(acting_user):
        add("facility", "You do not work at this facility.")
    if criteria.period_start is None:
        add("period_start", "Give the first day of the discharge period.")
    if criteria.period_end is None:
        add("period_end", "Give the last day of the discharge period.")
    if criteria.period_start and criteria.period_end:
        if criteria.period_end < criteria.period_start:
            add(
                "period_end",
                f"The period ends ({criteria.period_end}) before it starts "
                f"({criteria.period_start}).",
            )
        today = timezone.localdate(clock.now())
        if criteria.period_start > today:
            add("period_start", f"The period starts in the future ({criteria.period_start}).")
    size = criteria.size
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SAMPLE:
        add("size", f"The sample size is a whole number from 1 to {MAX_SAMPLE}.")
    if criteria.method not in (SampleMethod.RANDOM, SampleMethod.TARGETED):
        add("method", "Choose random or targeted.")
    if criteria.method == SampleMethod.TARGETED:
        if criteria.target not in Target.LABELS:
            add("target", "Choose what the targeted sample looks for.")
        elif criteria.target == Target.ATTENDING and criteria.attending is None:
            add("attending", "Choose the attending clinician whose records are sampled.")
    if criteria.encounter_class and criteria.encounter_class not in EncounterClass.values:
        add("encounter_class", "Unknown encounter class.")
    if len(criteria.service) > 60:
        add("service", "The service is longer than 60 characters.")
    seed = criteria.seed
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**53
    ):
        add("seed", "The seed is a whole number from 0 to 2^53 - 1.")
    return errors


def _population(criteria: SampleCriteria, now: dt.datetime):
    """The discharges the sample is drawn from, as one query."""
    start = _local_midnight(criteria.period_start)
    end = _local_midnight(criteria.period_end + dt.timedelta(days=1))
    encounters = Encounter.objects.filter(
        facility=criteria.facility,
        status=EncounterStatus.FINISHED,
        ended_at__gte=start,
        ended_at__lt=end,
    )
    if criteria.service:
        encounters = encounters.filter(service__iexact=criteria.service)
    if criteria.encounter_class:
        encounters = encounters.filter(encounter_class=criteria.encounter_class)
    if criteria.method == SampleMethod.TARGETED:
        if criteria.target == Target.DEFICIENCIES:
            encounters = encounters.filter(
                Exists(
                    Deficiency.objects.filter(encounter_id=OuterRef("pk")).exclude(
                        status=DeficiencyStatus.VOID
                    )
                )
            )
        elif criteria.target == Target.DELINQUENT:
            encounters = encounters.filter(
                Exists(
                    RecordCompletion.objects.filter(
                        encounter_id=OuterRef("pk"),
                        status=RecordStatus.INCOMPLETE,
                        due_at__lt=now,
                    )
                )
            )
        elif criteria.target == Target.ATTENDING:
            encounters = encounters.filter(attending=criteria.attending)
    return encounters


def _draw_coefficients(seed: int) -> list[int]:
    # random.Random with an integer seed gives the same numbers on every Python version.
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    return [rng.randrange(1, _PRIME) for _ in range(4)]


def draw_rank(seed: int) -> ExpressionWrapper:
    """The SQL expression the population is ordered by for a seed (Horner's rule)."""
    first, *rest = _draw_coefficients(seed)
    x = Cast(F("pk"), BigIntegerField()) % _PRIME
    rank = Value(first, output_field=BigIntegerField())
    for coefficient in rest:
        rank = (rank * x + coefficient) % _PRIME
    return ExpressionWrapper(rank, output_field=BigIntegerField())


def _describe(criteria: SampleCriteria) -> str:
    parts = [
        f"{criteria.facility.name}, discharged {criteria.period_start} to {criteria.period_end}"
    ]
    if criteria.service:
        parts.append(f"service {criteria.service}")
    if criteria.encounter_class:
        parts.append(EncounterClass(criteria.encounter_class).label.lower())
    if criteria.method == SampleMethod.TARGETED:
        parts.append(Target.LABELS[criteria.target].lower())
    return ", ".join(parts)


def do_draw_sample(
    *,
    checklist: ReviewChecklist | None,
    criteria: SampleCriteria,
    acting_user,
    name: str = "",
) -> QualityAudit:
    """Open a quality audit: draw its sample of discharged records and list them for
    review. The selection is one query (population filter, seeded order, limit); the
    criteria, the seed and the population size are stored, so the same draw can be
    repeated. A sample larger than the population takes every record and says so; an
    empty population is refused with the criteria named."""
    require_permission(
        acting_user, MANAGE, action=Action.CREATE, purpose=PURPOSE, object_type=O_AUDIT
    )
    name = _clean(name)
    criteria.service = _clean(criteria.service)
    errors = _validate_criteria(criteria, acting_user)
    if checklist is None:
        errors.setdefault("checklist", []).append("Choose the review checklist.")
    elif not checklist.active:
        errors.setdefault("checklist", []).append("This checklist was retired; choose one in use.")
    if len(name) > 200:
        errors.setdefault("name", []).append("The name is longer than 200 characters.")
    if errors:
        raise ValidationError(errors)
    seed = criteria.seed if criteria.seed is not None else secrets.randbelow(2**31)
    now = clock.now()
    population = _population(criteria, now)
    with transaction.atomic():
        total = population.count()
        if total == 0:
            raise ValidationError(
                {
                    "__all__": [
                        f"No discharges match these criteria ({_describe(criteria)}). "
                        "Widen the period or loosen the criteria; no audit was opened."
                    ]
                }
            )
        picked = list(
            population.annotate(draw_rank=draw_rank(seed))
            .order_by("draw_rank", "pk")
            .values_list("pk", flat=True)[: criteria.size]
        )
        stored = {
            "facility": criteria.facility.code,
            "facility_id": str(criteria.facility.public_id),
            "period_start": criteria.period_start.isoformat(),
            "period_end": criteria.period_end.isoformat(),
            "service": criteria.service,
            "encounter_class": criteria.encounter_class,
            "method": criteria.method,
            "target": criteria.target if criteria.method == SampleMethod.TARGETED else "",
            "attending": (
                str(criteria.attending.public_id)
                if criteria.method == SampleMethod.TARGETED and criteria.target == Target.ATTENDING
                else ""
            ),
            "size": criteria.size,
            "seed": seed,
            "hash": DRAW_HASH,
            "population": total,
            "drawn": len(picked),
            "took_all": total <= criteria.size,
            "drawn_at": now.isoformat(),
        }
        audit = QualityAudit(
            name=name
            or f"{checklist.name}: discharges {criteria.period_start} to {criteria.period_end}",
            checklist=checklist,
            criteria=stored,
            status=QualityAuditStatus.OPEN,
            created_at=now,
            created_by=acting_user,
        )
        audit.full_clean()
        audit.save()
        AuditedRecord.objects.bulk_create(
            AuditedRecord(audit=audit, encounter_id=pk) for pk in picked
        )
        record_event(
            acting_user,
            Action.CREATE,
            purpose=PURPOSE,
            object_type=O_AUDIT,
            object_id=str(audit.public_id),
            detail={
                "checklist": str(checklist.public_id),
                **{k: v for k, v in stored.items() if k not in ("drawn_at",)},
            },
        )
    return audit


def sample_message(audit: QualityAudit) -> str:
    """What the draw did, as the administrator is told."""
    c = audit.criteria
    if c.get("took_all"):
        return (
            f"The population holds {c['population']} discharge(s), no more than the "
            f"{c['size']} asked for: every one of them is in the sample."
        )
    return f"{c['drawn']} of {c['population']} discharges drawn ({c['method']}, seed {c['seed']})."


# --- the audit ------------------------------------------------------------------------


def _find_audit(public_id) -> QualityAudit | None:
    key = _uuid(public_id)
    if key is None:
        return None
    return (
        QualityAudit.objects.select_related("checklist", "created_by").filter(public_id=key).first()
    )


def access_audit(user, public_id, *, write: bool = False) -> QualityAudit:
    """An audit at one of the user's facilities. ``write`` asks for the right to manage
    audits; reading needs that or the right to review. Another facility's audit and a
    missing one answer the same 404."""
    action = Action.UPDATE if write else Action.VIEW
    permissions = [MANAGE] if write else [REVIEW, MANAGE]
    _require_any(user, permissions, action=action, object_type=O_AUDIT, object_id=public_id)
    audit = _find_audit(public_id)
    if audit is None or not _works_at(user, audit):
        _not_found(user, action, object_type=O_AUDIT, object_id=public_id)
    return audit


@dataclass
class AuditRow:
    """One audit in the list, with its progress and score."""

    audit: QualityAudit
    records: int
    scored: int
    mine_to_score: int
    score: Decimal | None
    open_corrections: int


def list_audits(user, *, status: str = "") -> list[AuditRow]:
    """Audits of the user's facilities, newest first, with progress and score."""
    _require_any(user, [REVIEW, MANAGE], object_type=O_AUDIT)
    audits = QualityAudit.objects.filter(criteria__facility_id__in=user_facility_keys(user))
    if status:
        audits = audits.filter(status=status)
    audits = audits.select_related("checklist").annotate(
        n_records=Count("records", distinct=True),
        n_scored=Count("records", filter=Q(records__score__isnull=False), distinct=True),
        n_mine=Count(
            "records",
            filter=Q(records__reviewer=user, records__score__isnull=True),
            distinct=True,
        ),
        score_sum=Sum("records__score"),
    )
    open_corrections = dict(
        Correction.objects.filter(record__audit__in=audits, status=CorrectionStatus.OPEN)
        .values("record__audit")
        .annotate(n=Count("pk"))
        .values_list("record__audit", "n")
    )
    rows = []
    for audit in audits.order_by("-created_at", "-pk")[:200]:
        score = None
        if audit.n_scored:
            score = (Decimal(audit.score_sum) / audit.n_scored).quantize(
                CENT, rounding=ROUND_HALF_UP
            )
        rows.append(
            AuditRow(
                audit=audit,
                records=audit.n_records,
                scored=audit.n_scored,
                mine_to_score=audit.n_mine,
                score=score,
                open_corrections=open_corrections.get(audit.pk, 0),
            )
        )
    record_event(
        user,
        Action.SEARCH,
        purpose=PURPOSE,
        object_type=O_AUDIT,
        detail={"status": status, "count": len(rows)},
    )
    return rows


@dataclass
class ItemCompliance:
    item: ChecklistItem
    met: int = 0
    not_met: int = 0
    not_applicable: int = 0

    @property
    def applicable(self) -> int:
        return self.met + self.not_met

    @property
    def percent(self) -> Decimal | None:
        return _percent(self.met, self.applicable)


@dataclass
class RecordLine:
    record: AuditedRecord
    encounter: Encounter
    patient_public_id: uuid.UUID
    open_corrections: int
    corrections: int


@dataclass
class AuditReport:
    """An audit's sample, per-record scores, per-item compliance and overall score."""

    audit: QualityAudit
    items: list[ItemCompliance]
    records: list[RecordLine]
    score: Decimal | None
    scored: int
    open_corrections: int
    corrections: int
    reviewers: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.records)

    @property
    def unscored(self) -> int:
        return self.total - self.scored

    @property
    def is_open(self) -> bool:
        return self.audit.status == QualityAuditStatus.OPEN


def _report(audit: QualityAudit) -> AuditReport:
    records = list(
        AuditedRecord.objects.filter(audit=audit)
        .select_related("encounter", "encounter__attending", "reviewer")
        .annotate(
            patient_public_id=F("encounter__patient__public_id"),
            n_open=Count("corrections", filter=Q(corrections__status=CorrectionStatus.OPEN)),
            n_corrections=Count("corrections"),
        )
        .order_by("encounter__ended_at", "pk")
    )
    items = {
        item.pk: ItemCompliance(item=item) for item in audit.checklist.items.order_by("position")
    }
    counts = (
        ItemScore.objects.filter(record__audit=audit, record__score__isnull=False)
        .values("item_id")
        .annotate(
            met=Count("pk", filter=Q(result=ItemResult.MET)),
            not_met=Count("pk", filter=Q(result=ItemResult.NOT_MET)),
            na=Count("pk", filter=Q(result=ItemResult.NOT_APPLICABLE)),
        )
    )
    for row in counts:
        line = items.get(row["item_id"])
        if line is not None:
            line.met, line.not_met, line.not_applicable = row["met"], row["not_met"], row["na"]
    lines = [
        RecordLine(
            record=r,
            encounter=r.encounter,
            patient_public_id=r.patient_public_id,
            open_corrections=r.n_open,
            corrections=r.n_corrections,
        )
        for r in records
    ]
    scores = [r.score for r in records if r.score is not None]
    return AuditReport(
        audit=audit,
        items=list(items.values()),
        records=lines,
        score=_mean(scores),
        scored=len(scores),
        open_corrections=sum(r.n_open for r in records),
        corrections=sum(r.n_corrections for r in records),
    )


def access_audit_report(user, public_id) -> AuditReport:
    """The audit screen: its records (by visit number, no names), per-record scores,
    per-item compliance and the audit's score. The patients shown are in the audit
    event, as a search's are."""
    audit = access_audit(user, public_id)
    report = _report(audit)
    record_event(
        user,
        Action.VIEW,
        purpose=PURPOSE,
        object_type=O_AUDIT,
        object_id=str(audit.public_id),
        detail={"shown": sorted({str(line.patient_public_id) for line in report.records})},
    )
    return report


def export_audit(user, public_id) -> AuditReport:
    """Per-record scores for a spreadsheet. The export is audited as an export, naming
    the patients whose records it lists."""
    require_permission(
        user,
        MANAGE,
        action=Action.EXPORT,
        purpose=PURPOSE,
        object_type=O_AUDIT,
        object_id=str(public_id)[:64],
    )
    audit = _find_audit(public_id)
    if audit is None or not _works_at(user, audit):
        _not_found(user, Action.EXPORT, object_type=O_AUDIT, object_id=public_id)
    report = _report(audit)
    record_event(
        user,
        Action.EXPORT,
        purpose=PURPOSE,
        object_type=O_AUDIT,
        object_id=str(audit.public_id),
        detail={
            "format": "csv",
            "records": report.total,
            "patients": sorted({str(line.patient_public_id) for line in report.records}),
        },
    )
    return report


def item_results(report: AuditReport) -> dict[int, dict[int, str]]:
    """{record pk: {item pk: result}} for the export's item columns, in one query."""
    results: dict[int, dict[int, str]] = {}
    rows = ItemScore.objects.filter(record__audit=report.audit).values_list(
        "record_id", "item_id", "result"
    )
    for record_id, item_id, result in rows:
        results.setdefault(record_id, {})[item_id] = result
    return results


def reviewer_choices(audit: QualityAudit) -> list:
    facility_pk = audit_facility_pk(audit)
    if facility_pk is None:
        return []
    return list(users_with_permission(REVIEW, facility_pk))


def do_assign_reviewer(
    audit: QualityAudit, *, reviewer, acting_user, encounter_ids: list | None = None
) -> int:
    """Assign records of an open audit to a reviewer: the records named by their
    encounters' public ids, or every record not yet assigned. A reviewer is never given
    a record of their own care (they were its attending). Returns how many."""
    require_permission(
        acting_user,
        MANAGE,
        action=Action.UPDATE,
        purpose=PURPOSE,
        object_type=O_AUDIT,
        object_id=str(audit.public_id),
    )
    if not _works_at(acting_user, audit):
        _not_found(acting_user, Action.UPDATE, object_type=O_AUDIT, object_id=audit.public_id)
    errors: dict[str, list[str]] = {}
    facility_pk = audit_facility_pk(audit)
    if reviewer is None:
        errors["reviewer"] = ["Choose the reviewer."]
    elif not users_with_permission(REVIEW, facility_pk).filter(pk=reviewer.pk).exists():
        errors["reviewer"] = [
            "This person cannot review records here: the reviewer needs the quality-review "
            "permission and to work at the audit's facility."
        ]
    keys = None
    if encounter_ids is not None:
        keys = [_uuid(value) for value in encounter_ids]
        if not keys or None in keys:
            errors["records"] = ["Choose the records to assign."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = QualityAudit.objects.select_for_update().get(pk=audit.pk)
        if locked.status != QualityAuditStatus.OPEN:
            raise ValidationError(
                {"__all__": ["This audit is closed; its records stay as scored."]}
            )
        records = AuditedRecord.objects.filter(audit=locked)
        if keys is None:
            records = records.filter(reviewer__isnull=True, score__isnull=True)
        else:
            records = records.filter(encounter__public_id__in=keys)
            if records.count() != len(set(keys)):
                raise ValidationError({"records": ["Some of these records are not in this audit."]})
        own = records.filter(encounter__attending=reviewer).count()
        if own:
            raise ValidationError(
                {
                    "reviewer": [
                        f"{own} of these records are of {reviewer.display_name}'s own care; "
                        "a clinician never reviews their own records."
                    ]
                }
            )
        pks = list(records.values_list("pk", flat=True))
        if not pks:
            raise ValidationError({"records": ["Every record is already assigned."]})
        AuditedRecord.objects.filter(pk__in=pks).update(reviewer=reviewer)
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=PURPOSE,
            object_type=O_AUDIT,
            object_id=str(audit.public_id),
            detail={"event": "assign", "reviewer": str(reviewer.public_id), "records": len(pks)},
        )
    return len(pks)


def do_close_audit(audit: QualityAudit, *, acting_user) -> AuditReport:
    """Close an audit once every record is scored: its score (the mean of the record
    scores) and per-item compliance are final. Open corrections stay tracked."""
    require_permission(
        acting_user,
        MANAGE,
        action=Action.UPDATE,
        purpose=PURPOSE,
        object_type=O_AUDIT,
        object_id=str(audit.public_id),
    )
    if not _works_at(acting_user, audit):
        _not_found(acting_user, Action.UPDATE, object_type=O_AUDIT, object_id=audit.public_id)
    with transaction.atomic():
        locked = QualityAudit.objects.select_for_update().get(pk=audit.pk)
        if locked.status != QualityAuditStatus.OPEN:
            raise ValidationError({"__all__": ["This audit is already closed."]})
        report = _report(locked)
        if report.unscored:
            raise ValidationError(
                {
                    "__all__": [
                        f"{report.unscored} of {report.total} records are not scored yet; "
                        "score them before closing the audit."
                    ]
                }
            )
        now = clock.now()
        QualityAudit.objects.filter(pk=locked.pk).update(
            status=QualityAuditStatus.CLOSED, closed_at=now
        )
        locked.status, locked.closed_at = QualityAuditStatus.CLOSED, now
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=PURPOSE,
            object_type=O_AUDIT,
            object_id=str(audit.public_id),
            detail={
                "event": "close",
                "score": str(report.score),
                "records": report.total,
                "open_corrections": report.open_corrections,
                "items": {
                    str(line.item.position): str(line.percent) if line.percent is not None else None
                    for line in report.items
                },
            },
        )
    audit.status, audit.closed_at = locked.status, locked.closed_at
    report.audit = audit
    return report


# --- scoring a record -----------------------------------------------------------------


@dataclass
class RecordReview:
    """The score screen: the record, its patient (through the patient's door), the
    checklist and what was scored so far."""

    audit: QualityAudit
    record: AuditedRecord
    encounter: Encounter
    patient: Any
    mrn: str
    items: list[ChecklistItem]
    scores: dict[int, ItemScore]
    corrections: dict[int, Correction]
    assignees: list
    may_score: bool
    why_not: str = ""


def _find_record(audit: QualityAudit, encounter_id) -> AuditedRecord | None:
    key = _uuid(encounter_id)
    if key is None:
        return None
    return (
        AuditedRecord.objects.select_related(
            "encounter",
            "encounter__patient",
            "encounter__attending",
            "encounter__facility",
            "reviewer",
        )
        .filter(audit=audit, encounter__public_id=key)
        .first()
    )


def correction_assignees(record: AuditedRecord) -> list:
    """Who a correction may go to: the record's attending, or an HIM person who reviews
    records at the facility."""
    people = list(users_with_permission(REVIEW, record.encounter.facility_id))
    attending = record.encounter.attending
    if attending is not None:
        people = [attending] + [p for p in people if p.pk != attending.pk]
    return people


def _scoring_refusal(user, audit: QualityAudit, record: AuditedRecord) -> str:
    if audit.status != QualityAuditStatus.OPEN:
        return "The audit is closed; its scores are final."
    if record.encounter.attending_id == user.pk:
        return "This is a record of your own care; another reviewer scores it."
    if record.reviewer_id and record.reviewer_id != user.pk:
        return f"This record is assigned to {record.reviewer.display_name}."
    return ""


def access_record_review(user, audit_id, encounter_id) -> RecordReview:
    """One record of an audit, to score it: the patient is opened through
    patients.access (facility, restriction, audited), then the record view is audited."""
    require_permission(
        user, REVIEW, purpose=PURPOSE, object_type=O_RECORD, object_id=str(encounter_id)[:64]
    )
    audit = _find_audit(audit_id)
    if audit is None or not _works_at(user, audit):
        _not_found(user, Action.VIEW, object_type=O_AUDIT, object_id=audit_id)
    record = _find_record(audit, encounter_id)
    if record is None:
        _not_found(user, Action.VIEW, object_type=O_RECORD, object_id=encounter_id)
    encounter = record.encounter
    patient = access_patient(
        user, encounter.patient.public_id, scope=Scope.CLINICAL, purpose=PURPOSE
    )
    record_event(
        user,
        Action.VIEW,
        purpose=PURPOSE,
        patient_id=patient.public_id,
        object_type=O_RECORD,
        object_id=str(encounter.public_id),
        detail={"audit": str(audit.public_id)},
    )
    mrn = (
        patient.identifiers.filter(
            kind=IdentifierKind.MRN, active=True, facility=encounter.facility
        )
        .values_list("value", flat=True)
        .first()
        or ""
    )
    why_not = _scoring_refusal(user, audit, record)
    return RecordReview(
        audit=audit,
        record=record,
        encounter=encounter,
        patient=patient,
        mrn=mrn,
        items=list(audit.checklist.items.order_by("position")),
        scores={s.item_id: s for s in record.scores.all()},
        corrections={c.item_id: c for c in record.corrections.all()},
        assignees=correction_assignees(record),
        may_score=not why_not,
        why_not=why_not,
    )


@dataclass(frozen=True)
class ScoreData:
    """The reviewer's finding on one checklist item (by its position)."""

    position: int
    result: str
    comment: str = ""
    assign_to: Any = None


def _check_scores(review_items: list[ChecklistItem], scores: list[ScoreData], allowed_assignees):
    errors: dict[str, list[str]] = {}
    by_position = {item.position: item for item in review_items}
    given: dict[int, ScoreData] = {}
    for data in scores:
        item = by_position.get(data.position)
        if item is None:
            errors.setdefault("__all__", []).append(
                f"There is no item {data.position} on this checklist."
            )
            continue
        key = f"item_{item.position}"
        if data.position in given:
            errors.setdefault(key, []).append(f"Item {item.position} is scored twice.")
        given[data.position] = data
        if data.result not in ItemResult.values:
            errors.setdefault(key, []).append(
                f"Item {item.position}: choose met, not met or not applicable."
            )
        comment = _clean(data.comment)
        if len(comment) > 300:
            errors.setdefault(key, []).append(
                f"Item {item.position}: the comment is longer than 300 characters."
            )
        if data.result == ItemResult.NOT_MET:
            if len(comment) < MIN_REASON:
                errors.setdefault(key, []).append(
                    f"Item {item.position} is not met: say what is wrong (at least 5 characters); "
                    "it becomes the correction's description."
                )
            if data.assign_to is not None and data.assign_to.pk not in allowed_assignees:
                errors.setdefault(key, []).append(
                    f"Item {item.position}: a correction goes to the attending or to an HIM reviewer "
                    "of this facility."
                )
    missing = [p for p in by_position if p not in given]
    if missing:
        errors.setdefault("__all__", []).append(
            "Score every item; not scored: " + ", ".join(str(p) for p in sorted(missing)) + "."
        )
    if not errors:
        applicable = [d for d in given.values() if d.result != ItemResult.NOT_APPLICABLE]
        if not applicable:
            errors.setdefault("__all__", []).append(
                "Every item is marked not applicable, so the record has no score; "
                "at least one item must apply."
            )
    if errors:
        raise ValidationError(errors)
    return given


def record_score(items: list[ChecklistItem], results: dict[int, str]) -> Decimal:
    """Weighted met ÷ weighted applicable × 100, two decimals, half up. ``results`` maps
    item pk to result."""
    met = sum(i.weight for i in items if results.get(i.pk) == ItemResult.MET)
    applicable = sum(
        i.weight for i in items if results.get(i.pk) in (ItemResult.MET, ItemResult.NOT_MET)
    )
    return _percent(met, applicable)


def do_score_record(
    record: AuditedRecord, *, scores: list[ScoreData], acting_user
) -> AuditedRecord:
    """Score one record on every checklist item. Each not-met item opens a correction
    assigned to the record's attending (or the chosen HIM person); scoring again updates
    the scores and the same corrections (an item now met closes its correction as
    corrected, one now not applicable closes it), never adding a second one."""
    encounter = record.encounter
    patient_id = encounter.patient.public_id
    require_permission(
        acting_user,
        REVIEW,
        action=Action.UPDATE,
        purpose=PURPOSE,
        patient_id=patient_id,
        object_type=O_RECORD,
        object_id=str(encounter.public_id),
    )
    audit = record.audit
    if encounter.facility_id not in facility_ids(acting_user):
        _deny(
            acting_user,
            Action.UPDATE,
            object_type=O_RECORD,
            object_id=encounter.public_id,
            patient_id=patient_id,
            reason="record of another facility",
        )
        raise Http404("Not found")
    refusal = _scoring_refusal(acting_user, audit, record)
    if refusal and audit.status == QualityAuditStatus.OPEN:
        _deny(
            acting_user,
            Action.UPDATE,
            object_type=O_RECORD,
            object_id=encounter.public_id,
            patient_id=patient_id,
            reason=refusal,
        )
        raise AccessDenied(refusal)
    if refusal:
        raise ValidationError({"__all__": [refusal]})
    items = list(audit.checklist.items.order_by("position"))
    allowed = {p.pk for p in correction_assignees(record)}
    given = _check_scores(items, list(scores), allowed)
    default_assignee = encounter.attending or acting_user
    with transaction.atomic():
        now = clock.now()
        locked = AuditedRecord.objects.select_for_update().get(pk=record.pk)
        if QualityAudit.objects.filter(pk=audit.pk, status=QualityAuditStatus.OPEN).count() == 0:
            raise ValidationError({"__all__": ["The audit is closed; its scores are final."]})
        rescore = locked.score is not None
        existing = {s.item_id: s for s in ItemScore.objects.filter(record=locked)}
        corrections = {c.item_id: c for c in Correction.objects.filter(record=locked)}
        tally = {"opened": 0, "updated": 0, "reopened": 0, "corrected": 0, "closed": 0}
        results: dict[int, str] = {}
        for item in items:
            data = given[item.position]
            comment = _clean(data.comment)
            results[item.pk] = data.result
            score = existing.get(item.pk)
            if score is None:
                ItemScore.objects.create(
                    record=locked, item=item, result=data.result, comment=comment
                )
            elif (score.result, score.comment) != (data.result, comment):
                ItemScore.objects.filter(pk=score.pk).update(result=data.result, comment=comment)
            _track_correction(
                locked,
                item,
                data,
                comment,
                corrections.get(item.pk),
                assignee=data.assign_to or default_assignee,
                acting_user=acting_user,
                now=now,
                tally=tally,
            )
        value = record_score(items, results)
        AuditedRecord.objects.filter(pk=locked.pk).update(
            score=value, reviewed_at=now, reviewer=locked.reviewer or acting_user
        )
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=PURPOSE,
            patient_id=patient_id,
            object_type=O_RECORD,
            object_id=str(encounter.public_id),
            detail={
                "event": "rescore" if rescore else "score",
                "audit": str(audit.public_id),
                "score": str(value),
                "not_met": sorted(i.position for i in items if results[i.pk] == ItemResult.NOT_MET),
                "corrections": {k: v for k, v in tally.items() if v},
            },
        )
    record.score, record.reviewed_at = value, now
    record.reviewer = record.reviewer or acting_user
    return record


def _track_correction(
    record, item, data, comment, correction, *, assignee, acting_user, now, tally
):
    if data.result == ItemResult.NOT_MET:
        if correction is None:
            Correction.objects.create(
                record=record,
                item=item,
                description=comment,
                assigned_to=assignee,
                status=CorrectionStatus.OPEN,
                opened_at=now,
            )
            tally["opened"] += 1
        elif correction.status == CorrectionStatus.OPEN:
            if (correction.description, correction.assigned_to_id) != (comment, assignee.pk):
                Correction.objects.filter(pk=correction.pk).update(
                    description=comment, assigned_to=assignee
                )
                tally["updated"] += 1
        else:
            # Found again after it was resolved: the same correction is open once more.
            Correction.objects.filter(pk=correction.pk).update(
                status=CorrectionStatus.OPEN,
                description=comment,
                assigned_to=assignee,
                resolved_at=None,
                resolved_by=None,
                resolution="",
            )
            tally["reopened"] += 1
        return
    if correction is not None and correction.status == CorrectionStatus.OPEN:
        met = data.result == ItemResult.MET
        Correction.objects.filter(pk=correction.pk).update(
            status=CorrectionStatus.CORRECTED if met else CorrectionStatus.CLOSED,
            resolved_at=now,
            resolved_by=acting_user,
            resolution=(
                "Re-scored as met." if met else "Re-scored as not applicable: no correction needed."
            ),
        )
        tally["corrected" if met else "closed"] += 1


# --- corrections ----------------------------------------------------------------------


class CorrectionState:
    OPEN = "open"
    OVERDUE = "overdue"
    RESOLVED = "resolved"
    ALL = "all"
    CHOICES = [
        (OPEN, "Open"),
        (OVERDUE, "Overdue"),
        (RESOLVED, "Resolved"),
        (ALL, "All"),
    ]


@dataclass
class CorrectionLine:
    correction: Correction
    due: dt.datetime
    overdue: bool


def _correction_query(user):
    corrections = Correction.objects.filter(
        record__encounter__facility_id__in=facility_ids(user)
    ).select_related(
        "item",
        "assigned_to",
        "resolved_by",
        "record__audit",
        "record__encounter",
        "record__encounter__attending",
    )
    if not has_permission(user, REVIEW):
        corrections = corrections.filter(assigned_to=user)
    return corrections


def list_corrections(user, *, state: str = CorrectionState.OPEN, audit: QualityAudit | None = None):
    """Corrections at the user's facilities (a clinician sees those assigned to them),
    oldest first. A correction is overdue when open past the completion limit of the
    bylaws (``correction_days``) from when it was opened."""
    _require_any(user, [REVIEW, CompletionPermission.COMPLETE_OWN], object_type=O_CORRECTION)
    corrections = _correction_query(user)
    if audit is not None:
        corrections = corrections.filter(record__audit=audit)
    now = clock.now()
    days = {pk: correction_days(pk) for pk in facility_ids(user)}
    if state in (CorrectionState.OPEN, CorrectionState.OVERDUE):
        corrections = corrections.filter(status=CorrectionStatus.OPEN)
    elif state == CorrectionState.RESOLVED:
        corrections = corrections.exclude(status=CorrectionStatus.OPEN)
    if state == CorrectionState.OVERDUE:
        late = Q(pk__in=[])
        for facility_pk, limit in days.items():
            late |= Q(
                record__encounter__facility_id=facility_pk,
                opened_at__lt=add_local_days(now, -limit),
            )
        corrections = corrections.filter(late)
    rows = list(
        corrections.annotate(patient_public_id=F("record__encounter__patient__public_id")).order_by(
            "opened_at", "pk"
        )[:500]
    )
    lines = []
    for correction in rows:
        limit = days.get(correction.record.encounter.facility_id) or correction_days(
            correction.record.encounter.facility_id
        )
        due = add_local_days(correction.opened_at, limit)
        lines.append(
            CorrectionLine(
                correction=correction,
                due=due,
                overdue=correction.status == CorrectionStatus.OPEN and due < now,
            )
        )
    record_event(
        user,
        Action.SEARCH,
        purpose=PURPOSE,
        object_type=O_CORRECTION,
        detail={
            "state": state,
            "count": len(lines),
            "shown": sorted({str(c.patient_public_id) for c in rows}),
        },
    )
    return lines


def access_correction(user, public_id) -> Correction:
    """A correction at the user's facilities, to resolve it."""
    require_permission(
        user,
        REVIEW,
        action=Action.UPDATE,
        purpose=PURPOSE,
        object_type=O_CORRECTION,
        object_id=str(public_id)[:64],
    )
    key = _uuid(public_id)
    correction = _correction_query(user).filter(public_id=key).first() if key else None
    if correction is None:
        _not_found(user, Action.UPDATE, object_type=O_CORRECTION, object_id=public_id)
    return correction


def do_resolve_correction(
    correction: Correction, *, status: str, resolution: str, acting_user
) -> Correction:
    """Resolve a correction: corrected (the record was fixed) or closed without
    correction (with why). A resolved correction is not resolved again."""
    encounter = correction.record.encounter
    patient_id = (
        Encounter.objects.filter(pk=encounter.pk)
        .values_list("patient__public_id", flat=True)
        .first()
    )
    require_permission(
        acting_user,
        REVIEW,
        action=Action.UPDATE,
        purpose=PURPOSE,
        patient_id=patient_id,
        object_type=O_CORRECTION,
        object_id=str(correction.public_id),
    )
    if encounter.facility_id not in facility_ids(acting_user):
        _deny(
            acting_user,
            Action.UPDATE,
            object_type=O_CORRECTION,
            object_id=correction.public_id,
            patient_id=patient_id,
            reason="correction of another facility",
        )
        raise Http404("Not found")
    resolution = _clean(resolution)
    errors: dict[str, list[str]] = {}
    if status not in (CorrectionStatus.CORRECTED, CorrectionStatus.CLOSED):
        errors["status"] = ["Choose corrected or closed without correction."]
    if len(resolution) < MIN_REASON:
        errors["resolution"] = [
            "Say how it was corrected, or why it is closed (at least 5 characters)."
        ]
    elif len(resolution) > 300:
        errors["resolution"] = ["The resolution is longer than 300 characters."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        now = clock.now()
        locked = Correction.objects.select_for_update().get(pk=correction.pk)
        if locked.status != CorrectionStatus.OPEN:
            raise ValidationError(
                {"__all__": [f"This correction is already {locked.get_status_display().lower()}."]}
            )
        Correction.objects.filter(pk=locked.pk).update(
            status=status, resolution=resolution, resolved_at=now, resolved_by=acting_user
        )
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=PURPOSE,
            patient_id=patient_id,
            object_type=O_CORRECTION,
            object_id=str(correction.public_id),
            detail={
                "event": "resolve",
                "status": status,
                "audit": str(correction.record.audit.public_id),
            },
        )
    correction.status, correction.resolution = status, resolution
    correction.resolved_at, correction.resolved_by = now, acting_user
    return correction
