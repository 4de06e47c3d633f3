"""Actions on an encounter's coded abstract (every change goes through here).

Each action takes the acting user, checks ``coding.code`` and that the patient is one
the user may see (a refusal is audited before it is raised, outside the caller's
transaction), then in one transaction locks the abstract, checks the version the
caller last saw (optimistic concurrency: pass ``version``; ``None`` skips the check,
for callers that act on the abstract's own state, such as a query's hold), makes the
change, re-runs the edits and the grouping, bumps ``version``, writes an
:class:`AbstractVersion` (the whole abstract, who, when, why) and the audit event.
Bad input raises ``ValidationError`` with a clear message and changes nothing.

Statuses: not started → in progress (first code) ⇄ on hold (a physician query) →
final (edits pass) → reopened for rebill (in progress, with a reason) → rebilled (final
again). A final or rebilled abstract changes only after :func:`do_reopen_abstract`.

The functions other parts call:

- ``do_open_abstract(encounter, *, acting_user)`` → the abstract of a discharged
  encounter, created (not started) when it has none.
- ``do_hold_abstract(abstract, *, acting_user, reason)`` / ``do_release_hold(abstract,
  *, acting_user, reason)`` — physician queries (part C) put an abstract on hold and
  release it (back to in progress, or not started when nothing is coded).
- ``do_finalise_abstract(abstract, *, acting_user, version=None)`` — raises
  :class:`EditsFailed` (a ``ValidationError`` carrying ``findings``) when an
  error-severity edit fails; nothing changes then.
- ``do_reopen_abstract(abstract, *, acting_user, reason)`` — for a rebill.
- Codes: ``do_add_diagnosis``, ``do_change_diagnosis``, ``do_remove_diagnosis``,
  ``do_move_diagnosis`` (to 1 = make principal), and the same for procedures;
  ``do_set_header`` (admission source, disposition, payer).
- ``review(abstract)`` → (EditReport, Grouping) of the current codes, without saving.
- ``is_final(abstract)``; ``OPEN_STATUSES``, ``DONE_STATUSES``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404

from accounts.access import require_permission
from audit.actions import record_event
from audit.models import Action, Outcome
from clinical.actions import project_coded_diagnoses
from coding import codes as code_rules
from coding import edits as edit_rules
from coding.export import condition_resources
from coding.grouping import Grouping, group_claim
from coding.models import (
    POA,
    Abstract,
    AbstractDiagnosis,
    AbstractProcedure,
    AbstractStatus,
    AbstractVersion,
    CodeSystem,
)
from coding.permissions import CodingPermission
from encounters.models import AdmitSource, Disposition, EncounterStatus
from patients.access import default_purpose, facility_ids, in_users_facilities, may_open_restricted
from recordroom import clock

S = AbstractStatus
OPEN_STATUSES = (S.NOT_STARTED, S.IN_PROGRESS, S.ON_HOLD)
DONE_STATUSES = (S.FINAL, S.REBILLED)
OBJECT_TYPE = "coding.abstract"
MAX_DIAGNOSES = 25  # UB-04: principal + 24 other diagnoses
MAX_PROCEDURES = 25
POA_VALUES = {c[0] for c in POA.choices}


class StaleAbstract(ValidationError):
    """Someone else changed the abstract since the caller read it."""


class EditsFailed(ValidationError):
    """Finalising refused: error-severity edits failed (``findings``)."""

    def __init__(self, findings):
        self.findings = findings
        lines = [f.message for f in findings]
        super().__init__(
            "The abstract cannot be finalised until these edits pass: " + " ".join(lines)
        )


def is_final(abstract: Abstract) -> bool:
    return abstract.status in DONE_STATUSES


# --- permission and patient visibility --------------------------------------------------


def require_coder(user, patient, *, object_id="", action=Action.UPDATE, facility_id=None) -> None:
    """``coding.code`` and the patient at one of the user's facilities (restricted
    patients need a relationship or break-the-glass). Refusals are audited first."""
    purpose = default_purpose(user)
    require_permission(
        user,
        CodingPermission.CODE,
        action=action,
        purpose=purpose,
        patient_id=patient.public_id if patient else None,
        object_type=OBJECT_TYPE,
        object_id=str(object_id)[:64],
    )
    if (
        patient is None
        or not in_users_facilities(user, patient)
        or (facility_id is not None and facility_id not in facility_ids(user))
    ):
        # The encounter itself must be at one of the user's facilities, not only the
        # patient (who may have records at several).
        _deny(user, object_id, "no such encounter at the user's facilities", action)
        raise Http404("No such encounter")
    if patient.is_restricted and not may_open_restricted(user, patient):
        _deny(user, object_id, "restricted record without a relationship", action, patient)
        raise Http404("No such encounter")


def _deny(user, object_id, reason, action, patient=None) -> None:
    record_event(
        user,
        action,
        outcome=Outcome.DENIED,
        purpose=default_purpose(user),
        patient_id=patient.public_id if patient else None,
        object_type=OBJECT_TYPE,
        object_id=str(object_id)[:64],
        reason=reason,
    )


def _audit(user, abstract: Abstract, action, what: str, **detail) -> None:
    record_event(
        user,
        action,
        purpose=default_purpose(user),
        patient_id=abstract.patient.public_id,
        object_type=OBJECT_TYPE,
        object_id=str(abstract.public_id),
        detail={"what": what, "version": abstract.version, **detail},
    )


# --- reading the codes back --------------------------------------------------------------


def snapshot(abstract: Abstract) -> dict:
    return {
        "status": abstract.status,
        "admit_source": abstract.admit_source,
        "disposition": abstract.disposition,
        "payer": abstract.payer,
        "diagnoses": [
            {"sequence": d.sequence, "code": d.code, "poa": d.poa}
            for d in abstract.diagnoses.order_by("sequence")
        ],
        "procedures": [
            {
                "sequence": p.sequence,
                "system": p.system,
                "code": p.code,
                "modifiers": p.modifiers,
                "performed_on": p.performed_on.isoformat() if p.performed_on else None,
                "performer": str(p.performer.public_id) if p.performer_id else None,
            }
            for p in abstract.procedures.order_by("sequence").select_related("performer")
        ],
        "drg": abstract.drg,
        "mdc": abstract.mdc,
        "drg_weight": str(abstract.drg_weight) if abstract.drg_weight is not None else None,
        "errors": sum(1 for e in abstract.edit_results if e.get("severity") == "error"),
    }


def review(abstract: Abstract):
    """The edits and the grouping of the abstract's current codes (nothing saved)."""
    claim = edit_rules.claim_of(abstract)
    report = edit_rules.run_edits(claim)
    grouping = group_claim(claim)
    return report, grouping


