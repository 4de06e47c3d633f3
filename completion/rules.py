"""Completion rules as data: which rules apply to an encounter, the parameters each rule
kind reads, and one evaluating function per :class:`~completion.models.RuleKind`
that turns an encounter's record into the gaps it finds.

A gap is what a deficiency is about. Its ``key`` is built from the rule's ``code``
(stable across versions), the deficiency kind and, where there is one, the public id
of the document or procedure concerned — so the same gap found again is the same key,
and a rule changed to a new version keeps the deficiencies its previous version opened.

Which rules apply to an encounter (:func:`applicable_rules`): for each rule ``code``,
the version in force on the encounter's admission date (local; ``effective_from`` <=
date <= ``effective_to``), the encounter facility's own version first, else the
version for all facilities; it applies when that version is ``active`` and lists the
encounter's class. A facility switches a default rule off for itself with an inactive
version of the same code for the facility.

What each kind checks (parameters, with defaults, in :data:`PARAMETERS`):

- ``history_physical``: a History and physical (the rule's document type, LOINC
  34117-2) of the encounter whose ``service_at`` is no more than ``days_before``
  calendar days before admission and no more than ``hours_after`` hours after it
  (42 CFR 482.22(c)(5)(i), 482.24(c)(4)(i)). None at all → *missing*; only ones older
  than the window → *missing* (an H&P older than 30 days cannot be updated: a new one
  is needed); only ones after the window → *late*. Due: admission + ``hours_after``.
- ``hp_update``: when every H&P in the window was done before admission, an update
  is needed within ``hours_after`` hours of admission. An update is an H&P document
  with ``service_at`` at or after admission, or a document of one of
  ``update_types`` (a progress note, 11506-3) whose title contains one of
  ``update_title_words`` ("H&P update", "interval history"), with ``service_at`` at or
  after admission. None → *missing*; only after the limit → *late*.
- ``hp_before_procedure``: for every surgical procedure under anaesthesia (below) an
  H&P whose ``service_at`` is before the procedure began (42 CFR 482.51(b)(1)). An
  H&P written only after the procedure → *late*. No H&P at all → *missing* only when
  no ``history_physical`` rule applies to the encounter (that rule already reports it).
- ``operative_report``: for every surgical procedure, an operative report (11504-8)
  written (``entered_at``) within ``hours_after_procedure`` of the procedure
  (42 CFR 482.51(b)(6)). Reports are matched to procedures in time order. A report
  written later is *late*, unless a post-operative / procedure note (one of
  ``postop_note_types``, 28570-0) was written within the limit — the note covers the
  "immediately after surgery" part. With ``postop_note_replaces_report`` the note
  counts as the report itself (minor procedures). Due: procedure + the hours.
- ``discharge_summary``: for a discharged encounter, a discharge summary (18842-5, or
  one of ``also_accepted_types``, e.g. a death note) written within
  ``hours_after_discharge`` of discharge (42 CFR 482.24(c)(4)(vii)).
- ``authentication``: every authored document of the encounter signed by its author
  (42 CFR 482.24(c)(1)): a draft, or an amendment waiting for signature, is
  *unsigned* (the author responsible), due ``hours_to_sign`` after it was written.
  A version signed by anyone but the author does not authenticate. A document with
  no text and no file, or whose text still holds one of ``incomplete_markers`` (the
  "***" blanks of a note template), is *incomplete* instead until it is finished.
  Filed documents (scanned, imported) were authenticated on paper or by the sending
  system; documents entered in error are ignored. Verbal and telephone orders are left
  to the ``verbal_order`` rule when one applies.
- ``verbal_order``: every verbal or telephone order (``Document.order_mode``)
  authenticated by its author within the policy's ``verbal_order_hours`` (or this
  rule's ``hours``) of being given (``service_at``) (42 CFR 482.24(c)(3)). Not yet
  signed → *unsigned*; signed after the limit → *late*. A filed order counts as
  authenticated when it was written in the sending system (``entered_at``).
- ``final_diagnosis``: a discharged encounter has at least one Condition with a
  category in ``categories`` (encounter-diagnosis), not entered in error nor refuted
  (42 CFR 482.24(c)(4)(viii)). Due: discharge + ``hours_after_discharge``.
- ``required_document``: a document of the rule's type, written within ``hours``
  after the ``anchor`` (admission or discharge).

Surgical procedures are the encounter's Procedure entries (not entered in error, not
"not-done" or "preparation") whose category code is one of ``surgical_categories``
(SNOMED CT 387713003 "Surgical procedure") or whose code is one of
``surgical_codes``. *Under anaesthesia* is read from the Procedure resource's
extension ``anaesthesia_extension`` (:data:`ANAESTHESIA_EXTENSION`): ``valueBoolean``,
or a ``valueCode`` / ``valueCoding`` / ``valueCodeableConcept`` whose code is one of
general, regional, neuraxial, monitored (MAC), deep-sedation, moderate-sedation
(true) or none, local, minimal-sedation (false). Without the extension a surgical
procedure is taken to be under anaesthesia when ``assume_anaesthesia`` is true.

Deficiency kinds: *missing* and the H&P's and orders' gaps go to the attending
(``Encounter.attending``); *unsigned* and *incomplete* to the document's author. A
*late* gap is informational: it is recorded for the statistics and closed at once
("recorded late"), since a document written late stays late for ever and must not
keep the record incomplete.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q

from completion.models import CompletionRule, DeficiencyKind, RuleKind
from completion.policy import add_hours, add_local_days, local_date, policy_for
from documents.models import DocumentSource, DocumentStatus, OrderMode
from encounters.models import EncounterStatus

K = DeficiencyKind

HP_LOINC = "34117-2"
PROGRESS_NOTE_LOINC = "11506-3"
OPERATIVE_REPORT_LOINC = "11504-8"
PROCEDURE_NOTE_LOINC = "28570-0"
DISCHARGE_SUMMARY_LOINC = "18842-5"
ORDERS_LOINC = "46209-3"
SURGICAL_PROCEDURE_SNOMED = "387713003"
ANAESTHESIA_EXTENSION = "https://recordroom.org/fhir/StructureDefinition/procedure-anaesthesia"
ANAESTHESIA_YES = {
    "general",
    "regional",
    "neuraxial",
    "spinal",
    "epidural",
    "monitored",
    "mac",
    "deep-sedation",
    "moderate-sedation",
}
ANAESTHESIA_NO = {"none", "local", "minimal-sedation", "topical"}
NOT_PERFORMED = {"not-done", "entered-in-error", "preparation"}
REPORT_MATCH_WINDOW = dt.timedelta(hours=12)
"""An operative report may be dated (service_at) up to this long before the procedure
it reports (a procedure's start recorded late, a report dated at the incision)."""

VERBAL_MODES = {OrderMode.VERBAL, OrderMode.TELEPHONE}

# --- parameters ------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One parameter a rule kind reads: its type, default and bounds."""

    type: str  # int, bool, codes, words, choice, url, optional_int
    default: Any
    help: str
    low: int = 0
    high: int = 24 * 366
    choices: tuple[str, ...] = ()


_SURGICAL = {
    "surgical_categories": Param(
        "codes", [SURGICAL_PROCEDURE_SNOMED], "Procedure category codes that mean surgery."
    ),
    "surgical_codes": Param("codes", [], "Procedure codes that are surgery whatever the category."),
}

PARAMETERS: dict[str, dict[str, Param]] = {
    RuleKind.HISTORY_PHYSICAL: {
        "days_before": Param("int", 30, "Oldest H&P accepted, in days before admission.", 0, 365),
        "hours_after": Param("int", 24, "Latest H&P on time, in hours after admission.", 0, 720),
    },
    RuleKind.HP_UPDATE: {
        "days_before": Param("int", 30, "Oldest H&P that can be updated, in days.", 0, 365),
        "hours_after": Param("int", 24, "Update due, in hours after admission.", 0, 720),
        "update_types": Param(
            "codes", [HP_LOINC, PROGRESS_NOTE_LOINC], "LOINC types an update may be written on."
        ),
        "update_title_words": Param(
            "words",
            ["H&P update", "interval history"],
            "Words in the title that make a note of another type an H&P update.",
        ),
    },
    RuleKind.HP_BEFORE_PROCEDURE: {
        "days_before": Param("int", 30, "Oldest H&P accepted, in days before admission.", 0, 365),
        **_SURGICAL,
        "anaesthesia_extension": Param(
            "url", ANAESTHESIA_EXTENSION, "Procedure extension saying whether anaesthesia was used."
        ),
        "assume_anaesthesia": Param(
            "bool", True, "Take surgery to be under anaesthesia when the procedure does not say."
        ),
    },
    RuleKind.OPERATIVE_REPORT: {
        "hours_after_procedure": Param("int", 24, "Report due, in hours after the procedure."),
        **_SURGICAL,
        "postop_note_types": Param(
            "codes",
            [PROCEDURE_NOTE_LOINC],
            "Post-operative note types written right after surgery.",
        ),
        "postop_note_replaces_report": Param(
            "bool", False, "A post-operative note counts as the operative report itself."
        ),
    },
    RuleKind.DISCHARGE_SUMMARY: {
        "hours_after_discharge": Param(
            "int", 48, "Summary due, in hours after discharge.", 0, 2160
        ),
        "also_accepted_types": Param("codes", [], "Other LOINC types accepted as the summary."),
    },
    RuleKind.AUTHENTICATION: {
        "hours_to_sign": Param("int", 24, "Signature due, in hours after the document is written."),
        "incomplete_markers": Param(
            "words", ["***"], "Text left in a document that means it is not finished."
        ),
    },
    RuleKind.VERBAL_ORDER: {
        "hours": Param(
            "optional_int", None, "Hours to authenticate; empty: the completion policy's limit.", 1
        ),
    },
    RuleKind.FINAL_DIAGNOSIS: {
        "hours_after_discharge": Param(
            "int", 48, "Diagnosis due, in hours after discharge.", 0, 2160
        ),
        "categories": Param("codes", ["encounter-diagnosis"], "Condition categories that count."),
    },
    RuleKind.REQUIRED_DOCUMENT: {
        "anchor": Param("choice", "discharge", "Counted from.", choices=("admission", "discharge")),
        "hours": Param("int", 48, "Document due, in hours after the anchor.", 0, 2160),
    },
}

KINDS_WITH_DOCUMENT_TYPE = {
    RuleKind.HISTORY_PHYSICAL,
    RuleKind.HP_UPDATE,
    RuleKind.HP_BEFORE_PROCEDURE,
    RuleKind.OPERATIVE_REPORT,
    RuleKind.DISCHARGE_SUMMARY,
    RuleKind.REQUIRED_DOCUMENT,
}


def _clean_param(name: str, spec: Param, value, problems: list[str]):
    if spec.type in ("int", "optional_int"):
        if value is None or value == "":
            if spec.type == "optional_int":
                return None
            problems.append(f"{name} needs a whole number.")
            return spec.default
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            problems.append(f"{name} must be a whole number.")
            return spec.default
        try:
            number = int(str(value).strip())
        except ValueError:
            problems.append(f"{name} must be a whole number, not {str(value)[:20]!r}.")
            return spec.default
        if not spec.low <= number <= spec.high:
            problems.append(f"{name} must be between {spec.low} and {spec.high}.")
        return number
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if str(value).lower() in ("false", "0", "no", "off", ""):
            return False
        problems.append(f"{name} must be true or false.")
        return spec.default
    if spec.type in ("codes", "words"):
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            problems.append(f"{name} must be a list.")
            return list(spec.default)
        cleaned = []
        for item in items:
            text = " ".join(str(item).split())
            if not text:
                continue
            if len(text) > 80 or any(c in text for c in "<>"):
                problems.append(f"{name}: {text[:20]!r} is not a valid entry.")
                continue
            if text not in cleaned:
                cleaned.append(text)
        return cleaned
    if spec.type == "choice":
        if value not in spec.choices:
            problems.append(f"{name} must be one of {', '.join(spec.choices)}.")
            return spec.default
        return value
    if spec.type == "url":
        text = str(value or "").strip()
        if not text.startswith(("http://", "https://", "urn:")) or len(text) > 200:
            problems.append(f"{name} must be a URL.")
            return spec.default
        return text
    raise AssertionError(f"unknown parameter type {spec.type}")


def validate_parameters(kind: str, parameters: dict | None) -> dict:
    """The parameters of a rule of ``kind``, with defaults filled in. Raises
    ValidationError ({"parameters": [...]}) naming every unknown or invalid one."""
    if kind not in PARAMETERS:
        raise ValidationError({"kind": ["Unknown rule kind."]})
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise ValidationError({"parameters": ["Parameters must be a set of name: value pairs."]})
    specs = PARAMETERS[kind]
    problems = [
        f"Unknown parameter {name!r} for a {RuleKind(kind).label.lower()} rule."
        for name in parameters
        if name not in specs
    ]
    cleaned = {
        name: _clean_param(name, spec, parameters.get(name, spec.default), problems)
        for name, spec in specs.items()
    }
    if problems:
        raise ValidationError({"parameters": problems})
    return cleaned


def parameters_of(rule: CompletionRule) -> dict:
    """The rule's parameters with defaults for any it does not set (a seeded or older
    rule stays readable when a kind gains a parameter)."""
    specs = PARAMETERS[rule.kind]
    stored = rule.parameters if isinstance(rule.parameters, dict) else {}
    return {name: stored.get(name, spec.default) for name, spec in specs.items()}


# --- which rules apply -----------------------------------------------------------------


def rules_in_force(*, facility_id, encounter_class: str, on: dt.date) -> list[CompletionRule]:
    """The rule versions that apply to an encounter of ``encounter_class`` at the
    facility, admitted on ``on`` (see the module docstring)."""
    versions = (
        CompletionRule.objects.filter(effective_from__lte=on)
        .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=on))
        .filter(Q(facility__isnull=True) | Q(facility_id=facility_id))
        .select_related("document_type")
        .order_by("code", "-effective_from", "-pk")
    )
    chosen: dict[str, CompletionRule] = {}
    for rule in versions:
        current = chosen.get(rule.code)
        if current is None or (current.facility_id is None and rule.facility_id is not None):
            chosen[rule.code] = rule
    return [
        rule
        for rule in chosen.values()
        if rule.active and encounter_class in (rule.encounter_classes or [])
    ]


