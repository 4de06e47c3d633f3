"""The duplicate check before registration: likely existing matches, each with the
reasons it was picked and their points."""

import datetime as dt

import pytest

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from patients.actions import (
    AddressData,
    IdentifierData,
    NameData,
    TelecomData,
    do_set_restriction,
)
from patients.models import Restriction
from patients.search import LIKELY, POSSIBLE, find_candidates
from recordroom.testing import patient_data, register_patient

pytestmark = pytest.mark.django_db

BORN = dt.date(1968, 4, 12)


@pytest.fixture
def existing(personas):
    """On file: William Hartfield, born 1968-04-12, with an SSN, a phone and an address."""
    return register_patient(
        personas,
        name=NameData(family="Hartfield", given="William", middle="James"),
        birth_date=BORN,
        sex_at_birth="M",
        identifiers=[IdentifierData(kind="SS", value="219-09-9999")],
        telecoms=[TelecomData(system="phone", value="413-555-0199", use="home")],
        addresses=[
            AddressData(line1="7 Orchard Row", city="Springfield", state="MA", postal_code="01103")
        ],
    )


def _typed(**overrides):
    overrides.setdefault("identifiers", [])
    overrides.setdefault("telecoms", [])
    overrides.setdefault("addresses", [])
    overrides.setdefault("sex_at_birth", "M")
    return patient_data(**overrides)


def _reasons(candidate):
    return [r.text for r in candidate.reasons]


def test_a_nickname_with_the_same_birth_date_is_a_likely_match(personas, existing):
    (candidate,) = find_candidates(
        _typed(name=NameData(family="Hartfield", given="Bill"), birth_date=BORN),
        personas.technician,
    )
    assert candidate.public_id == str(existing.public_id)
    assert candidate.level == "likely" and candidate.score >= LIKELY
    assert "Same family name" in _reasons(candidate)
    assert "Given name is a nickname form (Bill / William)" in _reasons(candidate)
    assert "Same date of birth" in _reasons(candidate)
    assert candidate.score == sum(r.points for r in candidate.reasons)


def test_peggy_is_margaret(personas):
    margaret = register_patient(
        personas, name=NameData(family="Larkspur", given="Margaret"), birth_date=BORN
    )
    (candidate,) = find_candidates(
        _typed(name=NameData(family="Larkspur", given="Peggy"), birth_date=BORN, sex_at_birth="F"),
        personas.technician,
    )
    assert candidate.public_id == str(margaret.public_id)


def test_transposed_names_are_found(personas, existing):
    (candidate,) = find_candidates(
        _typed(name=NameData(family="William", given="Hartfield"), birth_date=BORN),
        personas.technician,
    )
    assert candidate.public_id == str(existing.public_id)
    assert "Given and family names transposed" in _reasons(candidate)


def test_a_misspelt_family_name_sounds_alike(personas, existing):
    (candidate,) = find_candidates(
        _typed(name=NameData(family="Hartfeild", given="William"), birth_date=BORN),
        personas.technician,
    )
    assert "Family name sounds alike (Soundex H631)" in _reasons(candidate)


@pytest.mark.parametrize(
    "typed, why",
    [
        (dt.date(1968, 4, 13), "Date of birth one digit off (1968-04-12)"),
        (dt.date(1963, 4, 12), "Date of birth one digit off (1968-04-12)"),
        (dt.date(1968, 12, 4), "Date of birth month and day swapped (1968-04-12)"),
        (dt.date(1968, 4, 21), "Date of birth two digits transposed (1968-04-12)"),
    ],
)
def test_a_birth_date_one_digit_off_or_swapped(personas, existing, typed, why):
    (candidate,) = find_candidates(
        _typed(name=NameData(family="Hartfield", given="William"), birth_date=typed),
        personas.technician,
    )
    assert why in _reasons(candidate)


def test_the_same_ssn_alone_is_a_match(personas, existing):
    (candidate,) = find_candidates(
        _typed(
            name=NameData(family="Ravensworth", given="Oliver"),
            birth_date=dt.date(1990, 1, 1),
            identifiers=[IdentifierData(kind="SS", value="219099999")],
        ),
        personas.technician,
    )
    assert candidate.public_id == str(existing.public_id)
    assert _reasons(candidate) == ["Same SSN"]