def _store_review(abstract: Abstract) -> tuple[edit_rules.EditReport, Grouping]:
    report, grouping = review(abstract)
    abstract.edit_results = report.as_list()
    abstract.grouping = {**grouping.as_dict(), "notices": report.notices}
    abstract.drg = grouping.drg if grouping.available else ""
    abstract.mdc = grouping.mdc if grouping.available else ""
    abstract.drg_weight = grouping.weight_decimal if grouping.available else None
    abstract.drg_gmlos = grouping.gmlos_decimal if grouping.available else None
    return report, grouping


# --- the transaction every change runs in ------------------------------------------------


def _locked(abstract: Abstract, version: int | None) -> Abstract:
    locked = (
        Abstract.objects.select_for_update()
        .select_related("encounter", "patient")
        .get(pk=abstract.pk)
    )
    if version is not None and int(version) != locked.version:
        raise StaleAbstract(
            f"The abstract was changed by someone else (now version {locked.version}, you "
            f"had version {version}): reload it and make the change again."
        )
    return locked


def _editable(locked: Abstract) -> None:
    if locked.status in DONE_STATUSES:
        raise ValidationError(
            "The abstract is final: reopen it for a rebill (with a reason) to change it."
        )


def _commit(locked: Abstract, user, reason: str, *, what: str, action=Action.UPDATE, **detail):
    now = clock.now()
    if locked.status == S.NOT_STARTED and (locked.diagnoses.exists() or locked.procedures.exists()):
        locked.status = S.IN_PROGRESS
    if locked.coder_id is None and locked.status == S.IN_PROGRESS:
        locked.coder = user
        locked.claimed_at = now
    _store_review(locked)
    locked.version += 1
    locked.updated_at = now
    locked.save()
    AbstractVersion.objects.create(
        abstract=locked,
        number=locked.version,
        status=locked.status,
        snapshot=snapshot(locked),
        changed_by=user,
        changed_at=now,
        reason=(reason or what)[:300],
    )
    _audit(user, locked, action, what, **detail)
    return locked


