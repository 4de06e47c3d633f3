"""Analysing an encounter's record against the completion rules.

:func:`analyse_encounter` evaluates the rules that apply (``completion.rules``),
turns each gap into a :class:`~completion.models.Deficiency`, closes the deficiencies
whose gap is gone, and updates the record's :class:`~completion.models.RecordCompletion`.
It runs at discharge, whenever a document or a diagnosis/procedure of the encounter
changes, and when a rule or the policy changes (``completion.hooks``,
``completion.rule_actions``), and from ``recordroom completion analyse``.

What it promises:

- **Idempotent.** A gap is identified by its key; an open deficiency with the key is
  left as it is (its due date and rule follow a changed rule version, with an event).
  Running twice opens nothing twice; the database's "one open deficiency per key"
  constraint backs this up against two analyses at once (the encounter row is locked
  for the run as well).
- **Closing.** An open deficiency whose gap is gone is *completed* ("signed by its
  author", "now in the record") — or *void* when its rule no longer applies to the
  encounter (the rule changed or was retired, the encounter was cancelled, its
  discharge was cancelled, the document was entered in error). Each gets a
  :class:`~completion.models.DeficiencyEvent`.
- **Hands off.** Deficiencies an analyst added by hand (``rule`` empty) are never
  touched; a waived key stays waived — the same gap found again is not reopened. A
  gap found again after its deficiency was completed opens a new deficiency.
- **Late** gaps are recorded and closed at once ("recorded late"): informational, for
  the statistics; they never keep a record incomplete, and each is recorded once.
- **Before discharge** a gap becomes a deficiency only once it is due (an H&P 24 h
  after admission, a draft unsigned 24 h after it was written, a verbal order past
  its limit); a gap not due yet leaves an open deficiency as it is. A discharged
  encounter is analysed fully: every gap is a deficiency, with the date it becomes due.
- **Responsible**: the document's author for unsigned and incomplete documents, the
  attending for missing ones. A clinician who has left the staff (inactive account)
  stays responsible — reassignment is an analyst's decision — and the analysis says so
  (``AnalysisResult.inactive_responsible`` and the "opened" event's reason).
- **Record status**: incomplete while any deficiency is open; complete when a
  discharged encounter has none (``completed_at`` set; cleared when one is reopened);
  ``due_at`` (= each deficiency's ``delinquent_at``) is discharge + the completion days
  of the policy in force on the discharge date (``completion.policy``).
- **Audited**: one audit event per run, with the counts and ids only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q

from audit.actions import record_event
from audit.models import Action, Purpose
from completion.models import (
    Deficiency,
    DeficiencyEvent,
    DeficiencyKind,
    DeficiencyStatus,
    RecordCompletion,
    RecordStatus,
    RuleKind,
)
from completion.policy import delinquent_at, policy_for_encounter
from completion.rules import Gap, applicable_rules, build_context, evaluate, parameters_of
from documents.models import DocumentStatus
from encounters.models import Encounter, EncounterStatus
from recordroom import clock

OPEN = DeficiencyStatus.OPEN
RECORDED_LATE = "recorded late"
_CLOSE_REASONS = {
    DeficiencyKind.UNSIGNED: "signed by its author",
    DeficiencyKind.INCOMPLETE: "the document was completed",
    DeficiencyKind.MISSING: "now in the record",
}


@dataclass
class AnalysisResult:
    """What one analysis did to an encounter's deficiencies."""

    encounter_id: str
    opened: int = 0
    closed: int = 0
    voided: int = 0
    late: int = 0
    unchanged: int = 0
    status: str = RecordStatus.NOT_ANALYSED
    open_count: int = 0
    inactive_responsible: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "encounter": self.encounter_id,
            "opened": self.opened,
            "closed": self.closed,
            "voided": self.voided,
            "late": self.late,
            "unchanged": self.unchanged,
            "status": str(self.status),
            "open_count": self.open_count,
            "inactive_responsible": list(self.inactive_responsible),
        }


def _event(deficiency, event: str, now, *, by=None, reason: str = "", to_user=None) -> None:
    DeficiencyEvent.objects.create(
        deficiency=deficiency, event=event, at=now, by=by, to_user=to_user, reason=reason[:300]
    )


