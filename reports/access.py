"""The door to the hospital statistics (``reports.statistics``).

``reports.view_hospital_statistics`` first: a refusal is audited (outside any
transaction of the caller's work) and raised as ``AccessDenied``. The figures are
aggregates over the user's facilities (a facility the user does not work at is a 404,
the same answer as one that does not exist); they name no patient, so the read is
audited once as a view (or an export) of ``reports.hospital_statistics`` with the
filters and without a patient id. Restricted records are counted like any other: a
count reveals no one.

The dashboard (``reports.hospital``) calls :func:`hospital_dashboard`: the figures and
the two patient-level lists (readmissions and deaths, by the patients' public ids);
that read is audited with the public ids of the patients listed. The smaller doors
serve a single figure or table.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.http import Http404

from accounts.access import require_permission
from audit.actions import record_event
from audit.models import Action, Purpose
from patients.access import facility_ids
from reports import statistics as st
from reports.permissions import ReportsPermission

OBJECT_TYPE = "reports.hospital_statistics"


def require_hospital_statistics(user, *, action: str = Action.VIEW) -> None:
    """Raise ``AccessDenied`` (audited) unless ``user`` may see hospital statistics."""
    require_permission(
        user,
        ReportsPermission.VIEW_HOSPITAL_STATISTICS,
        action=action,
        purpose=Purpose.OPERATIONS,
        object_type=OBJECT_TYPE,
    )


def scope_for(user, filters) -> st.Scope:
    """The :class:`~reports.statistics.Scope` of ``filters`` (``reports.tables.Filters``)
    within the user's facilities; a facility that is not the user's is a 404."""
    mine = facility_ids(user)
    facility = getattr(filters, "facility", None)
    if facility is not None:
        if facility.pk not in mine:
            raise Http404("No such facility")
        chosen = (facility.pk,)
    else:
        chosen = tuple(mine)
    try:
        return st.Scope(chosen, service=filters.service, population=filters.population)
    except ValueError as error:
        raise Http404("No such population") from error


def _audited(user, filters, action: str, what: str, compute, patients=None):
    require_hospital_statistics(user, action=action)
    scope = scope_for(user, filters)
    with transaction.atomic():
        result = compute(scope)
        detail = {**filters.as_detail(), "population": scope.population}
        if patients is not None:
            detail["patients"] = patients(result)
        record_event(
            user,
            action,
            purpose=Purpose.OPERATIONS,
            object_type=OBJECT_TYPE,
            object_id=what,
            detail=detail,
        )
    return result


@dataclass(frozen=True)
class HospitalDashboard:
    """The hospital dashboard's data: the figures, and the patient-level lists (at
    most ``list_limit`` rows each; the totals say how many there are)."""

    report: st.HospitalReport
    readmissions: list[st.ReadmissionRow]
    deaths: list[st.DeathRow]
    list_limit: int

    @property
    def patients(self) -> list[str]:
        """The public ids of the patients the lists name (each once, in order)."""
        ids = [r.patient for r in self.readmissions] + [r.patient for r in self.deaths]
        return list(dict.fromkeys(ids))


def hospital_dashboard(
    user, filters, *, export_format: str = "", table: str = "", list_limit: int = 200
) -> HospitalDashboard:
    """Everything the hospital dashboard shows for ``filters``, with the readmissions
    and deaths listed by patient; audited once (as an export of ``table`` when
    ``export_format`` is given) with the public ids of the patients listed."""
    action = Action.EXPORT if export_format else Action.VIEW
    what = "dashboard"
    if export_format:
        what = f"dashboard:{export_format}:{table or 'all'}"[:64]

    def compute(scope):
        start, end = filters.start, filters.end
        return HospitalDashboard(
            report=st.dashboard(scope, start, end),
            readmissions=st.readmission_list(scope, start, end, limit=list_limit),
            deaths=st.death_list(scope, start, end, limit=list_limit),
            list_limit=list_limit,
        )

    return _audited(user, filters, action, what, compute, patients=lambda r: r.patients)


def hospital_report(user, filters, *, export_format: str = "") -> st.HospitalReport:
    """Everything the hospital dashboard shows for ``filters``; audited once (as an
    export when ``export_format`` is given)."""
    action = Action.EXPORT if export_format else Action.VIEW
    return _audited(
        user,
        filters,
        action,
        f"dashboard{':' + export_format if export_format else ''}",
        lambda scope: st.dashboard(scope, filters.start, filters.end),
    )


def hospital_statistics(user, filters) -> st.Statistics:
    """The figures of the whole range (audited view)."""
    return _audited(
        user,
        filters,
        Action.VIEW,
        "totals",
        lambda scope: st.hospital_statistics(scope, filters.start, filters.end),
    )


def census_by_day(user, filters) -> list[st.DayDetail]:
    """The daily census with the day's admissions and discharges (audited view)."""
    return _audited(
        user,
        filters,
        Action.VIEW,
        "census",
        lambda scope: st.daily_detail(scope, filters.start, filters.end),
    )
