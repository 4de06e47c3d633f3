"""The accounting-of-disclosures screens: the patient picker and open requests, a
patient's disclosures, manual entry, suspension, logging, extending and answering a
request. Every page audits the access; every refusal is audited; changes are POST only;
bad input gets a clear message and changes nothing."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import time_machine

from audit.models import Action, Outcome
from recordroom.testing import register_patient, sign_in
from roi import accounting
from roi.models import AccountingRequest, DeadlineStatus, Disclosure, Letter

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def specialist(client, personas):
    return sign_in(client, personas.roi_specialist)


def disclose(personas, patient, **overrides):
    values = {
        "acting_user": personas.roi_specialist,
        "disclosed_on": dt.date(2025, 6, 1),
        "recipient_name": "Springfield Department of Public Health",
        "recipient_address": "1 Civic Plaza",
        "description": "Laboratory result",
        "purpose": "Reportable disease surveillance",
        "basis": "public_health",
    }
    values.update(overrides)
    return accounting.do_record_disclosure(patient.public_id, **values)


def request_for(personas, patient):
    return accounting.do_log_accounting_request(
        patient.public_id, acting_user=personas.roi_specialist, received_on=dt.date(2026, 3, 1)
    )


# --- the start page ---------------------------------------------------------------------


def test_it_requires_login(client):
    response = client.get("/roi/disclosures/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_start_page_lists_open_requests_and_audits_them(
    specialist, personas, patient, audit_rows
):
    request_for(personas, patient)
    response = specialist.get("/roi/disclosures/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "QUILLFEATHER" in html and "2026-04-30" in html and ">51<" in html
    (event,) = audit_rows(object_type="roi.accounting_request", action=Action.VIEW)
    assert event.detail["shown"] == [str(patient.public_id)]


def test_overdue_requests_are_marked(client, personas, patient):
    request_for(personas, patient)
    with time_machine.travel(dt.datetime(2026, 5, 3, 15, 0, tzinfo=dt.UTC), tick=False):
        sign_in(client, personas.roi_specialist)
        html = client.get("/roi/disclosures/").content.decode()
    assert "overdue 3 days" in html


def test_the_picker_finds_the_patient_through_the_mpi_search(specialist, patient, audit_rows):
    response = specialist.get("/roi/disclosures/", {"q": "Quillfeather"})
    assert response.status_code == 200
    assert f"/roi/disclosures/patient/{patient.public_id}/" in response.content.decode()
    assert audit_rows(action=Action.SEARCH)


def test_a_coder_is_refused_and_the_refusal_is_audited(client, personas, audit_rows):
    sign_in(client, personas.coder)
    assert client.get("/roi/disclosures/").status_code == 403
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert "roi.view_disclosures" in event.reason


# --- a patient's page ----------------------------------------------------------------


def test_the_patient_page_shows_disclosures_and_audits_the_view(
    specialist, personas, patient, audit_rows
):
    disclose(personas, patient)
    disclose(personas, patient, basis="treatment", recipient_name="Dr Elsewhere")
    response = specialist.get(f"/roi/disclosures/patient/{patient.public_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Springfield Department of Public Health" in html and "not accounted" in html
    (event,) = audit_rows(object_type="roi.disclosure", action=Action.VIEW)
    assert event.patient_id == patient.public_id and event.detail["count"] == 2
    assert audit_rows(object_type="patient", action=Action.VIEW)


def test_the_patient_page_refuses_a_technician(client, personas, patient, audit_rows):
    sign_in(client, personas.technician)
    assert client.get(f"/roi/disclosures/patient/{patient.public_id}/").status_code == 403
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.disclosure")


def test_an_outsider_gets_a_404_and_it_is_audited(client, personas, patient, audit_rows):
    from accounts.roles import Role
    from recordroom.testing import make_user

    stranger = make_user("sam.stranger", Role.ROI_SPECIALIST)
    stranger.facilities.add(personas.other_facility)
    sign_in(client, stranger)
    assert client.get(f"/roi/disclosures/patient/{patient.public_id}/").status_code == 404
    assert audit_rows(outcome=Outcome.DENIED, object_type="patient")


def test_a_privacy_officer_sees_the_page(client, personas, patient):
    sign_in(client, personas.privacy_officer)
    assert client.get(f"/roi/disclosures/patient/{patient.public_id}/").status_code == 200


# --- recording by hand --------------------------------------------------------------


def form(**overrides):
    data = {
        "disclosed_on": "2026-02-01",
        "recipient_name": "State Cancer Registry",
        "recipient_address": "5 Registry Road",
        "description": "Pathology report",
        "purpose": "Cancer registry reporting",
        "basis": "public_health",
        "requester_type": "public_health",
    }
    data.update(overrides)
    return data


def test_recording_a_disclosure_by_hand(specialist, patient, audit_rows):
    url = f"/roi/disclosures/patient/{patient.public_id}/record/"
    response = specialist.post(url, form())
    assert response.status_code == 302
    disclosure = Disclosure.objects.get()
    assert disclosure.accountable and disclosure.recipient_name == "State Cancer Registry"
    assert audit_rows(object_type="roi.disclosure", action=Action.CREATE)


def test_recording_refuses_get(specialist, patient):
    url = f"/roi/disclosures/patient/{patient.public_id}/record/"
    assert specialist.get(url).status_code == 405


def test_recording_with_bad_input_says_why_and_keeps_nothing(specialist, patient):
    url = f"/roi/disclosures/patient/{patient.public_id}/record/"
    response = specialist.post(url, form(disclosed_on="2026-03-11"))
    assert response.status_code == 400
    assert "future" in response.content.decode()
    response = specialist.post(url, form(basis=""))
    assert response.status_code == 400
    assert not Disclosure.objects.exists()


def test_recording_is_refused_for_a_coder_and_audited(client, personas, patient, audit_rows):
    sign_in(client, personas.coder)
    url = f"/roi/disclosures/patient/{patient.public_id}/record/"
    assert client.post(url, form()).status_code == 403
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.disclosure")
    assert not Disclosure.objects.exists()


# --- suspension -------------------------------------------------------------------------


def test_suspending_a_disclosure(specialist, personas, patient):
    disclosure = disclose(personas, patient, basis="law_enforcement")
    url = f"/roi/disclosures/patient/{patient.public_id}/suspend/{disclosure.public_id}/"
    data = {"agency": "State Police", "until": "2026-03-20", "oral": "on"}
    assert specialist.get(url).status_code == 405
    response = specialist.post(url, {**data, "until": "2026-05-01"})
    assert response.status_code == 400 and "at most 30 days" in response.content.decode()
    assert specialist.post(url, data).status_code == 302
    disclosure.refresh_from_db()
    assert disclosure.suspended_until == dt.date(2026, 3, 20)
    html = specialist.get(f"/roi/disclosures/patient/{patient.public_id}/").content.decode()
    assert "suspended until 2026-03-20" in html


def test_suspending_an_unknown_disclosure_is_a_404(specialist, patient, audit_rows):
    url = f"/roi/disclosures/patient/{patient.public_id}/suspend/{uuid.uuid4()}/"
    data = {"agency": "State Police", "until": "2026-03-20", "oral": "on"}
    assert specialist.post(url, data).status_code == 404
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.disclosure")


# --- accounting requests ------------------------------------------------------------------


def test_logging_a_request_and_answering_it(specialist, personas, patient, audit_rows):
    disclose(personas, patient)
    url = f"/roi/disclosures/patient/{patient.public_id}/accounting/"
    assert specialist.get(url).status_code == 405
    response = specialist.post(url, {"received_on": "2026-03-01"})
    assert response.status_code == 302
    request = AccountingRequest.objects.get()
    assert response["Location"] == f"/roi/accounting/{request.public_id}/"
    page = specialist.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "2026-04-30" in html and "Springfield Department of Public Health" in html
    assert audit_rows(object_type="roi.accounting_request", action=Action.VIEW)
    answer = f"/roi/accounting/{request.public_id}/answer/"
    assert specialist.get(answer).status_code == 405
    assert specialist.post(answer, {"summarize": "on"}).status_code == 302
    request.refresh_from_db()
    assert request.status == DeadlineStatus.ANSWERED
    letter = Letter.objects.get(accounting_request=request)
    assert "Springfield Department of Public Health" in letter.body
    again = specialist.post(answer, {"summarize": "on"})
    assert again.status_code == 400 and "already answered" in again.content.decode()


def test_logging_a_bad_period_says_why(specialist, patient):
    url = f"/roi/disclosures/patient/{patient.public_id}/accounting/"
    response = specialist.post(
        url, {"received_on": "2026-03-01", "period_from": "2019-01-01", "period_to": ""}
    )
    assert response.status_code == 400 and "at most 6 years" in response.content.decode()
    assert not AccountingRequest.objects.exists()


def test_extending_a_request(specialist, personas, patient):
    request = request_for(personas, patient)
    url = f"/roi/accounting/{request.public_id}/extend/"
    assert specialist.get(url).status_code == 405
    response = specialist.post(url, {"reason": ""})
    assert response.status_code == 400
    assert specialist.post(url, {"reason": "Records are off site"}).status_code == 302
    request.refresh_from_db()
    assert request.extended_due_on == dt.date(2026, 5, 30)


def test_the_request_page_refuses_a_clinician_and_audits(client, personas, patient, audit_rows):
    request = request_for(personas, patient)
    sign_in(client, personas.clinician)
    assert client.get(f"/roi/accounting/{request.public_id}/").status_code == 403
    assert client.post(f"/roi/accounting/{request.public_id}/answer/").status_code == 403
    assert len(audit_rows(outcome=Outcome.DENIED, object_type="roi.accounting_request")) == 2


def test_an_unknown_request_is_a_404_and_audited(specialist, audit_rows):
    assert specialist.get(f"/roi/accounting/{uuid.uuid4()}/").status_code == 404
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.accounting_request")