def _open(gap: Gap, encounter, now, delinquent, result: AnalysisResult) -> Deficiency:
    late = gap.kind == DeficiencyKind.LATE
    deficiency = Deficiency.objects.create(
        encounter=encounter,
        patient_id=encounter.patient_id,
        rule=gap.rule,
        kind=gap.kind,
        document=gap.document,
        document_type=gap.document_type,
        key=gap.key[:200],
        description=gap.description[:300],
        responsible=gap.responsible,
        status=DeficiencyStatus.COMPLETED if late else OPEN,
        due_at=gap.due_at,
        delinquent_at=None if late else delinquent,
        opened_at=now,
        closed_at=now if late else None,
        close_reason=RECORDED_LATE if late else "",
    )
    reason = f"{gap.rule.code} (rule version {gap.rule.public_id})"
    if gap.responsible is not None and not gap.responsible.is_active:
        reason += "; the responsible clinician has left the staff: reassign"
        if not late:
            result.inactive_responsible.append(str(deficiency.public_id))
    _event(deficiency, "opened", now, reason=reason, to_user=gap.responsible)
    if late:
        _event(deficiency, "completed", now, reason=RECORDED_LATE)
        result.late += 1
    else:
        result.opened += 1
    return deficiency


def _follow(deficiency: Deficiency, gap: Gap, now, delinquent) -> None:
    """An open deficiency still found: follow a new rule version's due date."""
    changes = []
    if deficiency.rule_id != gap.rule.pk:
        changes.append(f"rule {gap.rule.code} changed (version {gap.rule.public_id})")
        deficiency.rule = gap.rule
    if deficiency.due_at != gap.due_at:
        changes.append(f"due {deficiency.due_at.isoformat()} → {gap.due_at.isoformat()}")
        deficiency.due_at = gap.due_at
    if deficiency.description != gap.description[:300]:
        changes.append(gap.description[:120])
        deficiency.description = gap.description[:300]
    if changes:
        _event(deficiency, "updated", now, reason="; ".join(changes))
    if changes or deficiency.delinquent_at != delinquent:
        deficiency.delinquent_at = delinquent
        deficiency.save(update_fields=["rule", "due_at", "delinquent_at", "description"])


def _close(deficiency: Deficiency, *, status: str, reason: str, now) -> None:
    deficiency.status = status
    deficiency.closed_at = now
    deficiency.close_reason = reason[:300]
    deficiency.save(update_fields=["status", "closed_at", "close_reason"])
    event = "completed" if status == DeficiencyStatus.COMPLETED else "void"
    _event(deficiency, event, now, reason=reason)


def _asks_at_discharge(rule) -> bool:
    if rule.kind in (RuleKind.DISCHARGE_SUMMARY, RuleKind.FINAL_DIAGNOSIS):
        return True
    return rule.kind == RuleKind.REQUIRED_DOCUMENT and parameters_of(rule)["anchor"] == "discharge"


def _why_void(deficiency: Deficiency, encounter, applicable_codes: set[str]) -> str:
    """Why a gap that is gone no longer applies, or "" when it was resolved."""
    if encounter.status in (EncounterStatus.CANCELLED, EncounterStatus.ENTERED_IN_ERROR):
        return f"the encounter is {encounter.get_status_display().lower()}"
    if deficiency.rule.code not in applicable_codes:
        return f"rule {deficiency.rule.code} no longer applies to this encounter"
    if encounter.status != EncounterStatus.FINISHED and _asks_at_discharge(deficiency.rule):
        return "the encounter is no longer discharged"
    if deficiency.document_id and deficiency.document.status == DocumentStatus.ENTERED_IN_ERROR:
        return "the document was entered in error"
    return ""


def record_status(encounter, open_count: int) -> str:
    if open_count:
        return RecordStatus.INCOMPLETE
    if encounter.status == EncounterStatus.FINISHED:
        return RecordStatus.COMPLETE
    return RecordStatus.NOT_ANALYSED