def applicable_rules(encounter) -> list[CompletionRule]:
    if encounter.status not in (EncounterStatus.IN_PROGRESS, EncounterStatus.FINISHED):
        return []
    return rules_in_force(
        facility_id=encounter.facility_id,
        encounter_class=encounter.encounter_class,
        on=local_date(encounter.started_at),
    )


# --- the record as the rules read it -----------------------------------------------------


@dataclass
class DocInfo:
    """One document of the encounter (not entered in error) and its versions."""

    document: Any
    versions: list  # oldest first

    @property
    def latest(self):
        return self.versions[-1]

    @property
    def loinc(self) -> str:
        return self.document.doc_type.loinc_code

    @property
    def authored(self) -> bool:
        return self.document.source == DocumentSource.AUTHORED

    def authenticated_at(self) -> dt.datetime | None:
        """When the document was first authenticated by its author (a filed one: when
        it was written in the sending system), or None."""
        if not self.authored:
            return self.document.entered_at
        signed = [
            v.signed_at
            for v in self.versions
            if v.signed_at and v.signed_by_id == self.document.author_id
        ]
        return min(signed) if signed else None


@dataclass
class Context:
    encounter: Any
    now: dt.datetime
    documents: list[DocInfo]
    procedures: list
    conditions: list
    kinds: set[str] = field(default_factory=set)

    @property
    def discharged(self) -> bool:
        return self.encounter.status == EncounterStatus.FINISHED and bool(self.encounter.ended_at)

    def of_types(self, codes) -> list[DocInfo]:
        wanted = set(codes)
        return [info for info in self.documents if info.loinc in wanted]


