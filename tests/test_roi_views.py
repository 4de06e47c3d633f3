"""The ROI intake screens: each POST step refuses other roles (audited) and changes
nothing, bad input answers 400 with the message, the request page shows the checklist
and what is asked for, and GET on a step is refused."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Action, Outcome
from recordroom.testing import sign_in
from roi import intake
from roi.authorizations import CHECKLIST
from roi.models import RequestStatus, RoiRequest
from tests.test_roi_processing_support import (  # noqa: F401  (fixtures)
    media_fixture,
    patient_fixture,
)

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)
PDF = b"%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
STEPS = ["attach", "authorization", "identity", "check", "extend", "assign", "revoke"]


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture(name="request_row")
def request_fixture(personas, patient):
    return intake.do_log_request(
        personas.roi_specialist,
        patient.public_id,
        intake.RequestInput(
            requester_type="attorney",
            requester_name="Lex Tallow",
            received_on=dt.date(2026, 3, 9),
            scope={"all": True},
        ),
    )


def _url(request, step=""):
    return f"/roi/requests/{request.public_id}/{step + '/' if step else ''}"


@pytest.mark.parametrize("step", STEPS)
def test_each_step_refuses_a_coder_and_audits(client, personas, request_row, audit_rows, step):
    sign_in(client, personas.coder)
    before = request_row.version
    response = client.post(_url(request_row, step), {"reason": "x", "identity_verified": "x"})
    assert response.status_code == 403
    denied = audit_rows(outcome=Outcome.DENIED, object_type="roi.request")
    assert denied and denied[-1].object_id == str(request_row.public_id)
    request_row.refresh_from_db()
    assert request_row.version == before


@pytest.mark.parametrize("step", STEPS)
def test_a_step_answers_post_only(client, personas, request_row, step):
    sign_in(client, personas.roi_specialist)
    assert client.get(_url(request_row, step)).status_code == 405


def test_another_facilitys_specialist_gets_404_audited(client, personas, request_row, audit_rows):
    from accounts.roles import Role
    from recordroom.testing import make_user

    elsewhere = make_user("olive.elsewhere", Role.ROI_SPECIALIST)
    elsewhere.facilities.add(personas.other_facility)
    sign_in(client, elsewhere)
    assert client.get(_url(request_row)).status_code == 404
    assert client.post(_url(request_row, "check")).status_code == 404
    assert len(audit_rows(outcome=Outcome.DENIED, object_type="roi.request")) == 2


def test_logging_for_a_patient_refuses_a_clinician_and_audits(
    client, personas, patient, audit_rows
):
    sign_in(client, personas.clinician)
    response = client.post(
        f"/roi/requests/new/{patient.public_id}/",
        {"requester_type": "patient", "requester_name": "X", "received_on": "2026-03-09"},
    )
    assert response.status_code == 403
    assert client.get(f"/roi/requests/new/{patient.public_id}/").status_code == 403
    assert len(audit_rows(outcome=Outcome.DENIED, object_type="roi.request")) == 2
    assert not RoiRequest.objects.exists()


def test_the_new_request_form_keeps_sensitive_categories_and_rejects_bad_input(
    client, personas, patient
):
    sign_in(client, personas.roi_specialist)
    form = {
        "requester_type": "attorney",
        "requester_name": "Lex Tallow",
        "received_on": "2026-03-11",  # tomorrow
        "urgency": "routine",
        "scope_all": "on",
        "sensitive_categories": ["psychotherapy", "sud_part2"],
        "format": "electronic",
        "delivery": "portal",
    }
    response = client.post(f"/roi/requests/new/{patient.public_id}/", form)
    assert response.status_code == 400 and b"cannot be in the future" in response.content
    assert not RoiRequest.objects.exists()
    response = client.post(
        f"/roi/requests/new/{patient.public_id}/", {**form, "received_on": "2026-03-09"}
    )
    request = RoiRequest.objects.get()
    assert response.status_code == 302
    assert request.scope["sensitive_categories"] == ["psychotherapy", "sud_part2"]
    page = client.get(response.url).content.decode()
    assert "Specifically asks for:</strong> Psychotherapy notes" in page


def test_recording_an_authorization_through_the_form(client, personas, request_row, audit_rows):
    sign_in(client, personas.roi_specialist)
    form = {f"has_{e.key}": "on" for e in CHECKLIST if e.key != "redisclosure"}
    form.update({"kind": "hipaa", "signed_on": "2026-03-01", "expires_on": "2026-09-01"})
    response = client.post(_url(request_row, "authorization"), form)
    assert response.status_code == 302
    (made,) = request_row.authorizations.all()
    assert not made.valid and made.checklist["redisclosure"] is False
    page = client.get(_url(request_row)).content.decode()
    assert "164.508(c)(2)(iii)" in page and "defective" in page
    response = client.post(_url(request_row, "authorization"), {**form, "signed_on": "soon"})
    assert response.status_code == 400 and request_row.authorizations.count() == 1


def test_validate_pends_then_revoke_through_the_screens(client, personas, request_row):
    sign_in(client, personas.roi_specialist)
    form = {f"has_{e.key}": "on" for e in CHECKLIST}
    form.update({"kind": "hipaa", "signed_on": "2026-03-01", "expiry_event": "end of the case"})
    client.post(_url(request_row, "authorization"), form)
    client.post(_url(request_row, "check"))
    request_row.refresh_from_db()
    assert request_row.status == RequestStatus.IN_PROCESS
    made = request_row.authorizations.get()
    assert f'data-revoke="{made.public_id}"' in client.get(_url(request_row)).content.decode()
    bad = client.post(_url(request_row, "revoke"), {"authorization": str(made.public_id)})
    assert bad.status_code == 400
    response = client.post(
        _url(request_row, "revoke"),
        {"authorization": str(made.public_id), "revoked_on": "2026-03-10", "how": "Letter"},
    )
    assert response.status_code == 302
    request_row.refresh_from_db()
    assert request_row.status == RequestStatus.PENDED


def test_attach_extend_identity_and_assign(client, personas, request_row, media, audit_rows):
    sign_in(client, personas.roi_specialist)
    upload = SimpleUploadedFile("authz.pdf", PDF, content_type="application/pdf")
    assert (
        client.post(
            _url(request_row, "attach"), {"kind": "authorization", "attachment": upload}
        ).status_code
        == 302
    )
    bad = SimpleUploadedFile("authz.pdf", b"MZ\x90\x00", content_type="application/pdf")
    response = client.post(
        _url(request_row, "attach"), {"kind": "authorization", "attachment": bad}
    )
    assert response.status_code == 400 and request_row.attachments.count() == 1
    assert client.post(_url(request_row, "extend"), {"reason": ""}).status_code == 400
    assert client.post(_url(request_row, "extend"), {"reason": "Archive"}).status_code == 302
    assert (
        client.post(_url(request_row, "identity"), {"identity_verified": "Bar number"}).status_code
        == 302
    )
    response = client.post(_url(request_row, "assign"), {"assignee": str(personas.coder.public_id)})
    assert response.status_code == 302
    request_row.refresh_from_db()
    assert request_row.extended_due_on == dt.date(2026, 4, 23)
    assert request_row.identity_verified == "Bar number"
    assert request_row.assigned_to == personas.roi_specialist  # a coder is not a specialist
    assert len(audit_rows(action=Action.UPDATE, object_type="roi.request")) >= 3


def test_the_request_page_is_audited_with_the_patient(
    client, personas, patient, request_row, audit_rows
):
    sign_in(client, personas.roi_specialist)
    page = client.get(_url(request_row))
    assert page.status_code == 200
    (row,) = audit_rows(action=Action.VIEW, object_type="roi.request")
    assert str(row.patient_id) == str(patient.public_id)
    assert client.get("/roi/requests/not-a-uuid/").status_code == 404
