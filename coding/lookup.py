"""Code look-up: by code prefix (``e11``, ``E11.6``, ``0DT``) or by words, stemmed, in
any order and forgiving a typo, billable codes first, each with its hierarchy (parent
titles) and tabular notes.

Words are matched through the word index ``CodeWord`` (one row per stemmed word and
code, written by ``coding.codesets``), which each process holds in memory as an
:class:`Index`: for each word, the positions of its codes in ranked order, so a word
search is a few set operations rather than a scan of 100,000 titles, and one query
fetches the rows shown. A query word that is not indexed is replaced by the indexed
words within a small edit distance (symmetric deletions, checked with a bounded
Damerau–Levenshtein distance); the word being typed (the last) and a word not found
whole also match as a prefix, and a few everyday words have synonyms (``cancer`` →
"malignant").

Code tables hold no patient data. :func:`look_up` checks ``coding.look_up_codes`` (a
refusal is audited); :func:`search` is the plain function under it.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Max, Q
from django.db.models.functions import Length

from accounts.access import require_permission
from audit.models import Action
from coding.codes import dotted, normalise
from coding.models import Code, CodeSetRelease, CodeSystem
from coding.permissions import CodingPermission

MAX_QUERY = 120
MAX_WORDS = 8
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "as",
        "at",
        "by",
        "for",
        "from",
        "in",
        "into",
        "of",
        "on",
        "or",
        "the",
        "to",
        "other",
        "than",
    ]
)
_WORD = re.compile(r"[a-z0-9]+")
_CODE_QUERY = re.compile(r"^[A-Z][0-9][0-9A-Z]{0,5}$|^[0-9A-HJ-NP-Z]{3,7}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- words -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light suffix stemmer, the same for titles and queries: plurals, -ing, -ed,
    then -ion/-ive/-ic/-al/-ity and a final e, never leaving fewer than 4 letters
    (``fractures``, ``fractured`` → ``fractur``; ``hypertension``, ``hypertensive`` →
    ``hypertens``; ``diabetes``, ``diabetic`` → ``diabet``)."""
    w = word
    if len(w) <= 3 or w.isdigit():
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if w.endswith("ing") and len(w) > 6:
        w = w[:-3]
    elif w.endswith("ed") and len(w) > 5:
        w = w[:-2]
    for suffix in ("ion", "ive", "ity", "ic", "al"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 5:
            w = w[: -len(suffix)]
            break
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w[:40]


# Everyday words coders type for the tabular list's words (both are searched).
SYNONYMS = {
    "cancer": ("malignant",),
    "carcinoma": ("malignant",),
    "tumor": ("neoplasm",),
    "tumour": ("neoplasm",),
    "broken": ("fracture",),
    "kidney": ("renal",),
    "renal": ("kidney",),
    "htn": ("hypertension",),
}


def words_of(text: str) -> list[str]:
    """Lower-case, accent-free words of ``text`` (no stop words), in order."""
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().lower()
    return [w for w in _WORD.findall(text) if w not in STOP_WORDS]


def index_words(*texts: str) -> set[str]:
    """The stemmed words a code is found by."""
    return {stem(w) for text in texts for w in words_of(text)}


# --- typo tolerance ----------------------------------------------------------------------


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))} | {word}


def distance(a: str, b: str, bound: int = 2) -> int:
    """Optimal-string-alignment (Damerau–Levenshtein) distance, giving up past ``bound``."""
    if abs(len(a) - len(b)) > bound:
        return bound + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
        if min(current) > bound:
            return bound + 1
        previous2, previous = previous, current
    return previous[-1]


