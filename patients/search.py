"""Finding people in the master patient index: the search screen and the duplicate
check that comes before every registration.

Both work the same way, so that they stay fast on millions of patients: a few indexed
queries gather candidate patients (exact and prefix name keys, Soundex codes, dates of
birth, identifiers and their keyed hashes, phone digits), then each candidate is scored
in Python with simple points whose reasons are shown to the user. Nothing here is a
black box: every point has a sentence the technician can check.

Both are audited as searches. The audit row names which fields were searched and which
patients were shown (their public ids), never what was typed.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q

from accounts.access import require_permission
from audit.actions import record_event
from audit.models import Action, Purpose
from patients import matching, nicknames
from patients.access import (
    default_purpose,
    facility_ids,
    may_open_restricted,
)
from patients.models import (
    ENCRYPTED_KINDS,
    IdentifierKind,
    NameUse,
    Patient,
    PatientAddress,
    PatientIdentifier,
    PatientName,
    PatientTelecom,
    Sex,
    TelecomSystem,
)
from patients.permissions import PatientsPermission
from recordroom import clock, crypto

# Candidates gathered per search: enough for any name a department would page through;
# a broader search is asked to narrow down.
CANDIDATE_CAP = 500
PAGE_SIZE = 25
MAX_NAME_TOKENS = 4

# --- understanding what was typed -----------------------------------------------------

_DATE_ISO = re.compile(r"(?<![\d/-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d/-])")
_DATE_US = re.compile(r"(?<![\d/-])(\d{1,2})/(\d{1,2})/(\d{4})(?![\d/-])")
_SSN_SHAPE = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
_PHONE_SHAPE = re.compile(
    r"(?<![\w-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w-])"
)
_EMAIL_SHAPE = re.compile(r"[^@\s<>,]+@[^@\s<>,]+\.[^@\s<>,]+")
_IDENTIFIER_TOKEN = re.compile(r"^[A-Za-z0-9\-]{2,40}$")


class QueryError(ValueError):
    """What was typed cannot be searched; the message says why, for the user."""


@dataclass
class ParsedQuery:
    """A search broken into terms. A patient is found when every term matches; names
    and dates of birth match loosely, identifiers and phones exactly."""

    family: str = ""  # normalised; set when the user said which part is the family name
    given: str = ""
    tokens: list[str] = field(default_factory=list)  # name words in any order
    birth_date: dt.date | None = None
    phones: list[str] = field(default_factory=list)
    identifiers: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)

    @property
    def has_name(self) -> bool:
        return bool(self.family or self.given or self.tokens)

    @property
    def is_empty(self) -> bool:
        return not (
            self.has_name or self.birth_date or self.phones or self.identifiers or self.emails
        )

    def fields_used(self) -> list[str]:
        """What kinds of thing were searched: for the audit trail, never the values."""
        used = []
        if self.has_name:
            used.append("name")
        if self.birth_date:
            used.append("birth_date")
        if self.phones:
            used.append("phone")
        if self.emails:
            used.append("email")
        if self.identifiers:
            used.append("identifier")
        return used


def _real_date(year: int, month: int, day: int, typed: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise QueryError(f"{typed} is not a real date.") from None


def parse_date(text: str) -> dt.date | None:
    """A date of birth written 1968-04-12 or 04/12/1968 (US order), or None."""
    text = text.strip()
    match = _DATE_ISO.fullmatch(text)
    if match:
        return _real_date(*(int(g) for g in match.groups()), typed=text)
    match = _DATE_US.fullmatch(text)
    if match:
        month, day, year = (int(g) for g in match.groups())
        return _real_date(year, month, day, typed=text)
    return None


def _name_tokens(text: str) -> list[str]:
    return [t for t in (matching.normalize_name(w) for w in text.split()) if t]


def parse_query(
    text: str = "",
    *,
    family: str = "",
    given: str = "",
    birth_date: dt.date | None = None,
    phone: str = "",
    identifier: str = "",
) -> ParsedQuery:
    """Understand a search box ("smith, john 1968-04-12", "RG0000123", "(413) 555-0142")
    plus the optional separate fields. Raises :class:`QueryError` for impossible input."""
    query = ParsedQuery(birth_date=birth_date)
    rest = text or ""

    def take(pattern, handle):
        nonlocal rest
        for match in pattern.finditer(rest):
            handle(match.group(0))
        rest = pattern.sub(" ", rest)

    def on_date(value: str) -> None:
        day = parse_date(value)
        if query.birth_date and day != query.birth_date:
            raise QueryError("Two different dates of birth were given.")
        query.birth_date = day

    take(_EMAIL_SHAPE, lambda v: query.emails.append(v.lower()))
    take(_DATE_ISO, on_date)
    take(_DATE_US, on_date)
    take(_SSN_SHAPE, lambda v: query.identifiers.append(matching.normalize_identifier(v)))
    take(_PHONE_SHAPE, lambda v: query.phones.append(matching.normalize_phone(v)))
    if "," in rest:
        before, _, after = rest.partition(",")
        query.family = "".join(_name_tokens(before))
        rest = after
        given_words = []
        for word in rest.split():
            if any(ch.isdigit() for ch in word):
                given_words.append(" ")  # handled below as an identifier
            else:
                given_words.append(word)
        given_tokens = _name_tokens(" ".join(given_words))
        query.given = given_tokens[0] if given_tokens else ""
        rest = " ".join(w for w in rest.split() if any(ch.isdigit() for ch in w))
    for word in rest.split():
        if any(ch.isdigit() for ch in word):
            value = matching.normalize_identifier(word)
            if not _IDENTIFIER_TOKEN.match(value):
                raise QueryError("Identifiers are letters, digits and hyphens only.")
            query.identifiers.append(value)
            if len(matching.normalize_phone(value)) == 10 and value.isdigit():
                query.phones.append(matching.normalize_phone(value))
        else:
            query.tokens.extend(_name_tokens(word))
    if family.strip():
        query.family = matching.normalize_name(family)
    if given.strip():
        query.given = (_name_tokens(given) or [""])[0]
    if query.family or query.given:
        # Explicit parts take the place of free words; extra words are ignored.
        if not query.family and query.tokens:
            query.family = query.tokens[0]
        query.tokens = []
    query.tokens = query.tokens[:MAX_NAME_TOKENS]
    if phone.strip():
        digits = matching.normalize_phone(phone)
        if len(digits) != 10:
            raise QueryError("A phone number has 10 digits.")
        query.phones.append(digits)
    if identifier.strip():
        value = matching.normalize_identifier(identifier)
        if not _IDENTIFIER_TOKEN.match(value):
            raise QueryError("Identifiers are letters, digits and hyphens only.")
        query.identifiers.append(value)
    if query.birth_date and query.birth_date > clock.now().date():
        raise QueryError("A date of birth cannot be in the future.")
    query.phones = list(dict.fromkeys(query.phones))
    query.identifiers = list(dict.fromkeys(query.identifiers))
    return query


# --- matching helpers -------------------------------------------------------------------


def near_birth_dates(day: dt.date) -> dict[dt.date, str]:
    """Dates a clerk may have meant instead of ``day``: one digit typed wrong, two
    neighbouring digits transposed, or the month and the day swapped. Maps each date to
    that reason."""
    digits = day.strftime("%Y%m%d")
    near: dict[dt.date, str] = {}
    for position, typed in enumerate(digits):
        for other in "0123456789":
            if other == typed:
                continue
            text = digits[:position] + other + digits[position + 1 :]
            try:
                candidate = dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
            except ValueError:
                continue
            if 1850 <= candidate.year <= 2200:
                near[candidate] = "one digit off"
    for position in range(len(digits) - 1):
        a, b = digits[position], digits[position + 1]
        if a == b:
            continue
        text = digits[:position] + b + a + digits[position + 2 :]
        try:
            candidate = dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            continue
        if 1850 <= candidate.year <= 2200:
            near.setdefault(candidate, "two digits transposed")
    if day.day <= 12 and day.day != day.month:
        near[dt.date(day.year, day.day, day.month)] = "month and day swapped"
    return near


def _prefix_q(column: str, prefix: str) -> Q:
    """``column`` starts with ``prefix`` (lower-case a–z), as a range both databases
    answer from an ordinary B-tree index."""
    q = Q(**{f"{column}__gte": prefix})
    upper = prefix.rstrip("z")
    if upper:
        q &= Q(**{f"{column}__lt": upper[:-1] + chr(ord(upper[-1]) + 1)})
    return q


def typing_slips(a: str, b: str, limit: int = 2) -> int:
    """Letters dropped, added, replaced or swapped with a neighbour to turn ``a`` into
    ``b`` (optimal string alignment distance), or ``limit + 1`` when more than ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, previous2[j - 2] + 1)
            current.append(value)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)


