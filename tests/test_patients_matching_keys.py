"""The pieces the search and the duplicate check are made of: the nickname table, dates
a clerk may have meant, and understanding what was typed into the search box."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patients import nicknames
from patients.search import QueryError, _prefix_q, near_birth_dates, parse_date, parse_query


def test_the_nickname_table_covers_about_150_formal_names():
    assert nicknames.FORMAL_NAMES >= 150


@pytest.mark.parametrize(
    "a, b",
    [
        ("Bill", "William"),
        ("william", "BILLY"),
        ("Peggy", "Margaret"),
        ("Bob", "Robert"),
        ("Liz", "Elizabeth"),
        ("Bill", "Will"),  # both stand for William
        ("Chuck", "Charles"),
        ("Jack", "John"),
        ("Sandy", "Alexandra"),
    ],
)
def test_nicknames_in_either_direction(a, b):
    assert nicknames.are_nicknames(a, b)
    assert nicknames.are_nicknames(b, a)


@pytest.mark.parametrize(
    "a, b", [("Bill", "Robert"), ("Mary", "Margaret"), ("Anna", "Anna"), ("", "Bill")]
)
def test_unrelated_names_are_not_nicknames(a, b):
    assert not nicknames.are_nicknames(a, b)


@given(st.text(max_size=20), st.text(max_size=20))
def test_nickname_relation_is_symmetric(a, b):
    assert nicknames.are_nicknames(a, b) == nicknames.are_nicknames(b, a)


def test_near_birth_dates():
    near = near_birth_dates(dt.date(1968, 4, 12))
    assert near[dt.date(1968, 4, 13)] == "one digit off"
    assert near[dt.date(1958, 4, 12)] == "one digit off"
    assert near[dt.date(1968, 12, 4)] == "month and day swapped"
    assert near[dt.date(1968, 4, 21)] == "two digits transposed"
    assert dt.date(1968, 4, 12) not in near
    assert dt.date(1968, 5, 13) not in near  # two digits off


@given(st.dates(min_value=dt.date(1880, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_near_dates_differ_in_one_digit_or_a_swap(day):
    typed = day.strftime("%Y%m%d")
    for other, why in near_birth_dates(day).items():
        text = other.strftime("%Y%m%d")
        differing = [i for i in range(8) if typed[i] != text[i]]
        if why == "one digit off":
            assert len(differing) == 1
        elif why == "two digits transposed":
            assert len(differing) == 2 and differing[1] == differing[0] + 1
        else:
            assert (other.month, other.day) == (day.day, day.month)


@pytest.mark.parametrize(
    "typed, expected",
    [("1968-04-12", dt.date(1968, 4, 12)), ("4/12/1968", dt.date(1968, 4, 12)), ("smith", None)],
)
def test_parse_date(typed, expected):
    assert parse_date(typed) == expected


def test_parse_query_understands_the_kinds_of_input():
    q = parse_query("Smith, John 04/12/1968 (413) 555-0142 RG0000017 123-45-6789")
    assert (q.family, q.given, q.tokens) == ("smith", "john", [])
    assert q.birth_date == dt.date(1968, 4, 12)
    assert q.phones == ["4135550142"]
    assert sorted(q.identifiers) == ["123456789", "RG0000017"]
    assert q.fields_used() == ["name", "birth_date", "phone", "identifier"]


def test_a_bare_ten_digit_number_may_be_a_phone_or_an_identifier():
    q = parse_query("4135550142")
    assert q.phones == ["4135550142"] and q.identifiers == ["4135550142"]


def test_free_words_keep_their_order_and_accents_are_folded():
    q = parse_query("José  O'Brien-Smith")
    assert q.tokens == ["jose", "obriensmith"]


def test_separate_fields_win_over_the_box():
    q = parse_query("", family="Smith", given="Jo")
    assert (q.family, q.given) == ("smith", "jo")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"text": "2023-13-01"}, "not a real date"),
        ({"phone": "555-01"}, "10 digits"),
        ({"identifier": "<b>"}, "letters, digits and hyphens"),
        ({"text": "ab$12"}, "letters, digits and hyphens"),
    ],
)
def test_impossible_search_input(kwargs, message):
    text = kwargs.pop("text", "")
    with pytest.raises(QueryError, match=message):
        parse_query(text, **kwargs)


@given(st.text(max_size=80))
def test_parse_query_never_crashes(text):
    try:
        query = parse_query(text)
    except QueryError:
        return
    assert len(query.tokens) <= 4
    assert all(t.isascii() and t.isalpha() for t in query.tokens)


@pytest.mark.parametrize(
    "prefix, upper",
    [("smi", "smj"), ("abz", "ac"), ("zz", None), ("a", "b")],
)
def test_prefix_ranges(prefix, upper):
    flat = str(_prefix_q("family_norm", prefix))
    assert f"'family_norm__gte', '{prefix}'" in flat
    if upper:
        assert f"'family_norm__lt', '{upper}'" in flat
    else:
        assert "__lt" not in flat


@pytest.mark.parametrize(
    "a, b, slips",
    [
        ("smith", "smith", 0),
        ("smith", "smyth", 1),
        ("smith", "smtih", 1),  # neighbours swapped
        ("smith", "smih", 1),
        ("brambleby", "bambleby", 1),
        ("johnson", "jonhsno", 2),
        ("smith", "jones", 3),  # more than the limit
    ],
)
def test_typing_slips(a, b, slips):
    from patients.search import typing_slips

    assert typing_slips(a, b) == slips


@given(st.text("abcdefgh", max_size=9), st.text("abcdefgh", max_size=9))
def test_typing_slips_is_symmetric_and_bounded(a, b):
    from patients.search import typing_slips

    assert typing_slips(a, b) == typing_slips(b, a)
    assert (typing_slips(a, b) == 0) == (a == b)
    assert typing_slips(a, b) <= 3