@dataclass
class Index:
    """One code system's word index, held in memory: its codes best first (billable,
    then shorter titles, then by code) and, for each indexed word, the positions of its
    codes in that order (``postings``). Intersecting positions gives the matches
    already ranked, so a word search costs a few set operations and one query for the
    rows shown. Built from ``CodeWord`` on the first search and again after a load."""

    key: tuple
    ranked_ids: array
    billable_count: int
    postings: dict[str, array]
    title_postings: dict[str, array]  # the same, for words of the title only
    sorted_words: list[str]
    neighbours: dict[str, tuple[str, ...]]

    @property
    def words(self) -> dict[str, int]:
        return {w: len(p) for w, p in self.postings.items()}

    def count(self, word: str) -> int:
        found = self.postings.get(word)
        return len(found) if found is not None else 0

    @classmethod
    def build(cls, system: str, key: tuple) -> Index:
        ranked = list(
            Code.objects.filter(system=system)
            .order_by("-billable", Length("title"), "code")
            .values_list("pk", "billable", "search_text")
        )
        position = {pk: i for i, (pk, _, _) in enumerate(ranked)}
        in_titles: dict[str, list[int]] = {}
        for i, (_, _, text) in enumerate(ranked):
            for word in text.split():
                in_titles.setdefault(word, []).append(i)
        lists: dict[str, list[int]] = {}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT w.word, w.code_id FROM coding_code_word w "
                "JOIN coding_code c ON c.id = w.code_id WHERE c.system = %s",
                [system],
            )
            while chunk := cursor.fetchmany(20000):
                for word, pk in chunk:
                    lists.setdefault(word, []).append(position[pk])
        postings = {w: array("i", sorted(p)) for w, p in lists.items()}
        title_postings = {w: array("i", p) for w, p in in_titles.items() if w in postings}
        neighbours: dict[str, list[str]] = {}
        for word in postings:
            if len(word) >= 4 and not word.isdigit():
                for variant in _deletes(word):
                    neighbours.setdefault(variant, []).append(word)
        return cls(
            key,
            array("i", [pk for pk, _, _ in ranked]),
            sum(1 for _, billable, _ in ranked if billable),
            postings,
            title_postings,
            sorted(postings),
            {k: tuple(v) for k, v in neighbours.items()},
        )

    def near(self, word: str) -> list[str]:
        """Indexed words one edit (two for long words) or one transposition away."""
        if len(word) < 4 or word.isdigit():
            return []
        found: set[str] = set()
        for variant in _deletes(word):
            found.update(self.neighbours.get(variant, ()))
        bound = 1 if len(word) < 8 else 2
        return sorted(
            (w for w in found if distance(word, w, bound) <= bound),
            key=lambda w: (distance(word, w, bound), -self.count(w), w),
        )

    def starting(self, prefix: str, limit: int = 60) -> list[str]:
        """Indexed words beginning with ``prefix`` (the most used first)."""
        out = []
        i = bisect_left(self.sorted_words, prefix)
        while i < len(self.sorted_words) and self.sorted_words[i].startswith(prefix):
            out.append(self.sorted_words[i])
            i += 1
        out.sort(key=lambda w: -self.count(w))
        return out[:limit]

    def matching(
        self, candidates: list[str], within: set[int] | None, *, titles: bool = False
    ) -> set[int]:
        """Positions of the codes having any of ``candidates`` (only those ``within``)
        in their title or inclusion terms (``titles``: in their title)."""
        source = self.title_postings if titles else self.postings
        arrays = [source[w] for w in candidates if w in source]
        if within is not None and len(within) * len(arrays) * 4 < sum(map(len, arrays)):
            return {p for p in within if any(_contains(a, p) for a in arrays)}
        found: set[int] = set()
        for positions in arrays:
            found.update(positions)
        return found if within is None else found & within


def _contains(positions: array, value: int) -> bool:
    i = bisect_left(positions, value)
    return i < len(positions) and positions[i] == value


_indexes: dict[str, Index] = {}
_lock = threading.Lock()


def _index_key() -> tuple:
    # The latest release's random id (ids restart after a rolled-back test on SQLite)
    # and the highest code id (codes written without a release).
    latest_release = CodeSetRelease.objects.order_by("-pk").values_list("public_id").first()
    latest_code = Code.objects.aggregate(n=Max("pk"))["n"]
    return (latest_release, latest_code)


def index(system: str) -> Index:
    """The system's word index, rebuilt when codes were loaded since it was built."""
    key = _index_key()
    current = _indexes.get(system)
    if current is None or current.key != key:
        with _lock:
            current = _indexes.get(system)
            if current is None or current.key != key:
                current = _indexes[system] = Index.build(system, key)
    return current


def clear_cache() -> None:
    with _lock:
        _indexes.clear()


# --- search ------------------------------------------------------------------------------


