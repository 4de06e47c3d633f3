"""The HIM department's own statistics: chart completion, coding, release of
information, the master patient index, and the audit trail with break-the-glass.

The door is :func:`department_statistics`: ``reports.view_department_statistics``
first (a refusal is audited before it is raised), then each section the user's role
opens — chart completion for those who see deficiencies, coding for those who see the
coding reports, release of information for those who see the ROI figures, the MPI for
those who correct demographics, the audit trail and break-the-glass for those who
review it (the HIM administrator sees every section). The view (or the export) is
audited once, with the filters and the sections; no section names a patient.

Every figure is an aggregate computed in the database (COUNT with filters, GROUP BY);
the coding and ROI figures come from ``coding.statistics`` and ``roi.statistics``, the
delinquency rate from ``completion.access.delinquency_rate`` (the Joint Commission's
former measure, with the completion policy's alert threshold). A section whose data does
not exist yet (the app holds no rows at the user's facilities) says so instead of
showing zeros as if they had been measured.

Definitions, for the range *start*–*end* (local calendar days, both included):

- records received: encounters discharged in the range whose record chart completion
  analysed (they reach the department at discharge);
- records completed: records found complete in the range;
- incomplete / delinquent: records incomplete now / incomplete past their due date now;
- delinquency rate of a month: records delinquent at the end of the month (now, for the
  month under way) ÷ the month's discharges × 100;
- duplicate-record rate: records merged into another ÷ every record ever created at
  the facilities (merged ones included) × 100 — the duplicates *found and resolved*;
  the MPI keeps no candidate pairs, so undiscovered duplicates are not counted.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django.http import Http404
from django.utils import timezone

from accounts.access import has_permission, require_permission
from accounts.models import Facility
from audit import statistics as audit_stats
from audit.actions import record_event
from audit.models import Action
from audit.permissions import AuditPermission
from coding import statistics as coding_stats
from coding.permissions import CodingPermission
from completion import access as completion_access
from completion import statistics as completion_stats
from completion.permissions import CompletionPermission
from completion.summary import delinquency_rate
from patients import statistics as patient_stats
from patients.access import default_purpose, facility_ids
from patients.permissions import PatientsPermission
from recordroom import clock
from reports.permissions import ReportsPermission
from reports.tables import ChartSpec, Column, Filters, Section, Table
from roi import statistics as roi_stats
from roi.models import RequestStatus
from roi.permissions import RoiPermission

MAX_TREND_MONTHS = 24

# Which permission opens which section (any one of them).
SECTION_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "completion": (CompletionPermission.VIEW_DEFICIENCIES,),
    "coding": (CodingPermission.VIEW_REPORTS,),
    "roi": (RoiPermission.VIEW_DASHBOARD,),
    "mpi": (PatientsPermission.UPDATE_DEMOGRAPHICS,),
    "audit": (
        AuditPermission.VIEW_TRAIL,
        AuditPermission.VERIFY_TRAIL,
        PatientsPermission.REVIEW_BREAK_THE_GLASS,
    ),
}
SECTION_ORDER = ["completion", "coding", "roi", "mpi", "audit"]
SECTION_TITLES = {
    "completion": "Chart completion",
    "coding": "Coding",
    "roi": "Release of information",
    "mpi": "Master patient index",
    "audit": "Audit trail and break-the-glass",
}


def sections_for(user) -> list[str]:
    """The department sections ``user`` may see, in dashboard order."""
    return [
        key
        for key in SECTION_ORDER
        if any(has_permission(user, p) for p in SECTION_PERMISSIONS[key])
    ]


def percent(part: int, whole: int) -> Decimal | None:
    """``part`` ÷ ``whole`` × 100 to one decimal (half up); None when ``whole`` is 0."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def show(value) -> str:
    return "—" if value is None else str(value)