def _slipped(typed: str, on_file: str) -> bool:
    """A misspelling beyond what Soundex catches: same first letter, at most one slip in
    a short name or two in a long one."""
    if len(typed) < 4 or typed[:1] != on_file[:1]:
        return False
    return typing_slips(typed, on_file) <= (1 if len(typed) < 7 else 2)


@dataclass(frozen=True)
class NameRow:
    patient_id: int
    use: str
    family_norm: str
    given_norm: str
    family_phonetic: str
    given_phonetic: str


NAME_ROW_FIELDS = (
    "patient_id",
    "use",
    "family_norm",
    "given_norm",
    "family_phonetic",
    "given_phonetic",
)


def _family_match(typed: str, row: NameRow) -> tuple[int, str]:
    if not typed:
        return 0, ""
    if row.family_norm == typed:
        return 30, "family name"
    if row.family_norm.startswith(typed):
        return 22, "family name starts with what was typed"
    if len(typed) >= 3 and row.family_phonetic == matching.phonetic(typed):
        return 15, "family name sounds alike"
    if _slipped(typed, row.family_norm):
        return 12, "family name differs by a typing slip"
    return 0, ""


def _given_match(typed: str, row: NameRow) -> tuple[int, str]:
    if not typed:
        return 0, ""
    if row.given_norm == typed:
        return 20, "given name"
    if len(typed) == 1 and row.given_norm.startswith(typed):
        return 8, "given-name initial"
    if row.given_norm.startswith(typed):
        return 15, "given name starts with what was typed"
    if nicknames.are_nicknames(typed, row.given_norm):
        return 14, "given name is a nickname form"
    if len(typed) >= 2 and row.given_phonetic == matching.phonetic(typed):
        return 10, "given name sounds alike"
    if _slipped(typed, row.given_norm):
        return 8, "given name differs by a typing slip"
    return 0, ""