def test_same_name_phone_and_address_is_likely_even_with_another_birth_date(personas, existing):
    """A father and son of the same name at one address: the technician must look."""
    (candidate,) = find_candidates(
        _typed(
            name=NameData(family="Hartfield", given="William", suffix="Jr"),
            birth_date=dt.date(1999, 9, 9),
            telecoms=[TelecomData(system="phone", value="(413) 555-0199")],
            addresses=[
                AddressData(
                    line1="7  ORCHARD ROW", city="Springfield", state="MA", postal_code="01103"
                )
            ],
        ),
        personas.technician,
    )
    reasons = _reasons(candidate)
    assert "Same phone number" in reasons
    assert "Same street address and ZIP code" in reasons
    assert candidate.level == "likely"


def test_a_relative_at_the_same_address_is_not_a_candidate(personas, existing):
    assert (
        find_candidates(
            _typed(
                name=NameData(family="Hartfield", given="Rose"),
                birth_date=dt.date(1999, 9, 9),
                sex_at_birth="F",
                telecoms=[TelecomData(system="phone", value="(413) 555-0199")],
                addresses=[
                    AddressData(
                        line1="7 Orchard Row", city="Springfield", state="MA", postal_code="01103"
                    )
                ],
            ),
            personas.technician,
        )
        == []
    )


def test_a_possible_match_scores_between_the_thresholds(personas, existing):
    (candidate,) = find_candidates(
        _typed(name=NameData(family="Hartfield", given="Billy"), birth_date=dt.date(1968, 4, 21)),
        personas.technician,
    )
    assert candidate.level == "possible"
    assert POSSIBLE <= candidate.score < LIKELY


def test_a_different_person_is_not_a_candidate(personas, existing):
    assert (
        find_candidates(
            _typed(
                name=NameData(family="Underhill", given="Zelda"), birth_date=dt.date(2001, 5, 5)
            ),
            personas.technician,
        )
        == []
    )


def test_the_same_name_with_an_unrelated_birth_date_is_not_enough(personas, existing):
    assert (
        find_candidates(
            _typed(
                name=NameData(family="Hartfield", given="William"), birth_date=dt.date(1990, 7, 1)
            ),
            personas.technician,
        )
        == []
    )


def test_a_previous_name_typed_is_matched(personas, existing):
    (candidate,) = find_candidates(
        _typed(
            name=NameData(family="Newname", given="William"),
            other_names=[NameData(family="Hartfield", given="William", use="old")],
            birth_date=BORN,
        ),
        personas.technician,
    )
    assert "Same family name (a previous name typed)" in _reasons(candidate)


def test_candidates_are_limited_to_the_users_facilities(personas):
    register_patient(
        personas,
        name=NameData(family="Hartfield", given="William"),
        birth_date=BORN,
        facility=personas.other_facility,
    )
    assert (
        find_candidates(
            _typed(name=NameData(family="Hartfield", given="William"), birth_date=BORN),
            personas.technician,
        )
        == []
    )


def test_a_restricted_candidate_shows_no_reasons_to_who_may_not_open_it(personas, existing):
    do_set_restriction(
        existing, Restriction.EMPLOYEE, reason="staff", acting_user=personas.privacy_officer
    )
    (candidate,) = find_candidates(
        _typed(name=NameData(family="Hartfield", given="William"), birth_date=BORN),
        personas.technician,
    )
    assert candidate.restricted and not candidate.may_open
    assert candidate.reasons == [] and candidate.sex == ""
    assert candidate.level == "likely"


def test_the_check_is_audited_without_what_was_typed(personas, existing, audit_rows):
    find_candidates(
        _typed(
            name=NameData(family="Hartfield", given="Bill"),
            birth_date=BORN,
            identifiers=[IdentifierData(kind="SS", value="219-09-9999")],
        ),
        personas.technician,
    )
    (event,) = audit_rows(action=Action.SEARCH)
    assert event.detail["shown"] == [str(existing.public_id)]
    assert "identifier" in event.detail["fields"]
    text = str(event.detail) + event.reason
    assert "Hartfield" not in text and "219" not in text and "1968" not in text


def test_a_role_that_cannot_register_is_refused_and_audited(personas, existing, audit_rows):
    with pytest.raises(AccessDenied):
        find_candidates(_typed(birth_date=BORN), personas.coder)
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.action == Action.SEARCH
