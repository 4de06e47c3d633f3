"""The hospital statistics on the dashboard (``reports.hospital``, the door
``reports.access.hospital_dashboard``): the worked January 2026 of
tests/test_reports_statistics.py (its ``january`` fixture; the table of stays and the
arithmetic are written out there), shown as sections, charts and tables, with the
patient-level lists of deaths and readmissions, the access audited and refusals audited.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from encounters.models import Encounter
from recordroom.testing import sign_in
from reports import access, hospital
from reports import statistics as st
from reports.tables import Filters
from tests import test_reports_statistics as worked
from tests.test_reports_statistics import JAN

pytestmark = pytest.mark.django_db
DASHBOARD = "/reports/dashboard/"
EXPORT = "/reports/export/"
QUERY = {"start": "2026-01-01", "end": "2026-01-31"}


@pytest.fixture
def january(personas):
    """The worked January 2026 (the stays and their arithmetic: test_reports_statistics)."""
    return worked.january.__wrapped__(personas)


def public(patient_family: str) -> str:
    encounter = Encounter.objects.filter(patient__family_name=patient_family).first()
    return str(encounter.patient.public_id)


def by_key(sections):
    return {t.key: t for s in sections for t in s.tables}


def test_the_deaths_list_marks_the_net_and_post_operative_deaths(january):
    rows = st.death_list(january, *JAN)
    # E8 died 12 Jan (admitted 8 Jan: LOS 4; operated 9 Jan, 3 days before: post-op);
    # E4 died 21 Jan 10:00 (admitted 20 Jan 08:00: 26 hours < 48; LOS 1). E5 died in
    # February: not in January's list.
    assert [(r.admitted, r.died, r.los, r.under_net_hours, r.postoperative) for r in rows] == [
        (dt.date(2026, 1, 8), dt.date(2026, 1, 12), 4, False, True),
        (dt.date(2026, 1, 20), dt.date(2026, 1, 21), 1, True, False),
    ]
    assert [r.service for r in rows] == ["surgery", "surgery"]
    # The list and the figures are the same condition: 2 deaths, 1 under 48 hours.
    stats = st.hospital_statistics(january, *JAN)
    assert (stats.deaths, stats.deaths_under_48h) == (len(rows), 1)


def test_the_readmissions_list_has_the_unplanned_one_only(january):
    (row,) = st.readmission_list(january, *JAN)
    # E3 discharged 15 Jan, E5 admitted 25 Jan: 25 − 15 = 10 days. E2 → E10 (29 Jan) is
    # planned (Z51.11) and not listed.
    assert (row.discharged, row.readmitted, row.days) == (
        dt.date(2026, 1, 15),
        dt.date(2026, 1, 25),
        10,
    )
    assert row.service == "medicine" and row.readmission_service == "medicine"
    assert row.patient == public("Statistic C")
    assert st.hospital_statistics(january, *JAN).readmitted == 1


def test_the_lists_are_cut_at_the_limit(january):
    assert len(st.death_list(january, *JAN, limit=1)) == 1
    assert st.readmission_list(january, dt.date(2026, 1, 1), dt.date(2026, 1, 14)) == []


def test_the_sections_show_the_engines_figures(january, personas):
    filters = Filters(*JAN)
    sections = hospital.hospital_sections(personas.administrator, filters)
    assert [s.key for s in sections] == ["hospital", "hospital-outcomes", "hospital-codes"]
    tables = by_key(sections)
    summary = {row[0]: row[1:] for row in tables["hospital-summary"].rows}
    # Service days 25; ADC 25 / 31 = 0.81; ALOS 16 / 6 = 2.67; occupancy 25 / 310 = 8.06 %.
    assert summary["Inpatient service days"][0] == 25
    assert summary["Average daily census"] == [Decimal("0.81"), 25, 31]
    assert summary["Average length of stay (days)"] == [Decimal("2.67"), 16, 6]
    assert summary["Bed occupancy %"] == [Decimal("8.06"), 25, 310]
    # Net death rate (2 − 1) / (6 − 1) = 20 %; readmissions 1 / 4 = 25 %.
    assert summary["Net death rate %"] == [Decimal("20.00"), 1, 5]
    assert summary["30-day readmission rate %"] == [Decimal("25.00"), 1, 4]
    census = tables["hospital-census"]
    assert census.chart.kind == "line" and len(census.rows) == 31
    assert sum(r[1] for r in census.rows) == 25
    assert tables["hospital-trend"].chart.kind == "line"
    services = tables["hospital-by-service"]
    assert services.chart.kind == "bar"
    assert {r[0]: r[2] for r in services.rows} == {"medicine": 4, "surgery": 2}
    # The only final abstract: E10, principal diagnosis Z51.11 → 1 of 1 = 100 %.
    assert tables["hospital-top-diagnoses"].rows == [["Z5111", "", 1, Decimal("100.00")]]
    assert tables["hospital-top-diagnoses"].chart.kind == "bar"


def test_deaths_and_readmissions_are_patient_level_tables(january, personas):
    tables = by_key(hospital.hospital_sections(personas.administrator, Filters(*JAN)))
    deaths, readmissions = tables["hospital-deaths"], tables["hospital-readmissions"]
    assert deaths.patient_level and readmissions.patient_level
    assert deaths.patient_ids == [public("Statistic G"), public("Statistic D")]
    assert readmissions.patient_ids == [public("Statistic C")]
    for table in (deaths, readmissions):
        assert table.chart is None
    aggregates = [
        t for k, t in tables.items() if k not in {"hospital-deaths", "hospital-readmissions"}
    ]
    assert not any(t.patient_level for t in aggregates)


def test_newborns_have_their_own_dashboard(january, personas):
    filters = Filters(*JAN, population="newborn")
    sections = hospital.hospital_sections(personas.administrator, filters)
    assert "Newborns" in sections[0].title
    summary = {row[0]: row[1:] for row in by_key(sections)["hospital-summary"].rows}
    # E7: 2 service days, 1 discharge of LOS 2; no bassinets recorded → occupancy not
    # measured (bed-days 0).
    assert summary["Inpatient service days"][0] == 2
    assert summary["Average length of stay (days)"] == [Decimal("2.00"), 2, 1]
    assert summary["Bed occupancy %"][0] is None
    assert st.NO_BEDS in sections[0].missing_parts


def test_no_final_codes_say_so(personas):
    sections = hospital.hospital_sections(personas.administrator, Filters(*JAN))
    codes = sections[-1]
    assert codes.missing == st.NO_FINAL_CODES and codes.tables == []
    tables = by_key(sections)
    assert tables["hospital-deaths"].rows == []
    summary = {row[0]: row[1] for row in tables["hospital-summary"].rows}
    assert summary["Gross death rate %"] is None  # no discharges: not measured


def test_the_read_is_audited_with_the_patients_listed(january, personas, audit_rows):
    access.hospital_dashboard(personas.administrator, Filters(*JAN))
    (event,) = audit_rows(object_type=access.OBJECT_TYPE)
    assert event.action == Action.VIEW and event.outcome == Outcome.ALLOWED
    assert event.patient_id is None
    assert event.detail["start"] == "2026-01-01" and event.detail["population"] == "adults_children"
    assert event.detail["patients"] == [
        public("Statistic C"),
        public("Statistic G"),
        public("Statistic D"),
    ]


def test_a_user_without_the_permission_is_refused_and_audited(january, personas, audit_rows):
    with pytest.raises(AccessDenied):
        access.hospital_dashboard(personas.coder, Filters(*JAN))
    (event,) = audit_rows(object_type=access.OBJECT_TYPE)
    assert event.outcome == Outcome.DENIED
    with pytest.raises(AccessDenied):
        hospital.hospital_sections(personas.no_role, Filters(*JAN))
    assert len(audit_rows(object_type=access.OBJECT_TYPE, outcome=Outcome.DENIED)) == 2


def test_another_facility_is_not_found(january, personas):
    from django.http import Http404

    from accounts.models import Facility

    elsewhere = Facility.objects.create(name="Elsewhere General", code="ELSE")
    with pytest.raises(Http404):
        access.hospital_dashboard(personas.administrator, Filters(*JAN, facility=elsewhere))


def test_the_dashboard_page_renders_for_the_administrator(client, january, personas, audit_rows):
    sign_in(client, personas.administrator)
    response = client.get(DASHBOARD, QUERY)
    assert response.status_code == 200
    body = response.content.decode()
    for text in (
        'id="section-hospital"',
        'id="section-hospital-outcomes"',
        'id="section-hospital-codes"',
        "Daily inpatient census",
        "Monthly trend",
        "By service",
        "Deaths (patient-level)",
        public("Statistic C"),
        "Z5111",
    ):
        assert text in body, text
    assert 'id="table-hospital-census"' in body and "<svg" in body
    # Patients by public id only: no name reaches the page.
    assert "Statistic C" not in body and "STATISTIC" not in body
    views = audit_rows(object_type=access.OBJECT_TYPE, action=Action.VIEW)
    assert len(views) == 1


def test_the_technician_sees_the_hospital_but_may_not_export_patient_rows(
    client, january, personas, audit_rows
):
    sign_in(client, personas.technician, sudo=True)
    body = client.get(DASHBOARD, QUERY).content.decode()
    assert 'id="section-hospital"' in body
    response = client.get(EXPORT, {**QUERY, "table": "hospital-deaths", "format": "csv"})
    assert response.status_code == 403
    denied = audit_rows(object_type="reports.patient_rows", outcome=Outcome.DENIED)
    assert len(denied) == 1
    # An aggregate table exports (its read audited as an export).
    response = client.get(EXPORT, {**QUERY, "table": "hospital-census", "format": "csv"})
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Day,Census,In house at midnight")
    assert "2026-01-29,3," in text  # E5, E6 and E10 (see the worked example)
    exports = audit_rows(object_type=access.OBJECT_TYPE, action=Action.EXPORT)
    assert exports[-1].object_id == "dashboard:csv:hospital-census"


def test_the_administrator_exports_the_deaths_audited_with_the_patients(
    client, january, personas, audit_rows
):
    sign_in(client, personas.administrator, sudo=True)
    response = client.get(EXPORT, {**QUERY, "table": "hospital-deaths", "format": "csv"})
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    assert public("Statistic G") in text and public("Statistic D") in text
    (event,) = audit_rows(object_type="reports.patient_rows", action=Action.EXPORT)
    assert event.detail["patients"] == [public("Statistic G"), public("Statistic D")]