def build_context(encounter, now: dt.datetime) -> Context:
    from clinical.models import CODED_SOURCE, ClinicalEntry, ResourceType
    from documents.models import Document, DocumentVersion

    documents = list(
        Document.objects.filter(encounter=encounter)
        .exclude(status=DocumentStatus.ENTERED_IN_ERROR)
        .select_related("doc_type", "author")
        .order_by("service_at", "pk")
    )
    versions: dict[int, list] = {doc.pk: [] for doc in documents}
    for version in DocumentVersion.objects.filter(document__in=documents).order_by(
        "document_id", "number"
    ):
        versions[version.document_id].append(version)
    entries = list(
        ClinicalEntry.objects.filter(
            encounter=encounter,
            entered_in_error=False,
            resource_type__in=[ResourceType.PROCEDURE, ResourceType.CONDITION],
        )
        # The coded final diagnoses are the coder's, not the clinician's documentation.
        .exclude(source=CODED_SOURCE)
        .order_by("effective_at", "pk")
    )
    return Context(
        encounter=encounter,
        now=now,
        documents=[DocInfo(doc, versions[doc.pk]) for doc in documents if versions[doc.pk]],
        procedures=[e for e in entries if e.resource_type == ResourceType.PROCEDURE],
        conditions=[e for e in entries if e.resource_type == ResourceType.CONDITION],
    )


