"""Code sets: the small API every part of coding uses to read a code.

Codes are stored upper case without the dot (``E119``); people type ``e11.9``,
``E11.9`` or `` e119 `` and mean the same code, so every entry point normalises first
(:func:`normalise`) and every screen shows :func:`dotted`. A code's validity is by
federal fiscal year (1 October to 30 September, :func:`fiscal_year`); ``Code.fiscal_years``
lists the years it is valid in, and ``notes["valid_from"]`` holds an April start date
for the few codes that arrive mid-year. The tables are filled by ``coding.codesets``
(``recordroom codes load``).

These are reference tables (public CMS/CDC code sets, or a licensed CPT file): no
patient data, so reading them needs no access check here; the look-up screen checks
``coding.look_up_codes`` (``coding.lookup``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from coding.models import Code, CodeSystem

ICD10CM_FORMAT = re.compile(r"^[A-Z][0-9][0-9A-Z]([0-9A-Z]{1,4})?$")
ICD10PCS_FORMAT = re.compile(r"^[0-9A-HJ-NP-Z]{7}$")
HCPCS_FORMAT = re.compile(r"^[A-Z][0-9]{4}$")
CPT_FORMAT = re.compile(r"^[0-9]{4}[0-9FT]$")
FORMATS = {
    CodeSystem.ICD10CM: ICD10CM_FORMAT,
    CodeSystem.ICD10PCS: ICD10PCS_FORMAT,
    CodeSystem.HCPCS: HCPCS_FORMAT,
    CodeSystem.CPT: CPT_FORMAT,
}
FORMAT_HELP = {
    CodeSystem.ICD10CM: "3 to 7 characters: a letter, a digit, then digits or letters "
    "(e.g. E11.9, S62.5X0A)",
    CodeSystem.ICD10PCS: "exactly 7 characters, digits and letters other than I and O "
    "(e.g. 0DTJ4ZZ)",
    CodeSystem.HCPCS: "a letter and 4 digits (e.g. J1100)",
    CodeSystem.CPT: "5 digits; Category II ends in F, Category III in T (e.g. 99213)",
}
SYSTEM_NAMES = dict(CodeSystem.choices)
_STRIP = re.compile(r"[\s.]")


def normalise(code) -> str:
    """``e11.9``, ``E11.9``, `` e119 `` → ``E119``: upper case, no dot, no spaces."""
    return _STRIP.sub("", str(code or "")).upper()


def dotted(code: str, system: str = CodeSystem.ICD10CM) -> str:
    """The display form: ICD-10-CM has a dot after the third character (``E11.9``);
    other systems are shown as stored."""
    code = normalise(code) if system == CodeSystem.ICD10CM else str(code or "")
    if system == CodeSystem.ICD10CM and len(code) > 3 and "-" not in code:
        return f"{code[:3]}.{code[3:]}"
    return code


def fiscal_year(day: dt.date | dt.datetime) -> int:
    """The federal fiscal year of a date: FY2027 runs 1 October 2026 – 30 September 2027."""
    return day.year + 1 if day.month >= 10 else day.year


def fiscal_year_start(year: int) -> dt.date:
    return dt.date(year - 1, 10, 1)


def fiscal_year_end(year: int) -> dt.date:
    return dt.date(year, 9, 30)


def well_formed(system: str, code: str) -> bool:
    """Whether ``code`` (already normalised) has the shape of a code of ``system``."""
    pattern = FORMATS.get(system)
    return bool(pattern and pattern.match(code))


def format_problem(system: str, code) -> str:
    """A clear message when ``code`` cannot be a code of ``system``; ``""`` when the
    shape is right (whether it exists is :func:`get_code`'s question)."""
    value = normalise(code)
    name = SYSTEM_NAMES.get(system, system)
    if system not in FORMATS:
        return f"Unknown code system {system!r}."
    if not value:
        return f"Enter {_a(name)} code."
    if well_formed(system, value):
        return ""
    if system == CodeSystem.ICD10PCS and ("I" in value or "O" in value) and len(value) == 7:
        return f"{value} is not an ICD-10-PCS code: the letters I and O are never used."
    shown = value if len(value) <= 12 else value[:12] + "…"
    return f"{shown} is not {_a(name)} code: {FORMAT_HELP[system]}."


def _a(name: str) -> str:
    """``an ICD-10-CM``, ``a CPT``, ``a HCPCS Level II``."""
    return f"an {name}" if name.startswith("ICD") else f"a {name}"


def get_code(system: str, code) -> Code | None:
    """The stored code (any form of input), or ``None`` when it is not in the set."""
    value = normalise(code)
    if not well_formed(system, value):
        return None
    return Code.objects.filter(system=system, code=value).first()


def is_loaded(system: str) -> bool:
    return Code.objects.filter(system=system).exists()


def lineage(system: str, code) -> list[Code]:
    """The code and its ancestors (category, block, chapter), nearest first."""
    out: list[Code] = []
    current = get_code(system, code)
    seen: set[str] = set()
    while current is not None and current.code not in seen:
        seen.add(current.code)
        out.append(current)
        if not current.parent:
            break
        current = Code.objects.filter(system=system, code=current.parent).first()
    return out


def valid_from(found: Code) -> dt.date | None:
    """The first day a code is valid (an April update starts mid-year)."""
    value = (found.notes or {}).get("valid_from")
    if value:
        return dt.date.fromisoformat(value)
    if found.first_fiscal_year:
        return fiscal_year_start(found.first_fiscal_year)
    return None


def valid_on(found: Code | None, day: dt.date) -> bool:
    """Whether a stored code may be reported on ``day``: billable, and valid in the
    day's fiscal year (not before an April start or a HCPCS code's added date, not after
    a HCPCS termination date)."""
    if found is None or not found.billable:
        return False
    if fiscal_year(day) not in (found.fiscal_years or []):
        return False
    notes = found.notes or {}
    start, until = notes.get("valid_from"), notes.get("valid_until")
    if start and day < dt.date.fromisoformat(start):
        return False
    return not (until and day > dt.date.fromisoformat(until))


def is_valid_on(system: str, code, day: dt.date) -> bool:
    """Whether ``code`` is a billable code of ``system`` valid on the date of service
    (or discharge) ``day``."""
    return valid_on(get_code(system, code), day)


@dataclass(frozen=True)
class CodeCheck:
    """The answer to "can I report this code on this date?" with a message for people."""

    system: str
    code: str
    found: Code | None
    ok: bool
    message: str

    @property
    def display(self) -> str:
        return dotted(self.code, self.system)


def check_code(system: str, code, day: dt.date | None = None) -> CodeCheck:
    """Normalise, check the shape, find the code, and (with ``day``) its validity."""
    value = normalise(code)
    problem = format_problem(system, value)
    if problem:
        return CodeCheck(system, value, None, False, problem)
    found = Code.objects.filter(system=system, code=value).first()
    shown = dotted(value, system)
    name = SYSTEM_NAMES[system]
    if found is None:
        if not is_loaded(system):
            message = f"The {name} code set is not loaded (recordroom codes load)."
        else:
            message = f"{shown} is not {_a(name)} code."
        return CodeCheck(system, value, None, False, message)
    if not found.billable:
        return CodeCheck(
            system, value, found, False, f"{shown} is a header: choose a more specific code."
        )
    if day is not None and not valid_on(found, day):
        when = validity_text(found, day)
        return CodeCheck(
            system,
            value,
            found,
            False,
            f"{shown} is not valid on {day.isoformat()} (FY{fiscal_year(day)}); valid {when}.",
        )
    return CodeCheck(system, value, found, True, "")


def validity_text(found: Code, day: dt.date | None = None) -> str:
    """When a stored code is valid, for a message: its fiscal years, or — within the
    day's fiscal year — from its first day and until its termination date."""
    years = found.fiscal_years or []
    notes = found.notes or {}
    start, until = notes.get("valid_from"), notes.get("valid_until")
    if day is not None and fiscal_year(day) in years and (start or until):
        bounds = (start and f"from {start}", until and f"until {until}")
        return " ".join([f"FY{fiscal_year(day)}", *(b for b in bounds if b)])
    return years_text(years) if years else "no fiscal year loaded"


def years_text(years: list[int]) -> str:
    years = sorted(years)
    runs: list[list[int]] = []
    for year in years:
        if runs and year == runs[-1][-1] + 1:
            runs[-1].append(year)
        else:
            runs.append([year])
    parts = [f"FY{r[0]}" if len(r) == 1 else f"FY{r[0]}–FY{r[-1]}" for r in runs]
    return ", ".join(parts)