def _completed_at(encounter, discharged: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """When the record became complete: when its last deficiency closed, or at discharge
    for a record that never lacked anything (a backlog or an import analysed later must
    not look as if it was completed, late, on the day of the analysis)."""
    last_closed = (
        Deficiency.objects.filter(encounter=encounter)
        .exclude(status=OPEN)
        .exclude(kind=DeficiencyKind.LATE)  # recorded for statistics, never outstanding
        .aggregate(last=Max("closed_at"))["last"]
    )
    moments = [m for m in (last_closed, discharged) if m is not None]
    return min(now, max(moments)) if moments else now


def refresh_record(encounter, *, now: dt.datetime | None = None, analysed: bool = False):
    """Bring the encounter's :class:`RecordCompletion` up to date with its open
    deficiencies (every kind, those added by hand included). Call it after adding,
    reassigning, waiving or reopening a deficiency, inside the same transaction."""
    now = now or clock.now()
    record, _ = RecordCompletion.objects.select_for_update().get_or_create(encounter=encounter)
    open_count = Deficiency.objects.filter(encounter=encounter, status=OPEN).count()
    status = record_status(encounter, open_count)
    discharged = encounter.ended_at if encounter.status == EncounterStatus.FINISHED else None
    record.open_count = open_count
    record.discharged_at = discharged
    record.due_at = (
        delinquent_at(discharged, policy_for_encounter(encounter)) if discharged else None
    )
    if status == RecordStatus.COMPLETE and record.status != RecordStatus.COMPLETE:
        record.completed_at = _completed_at(encounter, discharged, now)
    elif status != RecordStatus.COMPLETE:
        record.completed_at = None
    record.status = status
    if analysed:
        record.analysed_at = now
    record.save()
    return record


def analyse_encounter(
    encounter: Encounter,
    *,
    now: dt.datetime | None = None,
    acting_user=None,
    trigger: str = "manual",
) -> AnalysisResult:
    """Analyse one encounter's record (see the module docstring) and return what
    changed. ``acting_user`` is who asked (None: the system, e.g. at discharge);
    ``trigger`` names why, for the audit trail."""
    now = now or clock.now()
    with transaction.atomic():
        locked = (
            Encounter.objects.select_for_update(of=("self",))
            .select_related("patient", "facility", "attending")
            .get(pk=encounter.pk)
        )
        result = AnalysisResult(encounter_id=str(locked.public_id))
        rules = applicable_rules(locked)
        ctx = build_context(locked, now)
        gaps = evaluate(rules, ctx)
        discharged = ctx.discharged
        due_now = [g for g in gaps if discharged or g.due_at <= now]
        pending = {g.key for g in gaps} - {g.key for g in due_now}
        delinquent = (
            delinquent_at(locked.ended_at, policy_for_encounter(locked)) if discharged else None
        )

        existing = list(
            Deficiency.objects.select_for_update(of=("self",))
            .filter(encounter=locked, rule__isnull=False)
            .select_related("rule", "document")
            .order_by("pk")
        )
        open_by_key = {d.key: d for d in existing if d.status == OPEN}
        waived = {d.key for d in existing if d.status == DeficiencyStatus.WAIVED}
        ever = {d.key for d in existing}

        for gap in due_now:
            if gap.kind == DeficiencyKind.LATE:
                if gap.key in ever:
                    result.unchanged += 1
                else:
                    _open(gap, locked, now, delinquent, result)
            elif gap.key in open_by_key:
                _follow(open_by_key[gap.key], gap, now, delinquent)
                result.unchanged += 1
            elif gap.key in waived:
                result.unchanged += 1
            else:
                _open(gap, locked, now, delinquent, result)

        found = {g.key for g in due_now} | pending
        codes = {rule.code for rule in rules}
        for key, deficiency in open_by_key.items():
            if key in found:
                continue
            void_reason = _why_void(deficiency, locked, codes)
            if void_reason:
                _close(deficiency, status=DeficiencyStatus.VOID, reason=void_reason, now=now)
                result.voided += 1
            else:
                reason = _CLOSE_REASONS.get(deficiency.kind, "the gap is resolved")
                _close(deficiency, status=DeficiencyStatus.COMPLETED, reason=reason, now=now)
                result.closed += 1

        record = refresh_record(locked, now=now, analysed=True)
        result.status, result.open_count = record.status, record.open_count
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=Purpose.OPERATIONS,
            patient_id=locked.patient.public_id,
            object_type="encounter",
            object_id=str(locked.public_id),
            detail={
                "event": "completion_analysis",
                "trigger": trigger[:40],
                "rules": sorted(codes),
                **{k: v for k, v in result.as_dict().items() if k != "encounter"},
            },
        )
    return result


def open_records():
    """Encounters whose record is still open: in progress or discharged, and not
    complete or with an open deficiency."""
    complete = RecordCompletion.objects.filter(
        encounter=OuterRef("pk"), status=RecordStatus.COMPLETE
    )
    open_deficiency = Deficiency.objects.filter(
        encounter=OuterRef("pk"), status=DeficiencyStatus.OPEN
    )
    return (
        Encounter.objects.filter(status__in=[EncounterStatus.IN_PROGRESS, EncounterStatus.FINISHED])
        .filter(~Q(Exists(complete)) | Q(Exists(open_deficiency)))
        .order_by("started_at", "pk")
    )


def sweep_open_records(*, trigger: str = "daily sweep") -> dict:
    """Analyse every open record (deadlines pass without any change to a record: this
    is when a gap not yet due becomes a deficiency). Returns the counts."""
    counts = {"records": 0, "opened": 0, "closed": 0, "voided": 0, "late": 0}
    for encounter in open_records().iterator(chunk_size=500):
        result = analyse_encounter(encounter, trigger=trigger)
        counts["records"] += 1
        for key in ("opened", "closed", "voided", "late"):
            counts[key] += getattr(result, key)
    return counts
