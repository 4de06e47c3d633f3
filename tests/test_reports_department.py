"""The department's statistics: who sees which section, the figures (worked out by
hand), sections without data saying so, and the audit."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.http import Http404

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from coding.models import Abstract, AbstractStatus
from completion.models import RecordStatus
from recordroom.testing import register_patient
from reports.department import department_statistics, percent, sections_for
from reports.tables import Filters
from tests.test_completion_queue import NOW, discharged, make_record

pytestmark = pytest.mark.django_db

FILTERS = Filters(start=dt.date(2025, 1, 1), end=dt.date(2025, 3, 31))


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


def by_key(sections):
    return {s.key: s for s in sections}


def test_each_role_sees_its_sections(personas):
    assert sections_for(personas.administrator) == ["completion", "coding", "roi", "mpi", "audit"]
    assert sections_for(personas.coder) == ["completion", "coding"]
    assert sections_for(personas.roi_specialist) == ["roi"]
    assert sections_for(personas.privacy_officer) == ["roi", "audit"]
    assert sections_for(personas.technician) == ["completion", "mpi"]


@pytest.mark.parametrize("who", ["clinician", "patient", "no_role", "integration"])
def test_it_refuses_other_roles_and_audits(personas, audit_rows, who):
    user = getattr(personas, who)
    with pytest.raises(AccessDenied):
        department_statistics(user, FILTERS)
    denied = audit_rows(outcome=Outcome.DENIED, object_type="reports.department")
    assert len(denied) == 1 and denied[0].action == Action.VIEW


def test_the_view_is_audited_once_without_patients(personas, audit_rows):
    department_statistics(personas.administrator, FILTERS)
    rows = audit_rows(object_type="reports.department")
    assert len(rows) == 1
    assert rows[0].action == Action.VIEW and rows[0].patient_id is None
    assert rows[0].detail["filters"] == {"start": "2025-01-01", "end": "2025-03-31"}
    assert rows[0].detail["sections"] == ["completion", "coding", "roi", "mpi", "audit"]


def test_an_export_is_audited_as_one(personas, audit_rows):
    department_statistics(personas.coder, FILTERS, export_format="csv", table="coding-dnfb")
    rows = audit_rows(object_type="reports.department")
    assert [r.action for r in rows] == [Action.EXPORT]
    assert rows[0].detail["format"] == "csv" and rows[0].detail["table"] == "coding-dnfb"


def test_sections_without_data_say_so(personas):
    sections = by_key(department_statistics(personas.administrator, FILTERS))
    assert "analysed no record" in sections["completion"].missing
    assert "No encounter has been coded" in sections["coding"].missing
    assert "No release-of-information" in sections["roi"].missing
    assert "No patient is registered" in sections["mpi"].missing
    assert all(not s.tables for k, s in sections.items() if k != "audit")


def test_a_facility_not_the_users_is_a_404(personas):
    with pytest.raises(Http404):
        department_statistics(
            personas.administrator,
            Filters(FILTERS.start, FILTERS.end, facility=personas.other_facility),
        )


def test_completion_figures(personas, patient):
    # Discharged in range: 3 (10, 40 and 60 days before 20 March); one more on 20 Dec 2024.
    # Complete: the 60-day one, completed on 1 March (in range). Incomplete: 10-day
    # (due in 20 days), 40-day (due 10 days ago: delinquent) and the December one
    # (delinquent). So received 3, completed 1, incomplete 3, delinquent 2.
    recent = discharged(personas, patient, days_ago=10, service="surgery")
    late = discharged(personas, patient, days_ago=40, service="surgery")
    done = discharged(personas, patient, days_ago=60, service="medicine")
    old = discharged(personas, patient, days_ago=90, service="medicine")
    make_record(recent)
    make_record(late)
    make_record(
        done, status=RecordStatus.COMPLETE, completed_at=dt.datetime(2025, 3, 1, 15, tzinfo=dt.UTC)
    )
    make_record(old)
    section = by_key(department_statistics(personas.technician, FILTERS))["completion"]
    assert section.missing == ""
    assert dict(section.figures) == {
        "Records received": "3",
        "Records completed": "1",
        "Incomplete now": "3",
        "Delinquent now": "2",
    }
    services = {row[0]: row[1:] for row in section.table("completion-by-service").rows}
    assert services == {"medicine": [1, 1], "surgery": [2, 1]}
    months = {row[0]: row[1:] for row in section.table("completion-delinquency").rows}
    # January: one discharge (19 Jan, the 60-day one). At the end of January the
    # December record (discharged 20 Dec, due 19 Jan, still incomplete) is delinquent:
    # 1 delinquent ÷ 1 discharge × 100 = 100 %.
    assert list(months) == ["2025-01", "2025-02", "2025-03"]
    assert months["2025-01"] == [1, 1, pytest.approx(100)]


def test_coding_section_with_data(personas, patient):
    encounter = discharged(personas, patient, days_ago=5)
    Abstract.objects.create(
        encounter=encounter,
        patient=patient,
        status=AbstractStatus.FINAL,
        finalised_at=NOW - dt.timedelta(days=1),
        created_at=NOW,
        updated_at=NOW,
    )
    discharged(personas, patient, days_ago=20)
    section = by_key(department_statistics(personas.coder, FILTERS))["coding"]
    figures = dict(section.figures)
    assert figures["Coding backlog now"] == "1"
    assert figures["DNFB now"] == "1"
    assert figures["Oldest DNFB (days)"] == "20"
    assert figures["Finalised in range"] == "1"
    assert len(section.table("coding-finalised").rows) == 90  # 1 Jan – 31 Mar 2025


def test_mpi_without_merges_says_the_rate_is_not_measured(personas, patient):
    section = by_key(department_statistics(personas.technician, FILTERS))["mpi"]
    assert dict(section.figures)["Patient records"] == "1"
    assert "cannot be measured" in section.missing_parts[0]
    assert section.table("mpi-duplicates") is None


def test_mpi_duplicate_rate_counts_merged_records(personas, patient):
    twin = register_patient(personas, given="Rosalind", family="Brightwater")
    register_patient(personas, given="Tobias", family="Everglade")
    twin.merged_into = patient
    twin.save(update_fields=["merged_into"])  # a merge as the merge action will record it
    section = by_key(department_statistics(personas.technician, FILTERS))["mpi"]
    # 1 merged ÷ 3 records × 100 = 33.3 %
    assert section.table("mpi-duplicates").rows == [[3, 1, percent(1, 3)]]
    assert str(percent(1, 3)) == "33.3"


def test_audit_section_counts_events_and_break_the_glass(personas, patient):
    with pytest.raises(AccessDenied):
        department_statistics(personas.patient, FILTERS)
    section = by_key(department_statistics(personas.privacy_officer, FILTERS))["audit"]
    actions = {row[0]: row[1:] for row in section.table("audit-by-action").rows}
    assert actions["View"][1] >= 1  # the refusal above
    btg = {row[0]: row[1] for row in section.table("audit-break-the-glass").rows}
    assert btg["Total"] == 0


def test_user_with_no_facility_sees_why(personas):
    personas.coder.facilities.clear()
    personas.coder._facility_ids = None
    sections = department_statistics(personas.coder, FILTERS)
    assert all("no facility" in s.missing for s in sections)


def test_percent_rounds_half_up_and_refuses_nothing_to_divide():
    assert str(percent(1, 8)) == "12.5"
    assert str(percent(1, 6)) == "16.7"
    assert percent(3, 0) is None
