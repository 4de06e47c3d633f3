"""Coder productivity and accuracy.

**Productivity** is the number of encounters each coder finalised per day: every
abstract version that made the abstract final (or rebilled) from a status that was not,
counted for the person who made that version, on the hospital's local calendar day.
A reopened and finalised-again abstract counts again (it was coded again).

**Accuracy** comes from second-level review sampling. A reviewer (``coding.review``)
draws a random sample of the abstracts each coder finalised in a period — the coding
policy's percentage (5 % by default), at least one per coder who finalised any — and
records for each how many codes were reviewed, how many the reviewer changed, whether
the MS-DRG changed, and the findings. A coder's accuracy over a period is

    code accuracy = 1 − codes changed ÷ codes reviewed
    DRG accuracy  = 1 − abstracts whose DRG changed ÷ abstracts reviewed

as percentages to one decimal. Nobody reviews their own coding; a review is recorded
once (append-only). The sample's seed is kept in the audit trail so a draw can be
explained.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import secrets
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BooleanField, Case, Count, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone

from audit.models import Action
from coding import work_access as wa
from coding.models import Abstract, AbstractStatus, AbstractVersion, CodingReview
from coding.permissions import CodingPermission as K
from patients.access import Scope, access_patient
from recordroom import clock

DONE = [AbstractStatus.FINAL, AbstractStatus.REBILLED]
MAX_DAYS = 366


def _day_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(dt.datetime.combine(start, dt.time()), tz),
        timezone.make_aware(dt.datetime.combine(end + dt.timedelta(days=1), dt.time()), tz),
    )


def check_period(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    """The period asked for (both days included); the last 14 days by default."""
    today = wa.local_date(clock.now())
    end = end or today
    start = start or end - dt.timedelta(days=13)
    if start > end:
        raise ValidationError({"start": "The period starts after it ends."})
    if (end - start).days >= MAX_DAYS:
        raise ValidationError({"start": f"Ask for at most {MAX_DAYS} days at a time."})
    return start, end


# --- productivity ---------------------------------------------------------------------------


def finalisations(facility_ids, start: dt.date, end: dt.date):
    """Versions that made an abstract final, in the period, at the facilities."""
    lo, hi = _day_bounds(start, end)
    previous = AbstractVersion.objects.filter(
        abstract=OuterRef("abstract"), number=OuterRef("number") - 1
    ).values("status")[:1]
    return (
        AbstractVersion.objects.filter(
            status__in=DONE,
            changed_at__gte=lo,
            changed_at__lt=hi,
            abstract__encounter__facility_id__in=facility_ids,
        )
        .annotate(previous=Subquery(previous))
        .annotate(
            entered=Case(
                When(previous__in=DONE, then=Value(False)),
                default=Value(True),
                output_field=BooleanField(),
            )
        )
        .filter(entered=True)
    )


@dataclass
class CoderRow:
    coder: object
    per_day: list[int]
    total: int

    @property
    def average(self) -> Decimal:
        days = len(self.per_day) or 1
        return (Decimal(self.total) / days).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass
class Productivity:
    start: dt.date
    end: dt.date
    days: list[dt.date]
    rows: list[CoderRow]
    per_day_total: list[int]
    total: int

    @property
    def max_day(self) -> int:
        return max([n for r in self.rows for n in r.per_day], default=0) or 1


def _productivity(user, start, end) -> Productivity:
    tz = timezone.get_current_timezone()
    counted = (
        finalisations(wa.user_facility_ids(user), start, end)
        .annotate(day=TruncDate("changed_at", tzinfo=tz))
        .values("changed_by", "day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    table: dict[int, list[int]] = {}
    for row in counted:
        day = row["day"]
        if isinstance(day, dt.datetime):
            day = day.date()
        if day not in index:
            continue
        table.setdefault(row["changed_by"], [0] * len(days))[index[day]] += row["n"]
    people = get_user_model().objects.in_bulk(list(table))
    rows = sorted(
        (CoderRow(people[pk], counts, sum(counts)) for pk, counts in table.items() if pk in people),
        key=lambda r: (-r.total, r.coder.last_name, r.coder.username),
    )
    per_day_total = [sum(r.per_day[i] for r in rows) for i in range(len(days))]
    return Productivity(start, end, days, rows, per_day_total, sum(per_day_total))


def productivity(user, *, start: dt.date | None = None, end: dt.date | None = None) -> Productivity:
    """Encounters finalised per coder per day (``coding.view_reports``); no patient is
    named, so the view is audited without patients."""
    wa.require(user, K.VIEW_REPORTS, "coding.productivity")
    start, end = check_period(start, end)
    result = _productivity(user, start, end)
    wa.audit(user, Action.VIEW, "coding.productivity", start=str(start), end=str(end))
    return result


def export_productivity(user, *, start=None, end=None) -> Productivity:
    wa.require(user, K.VIEW_REPORTS, "coding.productivity", action=Action.EXPORT)
    start, end = check_period(start, end)
    result = _productivity(user, start, end)
    wa.audit(
        user, Action.EXPORT, "coding.productivity", format="csv", start=str(start), end=str(end)
    )
    return result


# --- accuracy -------------------------------------------------------------------------------


def percent(part: int, whole: int) -> Decimal | None:
    """(1 − part ÷ whole) × 100 to one decimal; None when nothing was reviewed."""
    if not whole:
        return None
    value = (Decimal(1) - Decimal(part) / Decimal(whole)) * 100
    return value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class AccuracyRow:
    coder: object
    sampled: int
    reviewed: int
    codes_reviewed: int
    codes_changed: int
    drg_changed: int

    @property
    def code_accuracy(self) -> Decimal | None:
        return percent(self.codes_changed, self.codes_reviewed)

    @property
    def drg_accuracy(self) -> Decimal | None:
        return percent(self.drg_changed, self.reviewed)


def _accuracy(user, start, end) -> list[AccuracyRow]:
    lo, hi = _day_bounds(start, end)
    done = Q(reviewed_at__isnull=False)
    rows = (
        CodingReview.objects.filter(
            sampled_at__gte=lo,
            sampled_at__lt=hi,
            abstract__encounter__facility_id__in=wa.user_facility_ids(user),
        )
        .values("coder")
        .annotate(
            sampled=Count("pk"),
            reviewed=Count("pk", filter=done),
            codes_reviewed=Sum("codes_reviewed", filter=done, default=0),
            codes_changed=Sum("codes_changed", filter=done, default=0),
            drg_changed=Count("pk", filter=done & Q(drg_changed=True)),
        )
        .order_by()
    )
    people = get_user_model().objects.in_bulk([r["coder"] for r in rows])
    return sorted(
        (
            AccuracyRow(
                coder=people[r["coder"]],
                sampled=r["sampled"],
                reviewed=r["reviewed"],
                codes_reviewed=r["codes_reviewed"],
                codes_changed=r["codes_changed"],
                drg_changed=r["drg_changed"],
            )
            for r in rows
            if r["coder"] in people
        ),
        key=lambda r: (r.coder.last_name, r.coder.username),
    )


def accuracy(user, *, start=None, end=None) -> list[AccuracyRow]:
    """Per coder, over reviews sampled in the period: the sample, what was reviewed and
    the accuracy (``coding.view_reports``)."""
    wa.require(user, K.VIEW_REPORTS, "coding.accuracy")
    start, end = check_period(start, end)
    rows = _accuracy(user, start, end)
    wa.audit(user, Action.VIEW, "coding.accuracy", start=str(start), end=str(end))
    return rows


# --- the review sample -----------------------------------------------------------------------


@dataclass(frozen=True)
class SampleResult:
    drawn: list[CodingReview]
    eligible: dict  # coder pk -> how many abstracts could be drawn
    percent: Decimal
    seed: int


def sample_size(n: int, pct: Decimal) -> int:
    """``pct`` % of ``n``, rounded up, at least one when there is any."""
    if n <= 0:
        return 0
    return min(n, max(1, math.ceil(Decimal(n) * pct / 100)))


def do_draw_review_sample(
    user, *, start=None, end=None, percent_: Decimal | None = None, seed: int | None = None
) -> SampleResult:
    """Draw a random sample of the abstracts each coder finalised in the period and not
    sampled before (``coding.review``): the policy's percentage unless given."""
    wa.require(user, K.REVIEW, "coding.review", action=Action.CREATE)
    start, end = check_period(start, end)
    if percent_ is None:
        percent_ = Decimal(wa.policy_for(None).review_sample_percent)
    try:
        percent_ = Decimal(str(percent_))
    except ArithmeticError:
        raise ValidationError({"percent": "Give a percentage between 0 and 100."}) from None
    if not Decimal(0) < percent_ <= Decimal(100):
        raise ValidationError({"percent": "Give a percentage above 0 and at most 100."})
    seed = seed if seed is not None else secrets.randbelow(2**31)
    rng = random.Random(seed)
    lo, hi = _day_bounds(start, end)
    with transaction.atomic():
        abstracts = list(
            Abstract.objects.select_for_update()
            .filter(
                status__in=DONE,
                finalised_at__gte=lo,
                finalised_at__lt=hi,
                encounter__facility_id__in=wa.user_facility_ids(user),
            )
            .exclude(reviews__isnull=False)
            .order_by("pk")
        )
        by_coder: dict[int, list[Abstract]] = {}
        for abstract in abstracts:
            coder_id = abstract.finalised_by_id or abstract.coder_id
            if coder_id is not None:
                by_coder.setdefault(coder_id, []).append(abstract)
        now = clock.now()
        drawn = []
        for coder_id in sorted(by_coder):
            pool = by_coder[coder_id]
            for abstract in rng.sample(pool, sample_size(len(pool), percent_)):
                drawn.append(
                    CodingReview.objects.create(
                        abstract=abstract,
                        abstract_version=abstract.version,
                        coder_id=coder_id,
                        sampled_at=now,
                    )
                )
        wa.audit_list(
            user,
            "coding.review",
            [r.abstract.patient.public_id for r in drawn],
            action=Action.CREATE,
            start=str(start),
            end=str(end),
            percent=str(percent_),
            seed=seed,
            reviews=[str(r.public_id) for r in drawn],
        )
    return SampleResult(drawn, {k: len(v) for k, v in by_coder.items()}, percent_, seed)