def _change(abstract: Abstract, user, version, work, *, reason="", what="", **detail):
    require_coder(
        user,
        abstract.patient,
        object_id=abstract.public_id,
        facility_id=abstract.encounter.facility_id,
    )
    with transaction.atomic():
        locked = _locked(abstract, version)
        _editable(locked)
        extra = work(locked) or {}
        _commit(locked, user, reason, what=what, **detail, **extra)
    abstract.refresh_from_db()
    return abstract


# --- opening -----------------------------------------------------------------------------


def do_open_abstract(encounter, *, acting_user) -> Abstract:
    """The abstract of a discharged encounter; created (not started, version 1, with
    the encounter's admission source and disposition) when it has none."""
    require_coder(
        acting_user,
        encounter.patient,
        object_id=encounter.public_id,
        facility_id=encounter.facility_id,
    )
    existing = Abstract.objects.filter(encounter=encounter).first()
    if existing is not None:
        return existing
    if encounter.status != EncounterStatus.FINISHED or encounter.ended_at is None:
        raise ValidationError("Only a discharged (finished) encounter is coded.")
    with transaction.atomic():
        now = clock.now()
        abstract, created = Abstract.objects.get_or_create(
            encounter=encounter,
            defaults={
                "patient": encounter.patient,
                "status": S.NOT_STARTED,
                "admit_source": encounter.admit_source or "",
                "disposition": encounter.disposition or "",
                "created_at": now,
                "updated_at": now,
            },
        )
        if created:
            _commit(abstract, acting_user, "abstract opened", what="open", action=Action.CREATE)
    abstract.refresh_from_db()
    return abstract


# --- header -------------------------------------------------------------------------------


def do_set_header(
    abstract: Abstract,
    *,
    acting_user,
    admit_source: str,
    disposition: str,
    payer: str = "",
    version: int | None = None,
    reason: str = "",
) -> Abstract:
    errors = {}
    if admit_source not in AdmitSource.values:
        errors["admit_source"] = "Choose an admission source from the list."
    if disposition not in Disposition.values:
        errors["disposition"] = "Choose a discharge disposition from the list."
    if len(payer or "") > 120:
        errors["payer"] = "The payer is at most 120 characters."
    if errors:
        raise ValidationError(errors)

    def work(locked):
        locked.admit_source = admit_source
        locked.disposition = disposition
        locked.payer = (payer or "").strip()

    return _change(abstract, acting_user, version, work, reason=reason, what="header")


# --- diagnoses ----------------------------------------------------------------------------


def clean_code(code: str, system: str = CodeSystem.ICD10CM) -> str:
    """Normalise typed input (``e11.9`` → ``E119``) and check its form."""
    if system not in code_rules.FORMATS:
        raise ValidationError({"system": "Choose ICD-10-PCS, HCPCS or CPT."})
    problem = code_rules.format_problem(system, code)
    if problem:
        raise ValidationError({"code": problem})
    return code_rules.normalise(code)


def clean_poa(poa: str) -> str:
    value = (poa or "").strip().upper()
    if value not in POA_VALUES and value != "":
        raise ValidationError({"poa": "Present on admission is Y, N, U, W or 1 (exempt)."})
    return value


def _resequence(rows, model) -> None:
    """Write sequences 1..n in the given order without tripping the unique constraint."""
    rows = list(rows)
    offset = 1000
    for i, row in enumerate(rows, start=1):
        model.objects.filter(pk=row.pk).update(sequence=offset + i)
    for i, row in enumerate(rows, start=1):
        model.objects.filter(pk=row.pk).update(sequence=i)
        row.sequence = i


def _row(rows, sequence: int, label: str):
    for row in rows:
        if row.sequence == int(sequence):
            return row
    raise ValidationError(f"There is no {label} {sequence} on the abstract.")


