"""Regressions from the session's privacy review: a re-release after the authorization
was revoked, the download token kept out of audit rows and logs, and a coder at one
facility opening another facility's encounter of a shared patient."""

from __future__ import annotations

import logging

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.http import Http404

from audit.models import AuditEvent, Outcome
from coding import abstracts
from coding.abstract_access import abstract_for_coding
from patients.models import IdentifierKind, PatientIdentifier
from recordroom import clock
from recordroom.logging_filters import StripQueryStrings, redact_path
from roi import processing, release
from roi.models import Authorization
from tests.test_coding_abstract import codes, make_inpatient  # noqa: F401  (fixtures)
from tests.test_roi_processing_support import (  # noqa: F401  (fixtures)
    NOW,
    authorize,
    checker_fixture,
    file_document,
    make_request,
    media_fixture,
    patient_fixture,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen(media):
    with time_machine.travel(NOW, tick=False):
        yield


def _released(personas, patient, checker, **fields):
    file_document(personas, patient, title="Note", body="Blood pressure fine.")
    request = make_request(personas, patient, **fields)
    if request.requester_type == "attorney":
        authorize(personas, request)
    processing.do_propose(personas.roi_specialist, request.public_id)
    processing.do_submit_for_check(personas.roi_specialist, request.public_id)
    processing.do_quality_check(checker, request.public_id, passed=True)
    return request, release.do_release(personas.roi_specialist, request.public_id)


def test_no_re_release_after_the_authorization_is_revoked(
    frozen, personas, patient, checker, audit_rows
):
    request, _ = _released(
        personas, patient, checker, requester_type="attorney", requester_name="Law LLP"
    )
    Authorization.objects.filter(request=request).update(revoked_on=NOW.date())
    with pytest.raises(ValidationError, match="not valid any more"):
        release.do_release(personas.roi_specialist, request.public_id, rerelease_reason="lost")
    assert request.packets.count() == 1
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.request")


def test_the_download_token_stays_out_of_audit_rows_and_logs(
    frozen, client, personas, patient, checker
):
    _, released = _released(personas, patient, checker)
    client.post(
        f"/roi/download/{released.token}/",
        {"request_number": "REQ-0000-000000", "birth_date": "2000-01-01"},
    )
    assert not AuditEvent.objects.filter(path__contains=released.token).exists()
    assert AuditEvent.objects.filter(path="/roi/download/…/").exists()
    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        "",
        0,
        "Bad Request: %s",
        (f"/roi/download/{released.token}/",),
        None,
    )
    StripQueryStrings().filter(record)
    assert released.token not in record.getMessage()
    assert redact_path("/roi/download/abc/") == "/roi/download/…/"


@pytest.mark.usefixtures("codes")
def test_a_coder_cannot_open_another_facilitys_encounter_of_a_shared_patient(personas, patient):
    PatientIdentifier.objects.create(
        patient=patient,
        kind=IdentifierKind.MRN,
        facility=personas.other_facility,
        value="OTHER-1",
        created_at=clock.now(),
    )
    elsewhere = make_inpatient(personas, patient, facility=personas.other_facility)
    with pytest.raises(Http404):
        abstract_for_coding(personas.coder, elsewhere.public_id)
    with pytest.raises(Http404):
        abstracts.do_open_abstract(elsewhere, acting_user=personas.coder)


def test_anonymous_probing_of_download_links_cannot_flood_the_audit_trail(client):
    from django.core.cache import cache

    cache.clear()
    before = AuditEvent.objects.count()
    for n in range(release.UNKNOWN_LINK_AUDITS_PER_10_MIN + 20):
        assert client.get(f"/roi/download/junk{n}/").status_code in (400, 404)
    written = AuditEvent.objects.count() - before
    assert written == release.UNKNOWN_LINK_AUDITS_PER_10_MIN
