"""The door to a restricted record (patients.access): who opens a VIP, employee or
confidential record without breaking the glass, who meets the restriction, and that
every answer is audited."""

import datetime as dt

import pytest
import time_machine
from django.http import Http404
from django.test import RequestFactory

from accounts.access import AccessDenied
from audit.models import Action, Outcome, Purpose
from documents.models import Document, DocumentType
from encounters.models import Encounter, EncounterClass, EncounterStatus
from patients.access import RestrictedRecord, Scope, access_patient, may_open_restricted
from patients.actions import do_set_restriction
from patients.middleware import RestrictedRecordMiddleware
from patients.models import AccessGrant, Restriction
from recordroom import clock
from recordroom.testing import register_patient

pytestmark = pytest.mark.django_db


def attend(patient, clinician, facility, *, status=EncounterStatus.IN_PROGRESS):
    """An encounter the clinician attends: a treatment relationship."""
    now = clock.now()
    return Encounter.objects.create(
        patient=patient,
        facility=facility,
        visit_number=f"V{Encounter.objects.count() + 1:06d}",
        encounter_class=EncounterClass.INPATIENT,
        status=status,
        started_at=now,
        attending=clinician,
        created_at=now,
        updated_at=now,
    )


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def vip(personas, patient):
    do_set_restriction(
        patient, Restriction.VIP, reason="public figure", acting_user=personas.privacy_officer
    )
    return patient


def test_an_unrestricted_record_opens_and_the_view_is_audited(personas, patient, audit_rows):
    assert access_patient(personas.technician, patient.public_id) == patient
    (event,) = audit_rows(action=Action.VIEW)
    assert event.outcome == Outcome.ALLOWED
    assert event.patient_id == patient.public_id
    assert event.detail == {"scope": "demographics"}


@pytest.mark.parametrize(
    "restriction", [Restriction.VIP, Restriction.EMPLOYEE, Restriction.CONFIDENTIAL]
)
@pytest.mark.parametrize("persona", ["technician", "coder", "roi_specialist", "other_clinician"])
def test_a_user_without_a_relationship_meets_the_restriction(
    personas, patient, audit_rows, restriction, persona
):
    do_set_restriction(patient, restriction, reason="flagged", acting_user=personas.administrator)
    user = getattr(personas, persona)
    with pytest.raises(RestrictedRecord) as raised:
        access_patient(user, patient.public_id)
    assert raised.value.patient == patient
    (event,) = audit_rows(action=Action.VIEW, actor=user)
    assert event.outcome == Outcome.DENIED
    assert event.patient_id == patient.public_id
    assert event.reason == f"restricted record ({restriction.value}) without a relationship"


def test_the_restriction_applies_to_the_clinical_record_too(personas, vip, audit_rows):
    with pytest.raises(RestrictedRecord):
        access_patient(personas.other_clinician, vip.public_id, scope=Scope.CLINICAL)
    (event,) = audit_rows(action=Action.VIEW, outcome=Outcome.DENIED)
    assert event.purpose == Purpose.TREATMENT


def test_the_treating_clinician_opens_a_restricted_record_without_breaking_the_glass(
    personas, vip, audit_rows
):
    attend(vip, personas.clinician, personas.facility)
    assert access_patient(personas.clinician, vip.public_id, scope=Scope.CLINICAL) == vip
    (event,) = audit_rows(action=Action.VIEW)
    assert event.outcome == Outcome.ALLOWED
    assert event.purpose == Purpose.TREATMENT
    assert "break_the_glass" not in event.detail
    assert not AccessGrant.objects.exists()


def test_the_other_clinician_does_not_open_it(personas, vip):
    attend(vip, personas.clinician, personas.facility)
    assert may_open_restricted(personas.clinician, vip)
    assert not may_open_restricted(personas.other_clinician, vip)
    with pytest.raises(RestrictedRecord):
        access_patient(personas.other_clinician, vip.public_id, scope=Scope.CLINICAL)