def do_add_diagnosis(
    abstract: Abstract,
    code: str,
    *,
    acting_user,
    poa: str = "",
    principal: bool = False,
    version: int | None = None,
    reason: str = "",
) -> Abstract:
    """Add a diagnosis at the end, or as the principal (the others move down)."""
    value, poa = clean_code(code), clean_poa(poa)

    def work(locked):
        rows = list(locked.diagnoses.order_by("sequence"))
        if len(rows) >= MAX_DIAGNOSES:
            raise ValidationError(f"An abstract holds at most {MAX_DIAGNOSES} diagnoses.")
        new = AbstractDiagnosis.objects.create(
            abstract=locked, sequence=2000 + len(rows), code=value, poa=poa
        )
        _resequence([new, *rows] if principal else [*rows, new], AbstractDiagnosis)
        return {"code": value, "sequence": new.sequence}

    what = f"diagnosis {code_rules.dotted(value)} added" + (" as principal" if principal else "")
    return _change(abstract, acting_user, version, work, reason=reason, what=what)


def do_change_diagnosis(
    abstract: Abstract,
    sequence: int,
    *,
    acting_user,
    code: str | None = None,
    poa: str | None = None,
    version: int | None = None,
    reason: str = "",
) -> Abstract:
    value = clean_code(code) if code is not None else None
    poa_value = clean_poa(poa) if poa is not None else None

    def work(locked):
        row = _row(locked.diagnoses.all(), sequence, "diagnosis")
        if value is not None:
            row.code = value
        if poa_value is not None:
            row.poa = poa_value
        row.save(update_fields=["code", "poa"])
        return {"code": row.code, "sequence": row.sequence}

    what = f"diagnosis {sequence} changed"
    return _change(abstract, acting_user, version, work, reason=reason, what=what)


def do_set_poa(abstract, sequence, poa, *, acting_user, version=None, reason="") -> Abstract:
    return do_change_diagnosis(
        abstract, sequence, poa=poa, acting_user=acting_user, version=version, reason=reason
    )


# Diagnoses and procedures are kept in order the same way: the list of one kind is
# read, changed, and numbered again from 1.
_LISTS = {
    "diagnosis": ("diagnoses", AbstractDiagnosis),
    "procedure": ("procedures", AbstractProcedure),
}


def _remove_entry(abstract, kind, sequence, *, acting_user, version, reason) -> Abstract:
    related, model = _LISTS[kind]

    def work(locked):
        rows = list(getattr(locked, related).order_by("sequence"))
        row = _row(rows, sequence, kind)
        row.delete()
        _resequence([r for r in rows if r.pk != row.pk], model)
        return {"code": row.code, "sequence": int(sequence)}

    what = f"{kind} {sequence} removed"
    return _change(abstract, acting_user, version, work, reason=reason, what=what)


def _move_entry(abstract, kind, sequence, to, *, acting_user, version, reason) -> Abstract:
    related, model = _LISTS[kind]

    def work(locked):
        rows = list(getattr(locked, related).order_by("sequence"))
        row = _row(rows, sequence, kind)
        if not 1 <= int(to) <= len(rows):
            raise ValidationError(f"Move to a position from 1 to {len(rows)}.")
        rows.remove(row)
        rows.insert(int(to) - 1, row)
        _resequence(rows, model)
        return {"code": row.code, "sequence": int(to)}

    what = f"{kind} {sequence} moved to {to}"
    return _change(abstract, acting_user, version, work, reason=reason, what=what)


def do_remove_diagnosis(
    abstract: Abstract, sequence: int, *, acting_user, version=None, reason=""
) -> Abstract:
    return _remove_entry(
        abstract, "diagnosis", sequence, acting_user=acting_user, version=version, reason=reason
    )


def do_move_diagnosis(
    abstract: Abstract, sequence: int, to: int, *, acting_user, version=None, reason=""
) -> Abstract:
    """Move a diagnosis to position ``to`` (1 makes it the principal)."""
    return _move_entry(
        abstract, "diagnosis", sequence, to, acting_user=acting_user, version=version, reason=reason
    )


