"""Medical record numbers: check digits, format per facility, never reused."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import CheckDigit, Facility
from patients.mrn import format_mrn, is_valid_mrn, luhn_digit, mod11_digit, next_mrn


def test_luhn_matches_the_published_example():
    assert luhn_digit("7992739871") == "3"


def test_mod11_matches_the_iso_7064_example():
    # ORCID iDs use ISO 7064 MOD 11-2: 0000-0002-1825-0097 and 0000-0002-1694-233X.
    assert mod11_digit("000000021825009") == "7"
    assert mod11_digit("000000021694233") == "X"


@given(st.integers(min_value=1, max_value=9_999_999), st.sampled_from(list(CheckDigit)))
def test_every_formatted_mrn_validates(number, algorithm):
    facility = Facility(code="t", name="T", mrn_prefix="T", mrn_digits=7, mrn_check_digit=algorithm)
    mrn = format_mrn(facility, number)
    assert is_valid_mrn(facility, mrn)


@given(st.integers(min_value=1, max_value=9_999_999), st.integers(min_value=0, max_value=7))
def test_a_single_changed_digit_is_caught_by_luhn(number, position):
    facility = Facility(code="t", name="T", mrn_prefix="", mrn_digits=7)
    mrn = format_mrn(facility, number)
    digit = int(mrn[position])
    altered = mrn[:position] + str((digit + 1) % 10) + mrn[position + 1 :]
    assert not is_valid_mrn(facility, altered)


def test_the_format_is_prefix_padding_and_check_digit():
    facility = Facility(code="t", name="T", mrn_prefix="RG", mrn_digits=7)
    assert format_mrn(facility, 42) == "RG0000042" + luhn_digit("0000042")


@pytest.mark.django_db
def test_mrns_are_assigned_in_order_and_never_reused():
    facility = Facility.objects.create(code="x", name="X", mrn_prefix="X")
    first, second = next_mrn(facility), next_mrn(facility)
    assert first != second
    facility.refresh_from_db()
    assert facility.mrn_next == 3


@pytest.mark.django_db
def test_registration_assigns_the_facility_mrn(personas):
    from recordroom.testing import register_patient

    a = register_patient(personas)
    b = register_patient(personas, family="Thistlewood")
    mrns = [i.value for p in (a, b) for i in p.identifiers.filter(kind="MR")]
    assert len(set(mrns)) == 2
    assert all(is_valid_mrn(personas.facility, mrn) for mrn in mrns)
