"""The accounting of disclosures (45 CFR 164.528).

**What is accountable.** Every disclosure is kept (``roi.Disclosure``); the ones that
go into a patient's accounting are those made on an accountable basis
(:data:`BASES`). Not accounted (164.528(a)(1)): treatment, payment, health care
operations; to the patient; incidental; under the patient's authorization; the facility
directory and people involved in care; national security or intelligence; correctional
institutions and law enforcement custody; limited data sets. Everything else — public
health, health oversight, judicial and administrative proceedings, law enforcement,
abuse or neglect reports, decedents, organ donation, research without authorization,
serious threats, workers' compensation, other disclosures required by law — is
accounted. The release work records disclosures at release; this module records one by
hand (a public health report, say).

**Suspension** (164.528(a)(2)). A health oversight agency or law enforcement official
may ask that disclosures to them be left out of the accounting for a time: in writing,
for the time the statement gives; orally, for at most 30 days from the oral statement
(unless a written statement follows — record it as a new, written suspension). While
suspended an entry is left out of every accounting answered; it comes back the day
after ``suspended_until``.

**A patient's request** for an accounting covers the six years before the request (the
policy's ``accounting_years``), or a shorter period if asked. It is due the policy's
``accounting_due_days`` (60) after receipt, with one extension of
``accounting_extension_days`` (30), asked before the first due date, with a written
notice of the reason and the new date. The first accounting in any 12 months is free;
another request received within 12 months after an earlier one carries the policy's
fee (``RoiPolicy.parameters["accounting_fee"]``, none when not configured), shown when
it is logged so the patient may withdraw or narrow it (164.528(c)(2)).

**The answer** is a letter (kind ``accounting``) listing, oldest first, each
accountable disclosure in the period: the date, the recipient and their address, what
was disclosed and the purpose. Repeated disclosures to one recipient for one purpose
may be summarized (164.528(b)(3)): the first in full, then how many and the date of the
last.

Dates are the hospital's calendar days (``settings.TIME_ZONE``), "today" from
``recordroom.clock.now()``. Years back from 29 February land on 28 February, so the
period covered is never shorter than the years asked.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts.access import require_permission
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from patients.access import access_patient, default_purpose, facility_ids
from patients.models import IdentifierKind
from recordroom import clock
from roi.models import (
    AccountingRequest,
    DeadlineStatus,
    Disclosure,
    Letter,
    LetterKind,
    RequesterType,
    RoiPolicy,
)
from roi.permissions import RoiPermission as RP

DISCLOSURE = "roi.disclosure"
ACCOUNTING_REQUEST = "roi.accounting_request"
ORAL_SUSPENSION_DAYS = 30  # 164.528(a)(2)(ii)(C): the rule itself, not a policy
_MARKUP = re.compile(r"[<>]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# --- bases: what makes a disclosure accountable --------------------------------------

# (value, label, accountable)
_BASES = [
    ("public_health", "Public health activity (164.512(b))", True),
    ("abuse_neglect", "Report of abuse, neglect or domestic violence (164.512(c))", True),
    ("health_oversight", "Health oversight (164.512(d))", True),
    ("judicial", "Judicial or administrative proceeding (164.512(e))", True),
    ("law_enforcement", "Law enforcement (164.512(f))", True),
    ("decedent", "Coroner, medical examiner or funeral director (164.512(g))", True),
    ("organ_donation", "Organ, eye or tissue donation (164.512(h))", True),
    ("research_waiver", "Research without authorization (164.512(i))", True),
    ("serious_threat", "Serious threat to health or safety (164.512(j))", True),
    ("workers_comp", "Workers' compensation (164.512(l))", True),
    ("required_by_law", "Other disclosure required by law (164.512(a))", True),
    ("other", "Other disclosure without authorization", True),
    ("treatment", "Treatment", False),
    ("payment", "Payment", False),
    ("operations", "Health care operations", False),
    ("to_patient", "To the patient or personal representative", False),
    ("incidental", "Incidental to a permitted disclosure", False),
    ("authorized", "Under the patient's authorization", False),
    ("directory", "Facility directory or people involved in care", False),
    ("national_security", "National security or intelligence", False),
    ("correctional", "Correctional institution or custody", False),
    ("limited_data_set", "Limited data set", False),
]
BASES: dict[str, str] = {value: label for value, label, _ in _BASES}
ACCOUNTABLE_BASES = frozenset(value for value, _, accountable in _BASES if accountable)
BASIS_CHOICES = [(value, label) for value, label, _ in _BASES]


def is_accountable(basis: str) -> bool:
    """Whether a disclosure on this basis enters the 164.528 accounting."""
    if basis not in BASES:
        raise ValueError(f"unknown disclosure basis {basis!r}")
    return basis in ACCOUNTABLE_BASES


# --- dates and policy (shared with roi.amendments) -------------------------------------


def today() -> dt.date:
    """The hospital's calendar date now."""
    return timezone.localtime(clock.now()).date()


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` earlier; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def days_left(due: dt.date, on: dt.date | None = None) -> int:
    """Calendar days until ``due`` (negative once overdue)."""
    return (due - (on or today())).days


def facility_for(user, patient):
    """The facility whose policy governs: the patient's first facility among the user's
    (by id), or None (the policy for all facilities)."""
    from accounts.models import Facility

    keys = patient.identifiers.filter(
        kind=IdentifierKind.MRN, facility_id__in=facility_ids(user)
    ).values_list("facility_id", flat=True)
    return Facility.objects.filter(pk__in=keys).order_by("pk").first()


def policy_in_force(facility, on_date: dt.date) -> RoiPolicy:
    """The ROI policy for ``facility`` on ``on_date`` (:func:`roi.policy.policy_for`)."""
    from roi.policy import policy_for

    return policy_for(facility, on_date)


def accounting_fee(policy: RoiPolicy) -> Decimal:
    raw = (policy.parameters or {}).get("accounting_fee", "0")
    try:
        fee = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        return Decimal("0")
    return fee if fee > 0 else Decimal("0")


# --- validation helpers ------------------------------------------------------------------


def clean_text(errors: dict, key: str, value, *, label: str, max_length: int, required=True):
    text = _CONTROL.sub("", str(value or "")).strip()
    if required and not text:
        errors.setdefault(key, []).append(f"{label} is required.")
    elif len(text) > max_length:
        errors.setdefault(key, []).append(f"{label} is longer than {max_length} characters.")
    elif _MARKUP.search(text):
        errors.setdefault(key, []).append(f"{label} may not contain < or >.")
    return text


def clean_line(errors: dict, key: str, value, *, label: str, max_length: int, required=True):
    text = clean_text(
        errors,
        key,
        " ".join(str(value or "").split()),
        label=label,
        max_length=max_length,
        required=required,
    )
    return text


def raise_errors(errors: dict) -> None:
    if errors:
        raise ValidationError(errors)


def deny(user, action: str, *, object_type: str, object_id="", patient_id=None, reason: str):
    record_event(
        user,
        action,
        outcome=Outcome.DENIED,
        purpose=default_purpose(user),
        patient_id=patient_id,
        object_type=object_type,
        object_id=str(object_id)[:64],
        reason=reason,
    )


def patient_for(user, patient_public_id, permission: str, *, object_type: str, action: str):
    """Check ``permission`` (refusal audited), then open the patient through the patient
    door (facility and restriction, audited)."""
    require_permission(
        user,
        permission,
        action=action,
        purpose=default_purpose(user),
        object_type=object_type,
        object_id=str(patient_public_id)[:64],
    )
    return access_patient(user, patient_public_id)


def parse_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def audit_event(user, action: str, obj, object_type: str, *, purpose: str = "", **detail) -> None:
    record_event(
        user,
        action,
        purpose=purpose or default_purpose(user),
        patient_id=obj.patient.public_id,
        object_type=object_type,
        object_id=str(obj.public_id),
        detail=detail,
    )


# --- recording a disclosure by hand ------------------------------------------------------


def do_record_disclosure(
    patient_public_id,
    *,
    acting_user,
    disclosed_on: dt.date,
    recipient_name: str,
    recipient_address: str = "",
    description: str,
    purpose: str,
    basis: str,
    requester_type: str = "",
) -> Disclosure:
    """Record a disclosure made outside the release work (e.g. a report to the health
    department). ``basis`` decides whether it is accountable (:data:`BASES`)."""
    patient = patient_for(
        acting_user,
        patient_public_id,
        RP.RECORD_DISCLOSURE,
        object_type=DISCLOSURE,
        action=Action.CREATE,
    )
    errors: dict[str, list[str]] = {}
    now_day = today()
    if not isinstance(disclosed_on, dt.date):
        errors.setdefault("disclosed_on", []).append("Give the date of the disclosure.")
    elif disclosed_on > now_day:
        errors.setdefault("disclosed_on", []).append("The date of the disclosure is in the future.")
    elif disclosed_on < patient.birth_date:
        errors.setdefault("disclosed_on", []).append(
            "The date of the disclosure is before the patient's date of birth."
        )
    name = clean_line(
        errors, "recipient_name", recipient_name, label="The recipient", max_length=200
    )
    address = clean_text(
        errors,
        "recipient_address",
        recipient_address,
        label="The recipient's address",
        max_length=1000,
        required=False,
    )
    what = clean_text(
        errors, "description", description, label="What was disclosed", max_length=4000
    )
    why = clean_line(errors, "purpose", purpose, label="The purpose", max_length=300)
    if basis not in BASES:
        errors.setdefault("basis", []).append("Choose the basis of the disclosure.")
    if requester_type and requester_type not in RequesterType.values:
        errors.setdefault("requester_type", []).append("Unknown requester type.")
    raise_errors(errors)
    accountable = is_accountable(basis)
    with transaction.atomic():
        disclosure = Disclosure(
            patient=patient,
            disclosed_on=disclosed_on,
            recipient_name=name,
            recipient_address=address,
            description=what,
            purpose=why,
            basis=basis,
            requester_type=requester_type,
            accountable=accountable,
            entered_by=acting_user,
            entered_at=clock.now(),
        )
        disclosure.full_clean(exclude=["patient", "entered_by"])
        disclosure.save(force_insert=True)
        audit_event(
            acting_user,
            Action.CREATE,
            disclosure,
            DISCLOSURE,
            basis=basis,
            accountable=accountable,
            disclosed_on=disclosed_on.isoformat(),
            entered_by_hand=True,
        )
    return disclosure


def _disclosure_for_write(user, public_id, permission: str) -> Disclosure:
    require_permission(
        user,
        permission,
        action=Action.UPDATE,
        purpose=default_purpose(user),
        object_type=DISCLOSURE,
        object_id=str(public_id)[:64],
    )
    key = parse_uuid(public_id)
    disclosure = (
        Disclosure.objects.select_related("patient").filter(public_id=key).first() if key else None
    )
    if disclosure is None:
        deny(
            user,
            Action.UPDATE,
            object_type=DISCLOSURE,
            object_id=public_id,
            reason="no such disclosure",
        )
        raise Http404("No such disclosure")
    # The patient door: facility and restriction (refusals audited there).
    access_patient(user, disclosure.patient.public_id)
    return disclosure


def do_suspend_disclosure(
    public_id,
    *,
    acting_user,
    agency: str,
    until: dt.date,
    oral: bool,
    reason: str = "",
) -> Disclosure:
    """Leave an accountable disclosure out of the accounting until ``until`` (inclusive)
    at the request of a health oversight agency or law enforcement official. An oral
    request lasts at most 30 days from today; a written one as long as its statement
    says. A later call replaces the suspension (a written statement following an oral
    one)."""
    disclosure = _disclosure_for_write(acting_user, public_id, RP.RECORD_DISCLOSURE)
    errors: dict[str, list[str]] = {}
    agency = clean_line(errors, "agency", agency, label="The agency or official", max_length=200)
    reason = clean_line(
        errors, "reason", reason, label="The reason", max_length=300, required=False
    )
    now_day = today()
    if not disclosure.accountable:
        errors.setdefault("__all__", []).append(
            "This disclosure is not in the accounting, so there is nothing to suspend."
        )
    if not isinstance(until, dt.date):
        errors.setdefault("until", []).append("Give the date the suspension ends.")
    elif until < now_day:
        errors.setdefault("until", []).append("The suspension would already have ended.")
    elif oral and until > now_day + dt.timedelta(days=ORAL_SUSPENSION_DAYS):
        errors.setdefault("until", []).append(
            f"An oral request suspends for at most {ORAL_SUSPENSION_DAYS} days "
            f"(until {(now_day + dt.timedelta(days=ORAL_SUSPENSION_DAYS)).isoformat()}); "
            "a longer suspension needs the agency's written statement."
        )
    raise_errors(errors)
    with transaction.atomic():
        locked = Disclosure.objects.select_for_update().get(pk=disclosure.pk)
        before = locked.suspended_until.isoformat() if locked.suspended_until else None
        locked.suspended_until = until
        locked.suspension_agency = agency
        locked.suspension_oral = bool(oral)
        locked.suspension_reason = reason
        locked.save(
            update_fields=[
                "suspended_until",
                "suspension_agency",
                "suspension_oral",
                "suspension_reason",
            ]
        )
        locked.patient = disclosure.patient
        audit_event(
            acting_user,
            Action.UPDATE,
            locked,
            DISCLOSURE,
            suspended_until={"from": before, "to": until.isoformat()},
            oral=bool(oral),
        )
    return locked


# --- a patient's request for an accounting ---------------------------------------------


def accounting_window(received_on: dt.date, policy: RoiPolicy) -> dt.date:
    """The earliest date an accounting received on ``received_on`` may cover."""
    return years_before(received_on, policy.accounting_years)


def fee_for(patient, received_on: dt.date, policy: RoiPolicy, *, exclude_pk=None) -> Decimal:
    """Free when no other accounting request of the patient was received in the 12
    months before ``received_on`` (the same date a year earlier is outside them)."""
    since = years_before(received_on, 1)
    earlier = AccountingRequest.objects.filter(
        patient=patient, received_on__gt=since, received_on__lte=received_on
    )
    if exclude_pk is not None:
        earlier = earlier.exclude(pk=exclude_pk)
    return accounting_fee(policy) if earlier.exists() else Decimal("0")


def do_log_accounting_request(
    patient_public_id,
    *,
    acting_user,
    received_on: dt.date,
    period_from: dt.date | None = None,
    period_to: dt.date | None = None,
) -> AccountingRequest:
    """Log a patient's request for an accounting. Without a period it covers the
    policy's years (six) back from the date of receipt."""
    patient = patient_for(
        acting_user,
        patient_public_id,
        RP.VIEW_DISCLOSURES,
        object_type=ACCOUNTING_REQUEST,
        action=Action.CREATE,
    )
    errors: dict[str, list[str]] = {}
    now_day = today()
    if not isinstance(received_on, dt.date):
        raise ValidationError({"received_on": "Give the date the request was received."})
    if received_on > now_day:
        raise ValidationError({"received_on": "The date of receipt is in the future."})
    policy = policy_in_force(facility_for(acting_user, patient), received_on)
    earliest = accounting_window(received_on, policy)
    start = period_from or max(earliest, patient.birth_date)
    end = period_to or received_on
    if start < earliest:
        errors.setdefault("period_from", []).append(
            f"An accounting covers at most {policy.accounting_years} years: "
            f"from {earliest.isoformat()} at the earliest."
        )
    if end > received_on:
        errors.setdefault("period_to", []).append(
            "The period cannot end after the request was received."
        )
    if start > end:
        errors.setdefault("period_from", []).append("The period starts after it ends.")
    raise_errors(errors)
    due_on = received_on + dt.timedelta(days=policy.accounting_due_days)
    with transaction.atomic():
        fee = fee_for(patient, received_on, policy)
        request = AccountingRequest(
            patient=patient,
            received_on=received_on,
            period_from=start,
            period_to=end,
            due_on=due_on,
            fee=fee,
            logged_by=acting_user,
            created_at=clock.now(),
        )
        request.full_clean(exclude=["patient", "logged_by"])
        request.save(force_insert=True)
        audit_event(
            acting_user,
            Action.CREATE,
            request,
            ACCOUNTING_REQUEST,
            purpose=Purpose.PATIENT_REQUEST,
            received_on=received_on.isoformat(),
            period=[start.isoformat(), end.isoformat()],
            due_on=due_on.isoformat(),
            fee=str(fee),
        )
    return request


def _request_for_write(user, public_id) -> AccountingRequest:
    require_permission(
        user,
        RP.VIEW_DISCLOSURES,
        action=Action.UPDATE,
        purpose=default_purpose(user),
        object_type=ACCOUNTING_REQUEST,
        object_id=str(public_id)[:64],
    )
    key = parse_uuid(public_id)
    request = (
        AccountingRequest.objects.select_related("patient").filter(public_id=key).first()
        if key
        else None
    )
    if request is None:
        deny(
            user,
            Action.UPDATE,
            object_type=ACCOUNTING_REQUEST,
            object_id=public_id,
            reason="no such accounting request",
        )
        raise Http404("No such accounting request")
    access_patient(user, request.patient.public_id)
    return request


def current_due(request) -> dt.date:
    return request.extended_due_on or request.due_on


def issue_letter(kind: str, patient, body: str, by, **links) -> Letter:
    """A letter through ``roi.letters.issue_letter`` (PDF and text) where it exists;
    otherwise the text alone is kept."""
    try:
        from roi.letters import issue_letter as issue
    except ImportError:
        issue = None
    if issue is not None:
        return issue(kind, patient, body, by, **links)
    letter = Letter(
        kind=kind, patient=patient, body=body, created_at=clock.now(), created_by=by, **links
    )
    letter.save(force_insert=True)
    return letter


def do_extend_accounting_request(public_id, *, acting_user, reason: str) -> AccountingRequest:
    """The one extension: asked before the first due date, with the reason; the written
    notice (a letter) gives the reason and the new date."""
    request = _request_for_write(acting_user, public_id)
    errors: dict[str, list[str]] = {}
    reason = clean_line(errors, "reason", reason, label="The reason", max_length=300)
    if reason and len(reason) < 5:
        errors.setdefault("reason", []).append("The reason needs at least 5 characters.")
    raise_errors(errors)
    with transaction.atomic():
        locked = AccountingRequest.objects.select_for_update().get(pk=request.pk)
        locked.patient = request.patient
        if locked.status == DeadlineStatus.ANSWERED:
            raise ValidationError("This accounting was already answered.")
        if locked.extended_due_on is not None:
            raise ValidationError("The deadline was already extended once; only one is allowed.")
        if today() > locked.due_on:
            raise ValidationError(
                "The extension must be given before the first due date "
                f"({locked.due_on.isoformat()}), which has passed."
            )
        policy = policy_in_force(facility_for(acting_user, locked.patient), locked.received_on)
        new_due = locked.due_on + dt.timedelta(days=policy.accounting_extension_days)
        locked.extended_due_on = new_due
        locked.extension_reason = reason
        locked.status = DeadlineStatus.EXTENDED
        locked.save(update_fields=["extended_due_on", "extension_reason", "status"])
        body = (
            "Your request for an accounting of disclosures\n\n"
            f"We received your request on {locked.received_on.isoformat()}. We need more "
            f"time to answer it, because: {reason}\n\n"
            f"You will have our answer by {new_due.isoformat()}."
        )
        letter = issue_letter(
            LetterKind.EXTENSION, locked.patient, body, acting_user, accounting_request=locked
        )
        audit_event(
            acting_user,
            Action.UPDATE,
            locked,
            ACCOUNTING_REQUEST,
            purpose=Purpose.PATIENT_REQUEST,
            extended_due_on=new_due.isoformat(),
            letter=str(letter.public_id),
        )
    return locked


# --- the report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountingEntry:
    """One line of an accounting: a disclosure in full, or (``count`` > 1) the first of
    repeated disclosures to one recipient for one purpose, with how many and the last."""

    disclosed_on: dt.date
    recipient_name: str
    recipient_address: str
    description: str
    purpose: str
    count: int = 1
    last_on: dt.date | None = None
    public_id: str = ""


def accountable_disclosures(patient, period_from: dt.date, period_to: dt.date, *, on=None):
    """The accountable disclosures of the period not suspended on ``on`` (today),
    oldest first."""
    on = on or today()
    from django.db.models import Q

    return (
        Disclosure.objects.filter(
            patient=patient,
            accountable=True,
            disclosed_on__gte=period_from,
            disclosed_on__lte=period_to,
        )
        .filter(Q(suspended_until__isnull=True) | Q(suspended_until__lt=on))
        .order_by("disclosed_on", "pk")
    )


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def accounting_entries(disclosures, *, summarize: bool = True) -> list[AccountingEntry]:
    """Entries for the report. With ``summarize``, repeated disclosures to one
    recipient for one purpose become one entry: the first in full, then the count and
    the date of the last."""
    groups: dict[tuple[str, str], list] = {}
    order: list[tuple[str, str]] = []
    entries: list[AccountingEntry] = []
    for d in disclosures:
        if not summarize:
            entries.append(_entry(d))
            continue
        key = (_key(d.recipient_name), _key(d.purpose))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(d)
    if not summarize:
        return entries
    for key in order:
        rows = groups[key]
        first = _entry(rows[0])
        if len(rows) > 1:
            first = AccountingEntry(
                **{**first.__dict__, "count": len(rows), "last_on": rows[-1].disclosed_on}
            )
        entries.append(first)
    return sorted(entries, key=lambda e: e.disclosed_on)


def _entry(d: Disclosure) -> AccountingEntry:
    return AccountingEntry(
        disclosed_on=d.disclosed_on,
        recipient_name=d.recipient_name,
        recipient_address=d.recipient_address,
        description=d.description,
        purpose=d.purpose,
        public_id=str(d.public_id),
    )


def report_text(request: AccountingRequest, entries: list[AccountingEntry]) -> str:
    lines = [
        "Accounting of disclosures (45 CFR 164.528)",
        "",
        f"Request received: {request.received_on.isoformat()}",
        f"Period covered: {request.period_from.isoformat()} to {request.period_to.isoformat()}",
        "",
    ]
    if not entries:
        lines.append(
            "We made no disclosures of your health information in this period that must "
            "be listed in an accounting."
        )
    for number, e in enumerate(entries, 1):
        lines.append(f"{number}. Date: {e.disclosed_on.isoformat()}")
        recipient = e.recipient_name
        if e.recipient_address:
            recipient += ", " + " ".join(e.recipient_address.split())
        lines.append(f"   Recipient: {recipient}")
        lines.append(f"   What was disclosed: {e.description}")
        lines.append(f"   Purpose: {e.purpose}")
        if e.count > 1:
            lines.append(
                f"   Repeated: {e.count} disclosures to this recipient for this purpose "
                f"during the period; the last on {e.last_on.isoformat()}."
            )
        lines.append("")
    lines.append(
        "Disclosures for treatment, payment and health care operations, to you, under "
        "your authorization, and the others the regulation exempts are not listed."
    )
    if request.fee:
        lines.append(f"Fee for this accounting: ${request.fee}")
    else:
        lines.append("There is no fee for this accounting.")
    return "\n".join(lines)


def do_answer_accounting_request(
    public_id, *, acting_user, summarize: bool = True
) -> tuple[AccountingRequest, Letter]:
    """Answer with the report letter (kind ``accounting``); the request is answered."""
    request = _request_for_write(acting_user, public_id)
    with transaction.atomic():
        locked = AccountingRequest.objects.select_for_update().get(pk=request.pk)
        locked.patient = request.patient
        if locked.status == DeadlineStatus.ANSWERED:
            raise ValidationError("This accounting was already answered.")
        entries = accounting_entries(
            accountable_disclosures(locked.patient, locked.period_from, locked.period_to),
            summarize=summarize,
        )
        letter = issue_letter(
            LetterKind.ACCOUNTING,
            locked.patient,
            report_text(locked, entries),
            acting_user,
            accounting_request=locked,
        )
        now = clock.now()
        locked.status = DeadlineStatus.ANSWERED
        locked.answered_at = now
        locked.save(update_fields=["status", "answered_at"])
        audit_event(
            acting_user,
            Action.DISCLOSE,
            locked,
            ACCOUNTING_REQUEST,
            purpose=Purpose.PATIENT_REQUEST,
            entries=len(entries),
            letter=str(letter.public_id),
            late=today() > current_due(locked),
        )
    return locked, letter