# --- procedures ---------------------------------------------------------------------------


def _clean_modifiers(modifiers) -> list[str]:
    out = []
    for item in modifiers or []:
        value = str(item).strip().upper()
        if not value:
            continue
        if len(value) != 2 or not value.isalnum():
            raise ValidationError({"modifiers": f"“{value[:8]}” is not a 2-character modifier."})
        out.append(value)
    if len(out) > 4:
        raise ValidationError({"modifiers": "At most 4 modifiers."})
    return out


def _check_performer(performer) -> None:
    if performer is not None and not performer.is_active:
        raise ValidationError({"performer": "The performing clinician's account is inactive."})


def _check_date(abstract: Abstract, performed_on: dt.date | None) -> None:
    if performed_on is not None and performed_on > clock.now().date() + dt.timedelta(days=1):
        raise ValidationError({"performed_on": "A procedure date cannot be in the future."})


def do_add_procedure(
    abstract: Abstract,
    code: str,
    *,
    acting_user,
    system: str = CodeSystem.ICD10PCS,
    performed_on: dt.date | None = None,
    performer=None,
    modifiers=None,
    version: int | None = None,
    reason: str = "",
) -> Abstract:
    value = clean_code(code, system)
    mods = _clean_modifiers(modifiers)
    _check_performer(performer)
    _check_date(abstract, performed_on)

    def work(locked):
        rows = list(locked.procedures.order_by("sequence"))
        if len(rows) >= MAX_PROCEDURES:
            raise ValidationError(f"An abstract holds at most {MAX_PROCEDURES} procedures.")
        AbstractProcedure.objects.create(
            abstract=locked,
            sequence=len(rows) + 1,
            system=system,
            code=value,
            modifiers=mods,
            performed_on=performed_on,
            performer=performer,
        )
        return {"code": value, "sequence": len(rows) + 1}

    what = f"procedure {value} added"
    return _change(abstract, acting_user, version, work, reason=reason, what=what)


def do_change_procedure(
    abstract: Abstract,
    sequence: int,
    *,
    acting_user,
    code: str | None = None,
    performed_on: dt.date | None = None,
    performer=None,
    modifiers=None,
    version: int | None = None,
    reason: str = "",
) -> Abstract:
    _check_performer(performer)
    _check_date(abstract, performed_on)
    mods = _clean_modifiers(modifiers) if modifiers is not None else None

    def work(locked):
        row = _row(locked.procedures.all(), sequence, "procedure")
        if code is not None:
            row.code = clean_code(code, row.system)
        if performed_on is not None:
            row.performed_on = performed_on
        if performer is not None:
            row.performer = performer
        if mods is not None:
            row.modifiers = mods
        row.save()
        return {"code": row.code, "sequence": row.sequence}

    what = f"procedure {sequence} changed"
    return _change(abstract, acting_user, version, work, reason=reason, what=what)


def do_remove_procedure(
    abstract: Abstract, sequence: int, *, acting_user, version=None, reason=""
) -> Abstract:
    return _remove_entry(
        abstract, "procedure", sequence, acting_user=acting_user, version=version, reason=reason
    )


def do_move_procedure(
    abstract: Abstract, sequence: int, to: int, *, acting_user, version=None, reason=""
) -> Abstract:
    """Move a procedure to position ``to`` (1 is the principal procedure)."""
    return _move_entry(
        abstract, "procedure", sequence, to, acting_user=acting_user, version=version, reason=reason
    )


# --- status -------------------------------------------------------------------------------


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Give a reason."})
    return reason[:300]


def _status_change(abstract, user, version, to, allowed, reason, what):
    require_coder(
        user,
        abstract.patient,
        object_id=abstract.public_id,
        facility_id=abstract.encounter.facility_id,
    )
    with transaction.atomic():
        locked = _locked(abstract, version)
        if locked.status not in allowed:
            raise ValidationError(
                f"The abstract is {locked.get_status_display().lower()}: it cannot be {what}."
            )
        previous = locked.status
        locked.status = to(locked) if callable(to) else to
        _commit(locked, user, reason, what=what, previous=previous, status=locked.status)
    abstract.refresh_from_db()
    return abstract


