"""DNFB: discharged, not final billed — counted by days since discharge (0–3, 4–7,
8–14, 15–30, over 30) and by why held (open query, coding in progress, incomplete record,
not started); a cell lists its encounters; the page and the CSV are audited."""

from __future__ import annotations

import pytest
import time_machine
from django.core.exceptions import ValidationError

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from coding import dnfb
from coding.models import AbstractStatus, PhysicianQuery
from completion.models import RecordStatus
from encounters.models import EncounterStatus
from recordroom.testing import register_patient, sign_in
from tests.test_coding_queue import NOW, discharged, make_abstract

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(personas):
    return register_patient(personas)


def _cell(report, reason, bucket_key):
    for r, _label, cells, _total in report.matrix:
        if r == reason:
            return next(c.count for c in cells if c.bucket.key == bucket_key)
    raise AssertionError(reason)


def test_buckets_are_days_since_discharge_at_their_edges(personas, patient):
    for days in (0, 3, 3.5, 4, 7, 8, 14, 15, 30, 31, 90):
        discharged(personas, patient, days_ago=days)
    report = dnfb.dnfb_report(personas.coder, now=NOW)
    assert [(b.key, n) for b, n in report.by_bucket] == [
        ("0-3", 3),
        ("4-7", 2),
        ("8-14", 2),
        ("15-30", 2),
        ("31+", 2),
    ]
    assert report.total == 11
    assert report.oldest_days == 90


def test_each_encounter_is_held_for_one_reason(personas, patient):
    not_started = discharged(personas, patient, days_ago=1)
    incomplete = discharged(personas, patient, days_ago=5, record=RecordStatus.INCOMPLETE)
    unanalysed = discharged(personas, patient, days_ago=5, record=None)
    in_progress = discharged(personas, patient, days_ago=10, record=RecordStatus.INCOMPLETE)
    make_abstract(in_progress, coder=personas.coder)
    on_hold = discharged(personas, patient, days_ago=20)
    make_abstract(on_hold, status=AbstractStatus.ON_HOLD, coder=personas.coder)
    # An open query wins over "in progress" even if the abstract is not on hold.
    queried = discharged(personas, patient, days_ago=40)
    abstract = make_abstract(queried, coder=personas.coder)
    for status in ("answered", "open"):
        PhysicianQuery.objects.create(
            abstract=abstract,
            clinician=personas.clinician,
            asked_by=personas.coder,
            asked_at=NOW,
            clinical_indicators="x",
            question="y?",
            options=["a", "b"],
            status=status,
        )
    final = discharged(personas, patient, days_ago=2)
    make_abstract(final, status=AbstractStatus.FINAL, finalised_by=personas.coder, finalised_at=NOW)
    rebilled = discharged(personas, patient, days_ago=2)
    make_abstract(
        rebilled, status=AbstractStatus.REBILLED, finalised_by=personas.coder, finalised_at=NOW
    )
    discharged(personas, patient, days_ago=2, status=EncounterStatus.ENTERED_IN_ERROR)
    report = dnfb.dnfb_report(personas.coder, now=NOW)
    assert report.total == 6
    assert {r: t for r, _l, t in report.by_reason} == {
        dnfb.OPEN_QUERY: 2,
        dnfb.IN_PROGRESS: 1,
        dnfb.INCOMPLETE: 2,
        dnfb.NOT_STARTED: 1,
    }
    assert _cell(report, dnfb.OPEN_QUERY, "31+") == 1
    assert _cell(report, dnfb.OPEN_QUERY, "15-30") == 1
    assert _cell(report, dnfb.INCOMPLETE, "4-7") == 2
    assert _cell(report, dnfb.NOT_STARTED, "0-3") == 1
    listed = dnfb.dnfb_list(personas.coder, reason=dnfb.INCOMPLETE, now=NOW)
    assert {r.encounter.pk for r in listed} == {incomplete.pk, unanalysed.pk}
    assert [r.encounter.pk for r in dnfb.dnfb_list(personas.coder, bucket="0-3", now=NOW)] == [
        not_started.pk
    ]