@dataclass
class Hit:
    code: Code
    ancestors: list[tuple[str, str]] = field(default_factory=list)  # (dotted code, title)
    notes: dict = field(default_factory=dict)  # the code's own notes and inherited ones

    @property
    def display(self) -> str:
        return dotted(self.code.code, self.code.system)

    @property
    def note_items(self) -> list[tuple[str, object]]:
        """(label, value) of each note for the screen: a list, a 7th-character table
        ({character: meaning}) or a sentence."""
        out = []
        for key, value in self.notes.items():
            base = key.removesuffix("_inherited")
            label = NOTE_LABELS.get(base, base.replace("_", " ").capitalize())
            if key != base:
                label += " (from a parent)"
            out.append((label, value))
        return out

    def as_json(self) -> dict:
        c = self.code
        return {
            "system": c.system,
            "code": c.code,
            "display": self.display,
            "title": c.title,
            "billable": c.billable,
            "fiscal_years": c.fiscal_years,
            "ancestors": [{"code": a, "title": t} for a, t in self.ancestors],
            "notes": self.notes,
        }


@dataclass
class Result:
    query: str
    system: str
    mode: str  # "code", "words" or "" (nothing to search)
    hits: list[Hit]
    corrected: dict[str, list[str]] = field(default_factory=dict)  # word -> used instead
    ignored: list[str] = field(default_factory=list)
    message: str = ""
    total: int | None = None  # how many codes matched (word searches)

    def as_json(self) -> dict:
        return {
            "query": self.query,
            "system": self.system,
            "mode": self.mode,
            "results": [h.as_json() for h in self.hits],
            "corrected": self.corrected,
            "ignored": self.ignored,
            "message": self.message,
            "total": self.total,
        }


def clean_query(query) -> str:
    text = _CONTROL.sub(" ", str(query or ""))
    return " ".join(text.split())[:MAX_QUERY]


def _order(queryset):
    return queryset.order_by("-billable", Length("title"), "code")


def _by_code(system: str, value: str, limit: int) -> list[Code]:
    # A range beside the LIKE lets PostgreSQL use the (system, billable, code) index
    # whatever the database's collation (codes are upper-case letters and digits).
    upper = value[:-1] + chr(ord(value[-1]) + 1)
    base = Code.objects.filter(system=system, code__gte=value, code__lt=upper)
    exact = list(base.filter(code=value))
    rest = list(
        base.filter(code__startswith=value, billable=True)
        .exclude(code=value)
        .order_by("code")[:limit]
    )
    if len(rest) < limit:
        rest += list(
            base.filter(code__startswith=value, billable=False)
            .exclude(code=value)
            .order_by("code")[: limit - len(rest)]
        )
    return (exact + rest)[:limit]


_HIDDEN_NOTES = ("valid_from",)
NOTE_LABELS = {
    "includes": "Includes",
    "inclusion_terms": "Inclusion terms",
    "excludes1": "Excludes1",
    "excludes2": "Excludes2",
    "code_first": "Code first",
    "use_additional": "Use additional code",
    "code_also": "Code also",
    "notes": "Notes",
    "seventh_characters": "7th characters",
    "seventh_note": "7th character note",
}
_INHERITED = ("excludes1", "excludes2", "code_first", "use_additional", "code_also")


def _hits(codes: list[Code]) -> list[Hit]:
    """Attach ancestors (a few queries, level by level) and notes to each code."""
    if not codes:
        return []
    by_key: dict[tuple[str, str], Code] = {(c.system, c.code): c for c in codes}
    wanted = {(c.system, c.parent) for c in codes if c.parent}
    for _ in range(8):
        missing = {k for k in wanted if k not in by_key}
        if not missing:
            break
        query = Q()
        for system, code in missing:
            query |= Q(system=system, code=code)
        found = list(Code.objects.filter(query))
        for item in found:
            by_key[(item.system, item.code)] = item
        wanted = {(c.system, c.parent) for c in found if c.parent}
    hits = []
    for code in codes:
        chain = []
        current = by_key.get((code.system, code.parent)) if code.parent else None
        seen = set()
        while current is not None and current.code not in seen:
            seen.add(current.code)
            chain.append(current)
            current = by_key.get((current.system, current.parent)) if current.parent else None
        notes = {k: v for k, v in (code.notes or {}).items() if k not in _HIDDEN_NOTES}
        for ancestor in chain:
            for key, value in (ancestor.notes or {}).items():
                if key == "seventh_characters" and key not in notes:
                    notes[key] = value
                elif key in _INHERITED and value:
                    inherited = notes.setdefault(f"{key}_inherited", [])
                    inherited.extend(f"{v} [{dotted(ancestor.code)}]" for v in value)
        hits.append(
            Hit(
                code=code,
                ancestors=[(dotted(a.code, a.system), a.title) for a in chain],
                notes=notes,
            )
        )
    return hits


