"""Changing the completion rules and policy: every change is a new version row, with
who, when and why, audited, and followed by a re-analysis of the open records it may
affect.

- :func:`do_add_rule` starts a rule (a new ``code``; or a facility's own version of a
  default rule's code, which then overrides the default at that facility).
- :func:`do_change_rule` ends the current version the day before the change takes
  effect (``effective_to``) and starts a new version that ``supersedes`` it. A change
  effective the same day as the version it replaces makes that version inactive
  instead (it never applied).
- :func:`do_retire_rule` ends the current version on its last day and writes an
  inactive version after it, so the history says when and why the rule stopped.
- :func:`do_change_policy` writes a new :class:`CompletionPolicy` version.

Open deficiencies when a rule changes: a deficiency's key is built from the rule's
code, so a gap the new version still finds keeps its open deficiency (its rule and due
date move to the new version, with an "updated" event); a gap the new version no longer
finds is closed — *void* when the rule no longer applies to the encounter (retired,
class or facility no longer covered), *completed* when the new version's terms are met.

Which records are re-analysed (:func:`affected_encounters`): encounters admitted or
discharged on or after the change's effective date, at the facility concerned (all
facilities for a rule or policy of all), of the classes concerned, that are still open:
in progress, not analysed yet, incomplete, or with an open deficiency. A record already
complete is not reopened by a later rule change; ``recordroom completion analyse
--encounter`` applies the rules to it explicitly. The re-analysis runs as a background
task after the change commits.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from accounts.access import require_permission
from accounts.models import Facility
from audit.actions import record_event
from audit.models import Action, Purpose
from completion.models import (
    CompletionPolicy,
    CompletionRule,
    Deficiency,
    DeficiencyStatus,
    RecordCompletion,
    RecordStatus,
    RuleKind,
)
from completion.permissions import CompletionPermission
from completion.policy import DEFAULTS, day_start
from completion.rules import KINDS_WITH_DOCUMENT_TYPE, parameters_of, validate_parameters
from documents.models import DocumentType
from encounters.models import Encounter, EncounterClass, EncounterStatus
from recordroom import clock

_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{1,59}$")
_MARKUP = re.compile(r"[<>]")
CHANGEABLE = ("name", "description", "citation", "encounter_classes", "document_type", "parameters")


class RuleConflict(ValidationError):
    """The rule changed meanwhile, or the change would overlap a version."""


# --- validation ----------------------------------------------------------------------------


def _text(errors, key, value, *, label, max_length, required=True) -> str:
    text = " ".join(str(value or "").split())
    if required and not text:
        errors.setdefault(key, []).append(f"{label} is required.")
    elif len(text) > max_length:
        errors.setdefault(key, []).append(f"{label} is longer than {max_length} characters.")
    elif _MARKUP.search(text):
        errors.setdefault(key, []).append(f"{label} cannot contain markup (< or >).")
    return text


def _long_text(errors, key, value, *, label, max_length=2000) -> str:
    text = str(value or "").strip()
    if len(text) > max_length:
        errors.setdefault(key, []).append(f"{label} is longer than {max_length} characters.")
    elif _MARKUP.search(text):
        errors.setdefault(key, []).append(f"{label} cannot contain markup (< or >).")
    return text


def _classes(errors, value) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple, set)) or not value:
        errors.setdefault("encounter_classes", []).append(
            "Choose at least one encounter class the rule applies to."
        )
        return []
    unknown = [str(v) for v in value if v not in EncounterClass.values]
    if unknown:
        errors.setdefault("encounter_classes", []).append(
            f"Unknown encounter class: {', '.join(sorted(unknown))[:60]}."
        )
    return [c for c in EncounterClass.values if c in set(value)]


def _document_type(errors, kind, value):
    if value is None or value == "":
        if kind in KINDS_WITH_DOCUMENT_TYPE:
            errors.setdefault("document_type", []).append(
                "This kind of rule needs the document type it looks for."
            )
        return None
    if isinstance(value, str):
        found = DocumentType.objects.filter(loinc_code=value).first()
        if found is None:
            errors.setdefault("document_type", []).append(
                f"No document type with code {value[:12]}."
            )
        return found
    if not isinstance(value, DocumentType):
        errors.setdefault("document_type", []).append("Choose a document type.")
        return None
    return value


def _date(errors, key, value, *, label) -> dt.date | None:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        errors.setdefault(key, []).append(f"Give {label} as a date.")
        return None
    return value


def _reason(errors, value) -> str:
    text = _text(errors, "reason", value, label="The reason", max_length=300)
    if text and len(text) < 5:
        errors.setdefault("reason", []).append("Say why (at least 5 characters).")
    return text


def _parameters(errors, kind, value) -> dict:
    try:
        return validate_parameters(kind, value)
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            errors.setdefault(key, []).extend(messages)
        return {}


def _raise(errors) -> None:
    if errors:
        raise ValidationError(errors)


def _require(acting_user, action, object_id="") -> None:
    require_permission(
        acting_user,
        CompletionPermission.MANAGE_RULES,
        action=action,
        purpose=Purpose.OPERATIONS,
        object_type="completion_rule",
        object_id=str(object_id),
    )


def _audit(acting_user, action, rule: CompletionRule, *, reason: str, **detail) -> None:
    record_event(
        acting_user,
        action,
        purpose=Purpose.OPERATIONS,
        object_type="completion_rule",
        object_id=str(rule.public_id),
        reason=reason,
        detail={
            "code": rule.code,
            "kind": rule.kind,
            "facility": rule.facility.code if rule.facility_id else None,
            "effective_from": rule.effective_from.isoformat(),
            "active": rule.active,
            **detail,
        },
    )


# --- re-analysis ---------------------------------------------------------------------------


def affected_encounters(
    *, facility_id: int | None, since: dt.date, encounter_classes: list | None = None
):
    """The open records a change effective on ``since`` may affect (module docstring),
    oldest first, as an iterator."""
    start = day_start(since)
    open_deficiency = Deficiency.objects.filter(
        encounter=OuterRef("pk"), status=DeficiencyStatus.OPEN
    )
    complete = RecordCompletion.objects.filter(
        encounter=OuterRef("pk"), status=RecordStatus.COMPLETE
    )
    encounters = (
        Encounter.objects.filter(
            status__in=[EncounterStatus.IN_PROGRESS, EncounterStatus.FINISHED],
        )
        .filter(Q(started_at__gte=start) | Q(ended_at__gte=start))
        .filter(Q(Exists(open_deficiency)) | ~Q(Exists(complete)))
    )
    if facility_id is not None:
        encounters = encounters.filter(facility_id=facility_id)
    if encounter_classes:
        encounters = encounters.filter(encounter_class__in=list(encounter_classes))
    return encounters.order_by("started_at", "pk").iterator(chunk_size=500)


def _schedule_reanalysis(*, facility_id, since: dt.date, trigger: str, classes=None) -> None:
    def enqueue() -> None:
        from completion.tasks import reanalyse_open_records

        reanalyse_open_records.enqueue(
            facility_id=facility_id,
            since=since.isoformat(),
            trigger=trigger,
            encounter_classes=sorted(classes) if classes else None,
        )

    transaction.on_commit(enqueue)


# --- rules ---------------------------------------------------------------------------------


def do_add_rule(
    *,
    code: str,
    kind: str,
    name: str,
    encounter_classes,
    effective_from: dt.date,
    acting_user,
    reason: str,
    facility: Facility | None = None,
    document_type: DocumentType | str | None = None,
    parameters: dict | None = None,
    description: str = "",
    citation: str = "",
) -> CompletionRule:
    """Start a rule. ``code`` is new — or, with a ``facility``, the code of a rule for
    all facilities, which this one then overrides at that facility."""
    _require(acting_user, Action.CREATE)
    errors: dict[str, list[str]] = {}
    code = str(code or "").strip().lower()
    if not _CODE.match(code):
        errors.setdefault("code", []).append(
            "A code is 2 to 60 lower-case letters, digits and hyphens, e.g. hp-timely."
        )
    if kind not in RuleKind.values:
        errors.setdefault("kind", []).append("Choose what the rule checks.")
    name = _text(errors, "name", name, label="The name", max_length=200)
    description = _long_text(errors, "description", description, label="The description")
    citation = _text(
        errors, "citation", citation, label="The citation", max_length=120, required=False
    )
    classes = _classes(errors, encounter_classes)
    effective_from = _date(
        errors, "effective_from", effective_from, label="the first day it applies"
    )
    reason = _reason(errors, reason)
    if facility is not None and not isinstance(facility, Facility):
        errors.setdefault("facility", []).append("Choose a facility, or none for every facility.")
    doc_type, params = None, {}
    if kind in RuleKind.values:
        doc_type = _document_type(errors, kind, document_type)
        params = _parameters(errors, kind, parameters)
    _raise(errors)
    with transaction.atomic():
        same_code = CompletionRule.objects.select_for_update().filter(code=code)
        if same_code.exclude(kind=kind).exists():
            raise ValidationError(
                {"code": [f"The code {code} belongs to another kind of rule; choose another code."]}
            )
        if same_code.filter(facility=facility).exists():
            raise ValidationError(
                {"code": [f"A rule {code} already exists here; change it instead."]}
            )
        rule = CompletionRule.objects.create(
            code=code,
            kind=kind,
            name=name,
            description=description,
            citation=citation,
            encounter_classes=classes,
            facility=facility,
            document_type=doc_type,
            parameters=params,
            effective_from=effective_from,
            active=True,
            created_at=clock.now(),
            created_by=acting_user,
            change_reason=reason,
        )
        _audit(acting_user, Action.CREATE, rule, reason=reason, change="added")
        _schedule_reanalysis(
            facility_id=rule.facility_id,
            since=effective_from,
            trigger=f"rule {code} added",
            classes=classes,
        )
    return rule


def _current(rule: CompletionRule) -> CompletionRule:
    locked = (
        CompletionRule.objects.select_for_update(of=("self",))
        .select_related("facility", "document_type")
        .get(pk=rule.pk)
    )
    if locked.superseded_by.exists():
        raise RuleConflict(
            {"__all__": ["This version of the rule was already replaced; open the current one."]}
        )
    return locked


def _end(locked: CompletionRule, effective_from: dt.date) -> None:
    """End ``locked`` before a version starting on ``effective_from``."""
    if effective_from < locked.effective_from:
        raise RuleConflict(
            {
                "effective_from": [
                    f"The change cannot take effect before the version it replaces "
                    f"({locked.effective_from.isoformat()})."
                ]
            }
        )
    if locked.effective_to is not None and effective_from > locked.effective_to + dt.timedelta(
        days=1
    ):
        raise RuleConflict(
            {
                "effective_from": [
                    f"This version ended on {locked.effective_to.isoformat()}; a change "
                    "cannot start after it."
                ]
            }
        )
    if effective_from == locked.effective_from:
        locked.active = False  # replaced on its first day: it never applied
        locked.effective_to = effective_from
        locked.save(update_fields=["active", "effective_to"])
    else:
        locked.effective_to = effective_from - dt.timedelta(days=1)
        locked.save(update_fields=["effective_to"])


def do_change_rule(
    rule: CompletionRule,
    *,
    changes: dict,
    effective_from: dt.date,
    reason: str,
    acting_user,
) -> CompletionRule:
    """A new version of ``rule`` with ``changes`` (any of name, description, citation,
    encounter_classes, document_type, parameters), in force from ``effective_from``.
    The code, kind and facility stay: a different rule is added, not changed into."""
    _require(acting_user, Action.UPDATE, rule.public_id)
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(changes) - set(CHANGEABLE))
    if unknown:
        errors.setdefault("__all__", []).append(
            f"These cannot be changed: {', '.join(unknown)[:80]}. Add a new rule instead."
        )
    effective_from = _date(
        errors, "effective_from", effective_from, label="the first day it applies"
    )
    reason = _reason(errors, reason)
    values = {key: getattr(rule, key) for key in CHANGEABLE}
    values.update({k: v for k, v in changes.items() if k in CHANGEABLE})
    values["name"] = _text(errors, "name", values["name"], label="The name", max_length=200)
    values["description"] = _long_text(
        errors, "description", values["description"], label="The description"
    )
    values["citation"] = _text(
        errors, "citation", values["citation"], label="The citation", max_length=120, required=False
    )
    values["encounter_classes"] = _classes(errors, values["encounter_classes"])
    values["document_type"] = _document_type(errors, rule.kind, values["document_type"])
    values["parameters"] = _parameters(errors, rule.kind, values["parameters"])
    _raise(errors)
    before = {
        "name": rule.name,
        "description": rule.description,
        "citation": rule.citation,
        "encounter_classes": list(rule.encounter_classes),
        "document_type": rule.document_type_id,
        "parameters": parameters_of(rule),
    }
    after = {
        **values,
        "document_type": values["document_type"].pk if values["document_type"] else None,
    }
    changed = sorted(key for key in CHANGEABLE if after[key] != before[key])
    if not changed:
        raise ValidationError({"__all__": ["Nothing to change: the rule already says this."]})
    with transaction.atomic():
        locked = _current(rule)
        _end(locked, effective_from)
        new = CompletionRule.objects.create(
            code=locked.code,
            kind=locked.kind,
            facility=locked.facility,
            effective_from=effective_from,
            active=True,
            supersedes=locked,
            created_at=clock.now(),
            created_by=acting_user,
            change_reason=reason,
            **values,
        )
        _audit(
            acting_user,
            Action.UPDATE,
            new,
            reason=reason,
            change="changed",
            supersedes=str(locked.public_id),
            fields=changed,
        )
        _schedule_reanalysis(
            facility_id=new.facility_id,
            since=effective_from,
            trigger=f"rule {new.code} changed",
            classes=set(before["encounter_classes"]) | set(values["encounter_classes"]),
        )
    rule.effective_to, rule.active = locked.effective_to, locked.active
    return new


def do_retire_rule(
    rule: CompletionRule, *, last_day: dt.date, reason: str, acting_user
) -> CompletionRule:
    """Stop applying ``rule`` after ``last_day``: the current version ends that day and
    an inactive version follows it, with the reason. Returns the inactive version."""
    _require(acting_user, Action.UPDATE, rule.public_id)
    errors: dict[str, list[str]] = {}
    last_day = _date(errors, "last_day", last_day, label="the last day it applies")
    reason = _reason(errors, reason)
    _raise(errors)
    if not rule.active:
        raise RuleConflict({"__all__": ["This rule is already retired."]})
    with transaction.atomic():
        locked = _current(rule)
        if not locked.active:
            raise RuleConflict({"__all__": ["This rule is already retired."]})
        starts = last_day + dt.timedelta(days=1)
        if last_day < locked.effective_from - dt.timedelta(days=1):
            raise RuleConflict(
                {
                    "last_day": [
                        f"The rule's current version starts on {locked.effective_from.isoformat()}; "
                        "its last day cannot be before that."
                    ]
                }
            )
        if starts <= locked.effective_from:
            # Retired before the version began: it never applied.
            locked.active = False
            locked.effective_to = locked.effective_from
            locked.save(update_fields=["active", "effective_to"])
            starts = locked.effective_from
        else:
            locked.effective_to = last_day
            locked.save(update_fields=["effective_to"])
        retired = CompletionRule.objects.create(
            code=locked.code,
            kind=locked.kind,
            name=locked.name,
            description=locked.description,
            citation=locked.citation,
            encounter_classes=list(locked.encounter_classes),
            facility=locked.facility,
            document_type=locked.document_type,
            parameters=dict(locked.parameters),
            effective_from=starts,
            active=False,
            supersedes=locked,
            created_at=clock.now(),
            created_by=acting_user,
            change_reason=reason,
        )
        _audit(
            acting_user,
            Action.UPDATE,
            retired,
            reason=reason,
            change="retired",
            supersedes=str(locked.public_id),
            last_day=last_day.isoformat(),
        )
        _schedule_reanalysis(
            facility_id=retired.facility_id,
            since=starts,
            trigger=f"rule {retired.code} retired",
            classes=retired.encounter_classes,
        )
    rule.effective_to, rule.active = locked.effective_to, locked.active
    return retired


# --- policy ----------------------------------------------------------------------------------

_POLICY_LIMITS = {
    "completion_days": (1, 365, "Days to complete a record"),
    "verbal_order_hours": (1, 720, "Hours to authenticate a verbal order"),
    "suspension_days": (0, 365, "Days delinquent before suspension listing"),
}


def _whole(errors, key, value) -> int | None:
    low, high, label = _POLICY_LIMITS[key]
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(str(value).strip())
    except (TypeError, ValueError):
        errors.setdefault(key, []).append(f"{label} must be a whole number.")
        return None
    if not low <= number <= high:
        errors.setdefault(key, []).append(f"{label} must be between {low} and {high}.")
    return number


def do_change_policy(
    *,
    effective_from: dt.date,
    acting_user,
    reason: str,
    facility: Facility | None = None,
    completion_days=None,
    verbal_order_hours=None,
    delinquency_alert_percent=None,
    suspension_days=None,
    reminder_days=None,
) -> CompletionPolicy:
    """A new completion policy version for ``facility`` (None: all facilities) from
    ``effective_from``. A value not given is carried over from the policy in force."""
    require_permission(
        acting_user,
        CompletionPermission.MANAGE_RULES,
        action=Action.UPDATE,
        purpose=Purpose.OPERATIONS,
        object_type="completion_policy",
    )
    from completion.policy import policy_for

    errors: dict[str, list[str]] = {}
    effective_from = _date(
        errors, "effective_from", effective_from, label="the first day it applies"
    )
    reason = _reason(errors, reason)
    if facility is not None and not isinstance(facility, Facility):
        errors.setdefault("facility", []).append("Choose a facility, or none for every facility.")
    _raise(errors)
    base = policy_for(facility, effective_from)
    given = {
        "completion_days": completion_days,
        "verbal_order_hours": verbal_order_hours,
        "suspension_days": suspension_days,
    }
    values = {}
    for key, value in given.items():
        values[key] = getattr(base, key) if value is None else _whole(errors, key, value)
    percent = (
        base.delinquency_alert_percent
        if delinquency_alert_percent is None
        else delinquency_alert_percent
    )
    try:
        percent = Decimal(str(percent)).quantize(Decimal("0.01"))
        if not Decimal("0") < percent <= Decimal("1000"):
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        errors.setdefault("delinquency_alert_percent", []).append(
            "The alert threshold is a percentage above 0 and at most 1000."
        )
    values["delinquency_alert_percent"] = percent
    days = (
        list(base.reminder_days or DEFAULTS["reminder_days"])
        if reminder_days is None
        else reminder_days
    )
    if isinstance(days, str):
        days = [d for d in days.replace(" ", "").split(",") if d]
    try:
        days = sorted({int(d) for d in days}, reverse=True)
    except (TypeError, ValueError):
        errors.setdefault("reminder_days", []).append(
            "Reminder days are whole numbers, e.g. 7, 3, 1."
        )
        days = []
    limit = values.get("completion_days") or 0
    if any(d < 0 or (limit and d >= limit) for d in days):
        errors.setdefault("reminder_days", []).append(
            "Each reminder day is 0 or more and fewer than the days to complete a record."
        )
    values["reminder_days"] = days
    _raise(errors)
    with transaction.atomic():
        policy = CompletionPolicy.objects.create(
            facility=facility,
            effective_from=effective_from,
            created_at=clock.now(),
            created_by=acting_user,
            **values,
        )
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=Purpose.OPERATIONS,
            object_type="completion_policy",
            object_id=str(policy.pk),
            reason=reason,
            detail={
                "facility": facility.code if facility else None,
                "effective_from": effective_from.isoformat(),
                **{k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()},
            },
        )
        _schedule_reanalysis(
            facility_id=facility.pk if facility else None,
            since=effective_from,
            trigger="completion policy changed",
        )
    return policy
