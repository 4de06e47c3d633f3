"""Exports of the dashboards: any table to CSV or Excel (openpyxl), the whole dashboard
to PDF (ReportLab), written from the same :class:`reports.tables.Table` rows the page
shows.

Who may export, and the audit: a table of aggregates (counts, rates) is exported by
whoever may see it; the statistics door that computed it audits the read as an export
(``Action.EXPORT``, with the format, the table and the filters, no patient). A table
with patient-level rows (``Table.patient_level``: a list of readmissions or deaths with
the patients' public ids) needs ``reports.export_patient_rows`` as well — refused and
audited otherwise — and is audited with the patients it contains
(:func:`authorize_export`).

Spreadsheet safety: a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is written with a leading apostrophe, so no cell runs as a formula when
the file is opened (numbers are written as numbers).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

from accounts.access import require_permission
from audit.actions import record_event
from audit.models import Action
from patients.access import default_purpose
from reports.charts import BarChart, LineChart, chart_for
from reports.permissions import ReportsPermission
from reports.tables import Filters, Section, Table

FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "pdf": ("application/pdf", "pdf"),
}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value) -> str:
    text = str(value)
    return "'" + text if text[:1] in FORMULA_START else text


def cell(value):
    """A value as a spreadsheet cell: numbers stay numbers, dates ISO, text made safe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return safe_text(value)


def filename(prefix: str, filters: Filters, extension: str) -> str:
    """A file name from the filters: dates and the facility's code, nothing personal."""
    where = filters.facility.code if filters.facility is not None else "all"
    name = f"{prefix}-{where}-{filters.start.isoformat()}-{filters.end.isoformat()}"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return f"{safe}.{extension}"


def authorize_export(user, table: Table, fmt: str, filters: Filters, *, confirmed: bool) -> bool:
    """For a table with patient-level rows: ``reports.export_patient_rows`` (refused and
    audited otherwise); then, once the user has confirmed their password (``confirmed``;
    False: nothing is exported, nothing audited, ask for it), the export audited with the
    patients it contains. A table of aggregates needs nothing more (its read was audited
    as an export)."""
    if not table.patient_level:
        return True
    require_permission(
        user,
        ReportsPermission.EXPORT_PATIENT_ROWS,
        action=Action.EXPORT,
        purpose=default_purpose(user),
        object_type="reports.patient_rows",
        object_id=table.key[:64],
    )
    if not confirmed:
        return False
    patients = list(dict.fromkeys(str(p) for p in table.patient_ids))
    record_event(
        user,
        Action.EXPORT,
        purpose=default_purpose(user),
        object_type="reports.patient_rows",
        object_id=table.key[:64],
        detail={
            "format": fmt,
            "filters": filters.as_detail(),
            "count": len(table.rows),
            "patients": patients,
        },
    )
    return True


# --- CSV and Excel -------------------------------------------------------------------------


def table_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_text(h) for h in table.headers])
    for row in table.rows:
        writer.writerow([cell(v) for v in row])
    # A byte-order mark, so Excel opens the UTF-8 file (dashes, accents) correctly.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _sheet_title(text: str, taken: set[str]) -> str:
    base = "".join(c for c in text if c not in "[]:*?/\\")[:28] or "Table"
    title, n = base, 2
    while title.lower() in taken:
        title = f"{base[:25]} {n}"
        n += 1
    taken.add(title.lower())
    return title


