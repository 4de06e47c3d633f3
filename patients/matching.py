"""Name keys and normalisation for search and duplicate detection.

Keys are computed once, when a name is written, and indexed: search then looks up
exact, prefix and phonetic matches with ordinary B-tree indexes on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

import re
import unicodedata

_NON_LETTERS = re.compile(r"[^a-z]")


def normalize_name(value: str) -> str:
    """Lower-case ASCII letters only: 'O’Brien-Smith' → 'obriensmith', 'José' → 'jose'."""
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return _NON_LETTERS.sub("", ascii_text.lower())


_SOUNDEX = {
    **dict.fromkeys("bfpv", "1"),
    **dict.fromkeys("cgjkqsxz", "2"),
    **dict.fromkeys("dt", "3"),
    "l": "4",
    **dict.fromkeys("mn", "5"),
    "r": "6",
}


def phonetic(value: str) -> str:
    """American Soundex of the normalised name (a letter and three digits), '' if empty."""
    name = normalize_name(value)
    if not name:
        return ""
    first = name[0]
    codes = []
    previous = _SOUNDEX.get(first, "")
    for char in name[1:]:
        code = _SOUNDEX.get(char, "")
        if code and code != previous:
            codes.append(code)
        if char not in "hw":
            previous = code
    return (first.upper() + "".join(codes) + "000")[:4]


def normalize_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits


def normalize_identifier(value: str) -> str:
    return re.sub(r"[\s\-]", "", value).upper()


def normalize_address_line(value: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9 ]", "", value.lower())).strip()