def do_hold_abstract(abstract: Abstract, *, acting_user, reason: str, version=None) -> Abstract:
    """Put the abstract on hold (a physician query is open)."""
    reason = _require_reason(reason)
    return _status_change(
        abstract,
        acting_user,
        version,
        S.ON_HOLD,
        (S.NOT_STARTED, S.IN_PROGRESS),
        f"on hold: {reason}",
        "put on hold",
    )


def do_release_hold(abstract: Abstract, *, acting_user, reason: str, version=None) -> Abstract:
    """Release the hold: in progress again (not started when nothing is coded yet)."""
    reason = _require_reason(reason)

    def to(locked):
        begun = locked.diagnoses.exists() or locked.procedures.exists()
        return S.IN_PROGRESS if begun else S.NOT_STARTED

    return _status_change(
        abstract, acting_user, version, to, (S.ON_HOLD,), f"hold released: {reason}", "released"
    )


def do_finalise_abstract(abstract: Abstract, *, acting_user, version=None) -> Abstract:
    """Final (rebilled, when it had been final before) once no error-severity edit
    fails; otherwise :class:`EditsFailed` and nothing changes."""
    require_coder(
        acting_user,
        abstract.patient,
        object_id=abstract.public_id,
        facility_id=abstract.encounter.facility_id,
    )
    with transaction.atomic():
        locked = _locked(abstract, version)
        if locked.status not in (S.IN_PROGRESS, S.NOT_STARTED):
            label = locked.get_status_display().lower()
            raise ValidationError(f"The abstract is {label}: it cannot be finalised now.")
        report, _grouping = review(locked)
        if not report.passed:
            raise EditsFailed(report.errors)
        now = clock.now()
        locked.status = S.REBILLED if locked.finalised_at else S.FINAL
        locked.finalised_at = now
        locked.finalised_by = acting_user
        reason = "finalised" if locked.status == S.FINAL else "finalised (rebill)"
        _commit(
            locked,
            acting_user,
            reason,
            what="finalise",
            status=locked.status,
            drg=locked.drg or None,
        )
        project_coded_diagnoses(
            locked.encounter,
            condition_resources(locked.encounter),
            acting_user=acting_user,
            reason=reason,
        )
    abstract.refresh_from_db()
    return abstract


def project_earlier_final_abstracts(*, limit: int | None = None) -> int:
    """Keep the final codes of abstracts finalised before RecordRoom kept them as
    Conditions (an upgrade step: ``recordroom coding-conditions``). Each encounter in
    its own transaction, as the system (audited with no user); an abstract that already
    has them is left alone. Returns how many encounters got their Conditions."""
    from clinical.models import CODED_SOURCE, ClinicalEntry

    kept = ClinicalEntry.objects.filter(source=CODED_SOURCE).values("encounter_id")
    pending = (
        Abstract.objects.filter(status__in=DONE_STATUSES)
        .exclude(encounter_id__in=kept)
        .select_related("encounter", "encounter__patient")
        .order_by("pk")
    )
    done = 0
    for abstract in pending[:limit] if limit else pending.iterator(chunk_size=200):
        resources = condition_resources(abstract.encounter)
        if not resources:
            continue
        with transaction.atomic():
            project_coded_diagnoses(
                abstract.encounter,
                resources,
                acting_user=None,
                reason="final codes of an abstract finalised before they were kept",
            )
        done += 1
    return done


def do_reopen_abstract(abstract: Abstract, *, acting_user, reason: str, version=None) -> Abstract:
    """Reopen a final abstract to correct and rebill it (a reason is required)."""
    reason = _require_reason(reason)
    return _status_change(
        abstract,
        acting_user,
        version,
        S.IN_PROGRESS,
        DONE_STATUSES,
        f"reopened for rebill: {reason}",
        "reopened",
    )


def weight_change(abstract: Abstract) -> Decimal | None:
    """Relative weight now minus at the previous version (for the DRG panel)."""
    previous = abstract.versions.filter(number__lt=abstract.version).order_by("-number").first()
    if previous is None or abstract.drg_weight is None:
        return None
    before = previous.snapshot.get("drg_weight")
    return abstract.drg_weight - Decimal(before) if before else None