def tables_xlsx(tables: list[Table], *, heading: str = "") -> bytes:
    """One sheet per table: a header row, then the rows; the title and note above."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    workbook.remove(workbook.active)
    taken: set[str] = set()
    for table in tables:
        sheet = workbook.create_sheet(_sheet_title(table.title, taken))
        sheet.append([safe_text(table.title)])
        sheet["A1"].font = Font(bold=True)
        if heading:
            sheet.append([safe_text(heading)])
        if table.note:
            sheet.append([safe_text(table.note)])
        sheet.append([])
        sheet.append([safe_text(h) for h in table.headers])
        for c in sheet[sheet.max_row]:
            c.font = Font(bold=True)
        for row in table.rows:
            sheet.append([cell(v) for v in row])
        for index, column in enumerate(table.columns, start=1):
            letter = sheet.cell(row=1, column=index).column_letter
            widest = max([len(str(v)) for v in [column.label, *[r[index - 1] for r in table.rows]]])
            sheet.column_dimensions[letter].width = min(max(10, widest + 2), 60)
    if not tables:
        workbook.create_sheet("Empty").append(["Nothing to export."])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


# --- PDF -----------------------------------------------------------------------------------


def _drawing(chart):
    """The SVG chart's geometry as a ReportLab drawing (y flipped: PDF counts upward)."""
    from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, Rect, String
    from reportlab.lib import colors

    scale = 0.7
    drawing = Drawing(chart.width * scale, chart.height * scale)

    def y(v: float) -> float:
        return (chart.height - v) * scale

    grey = colors.HexColor("#555555")
    if isinstance(chart, LineChart):
        for tick in chart.y_ticks:
            drawing.add(
                Line(
                    chart.plot_left * scale,
                    y(tick.pos),
                    chart.plot_right * scale,
                    y(tick.pos),
                    strokeColor=colors.HexColor("#dddddd"),
                )
            )
            drawing.add(String(2, y(tick.pos) - 3, tick.value, fontSize=7, fillColor=grey))
        for x, label in chart.x_labels:
            drawing.add(String(x * scale, y(chart.plot_bottom + 16), str(label)[:12], fontSize=6))
        for line in chart.series:
            colour = colors.HexColor(line.colour)
            for segment in line.segments:
                points = []
                for pair in segment.split():
                    px, py = (float(p) for p in pair.split(","))
                    points += [px * scale, y(py)]
                if len(points) >= 4:
                    drawing.add(PolyLine(points, strokeColor=colour, strokeWidth=1.5))
            for px, py, _, _ in line.dots:
                drawing.add(Circle(px * scale, y(py), 1.5, fillColor=colour, strokeColor=colour))
    elif isinstance(chart, BarChart):
        for group in chart.groups:
            drawing.add(String(2, y(group.label_y), group.label[:28], fontSize=7))
            for bar in group.bars:
                drawing.add(
                    Rect(
                        bar.x * scale,
                        y(bar.y + bar.height),
                        max(bar.width * scale, 0.5),
                        bar.height * scale,
                        fillColor=colors.HexColor(bar.colour),
                        strokeColor=None,
                    )
                )
                drawing.add(
                    String(
                        (bar.x + bar.width + 3) * scale,
                        y(bar.y + bar.height - 2),
                        bar.value,
                        fontSize=6,
                    )
                )
    return drawing


def dashboard_pdf(title: str, filters: Filters, sections: list[Section], *, generated_at) -> bytes:
    """The dashboard as a PDF: each section's headline figures, charts and tables."""
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import inch
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, TableStyle
    from reportlab.platypus import Table as PdfTable

    styles = getSampleStyleSheet()
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=letter,
        title=title,
        author="RecordRoom",
        leftMargin=0.6 * inch,
        rightMargin=0.6 * inch,
        topMargin=0.6 * inch,
        bottomMargin=0.6 * inch,
    )
    where = filters.facility.name if filters.facility is not None else "All your facilities"
    story = [
        Paragraph(escape(title), styles["Title"]),
        Paragraph(
            escape(
                f"{filters.start.isoformat()} to {filters.end.isoformat()} · {where}"
                + (f" · service {filters.service}" if filters.service else "")
                + (f" · {filters.population}" if filters.population else "")
                + f" · generated {generated_at:%Y-%m-%d %H:%M %Z}"
            ),
            styles["Normal"],
        ),
        Spacer(1, 12),
    ]
    cell_style = styles["BodyText"].clone("cell", fontSize=7, leading=8.5)
    for section in sections:
        story.append(Paragraph(escape(section.title), styles["Heading2"]))
        if section.missing:
            story.append(Paragraph(escape(section.missing), styles["Italic"]))
            continue
        if section.figures:
            story.append(
                Paragraph(
                    escape(" · ".join(f"{label}: {value}" for label, value in section.figures)),
                    styles["Normal"],
                )
            )
        for text in [*section.missing_parts, section.note]:
            if text:
                story.append(Paragraph(escape(text), styles["Italic"]))
        for table in section.tables:
            story.append(Paragraph(escape(table.title), styles["Heading4"]))
            chart = chart_for(table)
            if chart is not None:
                story.append(_drawing(chart))
            data = [[Paragraph(escape(h), cell_style) for h in table.headers]]
            for row in table.rows[:500]:
                data.append([Paragraph(escape(str(cell(v))), cell_style) for v in row])
            if not table.rows:
                data.append([Paragraph("No rows.", cell_style)] + [""] * (len(table.headers) - 1))
            grid = PdfTable(data, repeatRows=1)
            grid.setStyle(
                TableStyle(
                    [
                        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#999999")),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f5")),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ]
                )
            )
            story.append(grid)
            if table.note:
                story.append(Paragraph(escape(table.note), cell_style))
            story.append(Spacer(1, 8))
    doc.build(story)
    return out.getvalue()
