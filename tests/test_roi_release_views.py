"""The processing and release screens: access audited, refusals audited, mutations POST
only, release behind the password (sudo), the staff packet download, paper delivery and
the invoice."""

from __future__ import annotations

import pytest
import time_machine

from audit.models import Action, Outcome
from recordroom.testing import sign_in
from roi import processing
from roi.models import Packet, ReleaseItem, RequestStatus
from tests.test_roi_processing_support import (  # noqa: F401 - fixtures
    NOW,
    checker_fixture,
    file_document,
    make_request,
    media_fixture,
    patient_fixture,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(media):
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def roi_request(personas, patient):
    file_document(personas, patient, title="Discharge summary", loinc="18842-5")
    return make_request(personas, patient)


def base(roi_request):
    return f"/roi/requests/{roi_request.public_id}/"


def test_the_processing_page_is_audited(client, personas, roi_request, audit_rows):
    sign_in(client, personas.roi_specialist)
    response = client.get(base(roi_request) + "processing/")
    assert response.status_code == 200
    assert b"Processing and release" in response.content
    (event,) = audit_rows(object_type="roi.request", action=Action.VIEW)
    assert event.outcome == Outcome.ALLOWED and event.patient_id == roi_request.patient.public_id


def test_the_htmx_panel_is_a_fragment(client, personas, roi_request):
    sign_in(client, personas.roi_specialist)
    response = client.get(base(roi_request) + "processing/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b"<html" not in response.content and b'id="processing"' in response.content


@pytest.mark.parametrize("persona", ["coder", "clinician", "no_role"])
def test_the_page_refuses_others_and_audits_it(client, personas, roi_request, audit_rows, persona):
    sign_in(client, getattr(personas, persona))
    response = client.get(base(roi_request) + "processing/")
    assert response.status_code == 403
    # Refused by the request door, or (an account with no role) before any page.
    assert audit_rows(outcome=Outcome.DENIED, actor=getattr(personas, persona))


def test_an_outsider_gets_404(client, personas, roi_request, audit_rows):
    from recordroom.testing import make_user

    other = make_user("rita.elsewhere", "roi_specialist")
    other.facilities.add(personas.other_facility)
    sign_in(client, other)
    assert client.get(base(roi_request) + "processing/").status_code == 404
    assert audit_rows(outcome=Outcome.DENIED)


@pytest.mark.parametrize(
    "path",
    ["processing/propose/", "processing/submit/", "processing/check/", "release/", "deny/"],
)
def test_mutations_refuse_get(client, personas, roi_request, path):
    sign_in(client, personas.roi_specialist, sudo=True)
    assert client.get(base(roi_request) + path).status_code == 405


def test_a_coder_posting_is_refused_and_audited(client, personas, roi_request, audit_rows):
    sign_in(client, personas.coder)
    response = client.post(base(roi_request) + "processing/propose/")
    assert response.status_code == 403
    assert audit_rows(outcome=Outcome.DENIED)
    assert not ReleaseItem.objects.exists()


def test_the_whole_flow_through_the_screens(client, personas, roi_request, checker, audit_rows):
    sign_in(client, personas.roi_specialist, sudo=True)
    response = client.post(base(roi_request) + "processing/propose/")
    assert response.status_code == 302
    item = ReleaseItem.objects.get(request=roi_request)
    response = client.post(
        base(roi_request) + f"processing/items/{item.document.public_id}/",
        {"include": "0", "reason": ""},
    )
    assert response.status_code == 302  # refused with a message; nothing changed
    assert ReleaseItem.objects.get(pk=item.pk).included
    client.post(base(roi_request) + "processing/submit/")
    roi_request.refresh_from_db()
    assert roi_request.status == RequestStatus.QC
    sign_in(client, checker)
    client.post(base(roi_request) + "processing/check/", {"passed": "1"})
    assert processing.ready_to_release(roi_request) == ""
    sign_in(client, personas.roi_specialist)  # no sudo: asked for the password
    response = client.post(base(roi_request) + "release/")
    assert response.status_code == 302 and "confirm-password" in response["Location"]
    assert not Packet.objects.exists()
    sign_in(client, personas.roi_specialist, sudo=True)
    response = client.post(base(roi_request) + "release/")
    assert response.status_code == 200
    assert b"/roi/download/" in response.content
    packet = Packet.objects.get()
    response = client.get(base(roi_request) + f"packets/{packet.public_id}/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    b"".join(response.streaming_content)
    assert audit_rows(object_type="roi.packet", action=Action.EXPORT)
    response = client.post(base(roi_request) + "release/")
    assert response.status_code == 302  # the second release is refused with a message
    assert Packet.objects.count() == 1
    page = client.get(base(roi_request) + "processing/")
    assert b"already released" in page.content or b"Re-release" in page.content


def test_the_staff_packet_download_refuses_a_coder(
    client, personas, roi_request, checker, audit_rows
):
    from roi import release

    processing.do_propose(personas.roi_specialist, roi_request.public_id)
    processing.do_submit_for_check(personas.roi_specialist, roi_request.public_id)
    processing.do_quality_check(checker, roi_request.public_id, passed=True)
    packet = release.do_release(personas.roi_specialist, roi_request.public_id).packet
    sign_in(client, personas.coder)
    assert client.get(base(roi_request) + f"packets/{packet.public_id}/").status_code == 403
    assert audit_rows(outcome=Outcome.DENIED, action=Action.EXPORT)


def test_paper_is_marked_printed_then_mailed(client, personas, patient, checker, audit_rows):
    from roi import release

    file_document(personas, patient, title="Note")
    roi_request = make_request(personas, patient, format="paper", delivery="mail")
    processing.do_propose(personas.roi_specialist, roi_request.public_id)
    processing.do_submit_for_check(personas.roi_specialist, roi_request.public_id)
    processing.do_quality_check(checker, roi_request.public_id, passed=True)
    packet = release.do_release(personas.roi_specialist, roi_request.public_id).packet
    sign_in(client, personas.roi_specialist)
    client.post(base(roi_request) + f"packets/{packet.public_id}/mailed/")
    packet.refresh_from_db()
    assert packet.mailed_at is None  # not printed yet
    client.post(base(roi_request) + f"packets/{packet.public_id}/printed/")
    client.post(base(roi_request) + f"packets/{packet.public_id}/mailed/")
    packet.refresh_from_db()
    assert packet.printed_at == NOW and packet.mailed_at == NOW
    assert audit_rows(object_type="roi.packet", action=Action.PRINT)
    response = client.get(base(roi_request) + "invoice/")
    assert response.status_code == 200 and b"Labour for copying" in response.content


def test_deny_through_the_screen_keeps_the_letter(client, personas, roi_request):
    sign_in(client, personas.roi_specialist)
    client.post(base(roi_request) + "deny/", {"basis": "no_records", "explanation": "None held."})
    roi_request.refresh_from_db()
    assert roi_request.status == RequestStatus.DENIED
    letter = roi_request.letters.get()
    response = client.get(base(roi_request) + f"letters/{letter.public_id}/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