# --- gaps --------------------------------------------------------------------------------


@dataclass
class Gap:
    """One thing the record lacks, as a rule found it."""

    rule: CompletionRule
    kind: str
    key: str
    description: str
    due_at: dt.datetime
    responsible: Any = None
    document: Any = None
    document_type: Any = None
    detail: dict = field(default_factory=dict)


def _key(rule: CompletionRule, kind: str, subject=None, suffix: str = "") -> str:
    parts = [rule.code, str(kind)]
    if subject is not None:
        parts.append(str(subject))
    if suffix:
        parts.append(suffix)
    return ":".join(parts)


def _type_name(rule: CompletionRule, fallback: str) -> str:
    return rule.document_type.display if rule.document_type_id else fallback


def _rule_type(rule: CompletionRule, default: str) -> str:
    return rule.document_type.loinc_code if rule.document_type_id else default


def _doc_gap(rule, kind, info: DocInfo, description, due_at, suffix="") -> Gap:
    return Gap(
        rule=rule,
        kind=kind,
        key=_key(rule, kind, info.document.public_id, suffix),
        description=description,
        due_at=due_at,
        responsible=info.document.author,
        document=info.document,
        document_type=info.document.doc_type,
    )


def _missing(rule, ctx: Context, description: str, due_at, *, subject=None, kind=K.MISSING):
    return Gap(
        rule=rule,
        kind=kind,
        key=_key(rule, kind, subject),
        description=description,
        due_at=due_at,
        responsible=ctx.encounter.attending,
        document_type=rule.document_type if rule.document_type_id else None,
    )