def _name_score(query: ParsedQuery, rows: list[NameRow]) -> tuple[int, list[str]]:
    """The best match of the typed name against any of the patient's names."""
    best: tuple[int, list[str]] = (0, [])
    for row in rows:
        options: list[tuple[int, list[str]]] = []
        if query.family or query.given:
            pairs = [(query.family, query.given, False)]
            if query.family and query.given:
                pairs.append((query.given, query.family, True))
        elif len(query.tokens) == 1:
            pairs = []
            (token,) = query.tokens
            points, why = _family_match(token, row)
            if points:
                options.append((points, [why]))
            points, why = _given_match(token, row)
            if points:
                options.append((points, [why]))
        else:
            tokens = query.tokens
            pairs = [
                (tokens[i], tokens[j], False)
                for i in range(len(tokens))
                for j in range(len(tokens))
                if i != j
            ]
        for family, given, transposed in pairs:
            f_points, f_why = _family_match(family, row)
            if family and not f_points:
                continue
            g_points, g_why = _given_match(given, row)
            if given and not g_points:
                continue
            reasons = [r for r in (f_why, g_why) if r]
            points = f_points + g_points
            if transposed:
                points -= 5
                reasons.append("given and family names transposed")
            options.append((points, reasons))
        for points, reasons in options:
            if row.use != NameUse.OFFICIAL:
                points -= 3
                reasons = [*reasons, f"{NameUse(row.use).label.lower()} on file"]
            if points > best[0]:
                best = (points, reasons)
    return best


def _name_gather_q(query: ParsedQuery, broad: int) -> Q:
    """Name rows worth scoring. ``broad`` 0 is exact keys only, 1 adds prefixes and
    nicknames, 2 adds sound-alike (Soundex) keys.

    The condition is an OR of simple ANDs, each led by one indexed key, so SQLite can
    answer it term by term from its indexes (its OR optimisation) and PostgreSQL with a
    bitmap OR; nested ORs inside ANDs would make both read the whole name table."""

    def family_keys(typed: str) -> list[Q]:
        keys = [_prefix_q("family_norm", typed) if broad >= 1 else Q(family_norm=typed)]
        if broad >= 2 and len(typed) >= 3:
            keys.append(Q(family_phonetic=matching.phonetic(typed)))
        return keys

    def given_keys(typed: str, *, beside_family: bool = False) -> list[Q]:
        # Beside a family key, a given-name prefix is a LIKE, which SQLite cannot serve
        # from an index: that keeps it from reading every "Jo…" to find one "Smith, Jo".
        prefix = Q(given_norm__startswith=typed) if beside_family else None
        if broad >= 1 or len(typed) == 1:
            keys = [prefix or _prefix_q("given_norm", typed)]
        else:
            keys = [Q(given_norm=typed)]
        if broad >= 1 and nicknames.variants(typed):
            keys.append(Q(given_norm__in=sorted(nicknames.variants(typed))))
        if broad >= 2 and len(typed) >= 2:
            keys.append(Q(given_phonetic=matching.phonetic(typed)))
        return keys

    def pairs(family: str, given: str) -> list[Q]:
        terms = [f & g for f in family_keys(family) for g in given_keys(given, beside_family=True)]
        if broad >= 2:
            # A typing slip that changes the Soundex code: one part as typed, the other
            # by its first letter (the (given, family) index serves both), scored later.
            terms.append(Q(given_norm=given) & _prefix_q("family_norm", family[:1]))
            terms.append(Q(family_norm=family) & Q(given_norm__startswith=given[:1]))
        return terms

    terms: list[Q] = []
    if query.family and query.given:
        # The user said which part is which: no transposed pair to look for.
        terms = pairs(query.family, query.given)
    elif query.family:
        terms = family_keys(query.family)
    elif query.given:
        terms = given_keys(query.given)
    elif len(query.tokens) == 1:
        terms = family_keys(query.tokens[0]) + given_keys(query.tokens[0])
    else:
        for i, family in enumerate(query.tokens):
            for j, given in enumerate(query.tokens):
                if i != j:
                    terms += pairs(family, given)
    q = Q(pk__in=[])
    for term in terms:
        q |= term
    return q


