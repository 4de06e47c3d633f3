"""The hospital statistics on the dashboard: the engine's results
(``reports.statistics``, read through the door ``reports.access.hospital_dashboard``)
turned into :class:`reports.tables.Section` and :class:`reports.tables.Table` — the
same rows on screen, in the charts and in the exports.

Three sections: the census and length of stay (headline figures, the summary with each
formula's numerator and denominator, the daily census and the monthly trend as line
charts, the breakdown by service as a bar chart); mortality and readmissions (the
patient-level lists of deaths and of readmissions, marked ``patient_level`` with the
patients' public ids, so exporting them needs ``reports.export_patient_rows``); and the
top diagnoses and procedures by final code (a bar chart each, or a plain "no final
codes yet"). Nothing is computed here: every figure comes from the engine.
"""

from __future__ import annotations

from reports import access
from reports import statistics as st
from reports.tables import ChartSpec, Column, Filters, Section, Table


def show(value) -> str:
    return "not measured" if value is None else str(value)


def _percent(value) -> str:
    return "not measured" if value is None else f"{value} %"


def _summary(t: st.Statistics) -> Table:
    """The range's figures, each with what it was computed from."""
    n = Column
    rows = [
        ["Inpatient service days", t.service_days, None, None],
        ["Average daily census", t.average_daily_census, t.service_days, t.days],
        ["Admissions", t.admissions, None, None],
        ["Discharges (including deaths)", t.discharges, None, None],
        ["Average length of stay (days)", t.alos, t.total_los, t.discharges],
        ["Bed occupancy %", t.occupancy, t.service_days, t.bed_days],
        ["Bed turnover", t.bed_turnover, t.discharges, t.average_beds],
        ["Gross death rate %", t.gross_death_rate, t.deaths, t.discharges],
        [
            "Net death rate %",
            t.net_death_rate,
            t.deaths - t.deaths_under_48h,
            t.discharges - t.deaths_under_48h,
        ],
        ["Post-operative death rate %", t.postop_death_rate, t.postop_deaths, t.operated],
        ["Consultation rate %", t.consultation_rate, t.consulted, t.discharges],
        [
            f"{t.readmission_window_days}-day readmission rate %",
            t.readmission_rate,
            t.readmitted,
            t.index_stays,
        ],
    ]
    return Table(
        key="hospital-summary",
        title="Hospital statistics for the range",
        columns=[n("Statistic"), n("Value", True), n("Numerator", True), n("Denominator", True)],
        rows=rows,
        note="Each rate is numerator ÷ denominator (× 100 for a percentage), rounded half "
        "up to 2 places; a dash is a figure with nothing to divide by. Formulas and "
        "definitions: docs/statistics.md.",
    )


def _census(report: st.HospitalReport) -> Table:
    return Table(
        key="hospital-census",
        title="Daily inpatient census",
        columns=[
            Column("Day"),
            Column("Census", True),
            Column("In house at midnight", True),
            Column("Admitted and discharged the same day", True),
            Column("Admissions", True),
            Column("Discharges", True),
            Column("Deaths", True),
        ],
        rows=[
            [
                d.day,
                d.census,
                d.at_midnight,
                d.same_day_stays,
                d.admissions,
                d.discharges,
                d.deaths,
            ]
            for d in report.days
        ],
        note="Daily census = patients in house at midnight + patients admitted and "
        "discharged the same day; the sum over the days is the inpatient service days.",
        chart=ChartSpec("line", 0, (1,)),
    )


def _trend(report: st.HospitalReport) -> Table:
    return Table(
        key="hospital-trend",
        title="Monthly trend",
        columns=[
            Column("Month"),
            Column("Days", True),
            Column("Service days", True),
            Column("Average daily census", True),
            Column("Admissions", True),
            Column("Discharges", True),
            Column("ALOS", True),
            Column("Occupancy %", True),
            Column("Gross death rate %", True),
            Column("Net death rate %", True),
            Column("Readmission rate %", True),
        ],
        rows=[
            [
                m.month.strftime("%Y-%m") if m.month else "",
                m.days,
                m.service_days,
                m.average_daily_census,
                m.admissions,
                m.discharges,
                m.alos,
                m.occupancy,
                m.gross_death_rate,
                m.net_death_rate,
                m.readmission_rate,
            ]
            for m in report.months
        ],
        note="A month cut by the range counts only its days inside the range.",
        chart=ChartSpec("line", 0, (3,)),
    )


def _services(report: st.HospitalReport) -> Table:
    return Table(
        key="hospital-by-service",
        title="By service",
        columns=[
            Column("Service"),
            Column("Admissions", True),
            Column("Discharges", True),
            Column("Service days", True),
            Column("Average daily census", True),
            Column("ALOS", True),
            Column("Deaths", True),
            Column("Gross death rate %", True),
            Column("Net death rate %", True),
            Column("Post-operative death rate %", True),
            Column("Consultation rate %", True),
            Column("Readmission rate %", True),
        ],
        rows=[
            [
                s.service or "No service recorded",
                s.admissions,
                s.discharges,
                s.service_days,
                s.average_daily_census,
                s.alos,
                s.deaths,
                s.gross_death_rate,
                s.net_death_rate,
                s.postop_death_rate,
                s.consultation_rate,
                s.readmission_rate,
            ]
            for s in report.services
        ],
        note=st.BEDS_BY_UNIT,
        chart=ChartSpec("bar", 0, (2,)),
    )