def search(
    query,
    *,
    system: str = CodeSystem.ICD10CM,
    limit: int = DEFAULT_LIMIT,
    billable_only: bool = False,
) -> Result:
    """Codes of ``system`` matching ``query`` (a code prefix or words)."""
    text = clean_query(query)
    limit = max(1, min(int(limit or DEFAULT_LIMIT), MAX_LIMIT))
    if system not in CodeSystem.values:
        return Result(text, system, "", [], message="Unknown code system.")
    if not text:
        return Result(text, system, "", [])
    value = normalise(text)
    if len(text.split()) == 1 and _CODE_QUERY.match(value) and any(ch.isdigit() for ch in value):
        codes = _by_code(system, value, limit)
        if billable_only:
            codes = [c for c in codes if c.billable]
        if codes or system != CodeSystem.ICD10PCS:
            return Result(text, system, "code", _hits(codes))
    return _by_words(text, system, limit, billable_only)


def _candidates(word: str, last: bool, idx: Index, result: Result) -> list[str]:
    """The indexed words a query word stands for: its stem, its synonyms, the words it
    begins (``fract`` → ``fractur``; any length for the word being typed, 4 letters
    for the others) and, failing all, the words a typo away."""
    stemmed = stem(word)
    found = [stemmed] if stemmed in idx.postings else []
    for synonym in SYNONYMS.get(word, ()):
        if (s := stem(synonym)) in idx.postings and s not in found:
            found.append(s)
    if len(word) >= (2 if last else 4):
        found += [w for w in idx.starting(word) if w not in found]
    if not found:
        found = idx.near(stemmed) or idx.near(word)
        if found:
            result.corrected[word] = found[:5]
    return found


def _by_words(text: str, system: str, limit: int, billable_only: bool) -> Result:
    raw = list(dict.fromkeys(words_of(text)))[:MAX_WORDS]
    result = Result(text, system, "words", [])
    if not raw:
        result.message = "Type a code or at least one word."
        return result
    idx = index(system)
    groups: list[list[str]] = []
    typing = not text.endswith(" ")
    for position, word in enumerate(raw):
        candidates = _candidates(word, typing and position == len(raw) - 1, idx, result)
        if candidates:
            groups.append(candidates)
        else:
            result.ignored.append(word)
    if not groups:
        result.message = "No code has these words."
        return result
    # Rarest words first; each further word narrows the positions found so far.
    groups.sort(key=lambda g: sum(idx.count(w) for w in g))
    positions: set[int] | None = None
    for candidates in groups:
        positions = idx.matching(candidates, positions)
        if not positions:
            break
    positions = positions or set()
    if billable_only:
        positions = {p for p in positions if p < idx.billable_count}
    # Billable codes first; among them, those with every word in their title before
    # those found by an inclusion term; then by rank (shorter titles first).
    in_title = positions
    for candidates in groups:
        if not in_title:
            break
        in_title = idx.matching(candidates, in_title, titles=True)
    cut = idx.billable_count
    ranked = sorted(positions, key=lambda p: (p >= cut, p not in in_title, p))
    chosen = [idx.ranked_ids[p] for p in ranked[:limit]]
    rows = Code.objects.in_bulk(chosen)
    codes = [rows[pk] for pk in chosen if pk in rows]
    result.hits = _hits(codes)
    result.total = len(ranked)
    if not codes:
        result.message = "No code has all these words."
    return result


def look_up(
    user,
    query,
    *,
    system: str = CodeSystem.ICD10CM,
    limit: int = DEFAULT_LIMIT,
    billable_only: bool = False,
) -> Result:
    """:func:`search` for a user holding ``coding.look_up_codes`` (refusal audited).
    A look-up reads public reference tables only, so an allowed one is not audited."""
    require_permission(
        user, CodingPermission.LOOK_UP_CODES, action=Action.SEARCH, object_type="coding.code"
    )
    return search(query, system=system, limit=limit, billable_only=billable_only)