def _visible_q(user, outer: str = "patient_id") -> Exists:
    """The row's patient has an MRN at one of the user's facilities: the rule of
    ``patients.access.patients_visible_to``, written as a correlated EXISTS so both
    databases probe the patient's few identifiers instead of joining every MRN of the
    facility (SQLite, without statistics, drives that join from the facility index)."""
    return Exists(
        PatientIdentifier.objects.filter(
            patient_id=OuterRef(outer),
            kind=IdentifierKind.MRN,
            facility_id__in=facility_ids(user),
        )
    )


def visible_patients(user):
    """Patients the user may find: the same set as ``patients_visible_to(user)``."""
    return Patient.objects.filter(merged_into__isnull=True).filter(_visible_q(user, "pk"))


def _identifier_q(values: list[str]) -> Q:
    hashes = [crypto.blind_index(kind, value) for value in values for kind in ENCRYPTED_KINDS]
    return Q(value__in=values) | Q(value_hash__in=hashes)


def _identifier_label(kind: str) -> str:
    if kind == IdentifierKind.MRN:
        return "MRN"
    if kind == IdentifierKind.SSN:
        return "SSN"
    return IdentifierKind(kind).label


# --- the search screen --------------------------------------------------------------------


@dataclass
class SearchResult:
    public_id: str
    display_name: str
    birth_date: dt.date
    age: int
    sex: str  # empty when hidden
    mrns: list[str]
    restricted: bool
    may_open: bool
    deceased: bool
    score: int
    reasons: list[str]


@dataclass
class SearchPage:
    results: list[SearchResult]
    count: int
    capped: bool
    page: int
    pages: int
    fields: list[str]

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first_index(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1 if self.results else 0

    @property
    def last_index(self) -> int:
        return (self.page - 1) * PAGE_SIZE + len(self.results)


def age_on(birth_date: dt.date, today: dt.date) -> int:
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )


@dataclass
class _Scored:
    patient_id: int
    score: int = 0
    reasons: list[str] = field(default_factory=list)
    terms_met: set[str] = field(default_factory=set)


def _gather_names(query: ParsedQuery, user, birth_dates) -> tuple[list[NameRow], bool]:
    """Name rows for the typed name, from the broadest key set that stays under the cap."""
    capped = False
    rows: list[NameRow] = []
    for broad in (2, 1, 0):
        # Not scoped to the user's facilities here: that is checked once, on the
        # candidates, with their MRNs (a correlated probe per name row costs more).
        names = PatientName.objects.filter(_name_gather_q(query, broad))
        if birth_dates:
            names = names.filter(patient__birth_date__in=birth_dates)
        rows = [NameRow(*r) for r in names.values_list(*NAME_ROW_FIELDS)[: CANDIDATE_CAP * 2 + 1]]
        capped = len({r.patient_id for r in rows}) > CANDIDATE_CAP or len(rows) > CANDIDATE_CAP * 2
        if not capped:
            break
    return rows, capped