def _units(report: st.HospitalReport) -> Table:
    return Table(
        key="hospital-by-unit",
        title="By nursing unit",
        columns=[
            Column("Unit"),
            Column("Service days", True),
            Column("Average daily census", True),
            Column("Admissions", True),
            Column("Transfers in", True),
            Column("Transfers out", True),
            Column("Discharges", True),
            Column("Bed days", True),
            Column("Occupancy %", True),
        ],
        rows=[
            [
                u.unit or "No unit recorded",
                u.service_days,
                u.average_daily_census,
                u.admissions,
                u.transfers_in,
                u.transfers_out,
                u.discharges,
                u.bed_days,
                u.occupancy,
            ]
            for u in report.units
        ],
        note="Each midnight counts on the unit where the patient was; a same-day stay on "
        "the unit it was discharged from. Occupancy uses the unit's own bed counts "
        "(Bed counts page); empty where none is recorded.",
        chart=ChartSpec("bar", 0, (1,)),
    )


def _limited(shown: int, total: int, limit: int) -> str:
    if total > shown and shown >= limit:
        return f" The first {shown} of {total} are listed; the figures count them all."
    return ""


def _deaths(data: access.HospitalDashboard) -> Table:
    t = data.report.totals
    return Table(
        key="hospital-deaths",
        title="Deaths (patient-level)",
        columns=[
            Column("Patient"),
            Column("Stay"),
            Column("Service"),
            Column("Admitted"),
            Column("Died"),
            Column("Length of stay", True),
            Column("Under 48 hours"),
            Column("Post-operative"),
        ],
        rows=[
            [
                r.patient,
                r.stay,
                r.service,
                r.admitted,
                r.died,
                r.los,
                r.under_net_hours,
                r.postoperative,
            ]
            for r in data.deaths
        ],
        note="Patients by public id. Deaths under 48 hours leave the net death rate."
        + _limited(len(data.deaths), t.deaths, data.list_limit),
        patient_level=True,
        patient_ids=[r.patient for r in data.deaths],
    )


def _readmissions(data: access.HospitalDashboard) -> Table:
    t = data.report.totals
    return Table(
        key="hospital-readmissions",
        title=f"Unplanned readmissions within {t.readmission_window_days} days (patient-level)",
        columns=[
            Column("Patient"),
            Column("Index stay"),
            Column("Service"),
            Column("Discharged"),
            Column("Readmitted"),
            Column("Days after discharge", True),
            Column("Readmitted to service"),
        ],
        rows=[
            [
                r.patient,
                r.stay,
                r.service,
                r.discharged,
                r.readmitted,
                r.days,
                r.readmission_service,
            ]
            for r in data.readmissions
        ],
        note="One row per index stay (the first readmission only); planned readmissions "
        f"are excluded ({t.planned_readmissions} index stays were followed by a planned one)."
        + _limited(len(data.readmissions), t.readmitted, data.list_limit),
        patient_level=True,
        patient_ids=[r.patient for r in data.readmissions],
    )


def _codes(key: str, title: str, rows: list[st.CodeCount], coded: int) -> Table:
    return Table(
        key=key,
        title=title,
        columns=[
            Column("Code"),
            Column("Title"),
            Column("Discharges", True),
            Column("% of final-coded discharges", True),
        ],
        rows=[[c.code, c.title, c.count, st.rate(c.count, coded)] for c in rows],
        chart=ChartSpec("bar", 0, (2,)),
    )


def hospital_sections(
    user, filters: Filters, *, export_format: str = "", table: str = ""
) -> list[Section]:
    """The hospital sections of the dashboard for ``filters`` (the door checks
    ``reports.view_hospital_statistics`` and audits the read)."""
    data = access.hospital_dashboard(user, filters, export_format=export_format, table=table)
    report, t = data.report, data.report.totals
    where = f" — {t.population_label}" + (f", service {t.service}" if t.service else "")
    census = Section(
        "hospital",
        f"Hospital statistics{where}",
        figures=[
            ("Service days", str(t.service_days)),
            ("Average daily census", show(t.average_daily_census)),
            ("Admissions", str(t.admissions)),
            ("Discharges", str(t.discharges)),
            ("Average length of stay", show(t.alos)),
            ("Bed occupancy", _percent(t.occupancy)),
            ("Bed turnover", show(t.bed_turnover)),
        ],
        missing_parts=list(t.notes),
        tables=[
            _summary(t),
            _census(report),
            _trend(report),
            _services(report),
            *([_units(report)] if report.units else []),
        ],
    )
    outcomes = Section(
        "hospital-outcomes",
        "Hospital statistics: mortality, consultations and readmissions",
        figures=[
            ("Gross death rate", _percent(t.gross_death_rate)),
            ("Net death rate", _percent(t.net_death_rate)),
            ("Post-operative death rate", _percent(t.postop_death_rate)),
            ("Consultation rate", _percent(t.consultation_rate)),
            (f"{t.readmission_window_days}-day readmission rate", _percent(t.readmission_rate)),
        ],
        tables=[_deaths(data), _readmissions(data)],
    )
    codes = Section("hospital-codes", "Hospital statistics: top diagnoses and procedures")
    if not report.final_coded_discharges:
        codes.missing = st.NO_FINAL_CODES
    else:
        coded = report.final_coded_discharges
        codes.note = f"{coded} discharges of the range have a final abstract."
        codes.tables = [
            _codes(
                "hospital-top-diagnoses",
                "Top principal diagnoses (final codes)",
                report.top_diagnoses,
                coded,
            ),
            _codes(
                "hospital-top-procedures",
                "Top procedures (final codes)",
                report.top_procedures,
                coded,
            ),
        ]
    return [census, outcomes, codes]
