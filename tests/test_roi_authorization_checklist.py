"""The 164.508(c) checklist as data, each missing element named with its citation, expiry
and revocation at their edges, and what each requester type needs before a request can
go on (identity, authority, authorization, subpoena assurance, court order) — through
the action and through the request page's form."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from audit.models import Action, Outcome
from roi import authorizations, intake
from roi.models import LetterKind, RequestStatus
from tests.test_roi_processing_support import (  # noqa: F401  (fixtures)
    authorize,
    make_request,
    patient_fixture,
)

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 3, 10)
ALL = {e.key: True for e in authorizations.CHECKLIST}


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
    return authorizations.problems(ALL if checklist is None else checklist, **values)


def test_the_checklist_is_data_with_a_citation_for_every_element():
    keys = [e.key for e in authorizations.CHECKLIST]
    assert len(keys) == len(set(keys)) == 10
    assert {e.key for e in authorizations.CORE_ELEMENTS} == {
        "information",
        "discloser",
        "recipient",
        "purpose",
        "expiration",
        "signature",
    }
    assert {e.key for e in authorizations.REQUIRED_STATEMENTS} >= {
        "revocation",
        "conditioning",
        "redisclosure",
    }
    assert all(e.citation.startswith("164.508(c)") and e.label for e in authorizations.CHECKLIST)
    assert set(authorizations.KINDS) == {"hipaa", "psychotherapy", "part2"}


def test_a_complete_authorization_has_no_problem():
    assert _problems() == []
    assert _problems(expires_on=None, expiry_event="End of the litigation") == []


@pytest.mark.parametrize("element", authorizations.CHECKLIST, ids=lambda e: e.key)
def test_each_missing_element_is_named_with_its_citation(element):
    found = _problems({**ALL, element.key: False})
    assert found == [f"Missing: {element.label.lower()} ({element.citation})."]


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"expires_on": dt.date(2026, 3, 9)}, "expired on 2026-03-09"),
        ({"expires_on": None}, "Neither an expiration date nor an expiration event"),
        ({"signed_on": None}, "date of signature is missing"),
        ({"signed_on": dt.date(2026, 3, 11)}, "in the future"),
        ({"revoked_on": TODAY}, "revoked on 2026-03-10"),
        (
            {"signed_on": dt.date(2026, 3, 1), "expires_on": dt.date(2025, 12, 31)},
            "expired on 2025-12-31",
        ),
        ({"signed_by_representative": True}, "without a description of their authority"),
        ({"kind": "blanket"}, "Unknown kind"),
    ],
)
def test_expiry_revocation_and_signature_edges(fields, expected):
    found = _problems(**fields)
    assert any(expected in p for p in found), found


def test_an_authorization_expiring_today_is_still_good_and_a_signing_representative_names_their_authority():
    assert _problems(expires_on=TODAY) == []
    assert _problems(signed_by_representative=True, representative_authority="Guardian") == []


def test_unknown_sensitive_category_is_refused_and_nothing_recorded(personas, patient):
    request = make_request(personas, patient, requester_type="attorney", status="logged")
    with pytest.raises(intake.ValidationError, match="Unknown sensitive category"):
        intake.do_record_authorization(
            personas.roi_specialist,
            request.public_id,
            intake.AuthorizationInput(
                kind="hipaa",
                checklist=ALL,
                signed_on=TODAY,
                expires_on=dt.date(2026, 9, 1),
                sensitive_categories=("astrology",),
            ),
        )
    assert not request.authorizations.exists()


@pytest.mark.parametrize(
    "requester_type, fields, on_file, expected",
    [
        ("patient", {"identity_verified": ""}, True, "identity"),
        ("representative", {}, False, "Proof of authority"),
        ("attorney", {}, True, "signed authorization"),
        ("research", {}, True, "signed authorization"),
        ("other", {}, True, "signed authorization"),
        ("subpoena", {}, False, "satisfactory assurance"),
        ("court_order", {}, False, "copy of the court order"),
        ("law_enforcement", {}, False, "court process"),
        ("public_health", {"identity_verified": ""}, True, "public health authority"),
    ],
)
def test_what_each_requester_type_needs(
    personas, patient, requester_type, fields, on_file, expected
):
    request = make_request(
        personas, patient, requester_type=requester_type, status="logged", **fields
    )
    if not on_file:
        request.attachments.all().delete()
    reasons = intake.missing(request)
    assert any(expected in r for r in reasons), reasons


@pytest.mark.parametrize("requester_type", ["payer", "provider", "court_order", "subpoena"])
def test_types_that_need_no_authorization_go_on_with_their_papers(
    personas, patient, requester_type
):
    request = make_request(personas, patient, requester_type=requester_type, status="logged")
    assert intake.missing(request) == []
    assert intake.do_check(personas.roi_specialist, request.public_id).status == "in_process"


def test_a_subpoena_with_a_court_order_needs_no_assurance(personas, patient):
    request = make_request(personas, patient, requester_type="subpoena", status="logged")
    request.attachments.filter(kind="assurance").update(kind="court_order")
    assert intake.missing(request) == []


def test_a_psychotherapy_authorization_does_not_cover_the_rest_of_the_record(personas, patient):
    request = make_request(personas, patient, requester_type="attorney", status="logged")
    authorize(personas, request, kind="psychotherapy")
    reasons = intake.missing(request)
    assert any("psychotherapy notes covers nothing else" in r for r in reasons), reasons
    assert intake.do_check(personas.roi_specialist, request.public_id).status == "pended"
    authorize(personas, request, kind="hipaa")
    assert intake.missing(request) == []
    assert intake.do_check(personas.roi_specialist, request.public_id).status == "in_process"


def test_a_part2_consent_is_an_authorization_for_what_it_names(personas, patient):
    request = make_request(personas, patient, requester_type="attorney", status="logged")
    authorize(personas, request, kind="part2", categories=("substance_use",))
    assert intake.missing(request) == []


def test_an_expired_authorization_pends_with_its_problems_in_the_letter(personas, patient):
    request = make_request(personas, patient, requester_type="attorney", status="logged")
    made = intake.do_record_authorization(
        personas.roi_specialist,
        request.public_id,
        intake.AuthorizationInput(
            kind="hipaa",
            checklist={**ALL, "redisclosure": False},
            signed_on=dt.date(2025, 1, 1),
            expires_on=dt.date(2026, 1, 1),
        ),
    )
    assert not made.valid
    checked = intake.do_check(personas.roi_specialist, request.public_id)
    assert checked.status == RequestStatus.PENDED
    letter = checked.letters.get(kind=LetterKind.PEND)
    assert "expired on 2026-01-01" in letter.body and "164.508(c)(2)(iii)" in letter.body
    assert checked.events.filter(kind="pended", to_status="pended").exists()


def test_a_pended_request_resumes_when_the_missing_piece_arrives(personas, patient):
    request = make_request(personas, patient, requester_type="attorney", status="logged")
    assert intake.do_check(personas.roi_specialist, request.public_id).status == "pended"
    authorize(personas, request, kind="hipaa")
    resumed = intake.do_check(personas.roi_specialist, request.public_id)
    assert resumed.status == "in_process" and resumed.pend_reasons == []
    kinds = list(resumed.events.order_by("at", "pk").values_list("kind", flat=True))
    assert kinds[-2:] == ["pended", "validated"]


def test_a_closed_request_cannot_be_checked_again_and_the_refusal_is_audited(
    personas, patient, audit_rows
):
    request = make_request(personas, patient, status="released")
    with pytest.raises(intake.ValidationError, match="released"):
        intake.do_check(personas.roi_specialist, request.public_id)
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.request")


def test_the_authorization_form_records_the_checklist(client, personas, patient, audit_rows):
    from recordroom.testing import sign_in

    request = make_request(personas, patient, requester_type="attorney", status="logged")
    sign_in(client, personas.roi_specialist)
    data = {f"has_{key}": "on" for key in ALL if key != "signature"}
    data.update({"kind": "hipaa", "signed_on": "2026-03-01", "expires_on": "2026-09-01"})
    response = client.post(f"/roi/requests/{request.public_id}/authorization/", data)
    assert response.status_code == 302
    made = request.authorizations.get()
    assert not made.valid and made.checklist["signature"] is False
    assert any("164.508(c)(1)(vi)" in p for p in made.problems)
    assert audit_rows(action=Action.UPDATE, object_type="roi.request")
    page = client.get(f"/roi/requests/{request.public_id}/").content.decode()
    assert "164.508(c)(1)(vi)" in page
    bad = client.post(
        f"/roi/requests/{request.public_id}/authorization/", {"kind": "hipaa", "signed_on": "x"}
    )
    assert bad.status_code == 400 and request.authorizations.count() == 1