def test_an_empty_backlog_reports_zeros(personas):
    report = dnfb.dnfb_report(personas.coder, now=NOW)
    assert report.total == 0 and report.oldest_days == 0
    assert all(n == 0 for _, n in report.by_bucket)


def test_other_facilities_are_not_counted(personas, patient):
    other = register_patient(personas, facility=personas.other_facility, family="Elsewhere")
    discharged(personas, other, days_ago=2, facility=personas.other_facility)
    assert dnfb.dnfb_report(personas.coder, now=NOW).total == 0


def test_bad_cell_filters_are_refused(personas):
    with pytest.raises(ValidationError):
        dnfb.dnfb_list(personas.coder, bucket="99+")
    with pytest.raises(ValidationError):
        dnfb.dnfb_list(personas.coder, reason="lunch")


def test_the_report_is_audited_without_patients_and_the_list_with_them(
    personas, patient, audit_rows
):
    discharged(personas, patient, days_ago=2)
    dnfb.dnfb_report(personas.administrator, now=NOW)
    dnfb.dnfb_list(personas.administrator, bucket="0-3", now=NOW)
    report, listing = audit_rows(object_type="coding.dnfb")
    assert report.patient_id is None and "shown" not in report.detail
    assert listing.detail["shown"] == [str(patient.public_id)]


@pytest.mark.parametrize("who", ["clinician", "technician", "roi_specialist", "no_role"])
def test_the_report_refuses_without_view_reports_and_audits_it(personas, who, audit_rows):
    with pytest.raises(AccessDenied):
        dnfb.dnfb_report(getattr(personas, who))
    assert audit_rows(object_type="coding.dnfb")[0].outcome == Outcome.DENIED


# --- the screens -----------------------------------------------------------------------------


def test_the_page_shows_the_matrix_and_a_cell(client, personas, patient):
    discharged(personas, patient, days_ago=2)
    sign_in(client, personas.coder)
    with time_machine.travel(NOW, tick=False):
        page = client.get("/coding/dnfb/")
        cell = client.get("/coding/dnfb/", {"bucket": "0-3", "reason": dnfb.NOT_STARTED})
    assert page.status_code == 200 and b'data-count="total">1<' in page.content
    assert cell.status_code == 200 and patient.display_name in cell.content.decode()


def test_the_page_refuses_a_bad_cell_with_a_message(client, personas):
    sign_in(client, personas.coder)
    response = client.get("/coding/dnfb/", {"bucket": "nope"})
    assert response.status_code == 400 and b"Unknown age bucket" in response.content


def test_the_page_requires_login(client):
    assert client.get("/coding/dnfb/").status_code == 302


def test_the_page_refuses_a_clinician_and_audits_it(client, personas, audit_rows):
    sign_in(client, personas.clinician)
    assert client.get("/coding/dnfb/").status_code == 403
    assert audit_rows(object_type="coding.dnfb")[0].outcome == Outcome.DENIED


def test_the_csv_asks_for_the_password_then_exports(client, personas, patient, audit_rows):
    discharged(personas, patient, days_ago=2)
    sign_in(client, personas.coder)
    assert client.get("/coding/dnfb.csv").status_code == 302
    sign_in(client, personas.coder, sudo=True)
    response = client.get("/coding/dnfb.csv")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    assert text.splitlines()[0].startswith("reason,0–3 days")
    assert text.splitlines()[-1].endswith(",1")
    assert audit_rows(object_type="coding.dnfb", action=Action.EXPORT)


def test_the_csv_refuses_a_clinician_and_audits_it(client, personas, audit_rows):
    sign_in(client, personas.clinician, sudo=True)
    assert client.get("/coding/dnfb.csv").status_code == 403
    assert audit_rows(outcome=Outcome.DENIED, action=Action.EXPORT)
