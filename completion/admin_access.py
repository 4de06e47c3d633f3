"""Reads for the administrators' screens of chart completion: the completion rules with
their versions, and the completion policy of each facility.

Rules and policy are configuration, not patient data; reading them still needs
``completion.manage_rules`` (refusals audited). Facility-specific rules and policies
are shown and offered for the user's own facilities; versions for all facilities to
every holder of the permission.

A rule's *versions* are the rows sharing its ``code``: one line of versions for all
facilities, and one for each facility that has its own. A version is *in force* on a
day between its ``effective_from`` and its ``effective_to`` (inclusive), *scheduled*
before it starts, *ended* after.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from accounts.access import require_permission
from accounts.models import Facility
from audit.models import Purpose
from completion.models import CompletionPolicy, CompletionRule
from completion.permissions import CompletionPermission
from recordroom import clock

RULE_OBJECT = "completion.rule"
POLICY_OBJECT = "completion.policy"


def _require(user, object_type: str, object_id: str = "") -> None:
    require_permission(
        user,
        CompletionPermission.MANAGE_RULES,
        purpose=Purpose.OPERATIONS,
        object_type=object_type,
        object_id=object_id,
    )


def today() -> dt.date:
    return timezone.localdate(clock.now())


def state_of(version, on: dt.date) -> str:
    """``in_force``, ``scheduled`` or ``ended`` on ``on``."""
    if version.effective_from > on:
        return "scheduled"
    if version.effective_to is not None and version.effective_to < on:
        return "ended"
    return "in_force"


def my_facilities(user) -> list[Facility]:
    from patients.access import facility_ids

    return list(Facility.objects.filter(pk__in=facility_ids(user)).order_by("name"))


def _visible(user):
    from patients.access import facility_ids

    return CompletionRule.objects.filter(
        Q(facility__isnull=True) | Q(facility_id__in=facility_ids(user))
    ).select_related("facility", "document_type", "created_by")


@dataclass
class VersionRow:
    rule: CompletionRule
    state: str

    @property
    def scope(self) -> str:
        return self.rule.facility.name if self.rule.facility_id else "All facilities"


@dataclass
class RuleLine:
    """The versions of one rule code: what is in force now and what is scheduled."""

    code: str
    name: str
    kind_label: str
    versions: list[VersionRow] = field(default_factory=list)


def rule_overview(user, *, on: dt.date | None = None) -> list[RuleLine]:
    """Every rule code with its versions in force and scheduled on ``on`` (default
    today), all-facility versions before each facility's own; ended versions are left to
    a rule's history."""
    _require(user, RULE_OBJECT)
    on = on or today()
    lines: dict[str, RuleLine] = {}
    for rule in _visible(user).order_by("code", "facility__name", "effective_from", "pk"):
        state = state_of(rule, on)
        line = lines.setdefault(rule.code, RuleLine(rule.code, rule.name, rule.get_kind_display()))
        if state == "ended":
            continue
        line.versions.append(VersionRow(rule, state))
        if state == "in_force" and rule.facility_id is None:
            line.name = rule.name
    for line in lines.values():
        line.versions.sort(
            key=lambda v: (v.rule.facility_id is not None, v.scope, v.rule.effective_from)
        )
    return sorted(lines.values(), key=lambda line: line.name.lower())


@dataclass
class RuleDetail:
    rule: CompletionRule
    state: str
    parameters: list[tuple[str, str, str]]  # name, help, value as shown
    history: list[VersionRow]
    editable: bool
    retirable: bool


def _parameter_rows(rule: CompletionRule) -> list[tuple[str, str, object]]:
    from completion.rules import PARAMETERS, parameters_of

    specs = PARAMETERS.get(rule.kind, {})
    values = parameters_of(rule) if rule.kind in PARAMETERS else dict(rule.parameters or {})
    return [
        (name, specs[name].help if name in specs else "", _shown(values[name])) for name in values
    ]


def _shown(value) -> str:
    if value is None or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def access_rule(user, public_id) -> RuleDetail:
    """One rule version, its parameters and the history of its code (every version,
    newest first). Another facility's version answers 404, as an unknown one does."""
    _require(user, RULE_OBJECT, str(public_id))
    try:
        rule = _visible(user).get(public_id=public_id)
    except (CompletionRule.DoesNotExist, ValueError, TypeError):
        raise Http404("No such rule") from None
    on = today()
    history = [
        VersionRow(version, state_of(version, on))
        for version in _visible(user)
        .filter(code=rule.code)
        .order_by("facility__name", "-effective_from", "-pk")
    ]
    history.sort(key=lambda v: (v.rule.facility_id is not None, v.scope))
    current = not rule.superseded_by.exists()
    return RuleDetail(
        rule=rule,
        state=state_of(rule, on),
        parameters=_parameter_rows(rule),
        history=history,
        editable=current,
        retirable=current and rule.active,
    )


def form_choices(user) -> tuple[list[Facility], list]:
    """What a rule form offers: the user's facilities and the active document types."""
    from documents.access import document_types

    _require(user, RULE_OBJECT)
    return my_facilities(user), list(document_types())


def rule_initial(rule: CompletionRule) -> dict:
    """A rule version as the edit form starts from it."""
    from completion.rules import PARAMETERS, parameters_of

    return {
        "name": rule.name,
        "description": rule.description,
        "citation": rule.citation,
        "encounter_classes": list(rule.encounter_classes or []),
        "facility": str(rule.facility.public_id) if rule.facility_id else "",
        "document_type": rule.document_type.loinc_code if rule.document_type_id else "",
        "parameters": parameters_of(rule) if rule.kind in PARAMETERS else {},
    }


def facility_by_key(user, key: str) -> Facility | None:
    """One of the user's facilities by public id; None for all facilities (empty key);
    404 for anything else."""
    if not key:
        return None
    for facility in my_facilities(user):
        if str(facility.public_id) == str(key):
            return facility
    raise Http404("No such facility")


@dataclass
class PolicyScope:
    """The policy of one scope (all facilities, or one facility): in force today,
    scheduled versions, and the history."""

    facility: Facility | None
    in_force: CompletionPolicy
    inherited: bool
    scheduled: list[CompletionPolicy]
    history: list[CompletionPolicy]

    @property
    def name(self) -> str:
        return self.facility.name if self.facility else "All facilities"

    @property
    def key(self) -> str:
        return str(self.facility.public_id) if self.facility else "all"


def policy_overview(user, *, on: dt.date | None = None) -> list[PolicyScope]:
    """The policy for all facilities and for each of the user's facilities."""
    from completion.policy import policy_for

    _require(user, POLICY_OBJECT)
    on = on or today()
    scopes: list[PolicyScope] = []
    for facility in [None, *my_facilities(user)]:
        rows = list(
            CompletionPolicy.objects.filter(facility=facility)
            .select_related("created_by")
            .order_by("-effective_from", "-pk")
        )
        in_force = policy_for(facility, on)
        scopes.append(
            PolicyScope(
                facility=facility,
                in_force=in_force,
                inherited=(facility is not None and in_force.facility_id is None),
                scheduled=sorted(
                    (p for p in rows if p.effective_from > on), key=lambda p: p.effective_from
                ),
                history=[p for p in rows if p.effective_from <= on],
            )
        )
    return scopes


def policy_scope(user, key: str) -> Facility | None:
    """The facility a policy form is for: ``all`` (None) or one of the user's
    facilities by public id; anything else answers 404."""
    _require(user, POLICY_OBJECT, str(key)[:64])
    return facility_by_key(user, "" if key == "all" else key)