def local_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The first instant of ``start`` and of the day after ``end``, local time."""
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(dt.datetime.combine(start, dt.time.min), tz),
        timezone.make_aware(dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min), tz),
    )


def facilities_in_scope(user, filters: Filters) -> list[Facility]:
    """The facility asked for (one of the user's; another is a 404), or all of them."""
    mine = list(Facility.objects.filter(pk__in=facility_ids(user)).order_by("name"))
    if filters.facility is None:
        return mine
    if filters.facility.pk not in {f.pk for f in mine}:
        raise Http404("No such facility")
    return [filters.facility]


# --- chart completion ------------------------------------------------------------------


def _months(start: dt.date, end: dt.date) -> list[completion_access.Period]:
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month) and len(months) < MAX_TREND_MONTHS:
        months.append(completion_access.Period.of_month(year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _completion(user, filters: Filters, facilities, now) -> Section:
    section = Section("completion", SECTION_TITLES["completion"])
    ids = [f.pk for f in facilities]
    low, high = local_bounds(filters.start, filters.end)
    totals = completion_stats.record_totals(
        ids, service=filters.service or "", low=low, high=high, now=now
    )
    if totals is None:
        section.missing = "Chart completion has analysed no record at these facilities yet."
        return section
    section.figures = [
        ("Records received", str(totals["received"])),
        ("Records completed", str(totals["completed"])),
        ("Incomplete now", str(totals["incomplete"])),
        ("Delinquent now", str(totals["delinquent"])),
    ]
    by_service = completion_stats.incomplete_by_service(ids, service=filters.service or "", now=now)
    section.tables.append(
        Table(
            key="completion-by-service",
            title="Incomplete and delinquent records by service (now)",
            columns=[Column("Service"), Column("Incomplete", True), Column("Delinquent", True)],
            rows=[
                [service or "No service recorded", incomplete, late]
                for service, incomplete, late in by_service
            ],
            chart=ChartSpec("bar", 0, (1, 2)),
        )
    )
    # The monthly rate, summed over the facilities: delinquent ÷ discharges × 100.
    rows = []
    for period in _months(filters.start, filters.end):
        if period.start > now:
            break
        delinquent = discharges = 0
        for facility in facilities:
            rate = completion_access.delinquency_rate(user, period, facility=facility, now=now)
            delinquent += rate.delinquent
            discharges += rate.discharges
        rows.append(
            [
                period.label,
                discharges,
                delinquent,
                delinquency_rate(delinquent, discharges),
            ]
        )
    section.tables.append(
        Table(
            key="completion-delinquency",
            title="Delinquency rate by month",
            columns=[
                Column("Month"),
                Column("Discharges", True),
                Column("Delinquent at month end", True),
                Column("Delinquency rate %", True),
            ],
            rows=rows,
            note="Delinquent records at the end of the month (now, for the month under way) "
            "÷ the month's discharges × 100. The service filter does not apply to it; "
            f"at most the first {MAX_TREND_MONTHS} months of the range are shown.",
            chart=ChartSpec("line", 0, (3,), unit="%"),
        )
    )
    return section


# --- coding ------------------------------------------------------------------------------


def _coding(filters: Filters, facilities, now) -> Section:
    section = Section("coding", SECTION_TITLES["coding"])
    ids = [f.pk for f in facilities]
    if not coding_stats.abstracts_exist(ids):
        section.missing = "No encounter has been coded at these facilities yet."
        return section
    service = filters.service or None
    backlog = coding_stats.backlog_by_status(ids, service=service)
    dnfb = coding_stats.dnfb(ids, now=now, service=service)
    finalised = coding_stats.finalised_per_day(ids, filters.start, filters.end, service=service)
    section.figures = [
        ("Coding backlog now", str(sum(r.count for r in backlog))),
        ("DNFB now", str(dnfb.total)),
        ("Oldest DNFB (days)", show(dnfb.oldest_days)),
        ("Finalised in range", str(sum(d.count for d in finalised))),
    ]
    section.tables += [
        Table(
            key="coding-backlog",
            title="Coding backlog by status (now)",
            columns=[Column("Status"), Column("Encounters", True)],
            rows=[[r.label, r.count] for r in backlog],
            chart=ChartSpec("bar", 0, (1,)),
        ),
        Table(
            key="coding-dnfb",
            title="Discharged, not final billed, by days since discharge (now)",
            columns=[Column("Days since discharge"), Column("Encounters", True)],
            rows=[[b.label, b.count] for b in dnfb.by_age],
            chart=ChartSpec("bar", 0, (1,)),
        ),
        Table(
            key="coding-finalised",
            title="Abstracts finalised per day",
            columns=[Column("Day"), Column("Finalised", True)],
            rows=[[d.day, d.count] for d in finalised],
            chart=ChartSpec("line", 0, (1,)),
        ),
    ]
    return section


# --- release of information ------------------------------------------------------------


def _roi(filters: Filters, facilities, now) -> Section:
    section = Section("roi", SECTION_TITLES["roi"])
    ids = [f.pk for f in facilities]
    has_requests = roi_stats.requests_exist(ids)
    has_amendments = roi_stats.amendments_exist(ids)
    has_accounting = roi_stats.accounting_requests_exist(ids)
    if not (has_requests or has_amendments or has_accounting):
        section.missing = (
            "No release-of-information, amendment or accounting request has been logged "
            "at these facilities yet."
        )
        return section
    section.note = "The service filter does not apply to requests (they are not per service)."
    today = timezone.localdate(now)
    if has_requests:
        by_type = roi_stats.requests_by_type_and_status(ids, filters.start, filters.end)
        statuses = RequestStatus.choices
        section.tables.append(
            Table(
                key="roi-by-type",
                title="Requests received by requester type and status",
                columns=[
                    Column("Requester type"),
                    *[Column(label, True) for _, label in statuses],
                    Column("Total", True),
                ],
                rows=[
                    [r.type_label, *[r.counts[s] for s, _ in statuses], r.total] for r in by_type
                ],
                chart=ChartSpec("bar", 0, (len(statuses) + 1,)),
            )
        )
        turnaround = roi_stats.turnaround(ids, filters.start, filters.end)
        section.tables.append(
            Table(
                key="roi-turnaround",
                title="Turnaround of released requests (days from receipt to release)",
                columns=[
                    Column("Requester type"),
                    Column("Released", True),
                    Column("Median days", True),
                    Column("90th percentile days", True),
                ],
                rows=[[t.label, t.count, t.median_days, t.p90_days] for t in turnaround],
                note="Median: the middle value (the mean of the two middle ones when their "
                "number is even). 90th percentile: the nearest-rank value.",
                chart=ChartSpec("bar", 0, (2, 3), unit="days"),
            )
        )
        section.figures.append(("Requests received", str(sum(r.total for r in by_type))))
        section.figures.append(("Median turnaround (days)", show(turnaround[0].median_days)))
    else:
        section.missing_parts.append("No release-of-information request has been logged yet.")
    summaries = roi_stats.deadlines(ids, filters.start, filters.end, today=today)
    present = [has_requests, has_amendments, has_accounting]
    section.tables.append(
        Table(
            key="roi-deadlines",
            title="Requests received in the range, against their deadlines",
            columns=[
                Column("Requests"),
                Column("Received", True),
                Column("Answered on time", True),
                Column("Answered late", True),
                Column("Open, within deadline", True),
                Column("Open, overdue", True),
                Column("Extended", True),
                Column("On time %", True),
            ],
            rows=[
                [
                    s.label,
                    s.received,
                    s.on_time,
                    s.late,
                    s.open_within,
                    s.open_overdue,
                    s.extended,
                    s.on_time_percent,
                ]
                for s, exists in zip(summaries, present, strict=True)
                if exists
            ],
            note="Deadlines in force: the extended one where an extension was given. "
            "Overdue is as of today.",
            chart=ChartSpec("bar", 0, (2, 3, 5)),
        )
    )
    if not has_amendments:
        section.missing_parts.append("No amendment request has been logged yet.")
    if not has_accounting:
        section.missing_parts.append("No accounting-of-disclosures request has been logged yet.")
    return section


# --- master patient index --------------------------------------------------------------


def _mpi(facilities) -> Section:
    section = Section("mpi", SECTION_TITLES["mpi"])
    counts = patient_stats.record_counts([f.pk for f in facilities])
    if not counts["records"]:
        section.missing = "No patient is registered at these facilities yet."
        return section
    section.figures = [
        ("Patient records", str(counts["records"])),
        ("Records merged as duplicates", str(counts["merged"])),
    ]
    if not counts["merged"]:
        section.missing_parts.append(
            "No merge has been recorded and the MPI keeps no duplicate-candidate pairs, so "
            "the duplicate-record rate cannot be measured yet."
        )
        return section
    rate = percent(counts["merged"], counts["records"])
    section.figures.append(("Duplicate-record rate %", show(rate)))
    section.tables.append(
        Table(
            key="mpi-duplicates",
            title="Duplicate records found and merged",
            columns=[
                Column("Patient records", True),
                Column("Merged as duplicates", True),
                Column("Duplicate-record rate %", True),
            ],
            rows=[[counts["records"], counts["merged"], rate]],
            note="Records merged into another ÷ every record at the facilities × 100 "
            "(target under 1 %; typical 8–12 %). Duplicates not yet found are not counted.",
        )
    )
    return section


# --- audit trail and break-the-glass -----------------------------------------------------


def _audit(filters: Filters, facilities) -> Section:
    section = Section("audit", SECTION_TITLES["audit"])
    low, high = local_bounds(filters.start, filters.end)
    labels = dict(Action.choices)
    by_action = audit_stats.events_by_action(low=low, high=high)
    section.note = (
        "Audit events are counted for the whole installation (the trail is not kept per "
        "facility); break-the-glass accesses for patients at the chosen facilities."
    )
    section.figures = [
        ("Audit events", str(sum(n for _, n, _ in by_action))),
        ("Refused", str(sum(denied for _, _, denied in by_action))),
    ]
    section.tables.append(
        Table(
            key="audit-by-action",
            title="Audit events by action",
            columns=[Column("Action"), Column("Events", True), Column("Refused", True)],
            rows=[[labels.get(action, action), n, denied] for action, n, denied in by_action],
            chart=ChartSpec("bar", 0, (1, 2)),
        )
    )
    grants = patient_stats.break_the_glass_counts([f.pk for f in facilities], low=low, high=high)
    section.figures.append(("Break-the-glass accesses", str(grants["total"])))
    section.tables.append(
        Table(
            key="audit-break-the-glass",
            title="Break-the-glass accesses by review",
            columns=[Column("Review"), Column("Accesses", True)],
            rows=[
                ["Waiting for review", grants["pending"]],
                ["Appropriate", grants["appropriate"]],
                ["Inappropriate", grants["inappropriate"]],
                ["Total", grants["total"]],
            ],
            chart=ChartSpec("bar", 0, (1,)),
        )
    )
    return section


# --- the door ----------------------------------------------------------------------------


def department_statistics(
    user, filters: Filters, *, export_format: str = "", table: str = "", now=None
) -> list[Section]:
    """The department sections ``user`` may see for ``filters``. With ``export_format``
    the read is audited as an export (of ``table``, or the whole dashboard)."""
    action = Action.EXPORT if export_format else Action.VIEW
    require_permission(
        user,
        ReportsPermission.VIEW_DEPARTMENT_STATISTICS,
        action=action,
        purpose=default_purpose(user),
        object_type="reports.department",
    )
    now = now or clock.now()
    facilities = facilities_in_scope(user, filters)
    keys = sections_for(user)
    sections = []
    for key in keys:
        if not facilities:
            sections.append(Section(key, SECTION_TITLES[key], missing="You work at no facility."))
        elif key == "completion":
            sections.append(_completion(user, filters, facilities, now))
        elif key == "coding":
            sections.append(_coding(filters, facilities, now))
        elif key == "roi":
            sections.append(_roi(filters, facilities, now))
        elif key == "mpi":
            sections.append(_mpi(facilities))
        else:
            sections.append(_audit(filters, facilities))
    detail = {"filters": filters.as_detail(), "sections": keys}
    if export_format:
        detail.update(format=export_format, table=table or "dashboard")
    record_event(
        user,
        action,
        purpose=default_purpose(user),
        object_type="reports.department",
        detail=detail,
    )
    return sections