def _find_review(user, public_id, *, action) -> CodingReview:
    key = wa.parse_uuid(public_id)
    review = (
        CodingReview.objects.select_related(
            "abstract", "abstract__encounter", "abstract__patient", "coder", "reviewer"
        )
        .filter(public_id=key, abstract__encounter__facility_id__in=wa.user_facility_ids(user))
        .first()
        if key
        else None
    )
    if review is None:
        wa.deny(user, "coding.review", public_id, "no such review for this user", action=action)
        raise Http404("No such review")
    return review


def do_record_review(
    user,
    public_id,
    *,
    codes_reviewed: int,
    codes_changed: int,
    drg_changed: bool,
    findings: str = "",
) -> CodingReview:
    """Record the outcome of one second-level review, once, by someone other than the
    coder."""
    wa.require(user, K.REVIEW, "coding.review", action=Action.UPDATE, object_id=public_id)
    review = _find_review(user, public_id, action=Action.UPDATE)
    if review.coder_id == user.pk:
        wa.deny(user, "coding.review", public_id, "own coding", action=Action.UPDATE)
        raise ValidationError("Nobody reviews their own coding; leave this one to a colleague.")
    findings = (findings or "").strip()
    errors: dict[str, list[str]] = {}
    if not isinstance(codes_reviewed, int) or codes_reviewed < 1:
        errors.setdefault("codes_reviewed", []).append("At least one code is reviewed.")
    if not isinstance(codes_changed, int) or codes_changed < 0:
        errors.setdefault("codes_changed", []).append("Codes changed cannot be negative.")
    elif isinstance(codes_reviewed, int) and codes_changed > codes_reviewed:
        errors.setdefault("codes_changed", []).append("More codes changed than were reviewed.")
    if (codes_changed or drg_changed) and not findings:
        errors.setdefault("findings", []).append("Say what was changed and why.")
    if len(findings) > 4000:
        errors.setdefault("findings", []).append("The findings are too long.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = CodingReview.objects.select_for_update().get(pk=review.pk)
        if locked.reviewed_at is not None:
            raise ValidationError("This review is already recorded.")
        locked.reviewer = user
        locked.reviewed_at = clock.now()
        locked.codes_reviewed = codes_reviewed
        locked.codes_changed = codes_changed
        locked.drg_changed = bool(drg_changed)
        locked.findings = findings
        locked.save(
            update_fields=[
                "reviewer",
                "reviewed_at",
                "codes_reviewed",
                "codes_changed",
                "drg_changed",
                "findings",
            ]
        )
        wa.audit(
            user,
            Action.UPDATE,
            "coding.review",
            object_id=locked.public_id,
            patient_id=review.abstract.patient.public_id,
            codes_reviewed=codes_reviewed,
            codes_changed=codes_changed,
            drg_changed=bool(drg_changed),
        )
    return locked


def review_list(user, *, pending: bool = True) -> list[CodingReview]:
    """Sampled reviews at the user's facilities: waiting, or recorded (newest first)."""
    wa.require(user, K.REVIEW, "coding.review")
    reviews = CodingReview.objects.select_related(
        "abstract", "abstract__patient", "abstract__encounter", "coder", "reviewer"
    ).filter(abstract__encounter__facility_id__in=wa.user_facility_ids(user))
    if pending:
        reviews = reviews.filter(reviewed_at__isnull=True).order_by("sampled_at", "pk")
    else:
        reviews = reviews.filter(reviewed_at__isnull=False).order_by("-reviewed_at", "-pk")
    rows = list(reviews[:500])
    wa.audit_list(
        user, "coding.review", [r.abstract.patient.public_id for r in rows], pending=pending
    )
    return rows


@dataclass
class ReviewDetail:
    review: CodingReview
    patient: object
    diagnoses: list
    procedures: list
    code_count: int
    may_record: bool


def access_review(user, public_id) -> ReviewDetail:
    """One sampled review with the abstract's codes (reviewers); the patient through
    the patient's door."""
    wa.require(user, K.REVIEW, "coding.review", object_id=public_id)
    review = _find_review(user, public_id, action=Action.VIEW)
    patient = access_patient(user, review.abstract.patient.public_id, scope=Scope.CLINICAL)
    wa.audit(
        user, Action.VIEW, "coding.review", object_id=review.public_id, patient_id=patient.public_id
    )
    diagnoses = list(review.abstract.diagnoses.order_by("sequence"))
    procedures = list(review.abstract.procedures.order_by("sequence"))
    return ReviewDetail(
        review=review,
        patient=patient,
        diagnoses=diagnoses,
        procedures=procedures,
        code_count=len(diagnoses) + len(procedures),
        may_record=review.reviewed_at is None and review.coder_id != user.pk,
    )
