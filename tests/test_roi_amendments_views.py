"""Amendment screens: the list with deadlines and days left, logging a request against
the patient's documents, the request page and its POST-only changes (extend, accept,
deny, statements). Access audited; refusals audited; bad input explained."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import time_machine

from audit.models import Action, Outcome
from documents.actions import do_create_document, do_mark_entered_in_error
from documents.models import DocumentSource, DocumentType
from recordroom.testing import register_patient, sign_in
from roi import amendments
from roi.models import Amendment, AmendmentStatus, StatementKind

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 1, 30, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def document(personas, patient):
    return do_create_document(
        patient,
        doc_type=DocumentType.objects.get(loinc_code="11506-3"),
        title="Clinic progress note",
        service_at=NOW - dt.timedelta(days=10),
        acting_user=personas.administrator,
        body="Smoker, 20 pack-years.",
        source=DocumentSource.IMPORTED,
    )


@pytest.fixture
def specialist(client, personas):
    return sign_in(client, personas.roi_specialist)


def logged(personas, patient, document, **overrides):
    values = {
        "acting_user": personas.roi_specialist,
        "received_on": dt.date(2026, 1, 20),
        "document_ids": [document.public_id],
        "requested_change": "I have never smoked.",
    }
    values.update(overrides)
    return amendments.do_log_amendment(patient.public_id, **values)


def test_the_list_shows_deadlines_and_days_left_and_is_audited(
    specialist, personas, patient, document, audit_rows
):
    amendment = logged(personas, patient, document)
    response = specialist.get("/roi/amendments/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"/roi/amendments/{amendment.public_id}/" in html
    assert "2026-03-21" in html and "<td>50</td>" in html
    (event,) = audit_rows(object_type="roi.amendment", action=Action.VIEW)
    assert event.detail["shown"] == [str(patient.public_id)]


def test_the_list_filters_by_status(specialist, personas, patient, document):
    amendment = logged(personas, patient, document)
    amendments.do_deny_amendment(
        amendment.public_id, acting_user=personas.roi_specialist, basis="accurate_complete"
    )
    assert str(amendment.public_id) not in specialist.get("/roi/amendments/").content.decode()
    html = specialist.get("/roi/amendments/", {"status": "denied"}).content.decode()
    assert str(amendment.public_id) in html


def test_the_list_refuses_a_privacy_officer_and_audits(client, personas, audit_rows):
    sign_in(client, personas.privacy_officer)
    assert client.get("/roi/amendments/").status_code == 403
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert "roi.manage_amendments" in event.reason


def test_the_picker_links_to_the_log_page(specialist, patient):
    html = specialist.get("/roi/amendments/", {"q": "Quillfeather"}).content.decode()
    assert f"/roi/amendments/patient/{patient.public_id}/log/" in html


def test_logging_a_request_through_the_page(specialist, patient, document, audit_rows):
    url = f"/roi/amendments/patient/{patient.public_id}/log/"
    page = specialist.get(url)
    assert page.status_code == 200 and "Clinic progress note" in page.content.decode()
    response = specialist.post(
        url,
        {
            "received_on": "2026-01-29",
            "documents": [str(document.public_id)],
            "requested_change": "I have never smoked.",
        },
    )
    assert response.status_code == 302
    amendment = Amendment.objects.get()
    assert response["Location"] == f"/roi/amendments/{amendment.public_id}/"
    assert amendment.due_on == dt.date(2026, 3, 30)
    assert audit_rows(object_type="roi.amendment", action=Action.CREATE)


def test_logging_with_bad_input_says_why(specialist, patient, document):
    url = f"/roi/amendments/patient/{patient.public_id}/log/"
    response = specialist.post(
        url,
        {
            "received_on": "2026-02-01",
            "documents": [str(document.public_id)],
            "requested_change": "x",
        },
    )
    assert response.status_code == 400 and "future" in response.content.decode()
    response = specialist.post(url, {"received_on": "2026-01-29", "requested_change": "x"})
    assert response.status_code == 400
    assert not Amendment.objects.exists()


def test_logging_refused_for_a_coder_and_audited(client, personas, patient, document, audit_rows):
    sign_in(client, personas.coder)
    url = f"/roi/amendments/patient/{patient.public_id}/log/"
    assert client.get(url).status_code == 403
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.amendment")


def test_the_request_page_is_audited(specialist, personas, patient, document, audit_rows):
    amendment = logged(personas, patient, document)
    response = specialist.get(f"/roi/amendments/{amendment.public_id}/")
    assert response.status_code == 200
    assert "I have never smoked." in response.content.decode()
    (event,) = audit_rows(object_type="roi.amendment", action=Action.VIEW)
    assert event.object_id == str(amendment.public_id)


def test_an_unknown_request_is_a_404_and_audited(specialist, audit_rows):
    assert specialist.get(f"/roi/amendments/{uuid.uuid4()}/").status_code == 404
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.amendment")


@pytest.mark.parametrize(
    "action", ["extend", "accept", "deny", "statement", "send-with-disclosures"]
)
def test_changes_refuse_get(specialist, personas, patient, document, action):
    amendment = logged(personas, patient, document)
    assert specialist.get(f"/roi/amendments/{amendment.public_id}/{action}/").status_code == 405


@pytest.mark.parametrize("action", ["extend", "accept", "deny", "statement"])
def test_changes_refuse_a_clinician_and_audit(
    client, personas, patient, document, audit_rows, action
):
    amendment = logged(personas, patient, document)
    sign_in(client, personas.clinician)
    assert client.post(f"/roi/amendments/{amendment.public_id}/{action}/").status_code == 403
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.amendment")
    amendment.refresh_from_db()
    assert amendment.status == AmendmentStatus.RECEIVED


def test_extend_then_deny_then_statement(specialist, personas, patient, document):
    amendment = logged(personas, patient, document)
    base = f"/roi/amendments/{amendment.public_id}"
    assert specialist.post(f"{base}/extend/", {"reason": "Author on leave"}).status_code == 302
    again = specialist.post(f"{base}/extend/", {"reason": "Author on leave"})
    assert again.status_code == 400 and "only one" in again.content.decode()
    response = specialist.post(f"{base}/deny/", {"basis": ""})
    assert response.status_code == 400
    response = specialist.post(f"{base}/deny/", {"basis": "accurate_complete"})
    assert response.status_code == 302
    response = specialist.post(
        f"{base}/statement/",
        {"kind": StatementKind.DISAGREEMENT, "received_on": "2026-01-30", "text": "I disagree."},
    )
    assert response.status_code == 302
    html = specialist.get(f"{base}/").content.decode()
    assert "I disagree." in html and "Statement of disagreement received 2026-01-30" in html


def test_accepting_through_the_page(client, personas, patient, document):
    amendment = logged(personas, patient, document)
    sign_in(client, personas.administrator)
    response = client.post(
        f"/roi/amendments/{amendment.public_id}/accept/", {"notify": "Dr Greenway"}
    )
    assert response.status_code == 302
    amendment.refresh_from_db()
    assert amendment.status == AmendmentStatus.ACCEPTED and amendment.amendment_document


def test_an_entered_in_error_document_offers_only_denial(client, personas, patient, document):
    amendment = logged(personas, patient, document)
    do_mark_entered_in_error(
        document, reason="Filed to the wrong chart entirely", acting_user=personas.administrator
    )
    sign_in(client, personas.administrator)
    page = client.get(f"/roi/amendments/{amendment.public_id}/").content.decode()
    assert "marked entered in error" in page and 'id="accept"' not in page
    response = client.post(f"/roi/amendments/{amendment.public_id}/accept/", {})
    assert response.status_code == 400 and "entered in error" in response.content.decode()
