"""Authorizations against 45 CFR 164.508(c) as a checklist with its citations, expiry and
revocation; what each requester type needs; sensitive categories the requester asks for
(psychotherapy notes their own authorization, Part 2 records a Part 2 consent or a court
order); a written revocation pends the request again."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from roi import authorizations, intake
from roi.authorizations import CHECKLIST
from roi.models import LetterKind, RequestStatus, RoiRequest
from tests.test_roi_processing_support import (  # noqa: F401  (fixtures)
    media_fixture,
    patient_fixture,
)

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 3, 10)
ALL_TICKED = {e.key: True for e in CHECKLIST}
PDF = b"%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _problems(checklist=None, **fields):
    values = {
        "kind": "hipaa",
        "today": TODAY,
        "signed_on": dt.date(2026, 3, 1),
        "expires_on": dt.date(2026, 9, 1),
        "expiry_event": "",
        "revoked_on": None,
        "signed_by_representative": False,
        "representative_authority": "",
    }
    values.update(fields)
    return authorizations.problems(ALL_TICKED if checklist is None else checklist, **values)


def _log(personas, patient, **fields):
    values = {
        "requester_type": "attorney",
        "requester_name": "Lex Tallow",
        "received_on": dt.date(2026, 3, 9),
        "scope": {"all": True},
    }
    values.update(fields)
    return intake.do_log_request(
        personas.roi_specialist, patient.public_id, intake.RequestInput(**values)
    )


def _authorize(personas, request, kind="hipaa", categories=(), **fields):
    values = {
        "kind": kind,
        "checklist": ALL_TICKED,
        "signed_on": dt.date(2026, 3, 1),
        "expires_on": dt.date(2026, 9, 1),
        "sensitive_categories": tuple(categories),
    }
    values.update(fields)
    return intake.do_record_authorization(
        personas.roi_specialist, request.public_id, intake.AuthorizationInput(**values)
    )


def _attach(personas, request, kind):
    intake.do_attach(
        personas.roi_specialist,
        request.public_id,
        kind,
        SimpleUploadedFile(f"{kind}.pdf", PDF, content_type="application/pdf"),
    )


# --- the checklist ---------------------------------------------------------------------------


def test_the_checklist_is_data_with_a_citation_for_each_element():
    keys = [e.key for e in CHECKLIST]
    assert len(keys) == len(set(keys)) == 10
    assert all(e.citation.startswith("164.508(c)") for e in CHECKLIST)
    assert {"information", "discloser", "recipient", "purpose", "expiration", "signature"} <= set(
        keys
    )
    assert {"revocation", "conditioning", "redisclosure"} <= set(keys)


@pytest.mark.parametrize("element", CHECKLIST, ids=lambda e: e.key)
def test_each_missing_element_is_named_with_its_citation(element):
    found = _problems({**ALL_TICKED, element.key: False})
    assert found == [f"Missing: {element.label.lower()} ({element.citation})."]


def test_a_complete_authorization_has_no_problems():
    assert _problems() == []
    assert _problems(expires_on=None, expiry_event="end of the litigation") == []


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"expires_on": TODAY}, None),  # expires at the end of today: still valid
        ({"expires_on": TODAY - dt.timedelta(days=1)}, "expired on 2026-03-09"),
        ({"expires_on": None}, "Neither an expiration date nor an expiration event"),
        ({"signed_on": None}, "date of signature is missing"),
        ({"signed_on": TODAY + dt.timedelta(days=1)}, "signature is in the future"),
        (
            {"signed_on": dt.date(2026, 3, 5), "expires_on": dt.date(2026, 3, 4)},
            "expired on 2026-03-04",
        ),
        ({"revoked_on": TODAY}, "revoked on 2026-03-10"),
        ({"revoked_on": TODAY + dt.timedelta(days=3)}, "revocation date is in the future"),
        ({"signed_by_representative": True}, "without a description of their authority"),
        ({"signed_by_representative": True, "representative_authority": "guardian"}, None),
        ({"kind": "blanket"}, "Unknown kind"),
    ],
)
def test_expiry_signature_revocation_and_authority(fields, expected):
    found = _problems(**fields)
    if expected is None:
        assert found == []
    else:
        assert any(expected in problem for problem in found), found


def test_an_expiration_before_signature_is_defective_when_not_yet_past():
    found = _problems(signed_on=dt.date(2026, 3, 9), expires_on=dt.date(2026, 3, 10))
    assert found == []
    found = authorizations.problems(
        ALL_TICKED,
        kind="hipaa",
        today=dt.date(2026, 3, 1),
        signed_on=dt.date(2026, 3, 5),
        expires_on=dt.date(2026, 3, 4),
        expiry_event="",
        revoked_on=None,
        signed_by_representative=False,
        representative_authority="",
    )
    assert any("before the date of signature" in p for p in found)


# --- recording and what each requester needs ------------------------------------------------


def test_recording_an_authorization_keeps_the_checklist_and_audits(personas, patient, audit_rows):
    request = _log(personas, patient)
    made = _authorize(personas, request, checklist={**ALL_TICKED, "conditioning": False})
    assert not made.valid and made.checklist["conditioning"] is False
    assert made.checked_by == personas.roi_specialist
    assert request.events.filter(kind="authorization").exists()
    rows = audit_rows(action=Action.UPDATE, object_type="roi.request")
    assert rows and rows[-1].detail.get("valid") is False


def test_bad_authorization_input_changes_nothing(personas, patient, media):
    request = _log(personas, patient)
    with pytest.raises(ValidationError, match="Unknown sensitive category"):
        _authorize(personas, request, categories=("gossip",))
    with pytest.raises(ValidationError, match="not attached to this request"):
        _authorize(personas, request, attachment_public_id="00000000-0000-0000-0000-000000000000")
    assert not request.authorizations.exists()


def test_a_technician_may_not_record_an_authorization_and_it_is_audited(
    personas, patient, audit_rows
):
    request = _log(personas, patient)
    with pytest.raises(AccessDenied):
        intake.do_record_authorization(
            personas.technician,
            request.public_id,
            intake.AuthorizationInput(kind="hipaa", checklist=ALL_TICKED, signed_on=TODAY),
        )
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.request")
    assert not request.authorizations.exists()


def test_a_psychotherapy_authorization_alone_does_not_cover_an_attorneys_request(personas, patient):
    request = _log(personas, patient)
    _authorize(personas, request, kind="psychotherapy", categories=("psychotherapy",))
    assert any("authorization of the patient" in r for r in intake.missing(request))
    _authorize(personas, request, kind="part2", categories=("sud_part2",))
    assert intake.missing(request) == []  # a Part 2 consent is an authorization too


def test_a_payer_and_a_provider_need_no_authorization(personas, patient):
    payer = _log(personas, patient, requester_type="payer", requester_name="Acme Health")
    assert intake.missing(payer) == []
    provider = _log(personas, patient, requester_type="provider", requester_name="Dr Vale")
    assert any("identity" in r for r in intake.missing(provider))


def test_a_representative_needs_proof_of_authority(personas, patient, media):
    request = _log(
        personas,
        patient,
        requester_type="representative",
        requester_name="Rowan Quillfeather",
        identity_verified="Photo ID",
    )
    assert any("Proof of authority" in r for r in intake.missing(request))
    _attach(personas, request, "authority")
    assert intake.missing(request) == []


def test_a_court_order_and_law_enforcement_need_their_papers(personas, patient, media):
    order = _log(personas, patient, requester_type="court_order", requester_name="Clerk")
    assert intake.missing(order) == ["A copy of the court order is missing."]
    police = _log(personas, patient, requester_type="law_enforcement", requester_name="Det. Hale")
    assert any("164.512(f)" in r for r in intake.missing(police))
    _attach(personas, police, "request")
    assert intake.missing(police) == []


# --- sensitive categories asked for ---------------------------------------------------------


def test_psychotherapy_notes_need_their_own_authorization(personas, patient):
    request = _log(
        personas, patient, scope={"all": True, "sensitive_categories": ["psychotherapy"]}
    )
    _authorize(personas, request, categories=("psychotherapy",))  # a general one naming them
    reasons = intake.missing(request)
    assert len(reasons) == 1 and "164.508(a)(2)" in reasons[0]
    checked = intake.do_check(personas.roi_specialist, request.public_id)
    assert checked.status == RequestStatus.PENDED
    assert "psychotherapy notes" in checked.letters.get().body
    _authorize(personas, request, kind="psychotherapy", categories=("psychotherapy",))
    assert intake.missing(request) == []
    assert intake.do_check(personas.roi_specialist, request.public_id).status == "in_process"


def test_part2_records_need_a_part2_consent_naming_them(personas, patient):
    request = _log(personas, patient, scope={"all": True, "sensitive_categories": ["sud_part2"]})
    _authorize(personas, request, categories=("sud_part2",))
    assert any("42 CFR 2.31" in r for r in intake.missing(request))
    _authorize(personas, request, kind="part2", categories=())
    assert any("42 CFR 2.31" in r for r in intake.missing(request))  # does not name them
    _authorize(personas, request, kind="part2", categories=("sud_part2",))
    assert intake.missing(request) == []


def test_other_sensitive_categories_must_be_named(personas, patient):
    request = _log(personas, patient, scope={"all": True, "sensitive_categories": ["hiv_sti"]})
    _authorize(personas, request)
    assert any("name them specifically" in r for r in intake.missing(request))
    _authorize(personas, request, categories=("hiv_sti",))
    assert intake.missing(request) == []


def test_a_subpoena_for_part2_records_needs_a_court_order(personas, patient, media):
    request = _log(
        personas,
        patient,
        requester_type="subpoena",
        requester_name="Clerk of Court",
        scope={"all": True, "sensitive_categories": ["sud_part2"]},
    )
    _attach(personas, request, "subpoena")
    _attach(personas, request, "assurance")
    reasons = intake.missing(request)
    assert len(reasons) == 1 and "court order under 42 CFR 2.64" in reasons[0]
    _attach(personas, request, "court_order")
    assert intake.missing(request) == []


def test_the_patients_own_request_for_psychotherapy_notes_is_not_held(personas, patient):
    request = _log(
        personas,
        patient,
        requester_type="patient",
        requester_name="Marigold Quillfeather",
        identity_verified="Photo ID",
        scope={"all": True, "sensitive_categories": ["psychotherapy", "sud_part2"]},
    )
    assert intake.missing(request) == []


def test_an_unknown_category_in_the_scope_is_refused(personas, patient):
    with pytest.raises(ValidationError, match="Unknown sensitive category"):
        _log(personas, patient, scope={"all": True, "sensitive_categories": ["gossip"]})
    assert not RoiRequest.objects.exists()


# --- revocation ------------------------------------------------------------------------------


def test_a_written_revocation_pends_the_request_with_a_letter(personas, patient, audit_rows):
    request = _log(personas, patient)
    made = _authorize(personas, request)
    assert intake.do_check(personas.roi_specialist, request.public_id).status == "in_process"
    intake.do_revoke_authorization(
        personas.roi_specialist, request.public_id, made.public_id, TODAY, "Signed letter"
    )
    made.refresh_from_db()
    request.refresh_from_db()
    assert made.revoked_on == TODAY and not made.valid
    assert any("revoked on 2026-03-10" in p for p in made.problems)
    assert request.status == RequestStatus.PENDED
    assert request.letters.filter(kind=LetterKind.PEND).count() == 1
    event = request.events.get(kind="pended")
    assert (event.from_status, event.to_status) == ("in_process", "pended")
    assert audit_rows(action=Action.UPDATE, object_type="roi.request")
    with pytest.raises(ValidationError, match="already revoked"):
        intake.do_revoke_authorization(
            personas.roi_specialist, request.public_id, made.public_id, TODAY, "again"
        )
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.request")


def test_a_revocation_with_another_valid_authorization_does_not_pend(personas, patient):
    request = _log(personas, patient)
    first = _authorize(personas, request)
    _authorize(personas, request, expiry_event="end of the matter", expires_on=None)
    intake.do_check(personas.roi_specialist, request.public_id)
    intake.do_revoke_authorization(
        personas.roi_specialist, request.public_id, first.public_id, TODAY, "Fax"
    )
    request.refresh_from_db()
    assert request.status == RequestStatus.IN_PROCESS and not request.letters.exists()


def test_bad_revocations_change_nothing(personas, patient):
    request = _log(personas, patient)
    made = _authorize(personas, request)
    with pytest.raises(ValidationError) as error:
        intake.do_revoke_authorization(
            personas.roi_specialist, request.public_id, made.public_id, None, " "
        )
    assert set(error.value.message_dict) == {"revoked_on", "how"}
    with pytest.raises(ValidationError, match="future"):
        intake.do_revoke_authorization(
            personas.roi_specialist,
            request.public_id,
            made.public_id,
            TODAY + dt.timedelta(days=1),
            "Letter",
        )
    with pytest.raises(Http404):
        intake.do_revoke_authorization(
            personas.roi_specialist,
            request.public_id,
            "00000000-0000-0000-0000-000000000000",
            TODAY,
            "Letter",
        )
    made.refresh_from_db()
    assert made.revoked_on is None and made.valid


def test_a_coder_may_not_record_a_revocation_and_it_is_audited(personas, patient, audit_rows):
    request = _log(personas, patient)
    made = _authorize(personas, request)
    with pytest.raises(AccessDenied):
        intake.do_revoke_authorization(
            personas.coder, request.public_id, made.public_id, TODAY, "Letter"
        )
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.request")
    made.refresh_from_db()
    assert made.revoked_on is None