def _score_search(
    query: ParsedQuery, user
) -> tuple[list[_Scored], dict[int, dict], dict[int, list[str]], bool]:
    near = near_birth_dates(query.birth_date) if query.birth_date else {}
    scored: dict[int, _Scored] = {}

    def entry(pid: int) -> _Scored:
        return scored.setdefault(pid, _Scored(pid))

    capped = False
    required: set[str] = set()
    # Identifiers, phones and e-mail addresses are looked up exactly; together they are
    # one term, met by any of them (a bare 10-digit number may be either kind).
    exact_lookup = bool(query.identifiers or query.phones or query.emails)
    if exact_lookup:
        required.add("exact")
    if query.identifiers:
        rows = PatientIdentifier.objects.filter(_identifier_q(query.identifiers)).values_list(
            "patient_id", "kind", "active"
        )[: CANDIDATE_CAP + 1]
        for pid, kind, active in rows:
            e = entry(pid)
            e.score += (100 if kind == IdentifierKind.MRN else 90) if active else 60
            e.reasons.append(_identifier_label(kind) + ("" if active else " (no longer in use)"))
            e.terms_met.add("exact")
    if query.phones or query.emails:
        telecoms = PatientTelecom.objects.filter(
            Q(system=TelecomSystem.PHONE, normalized__in=query.phones)
            | Q(system=TelecomSystem.EMAIL, normalized__in=query.emails)
        ).values_list("patient_id", "system", "active")[: CANDIDATE_CAP + 1]
        for pid, system, active in telecoms:
            e = entry(pid)
            e.score += 50 if active else 30
            e.reasons.append(
                ("phone" if system == TelecomSystem.PHONE else "e-mail")
                + ("" if active else " (no longer in use)")
            )
            e.terms_met.add("exact")
    name_rows: list[NameRow] = []
    if query.has_name:
        required.add("name")
        if exact_lookup:
            name_rows = [
                NameRow(*r)
                for r in PatientName.objects.filter(patient_id__in=list(scored)).values_list(
                    *NAME_ROW_FIELDS
                )
            ]
        else:
            name_rows, capped = _gather_names(
                query, user, [query.birth_date, *near] if query.birth_date else None
            )
        by_patient: dict[int, list[NameRow]] = {}
        for row in name_rows:
            by_patient.setdefault(row.patient_id, []).append(row)
        for pid, rows in by_patient.items():
            points, reasons = _name_score(query, rows)
            if points:
                e = entry(pid)
                e.score += points
                e.reasons.extend(reasons)
                e.terms_met.add("name")
    if query.birth_date:
        required.add("birth_date")
        if not exact_lookup and not query.has_name:
            pids = (
                visible_patients(user)
                .filter(birth_date=query.birth_date)
                .order_by("family_name", "given_name")
                .values_list("pk", flat=True)
            )
            for pid in pids[: CANDIDATE_CAP + 1]:
                entry(pid)
            capped = len(scored) > CANDIDATE_CAP
    ranked = sorted(scored.values(), key=lambda e: -e.score)[:CANDIDATE_CAP]
    visible, mrns = _mrns_at_users_facilities(user, [e.patient_id for e in ranked])
    core = {
        row["pk"]: row
        for row in Patient.objects.filter(pk__in=visible, merged_into__isnull=True).values(
            "pk",
            "public_id",
            "family_name",
            "given_name",
            "middle_name",
            "suffix",
            "birth_date",
            "sex_at_birth",
            "restriction",
            "deceased_at",
        )
    }
    if query.birth_date:
        for pid, row in core.items():
            e = scored[pid]
            if row["birth_date"] == query.birth_date:
                e.score += 40
                e.reasons.append("date of birth")
                e.terms_met.add("birth_date")
            elif query.has_name and row["birth_date"] in near:
                e.score += 12
                e.reasons.append(f"date of birth {near[row['birth_date']]}")
                e.terms_met.add("birth_date")
    results = [
        e for pid, e in scored.items() if pid in core and required <= e.terms_met and e.score > 0
    ]
    results.sort(
        key=lambda e: (
            -e.score,
            core[e.patient_id]["family_name"].lower(),
            core[e.patient_id]["given_name"].lower(),
            core[e.patient_id]["birth_date"],
        )
    )
    return results, core, mrns, capped


def _mrns_at_users_facilities(user, patient_ids: list[int]) -> tuple[set[int], dict]:
    """Which of these patients the user may find (an MRN at one of the user's
    facilities: the rule of ``patients.access.patients_visible_to``) and their active
    MRNs there. Looked up by patient, a handful of rows each, and filtered here, so no
    database walks a facility's whole MRN index."""
    facilities = facility_ids(user)
    visible: set[int] = set()
    mrns: dict[int, list[str]] = {}
    rows = (
        PatientIdentifier.objects.filter(patient_id__in=patient_ids, kind=IdentifierKind.MRN)
        .order_by("facility_id", "pk")
        .values_list("patient_id", "value", "facility_id", "active")
    )
    for pid, value, facility_id, active in rows:
        if facility_id in facilities:
            visible.add(pid)
            if active:
                mrns.setdefault(pid, []).append(value)
    return visible, mrns


