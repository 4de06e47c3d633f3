"""The privacy officer's audit screen: search, paging, CSV export (itself audited)."""

import csv
import io
import uuid

import pytest
import time_machine

from audit.actions import record_event
from audit.models import Action, Outcome
from recordroom.testing import sign_in

pytestmark = pytest.mark.django_db
PATIENT = uuid.UUID("6f1c1d1e-0000-4000-8000-000000000001")


@pytest.fixture
def officer_client(client, personas):
    return sign_in(client, personas.privacy_officer, sudo=True)


@pytest.fixture
def trail(personas):
    with time_machine.travel("2026-01-10 12:00Z", tick=False):
        record_event(personas.technician, Action.VIEW, patient_id=PATIENT, object_type="patient")
    with time_machine.travel("2026-02-10 12:00Z", tick=False):
        record_event(personas.coder, Action.VIEW, outcome=Outcome.DENIED, object_type="audit.trail")
        record_event(personas.coder, Action.EXPORT, object_type="report", reason='=HYPERLINK("x")')


def _rows(response):
    return response.context["page"].events


def test_it_lists_newest_first(officer_client, trail):
    response = officer_client.get("/audit/")
    assert response.status_code == 200
    seqs = [event.seq for event in _rows(response)]
    assert seqs == sorted(seqs, reverse=True)


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"username": "tina.tech"}, 1),
        ({"patient_id": str(PATIENT)}, 1),
        ({"action": "export"}, 1),
        ({"username": "cora.coder", "outcome": "denied"}, 1),
        ({"date_from": "2026-02-01", "date_to": "2026-02-28", "username": "cora.coder"}, 2),
        ({"date_from": "2026-01-01", "date_to": "2026-01-31", "username": "cora.coder"}, 0),
    ],
)
def test_it_filters(officer_client, trail, query, expected):
    assert len(_rows(officer_client.get("/audit/", query))) == expected


def test_a_reversed_date_range_is_refused_clearly(officer_client, trail):
    response = officer_client.get("/audit/", {"date_from": "2026-03-01", "date_to": "2026-02-01"})
    assert response.status_code == 400
    assert b"end date is before the start date" in response.content


def test_a_malformed_filter_is_refused(officer_client, trail):
    response = officer_client.get(
        "/audit/", {"patient_id": "not-a-uuid", "date_from": "2026-13-45"}
    )
    assert response.status_code == 400
    assert b"Enter a valid UUID" in response.content
    assert b"Enter a valid date" in response.content


def test_it_pages_by_sequence(officer_client, personas):
    for i in range(120):
        record_event(personas.technician, Action.VIEW, object_type="x", object_id=str(i))
    first = officer_client.get("/audit/", {"username": "tina.tech"})
    page = first.context["page"]
    assert len(page.events) == 50 and page.older_than and page.newer_than is None
    second = officer_client.get("/audit/", {"username": "tina.tech", "before": page.older_than})
    page2 = second.context["page"]
    assert page2.events[0].seq < page.events[-1].seq
    back = officer_client.get("/audit/", {"username": "tina.tech", "after": page2.newer_than})
    assert [e.seq for e in back.context["page"].events] == [e.seq for e in page.events]
    assert first.context["page"].count == 120


def test_htmx_requests_get_the_results_fragment(officer_client, trail):
    response = officer_client.get("/audit/", {"action": "view"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in response.content
    assert b'id="trail"' in response.content


def test_searching_is_itself_audited(officer_client, personas, trail, audit_rows):
    officer_client.get("/audit/", {"username": "tina.tech"})
    (event,) = audit_rows(action=Action.SEARCH)
    assert event.actor == personas.privacy_officer
    assert event.detail == {"username": "tina.tech"}


def test_csv_export_streams_every_match_and_is_audited(officer_client, personas, trail, audit_rows):
    response = officer_client.get("/audit/export.csv", {"username": "cora.coder"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [row["action"] for row in rows] == ["view", "export"]
    assert rows[1]["reason"].startswith("'="), "spreadsheet formulas are neutralised"
    (event,) = audit_rows(action=Action.EXPORT, object_type="audit.trail")
    assert event.actor == personas.privacy_officer


@pytest.mark.parametrize(
    "persona", ["technician", "coder", "clinician", "roi_specialist", "patient"]
)
def test_it_denies_other_roles_and_audits(client, personas, persona, audit_rows):
    client.force_login(getattr(personas, persona))
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403
    denials = audit_rows(outcome=Outcome.DENIED)
    assert {event.action for event in denials} == {"search", "export"}


def test_an_administrator_may_verify_but_not_read_the_trail(client, personas):
    from accounts.access import has_permission

    assert has_permission(personas.administrator, "audit.verify_trail")
    assert not has_permission(personas.administrator, "audit.view_trail")


def test_the_page_query_count_is_flat(officer_client, personas, django_assert_max_num_queries):
    for i in range(60):
        record_event(personas.technician, Action.VIEW, object_type="x", object_id=str(i))
    with django_assert_max_num_queries(18):
        officer_client.get("/audit/")
