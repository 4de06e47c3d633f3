"""The statistics dashboard of a role: the hospital statistics for those with
``reports.view_hospital_statistics`` and the department statistics
(``reports.department``) for those with ``reports.view_department_statistics``, each
section a chart and a table. A user with neither is refused, and the refusal audited.

The hospital statistics come from the statistics engine (``reports.statistics``, read
through ``reports.access``) by way of ``reports.hospital``, which turns its results into
tables; until that is installed the hospital section says so.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from accounts.access import has_permission, require_permission
from accounts.models import Facility
from audit.models import Action
from patients.access import default_purpose, facility_ids
from reports import department
from reports.permissions import ReportsPermission as S
from reports.tables import Filters, Section, Table

ENGINE_MISSING = (
    "The hospital statistics (census, length of stay, occupancy, mortality, "
    "readmissions) are not available yet: the statistics engine is not installed."
)


@dataclass
class Dashboard:
    filters: Filters
    hospital: list[Section] = field(default_factory=list)
    department: list[Section] = field(default_factory=list)
    may_see_hospital: bool = False
    may_see_department: bool = False

    @property
    def sections(self) -> list[Section]:
        return [*self.hospital, *self.department]

    def table(self, key: str) -> Table | None:
        for section in self.sections:
            found = section.table(key)
            if found is not None:
                return found
        return None


def require_dashboard(user, *, action: str = Action.VIEW) -> None:
    """Either statistics permission opens the dashboard; neither is refused (audited)."""
    if has_permission(user, S.VIEW_HOSPITAL_STATISTICS):
        return
    require_permission(
        user,
        S.VIEW_DEPARTMENT_STATISTICS,
        action=action,
        purpose=default_purpose(user),
        object_type="reports.dashboard",
    )


def filter_facilities(user) -> list[Facility]:
    """The facilities the filter offers: the user's (dashboard users only)."""
    require_dashboard(user)
    return list(Facility.objects.filter(pk__in=facility_ids(user)).order_by("name"))


def _hospital(user, filters: Filters, *, export_format: str, table: str) -> list[Section]:
    if importlib.util.find_spec("reports.hospital") is None:
        return [Section("hospital", "Hospital statistics", missing=ENGINE_MISSING)]
    from reports import hospital  # the adapter of the engine's results to tables

    return hospital.hospital_sections(user, filters, export_format=export_format, table=table)


def dashboard(user, filters: Filters, *, export_format: str = "", table: str = "") -> Dashboard:
    """What the user's dashboard shows for ``filters``; each door audits its own read
    (as an export when ``export_format`` is given)."""
    action = Action.EXPORT if export_format else Action.VIEW
    require_dashboard(user, action=action)
    result = Dashboard(
        filters=filters,
        may_see_hospital=has_permission(user, S.VIEW_HOSPITAL_STATISTICS),
        may_see_department=has_permission(user, S.VIEW_DEPARTMENT_STATISTICS),
    )
    if result.may_see_hospital:
        result.hospital = _hospital(user, filters, export_format=export_format, table=table)
    if result.may_see_department:
        result.department = department.department_statistics(
            user, filters, export_format=export_format, table=table
        )
    return result