# --- procedures ------------------------------------------------------------------------


def _coded(value) -> list[str]:
    """Codes in a FHIR Coding, CodeableConcept or code."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        codes = [value["code"]] if isinstance(value.get("code"), str) else []
        for coding in value.get("coding") or []:
            if isinstance(coding, dict) and coding.get("code"):
                codes.append(str(coding["code"]))
        return codes
    return []


def _procedure_categories(entry) -> set[str]:
    codes = {entry.category} if entry.category else set()
    category = (entry.resource or {}).get("category")
    codes.update(_coded(category))
    return codes


def _procedure_codes(entry) -> set[str]:
    codes = {entry.code} if entry.code else set()
    codes.update(_coded((entry.resource or {}).get("code")))
    return codes


def is_surgical(entry, params: dict) -> bool:
    if entry.status in NOT_PERFORMED:
        return False
    return bool(
        _procedure_categories(entry) & set(params["surgical_categories"])
        or _procedure_codes(entry) & set(params["surgical_codes"])
    )


def under_anaesthesia(entry, params: dict) -> bool:
    for extension in (entry.resource or {}).get("extension") or []:
        if (
            not isinstance(extension, dict)
            or extension.get("url") != params["anaesthesia_extension"]
        ):
            continue
        if isinstance(extension.get("valueBoolean"), bool):
            return extension["valueBoolean"]
        for element in ("valueCode", "valueCoding", "valueCodeableConcept"):
            codes = {c.lower() for c in _coded(extension.get(element))}
            if codes & ANAESTHESIA_YES:
                return True
            if codes & ANAESTHESIA_NO:
                return False
    return bool(params["assume_anaesthesia"])


def performed_at(entry, ctx: Context) -> dt.datetime:
    return entry.effective_at or entry.recorded_at or ctx.encounter.started_at


# --- the rule kinds ------------------------------------------------------------------------


def _hp_window(rule, ctx: Context, params) -> tuple[dt.datetime, dt.datetime]:
    admitted = ctx.encounter.started_at
    return (
        add_local_days(admitted, -params["days_before"]),
        add_hours(admitted, params["hours_after"]),
    )


def _hps(rule, ctx: Context) -> list[DocInfo]:
    return ctx.of_types([_rule_type(rule, HP_LOINC)])


def history_physical(rule, ctx: Context) -> list[Gap]:
    params = parameters_of(rule)
    earliest, latest = _hp_window(rule, ctx, params)
    name = _type_name(rule, "History and physical")
    hps = _hps(rule, ctx)
    if any(earliest <= info.document.service_at <= latest for info in hps):
        return []
    after = [info for info in hps if info.document.service_at > latest]
    if after:
        first = after[0]
        hours = (first.document.service_at - ctx.encounter.started_at).total_seconds() / 3600
        gap = _doc_gap(
            rule,
            K.LATE,
            first,
            f"{name} done {hours:.0f} h after admission (limit {params['hours_after']} h)",
            latest,
        )
        gap.responsible = first.document.author
        return [gap]
    too_old = bool(hps)
    description = (
        f"{name} older than {params['days_before']} days before admission: a new one is needed"
        if too_old
        else f"{name} missing (due within {params['hours_after']} h of admission)"
    )
    return [_missing(rule, ctx, description, latest)]


def _is_update(info: DocInfo, hp_type: str, params) -> bool:
    if info.loinc == hp_type:
        return True
    if info.loinc not in params["update_types"]:
        return False
    title = info.document.title.lower()
    return any(word.lower() in title for word in params["update_title_words"])


def hp_update(rule, ctx: Context) -> list[Gap]:
    params = parameters_of(rule)
    admitted = ctx.encounter.started_at
    earliest = add_local_days(admitted, -params["days_before"])
    due = add_hours(admitted, params["hours_after"])
    hp_type = _rule_type(rule, HP_LOINC)
    hps = _hps(rule, ctx)
    if not any(earliest <= info.document.service_at < admitted for info in hps):
        return []  # no H&P before admission to update (or one done after admission)
    updates = [
        info
        for info in ctx.documents
        if info.document.service_at >= admitted and _is_update(info, hp_type, params)
    ]
    if any(info.document.service_at <= due for info in updates):
        return []
    if updates:
        gap = _doc_gap(
            rule,
            K.LATE,
            updates[0],
            f"H&P update written after the {params['hours_after']} h limit",
            due,
        )
        return [gap]
    return [
        _missing(
            rule,
            ctx,
            f"H&P done before admission needs an update within {params['hours_after']} h "
            "of admission",
            due,
        )
    ]


def hp_before_procedure(rule, ctx: Context) -> list[Gap]:
    params = parameters_of(rule)
    earliest = add_local_days(ctx.encounter.started_at, -params["days_before"])
    hps = [info for info in _hps(rule, ctx) if info.document.service_at >= earliest]
    gaps = []
    for entry in ctx.procedures:
        if not (is_surgical(entry, params) and under_anaesthesia(entry, params)):
            continue
        start = performed_at(entry, ctx)
        if any(info.document.service_at <= start for info in hps):
            continue
        if hps:
            gap = _doc_gap(
                rule, K.LATE, hps[0], "H&P done only after a procedure under anaesthesia", start
            )
            gap.key = _key(rule, K.LATE, entry.public_id)
            gap.detail = {"procedure": str(entry.public_id)}
            gaps.append(gap)
        elif RuleKind.HISTORY_PHYSICAL not in ctx.kinds:
            gap = _missing(
                rule,
                ctx,
                "H&P missing before a procedure under anaesthesia",
                start,
                subject=entry.public_id,
            )
            gap.detail = {"procedure": str(entry.public_id)}
            gaps.append(gap)
    return gaps


def operative_report(rule, ctx: Context) -> list[Gap]:
    params = parameters_of(rule)
    hours = params["hours_after_procedure"]
    report_types = [_rule_type(rule, OPERATIVE_REPORT_LOINC)]
    if params["postop_note_replaces_report"]:
        report_types += params["postop_note_types"]
    reports = sorted(
        ctx.of_types(report_types), key=lambda i: (i.document.service_at, i.document.pk)
    )
    notes = ctx.of_types(params["postop_note_types"])
    name = _type_name(rule, "Operative report")
    used: set[int] = set()
    gaps = []
    surgical = [e for e in ctx.procedures if is_surgical(e, params)]
    for entry in sorted(surgical, key=lambda e: (performed_at(e, ctx), e.pk)):
        start = performed_at(entry, ctx)
        due = add_hours(start, hours)
        report = next(
            (
                info
                for info in reports
                if info.document.pk not in used
                and info.document.service_at >= start - REPORT_MATCH_WINDOW
            ),
            None,
        )
        if report is None:
            gap = _missing(
                rule,
                ctx,
                f"{name} missing for a surgical procedure (due {hours} h after it)",
                due,
                subject=entry.public_id,
            )
            gap.detail = {"procedure": str(entry.public_id)}
            gaps.append(gap)
            continue
        used.add(report.document.pk)
        if report.document.entered_at <= due:
            continue
        bridged = any(
            start - REPORT_MATCH_WINDOW <= note.document.service_at
            and note.document.entered_at <= due
            for note in notes
        )
        if not bridged:
            gap = _doc_gap(
                rule, K.LATE, report, f"{name} written more than {hours} h after the procedure", due
            )
            gap.key = _key(rule, K.LATE, entry.public_id)
            gap.detail = {"procedure": str(entry.public_id)}
            gaps.append(gap)
    return gaps


def _after_discharge(rule, ctx: Context, types: list[str], hours: int, name: str) -> list[Gap]:
    if not ctx.discharged:
        return []
    due = add_hours(ctx.encounter.ended_at, hours)
    present = ctx.of_types(types)
    if any(info.document.entered_at <= due for info in present):
        return []
    if present:
        return [
            _doc_gap(rule, K.LATE, present[0], f"{name} written after the {hours} h limit", due)
        ]
    return [_missing(rule, ctx, f"{name} missing (due {hours} h after discharge)", due)]


def discharge_summary(rule, ctx: Context) -> list[Gap]:
    params = parameters_of(rule)
    types = [_rule_type(rule, DISCHARGE_SUMMARY_LOINC), *params["also_accepted_types"]]
    name = _type_name(rule, "Discharge summary")
    return _after_discharge(rule, ctx, types, params["hours_after_discharge"], name)


def required_document(rule, ctx: Context) -> list[Gap]:
    params = parameters_of(rule)
    if not rule.document_type_id:
        return []
    name = rule.document_type.display
    if params["anchor"] == "discharge":
        return _after_discharge(rule, ctx, [rule.document_type.loinc_code], params["hours"], name)
    due = add_hours(ctx.encounter.started_at, params["hours"])
    present = ctx.of_types([rule.document_type.loinc_code])
    if any(info.document.entered_at <= due for info in present):
        return []
    if present:
        return [
            _doc_gap(
                rule, K.LATE, present[0], f"{name} written after the {params['hours']} h limit", due
            )
        ]
    return [_missing(rule, ctx, f"{name} missing (due {params['hours']} h after admission)", due)]


def _unfinished(info: DocInfo, markers: list[str]) -> bool:
    latest = info.latest
    if not latest.body.strip() and not latest.attachment:
        return True
    return any(marker and marker in latest.body for marker in markers)


def authentication(rule, ctx: Context) -> list[Gap]:
    params = parameters_of(rule)
    hours = params["hours_to_sign"]
    skip_orders = RuleKind.VERBAL_ORDER in ctx.kinds
    gaps = []
    for info in ctx.documents:
        doc = info.document
        if skip_orders and doc.order_mode in VERBAL_MODES:
            continue
        type_name = doc.doc_type.display
        if _unfinished(info, params["incomplete_markers"]):
            gaps.append(
                _doc_gap(
                    rule,
                    K.INCOMPLETE,
                    info,
                    f"{type_name} not finished (no text, or blanks left to fill)",
                    add_hours(doc.entered_at, hours),
                )
            )
            continue
        if not info.authored:
            continue
        latest = info.latest
        if latest.signed_at and latest.signed_by_id == doc.author_id:
            continue
        suffix = (
            "" if latest.number == 1 or doc.status == DocumentStatus.DRAFT else f"v{latest.number}"
        )
        if latest.signed_at:
            description = f"{type_name} signed by someone other than its author"
        elif suffix:
            description = f"{type_name} amendment (version {latest.number}) awaiting signature"
        else:
            description = f"{type_name} not signed by its author"
        gaps.append(
            _doc_gap(
                rule,
                K.UNSIGNED,
                info,
                description,
                add_hours(latest.created_at, hours),
                suffix=suffix,
            )
        )
    return gaps


def verbal_order(rule, ctx: Context) -> list[Gap]:
    params = parameters_of(rule)
    gaps = []
    for info in ctx.documents:
        doc = info.document
        if doc.order_mode not in VERBAL_MODES:
            continue
        hours = params["hours"]
        if hours is None:
            hours = policy_for(
                ctx.encounter.facility_id, local_date(doc.service_at)
            ).verbal_order_hours
        due = add_hours(doc.service_at, hours)
        mode = OrderMode(doc.order_mode).label.lower()
        authenticated = info.authenticated_at()
        if authenticated is None:
            gaps.append(
                _doc_gap(
                    rule,
                    K.UNSIGNED,
                    info,
                    f"{mode.capitalize()} not authenticated (limit {hours} h)",
                    due,
                )
            )
        elif authenticated > due:
            gaps.append(
                _doc_gap(
                    rule,
                    K.LATE,
                    info,
                    f"{mode.capitalize()} authenticated after the {hours} h limit",
                    due,
                )
            )
    return gaps


def _diagnosis_counts(entry, categories: set[str]) -> bool:
    resource = entry.resource or {}
    found = {entry.category} if entry.category else set()
    for category in resource.get("category") or []:
        found.update(_coded(category))
    if not found & categories:
        return False
    verification = set(_coded(resource.get("verificationStatus")))
    return not verification & {"entered-in-error", "refuted"}


def final_diagnosis(rule, ctx: Context) -> list[Gap]:
    params = parameters_of(rule)
    if not ctx.discharged:
        return []
    categories = set(params["categories"])
    if any(_diagnosis_counts(entry, categories) for entry in ctx.conditions):
        return []
    hours = params["hours_after_discharge"]
    return [
        _missing(
            rule,
            ctx,
            f"Final diagnosis not recorded (due {hours} h after discharge)",
            add_hours(ctx.encounter.ended_at, hours),
        )
    ]


EVALUATORS: dict[str, Callable[[CompletionRule, Context], list[Gap]]] = {
    RuleKind.HISTORY_PHYSICAL: history_physical,
    RuleKind.HP_UPDATE: hp_update,
    RuleKind.HP_BEFORE_PROCEDURE: hp_before_procedure,
    RuleKind.OPERATIVE_REPORT: operative_report,
    RuleKind.DISCHARGE_SUMMARY: discharge_summary,
    RuleKind.AUTHENTICATION: authentication,
    RuleKind.VERBAL_ORDER: verbal_order,
    RuleKind.FINAL_DIAGNOSIS: final_diagnosis,
    RuleKind.REQUIRED_DOCUMENT: required_document,
}


def evaluate(rules: list[CompletionRule], ctx: Context) -> list[Gap]:
    """Every gap the rules find in the record, one per key."""
    ctx.kinds = {rule.kind for rule in rules}
    gaps: dict[str, Gap] = {}
    for rule in rules:
        for gap in EVALUATORS[rule.kind](rule, ctx):
            gaps.setdefault(gap.key, gap)
    return list(gaps.values())