def _restricted_openable(user, patient_ids: list[int]) -> set[int]:
    patients = Patient.objects.filter(pk__in=patient_ids)
    return {p.pk for p in patients if may_open_restricted(user, p)}


def search_patients(user, query: ParsedQuery, page: int = 1) -> SearchPage:
    """One page of the patients at the user's facilities who match every term of
    ``query``, best first. Restricted patients are listed and marked; for those the user
    may not open, only name, date of birth and MRN are given."""
    purpose = default_purpose(user)
    require_permission(
        user,
        PatientsPermission.READ_DEMOGRAPHICS,
        action=Action.SEARCH,
        purpose=purpose,
        object_type="patient",
    )
    if query.is_empty:
        return SearchPage([], 0, False, 1, 1, [])
    matches, core, mrns, capped = _score_search(query, user)
    count = len(matches)
    pages = max(1, math.ceil(count / PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = matches[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    ids = [m.patient_id for m in shown]
    openable = _restricted_openable(user, [pid for pid in ids if core[pid]["restriction"]])
    today = clock.now().date()
    results = []
    for match in shown:
        row = core[match.patient_id]
        restricted = bool(row["restriction"])
        may_open = not restricted or match.patient_id in openable
        given = " ".join(p for p in (row["given_name"], row["middle_name"]) if p)
        results.append(
            SearchResult(
                public_id=str(row["public_id"]),
                display_name=f"{row['family_name'].upper()}, {given} {row['suffix']}".strip(),
                birth_date=row["birth_date"],
                age=age_on(row["birth_date"], today),
                sex=Sex(row["sex_at_birth"]).label if may_open else "",
                mrns=mrns.get(match.patient_id, []),
                restricted=restricted,
                may_open=may_open,
                deceased=row["deceased_at"] is not None and may_open,
                score=match.score,
                reasons=list(dict.fromkeys(match.reasons)) if may_open else [],
            )
        )
    record_event(
        user,
        Action.SEARCH,
        purpose=purpose,
        object_type="patient",
        detail={
            "fields": query.fields_used(),
            "count": count,
            "page": page,
            "shown": [r.public_id for r in results],
        },
    )
    return SearchPage(results, count, capped, page, pages, query.fields_used())


# --- the duplicate check before registration -------------------------------------------------

LIKELY = 70
POSSIBLE = 50
MAX_CANDIDATES = 10
# A national identifier belongs to one person; a payer member id may be a family's.
_IDENTIFIER_POINTS = {
    IdentifierKind.SSN: 60,
    IdentifierKind.DRIVERS_LICENSE: 50,
    IdentifierKind.PASSPORT: 50,
    IdentifierKind.MEDICARE: 50,
}


@dataclass
class Reason:
    text: str
    points: int


@dataclass
class Candidate:
    public_id: str
    display_name: str
    birth_date: dt.date
    age: int
    sex: str
    mrns: list[str]
    restricted: bool
    may_open: bool
    score: int
    reasons: list[Reason]

    @property
    def level(self) -> str:
        return "likely" if self.score >= LIKELY else "possible"


def _typed_names(data) -> list[tuple[str, str, str]]:
    """(family, given, label) of every name typed for the new person."""
    names = [(data.name.family, data.name.given, "")]
    names += [(n.family, n.given, " (a previous name typed)") for n in data.other_names]
    return [
        (matching.normalize_name(f), matching.normalize_name(g), label)
        for f, g, label in names
        if matching.normalize_name(f)
    ]


def _candidate_name_reasons(data, rows: list[NameRow]) -> list[Reason]:
    """The best explanation of how the typed names resemble the candidate's names."""
    best: list[Reason] = []
    for family, given, typed_label in _typed_names(data):
        for row in rows:
            on_file = (
                ""
                if row.use == NameUse.OFFICIAL
                else f" ({NameUse(row.use).label.lower()} on file)"
            )
            suffix = typed_label + on_file
            reasons: list[Reason] = []
            if row.family_norm == family:
                reasons.append(Reason("Same family name" + suffix, 25))
            elif row.family_phonetic == matching.phonetic(family):
                reasons.append(
                    Reason(f"Family name sounds alike (Soundex {row.family_phonetic})" + suffix, 15)
                )
            elif _slipped(family, row.family_norm):
                reasons.append(Reason("Family name differs by a typing slip" + suffix, 12))
            if given:
                if row.given_norm == given:
                    reasons.append(Reason("Same given name" + suffix, 20))
                elif nicknames.are_nicknames(given, row.given_norm):
                    reasons.append(
                        Reason(
                            f"Given name is a nickname form ({given.title()} / {row.given_norm.title()})"
                            + suffix,
                            15,
                        )
                    )
                elif row.given_phonetic and row.given_phonetic == matching.phonetic(given):
                    reasons.append(
                        Reason(
                            f"Given name sounds alike (Soundex {row.given_phonetic})" + suffix, 12
                        )
                    )
                elif _slipped(given, row.given_norm):
                    reasons.append(Reason("Given name differs by a typing slip" + suffix, 10))
                elif row.given_norm[:1] == given[:1]:
                    reasons.append(Reason("Same given-name initial" + suffix, 4))
            transposed = bool(given) and (
                (row.family_norm, row.given_norm) == (given, family)
                or (row.family_phonetic, row.given_phonetic)
                == (matching.phonetic(given), matching.phonetic(family))
            )
            if transposed and sum(r.points for r in reasons) < 30:
                reasons = [Reason("Given and family names transposed" + suffix, 35)]
            if sum(r.points for r in reasons) > sum(r.points for r in best):
                best = reasons
    return best


def _birth_date_reason(typed: dt.date, on_file: dt.date) -> Reason | None:
    if typed == on_file:
        return Reason("Same date of birth", 30)
    why = near_birth_dates(typed).get(on_file)
    if why:
        return Reason(f"Date of birth {why} ({on_file.isoformat()})", 15)
    return None


def find_candidates(data, user) -> list[Candidate]:
    """Patients at the user's facilities who may be the person about to be registered,
    best first, each with the reasons it was picked and their points. Only candidates
    scoring at least :data:`POSSIBLE` are returned."""
    require_permission(
        user,
        PatientsPermission.REGISTER,
        action=Action.SEARCH,
        purpose=Purpose.OPERATIONS,
        object_type="patient",
    )
    visible = _visible_q(user)
    near = near_birth_dates(data.birth_date)
    dates = [data.birth_date, *near]
    name_q = Q(pk__in=[])
    for family, given, _ in _typed_names(data):
        fam_sx = matching.phonetic(family)
        name_q |= Q(family_phonetic=fam_sx, patient__birth_date__in=dates)
        if given:
            giv_sx = matching.phonetic(given)
            variants = sorted(nicknames.variants(given))
            name_q |= Q(family_phonetic=fam_sx, given_phonetic=giv_sx)
            name_q |= Q(family_phonetic=giv_sx, given_phonetic=fam_sx)
            name_q |= Q(given_phonetic=giv_sx, patient__birth_date__in=dates)
            if variants:
                name_q |= Q(family_phonetic=fam_sx, given_norm__in=variants)
                name_q |= Q(given_norm__in=variants, patient__birth_date__in=dates)
    ids = set(
        PatientName.objects.filter(name_q)
        .filter(visible)
        .values_list("patient_id", flat=True)[:CANDIDATE_CAP]
    )
    phones = [
        matching.normalize_phone(t.value) for t in data.telecoms if t.system == TelecomSystem.PHONE
    ]
    emails = [t.value.strip().lower() for t in data.telecoms if t.system == TelecomSystem.EMAIL]
    if phones or emails:
        ids |= set(
            PatientTelecom.objects.filter(
                Q(system=TelecomSystem.PHONE, normalized__in=phones)
                | Q(system=TelecomSystem.EMAIL, normalized__in=emails)
            )
            .filter(visible)
            .values_list("patient_id", flat=True)[:CANDIDATE_CAP]
        )
    addresses = [
        (matching.normalize_address_line(a.line1), a.postal_code.strip()) for a in data.addresses
    ]
    address_q = Q(pk__in=[])
    for line, postal in addresses:
        address_q |= Q(postal_code=postal, line1_norm=line)
    if addresses:
        ids |= set(
            PatientAddress.objects.filter(address_q)
            .filter(visible)
            .values_list("patient_id", flat=True)[:CANDIDATE_CAP]
        )
    typed_ids = [
        (i.kind, matching.normalize_identifier(i.value))
        for i in data.identifiers
        if i.kind != IdentifierKind.MRN
    ]
    ident_q = Q(pk__in=[])
    for kind, value in typed_ids:
        if kind in ENCRYPTED_KINDS:
            ident_q |= Q(kind=kind, value_hash=crypto.blind_index(kind, value))
        else:
            ident_q |= Q(kind=kind, value=value)
    if typed_ids:
        ids |= set(
            PatientIdentifier.objects.filter(ident_q)
            .filter(visible)
            .values_list("patient_id", flat=True)[:CANDIDATE_CAP]
        )
    candidate_ids = list(ids)[: CANDIDATE_CAP * 2]
    core = {
        p.pk: p
        for p in visible_patients(user)
        .filter(pk__in=candidate_ids)
        .only(
            "pk",
            "public_id",
            "family_name",
            "given_name",
            "middle_name",
            "suffix",
            "birth_date",
            "sex_at_birth",
            "restriction",
        )
    }
    ids_list = list(core)
    names: dict[int, list[NameRow]] = {}
    for r in PatientName.objects.filter(patient_id__in=ids_list).values_list(*NAME_ROW_FIELDS):
        names.setdefault(r[0], []).append(NameRow(*r))
    phone_hits: dict[int, list[tuple[str, bool]]] = {}
    if phones or emails:
        for pid, system, active in PatientTelecom.objects.filter(
            Q(system=TelecomSystem.PHONE, normalized__in=phones)
            | Q(system=TelecomSystem.EMAIL, normalized__in=emails),
            patient_id__in=ids_list,
        ).values_list("patient_id", "system", "active"):
            phone_hits.setdefault(pid, []).append((system, active))
    address_hits: dict[int, list[str]] = {}
    if addresses:
        for pid, use in PatientAddress.objects.filter(
            address_q, patient_id__in=ids_list
        ).values_list("patient_id", "use"):
            address_hits.setdefault(pid, []).append(use)
    ident_hits: dict[int, list[tuple[str, bool]]] = {}
    if typed_ids:
        for pid, kind, active in PatientIdentifier.objects.filter(
            ident_q, patient_id__in=ids_list
        ).values_list("patient_id", "kind", "active"):
            ident_hits.setdefault(pid, []).append((kind, active))

    today = clock.now().date()
    scored: list[tuple[int, list[Reason]]] = []
    for pid, patient in core.items():
        reasons = _candidate_name_reasons(data, names.get(pid, []))
        dob = _birth_date_reason(data.birth_date, patient.birth_date)
        if dob:
            reasons.append(dob)
        for kind, active in dict.fromkeys(ident_hits.get(pid, [])):
            label = _identifier_label(kind)
            if active:
                reasons.append(Reason(f"Same {label}", _IDENTIFIER_POINTS.get(kind, 40)))
            else:
                reasons.append(Reason(f"Same {label} as one no longer in use", 30))
        for system, active in dict.fromkeys(phone_hits.get(pid, [])):
            what = "phone number" if system == TelecomSystem.PHONE else "e-mail address"
            reasons.append(Reason(f"Same {what}" + ("" if active else " (no longer in use)"), 15))
        for use in dict.fromkeys(address_hits.get(pid, [])):
            previous = " (a previous address)" if use == "old" else ""
            reasons.append(Reason("Same street address and ZIP code" + previous, 15))
        if data.sex_at_birth != patient.sex_at_birth and Sex.UNKNOWN not in (
            data.sex_at_birth,
            patient.sex_at_birth,
        ):
            reasons.append(Reason("Sex at birth differs", -10))
        score = sum(r.points for r in reasons)
        if score >= POSSIBLE:
            scored.append((pid, reasons))
    scored.sort(key=lambda item: -sum(r.points for r in item[1]))
    scored = scored[:MAX_CANDIDATES]
    shown_ids = [pid for pid, _ in scored]
    _, mrns = _mrns_at_users_facilities(user, shown_ids)
    openable = _restricted_openable(user, [pid for pid in shown_ids if core[pid].restriction])
    candidates = []
    for pid, reasons in scored:
        patient = core[pid]
        may_open = not patient.restriction or pid in openable
        candidates.append(
            Candidate(
                public_id=str(patient.public_id),
                display_name=patient.display_name,
                birth_date=patient.birth_date,
                age=age_on(patient.birth_date, today),
                sex=Sex(patient.sex_at_birth).label if may_open else "",
                mrns=mrns.get(pid, []),
                restricted=bool(patient.restriction),
                may_open=may_open,
                score=sum(r.points for r in reasons),
                reasons=reasons if may_open else [],
            )
        )
    record_event(
        user,
        Action.SEARCH,
        purpose=Purpose.OPERATIONS,
        object_type="patient",
        detail={
            "check": "duplicates before registration",
            "fields": _candidate_fields(data),
            "shown": [c.public_id for c in candidates],
        },
    )
    return candidates


def _candidate_fields(data) -> list[str]:
    used = ["name", "birth_date", "sex_at_birth"]
    if data.other_names:
        used.append("other_names")
    if data.telecoms:
        used.append("telecom")
    if data.addresses:
        used.append("address")
    if data.identifiers:
        used.append("identifier")
    return used
