"""Exports of the dashboard: a table to CSV and Excel, the dashboard to PDF; aggregates
audited as exports without patients, patient-level rows only with the permission (and
the password), audited with the patients."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
import time_machine
from openpyxl import load_workbook

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from recordroom.testing import register_patient, sign_in
from reports import exports
from reports.tables import Column, Filters, Section, Table
from tests.test_completion_queue import NOW, discharged, make_record

pytestmark = pytest.mark.django_db

EXPORT = "/reports/export/"
RANGE = {"start": "2025-01-01", "end": "2025-03-31"}


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def records(personas):
    patient = register_patient(personas)
    make_record(discharged(personas, patient, days_ago=40, service="surgery"))
    make_record(discharged(personas, patient, days_ago=5, service="=HYPERLINK(1)"))


def rows_of(response) -> list[list[str]]:
    text = response.content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_a_table_to_csv(client, personas, records, audit_rows):
    sign_in(client, personas.technician)
    response = client.get(EXPORT, {**RANGE, "table": "completion-by-service", "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert (
        'filename="completion-by-service-all-2025-01-01-2025-03-31.csv"'
        in (response["Content-Disposition"])
    )
    rows = rows_of(response)
    assert rows[0] == ["Service", "Incomplete", "Delinquent"]
    # A service that looks like a formula is written as text.
    assert ["'=HYPERLINK(1)", "1", "0"] in rows and ["surgery", "1", "1"] in rows
    exported = audit_rows(object_type="reports.department")
    assert [e.action for e in exported] == [Action.EXPORT]
    assert exported[0].detail["table"] == "completion-by-service"
    assert exported[0].detail["format"] == "csv" and exported[0].patient_id is None


def test_a_table_to_excel(client, personas, records):
    sign_in(client, personas.technician)
    response = client.get(EXPORT, {**RANGE, "table": "completion-delinquency", "format": "xlsx"})
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    header = values.index(["Month", "Discharges", "Delinquent at month end", "Delinquency rate %"])
    months = values[header + 1 :]
    assert [m[0] for m in months] == ["2025-01", "2025-02", "2025-03"]
    assert all(isinstance(m[1], int) for m in months)  # numbers stay numbers


def test_the_dashboard_to_pdf(client, personas, records, audit_rows):
    sign_in(client, personas.administrator)
    response = client.get(EXPORT, {**RANGE, "format": "pdf"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    exported = audit_rows(object_type="reports.department")[0]
    assert exported.action == Action.EXPORT and exported.detail["table"] == "dashboard"


@pytest.mark.parametrize(
    "query",
    [
        {"table": "completion-by-service", "format": "docx"},
        {"format": "csv"},
        {"table": "no-such-table", "format": "csv"},
    ],
)
def test_unknown_exports_are_404(client, personas, records, query):
    sign_in(client, personas.technician)
    assert client.get(EXPORT, {**RANGE, **query}).status_code == 404


def test_a_table_the_role_does_not_see_is_404(client, personas, records):
    sign_in(client, personas.roi_specialist)
    response = client.get(EXPORT, {**RANGE, "table": "completion-by-service", "format": "csv"})
    assert response.status_code == 404


def test_exports_refuse_other_roles_and_audit(client, personas, audit_rows):
    sign_in(client, personas.clinician)
    response = client.get(EXPORT, {**RANGE, "format": "pdf"})
    assert response.status_code == 403
    denied = audit_rows(outcome=Outcome.DENIED, object_type="reports.dashboard")
    assert len(denied) == 1


def test_bad_filters_export_nothing(client, personas, audit_rows):
    sign_in(client, personas.technician)
    response = client.get(EXPORT, {"start": "2025-03-01", "end": "2025-01-01", "format": "pdf"})
    assert response.status_code == 400
    assert not audit_rows(action=Action.EXPORT)


# --- patient-level rows ---------------------------------------------------------------------


FILTERS = Filters(start=dt.date(2025, 1, 1), end=dt.date(2025, 3, 31))


def patient_table(patient_id: str) -> Table:
    return Table(
        key="readmissions",
        title="Readmissions",
        columns=[Column("Patient"), Column("Days", True)],
        rows=[[patient_id, 12]],
        patient_level=True,
        patient_ids=[patient_id],
    )


def test_patient_rows_need_the_permission_and_the_refusal_is_audited(personas, audit_rows):
    table = patient_table("7b0a9c36-3a7e-4d0c-9d1e-0a8f3b2c1d4e")
    with pytest.raises(AccessDenied):
        exports.authorize_export(personas.technician, table, "csv", FILTERS, confirmed=True)
    denied = audit_rows(outcome=Outcome.DENIED, object_type="reports.patient_rows")
    assert len(denied) == 1 and denied[0].action == Action.EXPORT


def test_patient_rows_wait_for_the_password_then_are_audited_with_the_patients(
    personas, audit_rows
):
    patient_id = "7b0a9c36-3a7e-4d0c-9d1e-0a8f3b2c1d4e"
    table = patient_table(patient_id)
    assert not exports.authorize_export(
        personas.administrator, table, "csv", FILTERS, confirmed=False
    )
    assert not audit_rows(object_type="reports.patient_rows")
    assert exports.authorize_export(personas.administrator, table, "csv", FILTERS, confirmed=True)
    row = audit_rows(object_type="reports.patient_rows")[0]
    assert row.action == Action.EXPORT and row.detail["patients"] == [patient_id]
    assert row.detail["count"] == 1


def test_aggregate_tables_need_nothing_more(personas, audit_rows):
    table = Table("x", "X", [Column("A")], [["a"]])
    assert exports.authorize_export(personas.coder, table, "csv", FILTERS, confirmed=False)
    assert not audit_rows()


# --- the writers ---------------------------------------------------------------------------


def test_cells_keep_numbers_and_neutralise_formulas():
    assert exports.cell(3) == 3
    assert exports.cell(Decimal("12.5")) == Decimal("12.5")
    assert exports.cell(None) == ""
    assert exports.cell(dt.date(2024, 2, 29)) == "2024-02-29"
    assert exports.cell("-2+3") == "'-2+3"
    assert exports.cell("@SUM(A1)") == "'@SUM(A1)"
    assert exports.cell("surgery") == "surgery"


def test_excel_sheet_titles_are_valid_and_unique():
    tables = [
        Table("a", "Requests: by type/status [all]", [Column("A")], [["=1+1"]]),
        Table("b", "Requests: by type/status [all]", [Column("A")], []),
    ]
    book = load_workbook(io.BytesIO(exports.tables_xlsx(tables)))
    assert len(set(book.sheetnames)) == 2
    assert all(not set(name) & set("[]:*?/\\") for name in book.sheetnames)
    cells = [c for row in book.worksheets[0].iter_rows(values_only=True) for c in row]
    assert "'=1+1" in cells


def test_pdf_of_sections_with_and_without_data():
    sections = [
        Section("a", "Nothing yet", missing="No data yet."),
        Section(
            "b",
            "Some",
            figures=[("Count", "3")],
            tables=[Table("t", "T <b>", [Column("A"), Column("N", True)], [["x & y", None]])],
        ),
    ]
    body = exports.dashboard_pdf(
        "Statistics", FILTERS, sections, generated_at=dt.datetime(2025, 3, 20, tzinfo=dt.UTC)
    )
    assert body.startswith(b"%PDF") and len(body) > 1000