def test_writing_a_document_does_not_make_a_relationship(personas, vip):
    """Otherwise a throwaway draft would open a restricted record without break-the-glass."""
    doc_type, _ = DocumentType.objects.get_or_create(
        loinc_code="11506-3", defaults={"display": "Progress note", "short_name": "Progress"}
    )
    now = clock.now()
    Document.objects.create(
        patient=vip,
        doc_type=doc_type,
        title="Progress note",
        author=personas.other_clinician,
        service_at=now,
        entered_at=now,
        created_at=now,
        updated_at=now,
    )
    with pytest.raises(RestrictedRecord):
        access_patient(personas.other_clinician, vip.public_id)


def test_an_attending_relationship_ends_after_the_configured_days(personas, vip, settings):
    import datetime as dt

    import time_machine

    from encounters.models import Encounter

    settings.TREATMENT_RELATIONSHIP_DAYS = 30
    now = clock.now()
    Encounter.objects.create(
        patient=vip,
        facility=personas.facility,
        visit_number="T1",
        encounter_class="IMP",
        status="finished",
        started_at=now - dt.timedelta(days=3),
        ended_at=now - dt.timedelta(days=1),
        attending=personas.other_clinician,
        created_at=now,
        updated_at=now,
    )
    assert access_patient(personas.other_clinician, vip.public_id) == vip
    with (
        time_machine.travel(now + dt.timedelta(days=31), tick=False),
        pytest.raises(RestrictedRecord),
    ):
        access_patient(personas.other_clinician, vip.public_id)


def test_a_recorded_treatment_relationship_opens_it_until_it_expires(personas, vip):
    start = clock.now()
    AccessGrant.objects.create(
        patient=vip,
        user=personas.other_clinician,
        kind=AccessGrant.Kind.TREATMENT,
        reason="joined the care team",
        granted_at=start,
        expires_at=start + dt.timedelta(days=7),
        granted_by=personas.administrator,
    )
    assert access_patient(personas.other_clinician, vip.public_id) == vip
    after = start + dt.timedelta(days=7, seconds=1)
    with time_machine.travel(after, tick=False), pytest.raises(RestrictedRecord):
        access_patient(personas.other_clinician, vip.public_id)


def test_a_job_duty_grant_without_an_end_opens_it(personas, vip):
    AccessGrant.objects.create(
        patient=vip,
        user=personas.coder,
        kind=AccessGrant.Kind.JOB,
        reason="assigned to code this account",
        granted_at=clock.now(),
        granted_by=personas.administrator,
    )
    assert access_patient(personas.coder, vip.public_id) == vip


@pytest.mark.parametrize("persona", ["privacy_officer", "administrator"])
def test_those_who_keep_the_restricted_list_open_it(personas, vip, persona):
    assert access_patient(getattr(personas, persona), vip.public_id) == vip


def test_an_outsider_gets_404_not_the_restriction_and_it_is_audited(personas, vip, audit_rows):
    with pytest.raises(Http404):
        access_patient(personas.outsider, vip.public_id)
    (event,) = audit_rows(actor=personas.outsider)
    assert event.outcome == Outcome.DENIED
    assert event.reason == "no such patient at the user's facilities"
    assert event.patient_id is None  # the refusal says nothing about the record


@pytest.mark.parametrize("persona", ["patient", "no_role"])
def test_a_user_without_the_permission_is_refused_and_audited(personas, vip, audit_rows, persona):
    user = getattr(personas, persona)
    with pytest.raises(AccessDenied) as raised:
        access_patient(user, vip.public_id)
    assert not isinstance(raised.value, RestrictedRecord)
    (event,) = audit_rows(actor=user)
    assert event.outcome == Outcome.DENIED
    assert event.reason == "lacks permission patients.read_demographics"


def test_a_restricted_record_sends_the_user_to_the_notice(personas, vip):
    request = RequestFactory().get(f"/patients/{vip.public_id}/")
    middleware = RestrictedRecordMiddleware(lambda r: None)
    response = middleware.process_exception(request, RestrictedRecord(vip))
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{vip.public_id}/restricted/"
    assert middleware.process_exception(request, ValueError("other")) is None
