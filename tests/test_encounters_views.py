"""Encounter screens: register, the encounter page (locations, documents, clinical
data, version history) and the workflow steps posted from it. Each requires log-in,
refuses the wrong method, denies and audits a role without the permission, hides
another facility's patient, and audits the allowed access."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from audit.models import Action, Outcome
from encounters import actions
from encounters.models import Encounter, EncounterStatus
from patients.actions import do_set_restriction
from patients.models import Restriction
from recordroom.testing import register_patient, sign_in

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2025, 3, 14, 15, 0, tzinfo=dt.UTC)
ADMIT = NOW - dt.timedelta(days=2)


def local(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def encounter(personas, patient):
    return actions.do_register_encounter(
        patient,
        facility=personas.facility,
        encounter_class="IMP",
        started_at=ADMIT,
        attending=personas.clinician,
        unit="4 West",
        bed="12A",
        visit_number="A100",
        acting_user=personas.technician,
    )


@pytest.fixture
def tech(client, personas):
    return sign_in(client, personas.technician)


def new_url(patient):
    return f"/encounters/new/{patient.public_id}/"


def detail_url(encounter):
    return f"/encounters/{encounter.public_id}/"


NEW_ADMISSION = {
    "encounter_class": "IMP",
    "status": "in-progress",
    "visit_number": "",
    "service": "medicine",
    "admit_source": "7",
    "unit": "5 East",
    "bed": "3",
    "reason": "Chest pain",
}


def new_admission(personas, **overrides):
    return {
        **NEW_ADMISSION,
        "facility": str(personas.facility.public_id),
        "attending": str(personas.clinician.public_id),
        "started_at": local(ADMIT),
        **overrides,
    }


# --- registering ---------------------------------------------------------------------------


def test_the_form_offers_the_facility_and_its_clinicians(tech, personas, patient, audit_rows):
    response = tech.get(new_url(patient))
    assert response.status_code == 200
    page = response.content.decode()
    assert personas.facility.name in page
    assert personas.clinician.display_name in page
    assert personas.coder.display_name not in page
    (view,) = audit_rows(action=Action.VIEW, patient_id=patient.public_id)
    assert view.outcome == Outcome.ALLOWED


def test_a_technician_admits_a_patient(tech, personas, patient, audit_rows):
    response = tech.post(new_url(patient), new_admission(personas))
    encounter = Encounter.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(encounter)
    assert encounter.visit_number == "V000000001"
    assert (encounter.unit, encounter.bed, encounter.admit_source) == ("5 East", "3", "7")
    assert encounter.started_at == ADMIT
    assert encounter.attending == personas.clinician
    assert audit_rows(action=Action.CREATE, object_type="encounter")


def test_a_duplicate_visit_number_is_refused_on_the_form(tech, personas, patient, encounter):
    response = tech.post(new_url(patient), new_admission(personas, visit_number="a100"))
    assert response.status_code == 400
    assert "Visit number A100 is already used" in response.content.decode()
    assert Encounter.objects.count() == 1


def test_an_impossible_admission_time_is_refused_on_the_form(tech, personas, patient):
    response = tech.post(
        new_url(patient), new_admission(personas, started_at=local(NOW + dt.timedelta(days=1)))
    )
    assert response.status_code == 400
    assert "in the future" in response.content.decode()
    response = tech.post(new_url(patient), new_admission(personas, started_at="2025-02-30T10:00"))
    assert response.status_code == 400
    assert "Enter a date and time" in response.content.decode()
    assert not Encounter.objects.exists()


def test_registering_requires_login(client, patient):
    assert client.get(new_url(patient))["Location"].startswith("/accounts/login/")
    assert client.post(new_url(patient), {})["Location"].startswith("/accounts/login/")


def test_registering_is_denied_to_a_coder_and_audited(client, personas, patient, audit_rows):
    sign_in(client, personas.coder)
    assert client.get(new_url(patient)).status_code == 403
    assert client.post(new_url(patient), new_admission(personas)).status_code == 403
    denied = audit_rows(outcome=Outcome.DENIED)
    assert len(denied) == 2
    assert all("encounters.manage" in row.reason for row in denied)
    assert not Encounter.objects.exists()


def test_registering_hides_the_patient_from_an_outsider(client, personas, patient, audit_rows):
    sign_in(client, personas.outsider)
    assert client.get(new_url(patient)).status_code == 404
    assert client.post(new_url(patient), new_admission(personas)).status_code == 404
    assert audit_rows(outcome=Outcome.DENIED, actor=personas.outsider)
    assert not Encounter.objects.exists()


def test_registering_refuses_other_methods(tech, patient):
    assert tech.put(new_url(patient)).status_code == 405


# --- the encounter page --------------------------------------------------------------------


def test_the_page_shows_locations_and_version_history(tech, personas, encounter, audit_rows):
    actions.do_transfer(encounter, unit="ICU", bed="2", at=NOW, acting_user=personas.technician)
    actions.do_correct_encounter(
        encounter,
        changes={"service": "cardiology"},
        reason="Service was mistyped",
        acting_user=personas.technician,
    )
    response = tech.get(detail_url(encounter))
    assert response.status_code == 200
    page = response.content.decode()
    assert "ICU" in page and "4 West" in page
    assert "corrected: Service was mistyped" in page
    assert "<del>" not in page or "cardiology" in page
    assert 'data-version="3"' in page and 'data-version="1"' in page
    views = audit_rows(action=Action.VIEW, object_type="encounter")
    assert [v.object_id for v in views] == [str(encounter.public_id)]


def test_a_coder_may_read_but_sees_no_workflow_forms(client, personas, encounter, audit_rows):
    sign_in(client, personas.coder)
    response = client.get(detail_url(encounter))
    assert response.status_code == 200
    assert "Record a change" not in response.content.decode()
    assert audit_rows(action=Action.VIEW, object_type="encounter", actor=personas.coder)


def test_the_page_requires_login(client, encounter):
    assert client.get(detail_url(encounter))["Location"].startswith("/accounts/login/")


def test_the_page_is_denied_without_the_clinical_permission(
    client, personas, encounter, audit_rows
):
    sign_in(client, personas.privacy_officer)
    assert client.get(detail_url(encounter)).status_code == 403
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert "patients.read_clinical" in denied.reason


def test_the_page_hides_the_patient_from_an_outsider(client, personas, encounter, audit_rows):
    sign_in(client, personas.outsider)
    assert client.get(detail_url(encounter)).status_code == 404
    assert audit_rows(outcome=Outcome.DENIED, actor=personas.outsider)


def test_an_unknown_encounter_is_404_and_audited(tech, audit_rows):
    assert tech.get("/encounters/00000000-0000-4000-8000-000000000000/").status_code == 404
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.reason == "no such encounter"


def test_the_page_refuses_post(tech, encounter):
    assert tech.post(detail_url(encounter)).status_code == 405


def test_a_restricted_patients_encounter_sends_to_the_notice(client, personas, encounter):
    do_set_restriction(
        encounter.patient,
        Restriction.VIP,
        reason="public figure",
        acting_user=personas.administrator,
    )
    sign_in(client, personas.coder)
    response = client.get(detail_url(encounter))
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{encounter.patient.public_id}/restricted/"


# --- the workflow steps ----------------------------------------------------------------------

STEPS = {
    "transfer": {"unit": "ICU", "bed": "2", "at": local(NOW - dt.timedelta(hours=1))},
    "discharge": {"ended_at": local(NOW), "disposition": "01"},
    "correct": {
        "visit_number": "A100",
        "encounter_class": "IMP",
        "started_at": local(ADMIT),
        "service": "cardiology",
        "unit": "4 West",
        "bed": "12A",
        "correction_reason": "Service was mistyped",
    },
    "cancel": {"status": "cancelled", "reason": "Admission cancelled by the ward"},
}


@pytest.fixture
def steps(personas):
    """What each step's form posts (a browser sends the correction form's attending
    back as it was shown)."""
    data = {step: dict(values) for step, values in STEPS.items()}
    data["correct"]["attending"] = str(personas.clinician.public_id)
    return data


def step_url(encounter, step):
    return f"/encounters/{encounter.public_id}/{step.replace('_', '-')}/"


@pytest.mark.parametrize("step", [*STEPS, "start", "cancel_discharge"])
def test_a_step_refuses_get(tech, encounter, step):
    assert tech.get(step_url(encounter, step)).status_code == 405


@pytest.mark.parametrize("step", STEPS)
def test_a_step_requires_login(client, encounter, step, steps):
    assert client.post(step_url(encounter, step), steps[step])["Location"].startswith(
        "/accounts/login/"
    )


@pytest.mark.parametrize("step", STEPS)
def test_a_step_is_denied_to_a_coder_and_audited(
    client, personas, encounter, audit_rows, step, steps
):
    sign_in(client, personas.coder)
    assert client.post(step_url(encounter, step), steps[step]).status_code == 403
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert "encounters.manage" in denied.reason
    encounter.refresh_from_db()
    assert encounter.version == 1


@pytest.mark.parametrize("step", STEPS)
def test_a_step_hides_the_patient_from_an_outsider(
    client, personas, encounter, audit_rows, step, steps
):
    sign_in(client, personas.outsider)
    assert client.post(step_url(encounter, step), steps[step]).status_code == 404
    assert audit_rows(outcome=Outcome.DENIED, actor=personas.outsider)
    encounter.refresh_from_db()
    assert encounter.version == 1


@pytest.mark.parametrize("step", STEPS)
def test_a_step_is_recorded_and_audited(tech, personas, encounter, audit_rows, step, steps):
    response = tech.post(step_url(encounter, step), steps[step])
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == detail_url(encounter)
    encounter.refresh_from_db()
    assert encounter.version == 2
    (event,) = audit_rows(action=Action.UPDATE, object_type="encounter")
    assert event.actor == personas.technician


def test_the_transfer_is_where_the_form_said(tech, encounter, steps):
    tech.post(step_url(encounter, "transfer"), steps["transfer"])
    encounter.refresh_from_db()
    assert (encounter.unit, encounter.bed) == ("ICU", "2")
    assert encounter.locations.count() == 2


def test_a_discharge_before_the_admission_shows_the_form_again_with_the_error(tech, encounter):
    response = tech.post(
        step_url(encounter, "discharge"),
        {"ended_at": local(ADMIT - dt.timedelta(hours=5)), "disposition": "01"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "is not after the admission" in page
    assert 'data-step="discharge" open' in page
    encounter.refresh_from_db()
    assert encounter.status == EncounterStatus.IN_PROGRESS
    assert encounter.version == 1


def test_a_correction_with_nothing_changed_is_refused(tech, encounter, steps):
    response = tech.post(step_url(encounter, "correct"), {**steps["correct"], "service": ""})
    assert response.status_code == 400
    assert "Nothing to correct" in response.content.decode()


def test_a_correction_needs_its_reason(tech, encounter, steps):
    response = tech.post(
        step_url(encounter, "correct"), {**steps["correct"], "correction_reason": ""}
    )
    assert response.status_code == 400
    encounter.refresh_from_db()
    assert encounter.service == ""


def test_a_planned_encounter_is_checked_in_from_its_page(tech, personas, patient):
    planned = actions.do_register_encounter(
        patient,
        facility=personas.facility,
        encounter_class="AMB",
        started_at=NOW + dt.timedelta(days=2),
        status=EncounterStatus.PLANNED,
        acting_user=personas.technician,
    )
    page = tech.get(detail_url(planned)).content.decode()
    assert 'data-step="start"' in page and 'data-step="discharge"' not in page
    response = tech.post(step_url(planned, "start"), {"started_at": local(NOW), "unit": "Clinic B"})
    assert response.status_code == 302
    planned.refresh_from_db()
    assert planned.status == EncounterStatus.IN_PROGRESS


def test_a_discharge_is_cancelled_from_its_page(tech, personas, encounter):
    actions.do_discharge(encounter, ended_at=NOW, disposition="01", acting_user=personas.technician)
    response = tech.post(
        step_url(encounter, "cancel_discharge"), {"reason": "Patient stayed overnight"}
    )
    assert response.status_code == 302
    encounter.refresh_from_db()
    assert encounter.status == EncounterStatus.IN_PROGRESS


def test_a_cancelled_encounter_page_says_so_and_offers_no_steps(tech, personas, encounter):
    actions.do_cancel_encounter(
        encounter, reason="Admission cancelled", acting_user=personas.technician
    )
    page = tech.get(detail_url(encounter)).content.decode()
    assert "It is kept for the record" in page
    assert "data-step=" not in page
