"""coding.codesets and `recordroom codes`: HCPCS and CPT files, refusals that change
nothing, idempotent reloads, permission to load."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.access import AccessDenied
from audit.models import Outcome
from coding import codesets
from coding.models import Code, CodeSetRelease, CodeSystem
from coding.testing import load_codes_for_tests


def hcpcs_line(code, record_id, text, *, added="", effective="", terminated="", action=""):
    line = f"{code:<5}{'00100':<5}{record_id}{text:<80}{text[:28]:<28}".ljust(268)
    line += f"{added:<8}{effective:<8}{terminated:<8}{action:<1}"
    return line.ljust(codesets.HCPCS_RECORD_LENGTH) + "\n"


def write_hcpcs(tmp_path, name="HCPC2026_JAN_ANWEB_v2.txt", cut=False):
    text = (
        hcpcs_line("A0021", "3", "Ambulance service, outside state per mile, transport")
        + hcpcs_line("A0021", "4", "(Medicaid only)")
        + hcpcs_line("J1100", "3", "Injection, dexamethasone sodium phosphate, 1 mg")
        + hcpcs_line("  25 ", "7", "Significant, separately identifiable e/m service")
    )
    if cut:
        text = text[:-300]
    path = tmp_path / name
    path.write_text(text)
    return path


def write_cpt(tmp_path, name="cpt_2026.txt", body=None):
    path = tmp_path / name
    path.write_text(
        body if body is not None else "code\tdescriptor\n99213\tLicensed text A\n0042T\tB\n"
    )
    return path


@pytest.mark.django_db
def test_load_hcpcs_file(tmp_path):
    call_command("codes", "load-hcpcs", str(write_hcpcs(tmp_path)), "--year", "2026")
    rows = {c.code: c for c in Code.objects.filter(system=CodeSystem.HCPCS)}
    assert set(rows) == {"A0021", "J1100"}  # modifiers are not codes
    assert rows["A0021"].title.endswith("(Medicaid only)")
    assert rows["J1100"].fiscal_years == [2026, 2027]
    release = CodeSetRelease.objects.get(system=CodeSystem.HCPCS)
    assert release.code_count == 2 and release.loaded_by is None


@pytest.mark.django_db
def test_hcpcs_added_and_termination_dates_bound_validity(tmp_path):
    from coding.codes import check_code, is_valid_on

    path = tmp_path / "HCPC2026_APR_ANWEB.txt"
    path.write_text(
        hcpcs_line("G0101", "3", "Cervical or vaginal cancer screening", added="19980101")
        + hcpcs_line(
            "G9999", "3", "A code discontinued in June", added="20200101",
            effective="20260701", terminated="20260630", action="D",
        )
        + hcpcs_line("Q5999", "3", "A code added in April", added="20260401", action="A")
    )  # fmt: skip
    call_command("codes", "load-hcpcs", str(path), "--year", "2026")
    rows = {c.code: c for c in Code.objects.filter(system=CodeSystem.HCPCS)}
    assert rows["G9999"].notes["valid_until"] == "2026-06-30"
    assert rows["G9999"].notes["action"] == "D"
    assert rows["G0101"].notes["valid_from"] == "1998-01-01"
    day = __import__("datetime").date
    # The April file speaks for FY2026 and FY2027: an old code is valid from its first
    # day in those years, not only from the file's quarter.
    assert is_valid_on(CodeSystem.HCPCS, "G0101", day(2025, 11, 3))
    assert is_valid_on(CodeSystem.HCPCS, "G9999", day(2026, 6, 30))
    assert not is_valid_on(CodeSystem.HCPCS, "G9999", day(2026, 7, 1))
    assert "until 2026-06-30" in check_code(CodeSystem.HCPCS, "G9999", day(2026, 7, 1)).message
    assert not is_valid_on(CodeSystem.HCPCS, "Q5999", day(2026, 3, 31))
    assert is_valid_on(CodeSystem.HCPCS, "q5999", day(2026, 4, 1))
    assert "from 2026-04-01" in check_code(CodeSystem.HCPCS, "Q5999", day(2026, 3, 31)).message


@pytest.mark.django_db
def test_a_hcpcs_file_with_a_bad_date_changes_nothing(tmp_path):
    call_command("codes", "load-hcpcs", str(write_hcpcs(tmp_path)), "--year", "2026")
    path = tmp_path / "HCPC2026_JUL_ANWEB.txt"
    path.write_text(hcpcs_line("J1100", "3", "Injection, dexamethasone", added="20261301"))
    with pytest.raises(CommandError, match="added date '20261301' is not YYYYMMDD"):
        call_command("codes", "load-hcpcs", str(path), "--year", "2026")
    assert Code.objects.get(system=CodeSystem.HCPCS, code="J1100").title.startswith(
        "Injection, dexamethasone sodium"
    )


@pytest.mark.django_db
def test_truncated_hcpcs_file_changes_nothing(tmp_path):
    call_command("codes", "load-hcpcs", str(write_hcpcs(tmp_path)), "--year", "2026")
    before = list(Code.objects.filter(system=CodeSystem.HCPCS).values_list("code", "title"))
    bad = write_hcpcs(tmp_path, name="HCPC2026_APR_ANWEB.txt", cut=True)
    with pytest.raises(CommandError, match="truncated"):
        call_command("codes", "load-hcpcs", str(bad), "--year", "2026")
    after = list(Code.objects.filter(system=CodeSystem.HCPCS).values_list("code", "title"))
    assert after == before
    assert CodeSetRelease.objects.filter(system=CodeSystem.HCPCS).count() == 1


@pytest.mark.django_db
def test_wrong_year_hcpcs_file_refused(tmp_path):
    path = write_hcpcs(tmp_path, name="HCPC2025_OCT_ANWEB.txt")
    with pytest.raises(CommandError, match="2025 HCPCS file, not 2026"):
        call_command("codes", "load-hcpcs", str(path), "--year", "2026")
    assert not Code.objects.filter(system=CodeSystem.HCPCS).exists()


@pytest.mark.django_db
def test_load_cpt_file_and_reload_is_idempotent(tmp_path, capsys):
    path = write_cpt(tmp_path)
    call_command("codes", "load-cpt", str(path), "--year", "2026")
    call_command("codes", "load-cpt", str(path), "--year", "2026")
    assert "already loaded" in capsys.readouterr().out
    assert CodeSetRelease.objects.filter(system=CodeSystem.CPT).count() == 1
    assert set(Code.objects.filter(system=CodeSystem.CPT).values_list("code", flat=True)) == {
        "99213",
        "0042T",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("cpt_2025.txt", "99213\tA\n", "not 2026"),
        ("cpt.txt", "99213\tA\n0042T\tB", "truncated"),
        ("cpt.txt", "99213\tA\n9921\tB\n", "not a CPT code"),
        ("cpt.txt", "99213\tA\n99214\n", "descriptor"),
        ("cpt.txt", "99213\tA\n99213\tB\n", "twice"),
        ("cpt.txt", "", "empty"),
    ],
)
def test_bad_cpt_files_change_nothing(tmp_path, name, body, message):
    call_command("codes", "load-cpt", str(write_cpt(tmp_path)), "--year", "2026")
    before = list(Code.objects.filter(system=CodeSystem.CPT).values_list("code", "title"))
    with pytest.raises(CommandError, match=message):
        call_command("codes", "load-cpt", str(write_cpt(tmp_path, name, body)), "--year", "2026")
    assert list(Code.objects.filter(system=CodeSystem.CPT).values_list("code", "title")) == before


@pytest.mark.django_db
def test_bad_file_leaves_earlier_icd_codes_intact(tmp_path):
    load_codes_for_tests("E11.9")
    with pytest.raises(CommandError):
        call_command("codes", "load-cpt", str(write_cpt(tmp_path, body="x\n")), "--year", "2026")
    assert Code.objects.filter(system=CodeSystem.ICD10CM, code="E119").exists()


@pytest.mark.django_db
def test_loading_as_a_user_needs_permission(tmp_path, personas, audit_rows):
    path = write_cpt(tmp_path)
    with pytest.raises(CommandError, match="Refused"):
        call_command(
            "codes", "load-cpt", str(path), "--year", "2026", "--as", personas.coder.username
        )
    denied = audit_rows(outcome=Outcome.DENIED, object_type="coding.code_set")
    assert len(denied) == 1
    assert not Code.objects.filter(system=CodeSystem.CPT).exists()
    with pytest.raises(AccessDenied):
        codesets.load_cpt(path, year=2026, user=personas.no_role)
    codesets.load_cpt(path, year=2026, user=personas.administrator)
    release = CodeSetRelease.objects.get(system=CodeSystem.CPT)
    assert release.loaded_by == personas.administrator
    assert audit_rows(outcome=Outcome.ALLOWED, object_type="coding.code_set")


@pytest.mark.django_db
def test_unknown_account_and_missing_file(tmp_path):
    with pytest.raises(CommandError, match="no active account"):
        call_command("codes", "load-cpt", "x.txt", "--year", "2026", "--as", "nobody")
    with pytest.raises(CommandError, match="No such file"):
        call_command("codes", "load-cpt", str(tmp_path / "none.txt"), "--year", "2026")


@pytest.mark.django_db
def test_status_lists_releases(tmp_path, capsys):
    call_command("codes", "status")
    assert "No code sets loaded" in capsys.readouterr().out
    load_codes_for_tests("E11.9")
    call_command("codes", "status")
    out = capsys.readouterr().out
    assert "FY2026 (April 2026 update)" in out and "ICD-10-CM" in out


@pytest.mark.django_db
def test_icd10cm_rows_have_hierarchy_and_notes():
    loaded = load_codes_for_tests("E11.9", "S62.501A")
    e119 = loaded["E119"]
    assert e119.billable and e119.parent == "E11" and e119.block == "E08-E13"
    assert e119.chapter == "4"
    e11 = Code.objects.get(system=CodeSystem.ICD10CM, code="E11")
    assert not e11.billable
    assert any("E10" in note for note in e11.notes["excludes1"])
    assert e11.notes["use_additional"]
    s62 = Code.objects.get(system=CodeSystem.ICD10CM, code="S62")
    assert s62.notes["seventh_characters"]["A"].startswith("initial encounter")
    assert loaded["S62501A"].billable


@pytest.mark.django_db
def test_FULL_SET_load_shipped_and_reload_idempotent():
    """The one test that loads the whole shipped ICD-10-CM set (10–20 s) and searches it."""
    first = codesets.load_icd10cm()
    assert first.changed and first.codes > 95000
    again = codesets.load_icd10cm()
    assert not again.changed
    assert CodeSetRelease.objects.filter(system=CodeSystem.ICD10CM).count() == 1
    assert Code.objects.filter(system=CodeSystem.ICD10CM, billable=True).count() > 74000
    from coding.lookup import search

    assert "C50.912" in [h.display for h in search("breast cancer left", limit=100).hits]
    assert search("E11.9").hits[0].display == "E11.9"
    assert "E11.9" in [h.display for h in search("type 2 diabetes without complication").hits]
    assert Code.objects.get(system=CodeSystem.ICD10CM, code="E119").fiscal_years == [
        2023,
        2024,
        2025,
        2026,
        2027,
    ]
