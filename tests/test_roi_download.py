"""The requester's download: a time-limited link (only its hash kept), a verification
(request number and the patient's date of birth), the download audited and recorded;
expired, unknown and locked links refused."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import time_machine

from audit.models import Action, Outcome
from roi import processing, release
from roi.models import Packet
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
def released(personas, patient, checker):
    file_document(personas, patient, title="Note", body="Blood pressure fine.")
    request = make_request(personas, patient)
    processing.do_propose(personas.roi_specialist, request.public_id)
    processing.do_submit_for_check(personas.roi_specialist, request.public_id)
    processing.do_quality_check(checker, request.public_id, passed=True)
    return release.do_release(personas.roi_specialist, request.public_id)


def url(token):
    return f"/roi/download/{token}/"


def answer(request, **overrides):
    data = {"request_number": request.number, "birth_date": "1968-04-12"}
    data.update(overrides)
    return data


def test_only_the_hash_of_the_token_is_kept(released):
    packet = Packet.objects.get(pk=released.packet.pk)
    assert released.token not in (packet.download_token_hash, str(packet.file))
    assert packet.download_token_hash == hashlib.sha256(released.token.encode()).hexdigest()
    assert packet.download_expires_at == NOW + dt.timedelta(days=30)


def test_the_page_asks_for_the_verification_without_signing_in(client, released):
    response = client.get(url(released.token))
    assert response.status_code == 200
    assert b"date of birth" in response.content
    assert b"Quillfeather" not in response.content  # no patient data before verification


def test_a_verified_requester_downloads_the_packet_and_it_is_audited(client, released, audit_rows):
    packet = released.packet
    response = client.post(
        url(released.token), answer(packet.request, request_number=packet.request.number.lower())
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    content = b"".join(response.streaming_content)
    assert hashlib.sha256(content).hexdigest() == packet.sha256
    packet.refresh_from_db()
    assert packet.downloaded_at == NOW
    (event,) = audit_rows(object_type="roi.packet", outcome=Outcome.ALLOWED)
    assert event.action == Action.EXPORT and event.detail["by"] == "requester"
    assert event.patient_id == packet.request.patient.public_id


def test_a_wrong_date_of_birth_is_refused_and_audited(client, released, audit_rows):
    response = client.post(
        url(released.token), answer(released.packet.request, birth_date="1968-04-13")
    )
    assert response.status_code == 400
    assert b"does not match" in response.content
    (event,) = audit_rows(object_type="roi.packet", outcome=Outcome.DENIED)
    assert event.reason == "verification failed"
    released.packet.refresh_from_db()
    assert released.packet.downloaded_at is None


def test_five_failures_lock_the_link_until_a_new_one_is_made(client, personas, released):
    request = released.packet.request
    for _ in range(release.MAX_FAILED_VERIFICATIONS):
        client.post(url(released.token), answer(request, request_number="REQ-0"))
    response = client.post(url(released.token), answer(request))
    assert response.status_code == 404
    packet, token = release.do_new_download_link(
        personas.roi_specialist, request.public_id, released.packet.public_id
    )
    assert client.post(url(token), answer(request)).status_code == 200
    assert client.get(url(released.token)).status_code == 404  # the old link is gone


def test_an_expired_link_is_refused_and_audited(client, released, audit_rows):
    with time_machine.travel(NOW + dt.timedelta(days=31), tick=False):
        response = client.get(url(released.token))
    assert response.status_code == 404
    assert b"expired" in response.content
    assert audit_rows(outcome=Outcome.DENIED)[-1].reason == "download link expired"


def test_an_unknown_link_is_refused_and_audited(client, db, audit_rows):
    response = client.post(
        url("not-a-real-token"), {"request_number": "x", "birth_date": "2000-01-01"}
    )
    assert response.status_code == 404
    assert audit_rows(outcome=Outcome.DENIED)[-1].reason == "unknown download link"


def test_a_tampered_stored_packet_is_not_served(client, released, audit_rows):
    with open(released.packet.file.path, "ab") as handle:
        handle.write(b"tampered")
    response = client.post(url(released.token), answer(released.packet.request))
    assert response.status_code == 400
    assert audit_rows(outcome=Outcome.DENIED)[-1].reason == "stored packet damaged"
