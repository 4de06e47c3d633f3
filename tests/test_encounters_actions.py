"""Encounter actions: registration, check-in, transfer, discharge, correction and
cancellation. Every change is a new version with who, when and why, and is audited;
impossible input is refused with a message naming it, and nothing is half-written."""

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError

from accounts.access import AccessDenied
from accounts.roles import Role
from audit.models import Action, Outcome
from encounters import actions
from encounters.access import encounters_for_chart
from encounters.models import (
    Encounter,
    EncounterClass,
    EncounterLocation,
    EncounterStatus,
    EncounterVersion,
)
from recordroom.testing import make_user, register_patient

pytestmark = pytest.mark.django_db
UTC = dt.UTC
NOW = dt.datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
ADMIT = NOW - dt.timedelta(days=2)


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


def admit(personas, patient, **overrides):
    values = {
        "facility": personas.facility,
        "encounter_class": EncounterClass.INPATIENT,
        "started_at": ADMIT,
        "attending": personas.clinician,
        "unit": "4 West",
        "bed": "12A",
        "service": "medicine",
        "reason": "Shortness of breath",
        "acting_user": personas.technician,
    }
    values.update(overrides)
    return actions.do_register_encounter(patient, **values)


def errors_of(excinfo) -> dict:
    return excinfo.value.message_dict


# --- registration -----------------------------------------------------------------------


def test_an_admission_gets_a_visit_number_a_location_and_version_1(personas, patient, audit_rows):
    encounter = admit(personas, patient)
    assert encounter.visit_number == "V000000001"
    assert encounter.status == EncounterStatus.IN_PROGRESS
    assert encounter.version == 1
    (location,) = encounter.locations.all()
    assert (location.unit, location.bed, location.started_at, location.ended_at) == (
        "4 West",
        "12A",
        ADMIT,
        None,
    )
    (version,) = encounter.versions.all()
    assert version.number == 1
    assert version.changed_by == personas.technician
    assert version.reason == "registered"
    assert version.snapshot["visit_number"] == "V000000001"
    assert version.snapshot["attending"] == str(personas.clinician.public_id)
    assert version.snapshot["locations"][0]["unit"] == "4 West"
    (event,) = audit_rows(action=Action.CREATE, object_type="encounter")
    assert event.patient_id == patient.public_id
    assert event.object_id == str(encounter.public_id)
    assert event.detail["event"] == "register"
    assert event.detail["class"] == "IMP"
    assert "V000000001" not in str(event.detail)  # the account number stays out of the trail


def test_visit_numbers_follow_each_other_per_facility(personas, patient):
    first = admit(personas, patient)
    second = admit(
        personas,
        patient,
        encounter_class=EncounterClass.OUTPATIENT,
        unit="",
        bed="",
        attending=None,
    )
    assert (first.visit_number, second.visit_number) == ("V000000001", "V000000002")


def test_an_assigned_number_skips_one_an_interface_already_used(personas, patient):
    admit(personas, patient, visit_number="v000000001")
    assigned = admit(personas, patient, encounter_class=EncounterClass.EMERGENCY, unit="", bed="")
    assert assigned.visit_number == "V000000002"


def test_a_given_visit_number_is_kept_in_capitals(personas, patient):
    encounter = admit(personas, patient, visit_number="  acct-7781 ")
    assert encounter.visit_number == "ACCT-7781"


def test_a_duplicate_visit_number_is_refused_and_nothing_is_written(personas, patient, audit_rows):
    admit(personas, patient, visit_number="A100")
    with pytest.raises(ValidationError) as excinfo:
        admit(personas, patient, visit_number="a100", unit="5 East", bed="1")
    assert "Visit number A100 is already used" in errors_of(excinfo)["visit_number"][0]
    assert Encounter.objects.count() == 1
    assert EncounterLocation.objects.count() == 1
    assert EncounterVersion.objects.count() == 1
    assert len(audit_rows(action=Action.CREATE, object_type="encounter")) == 1


def test_the_same_visit_number_may_be_used_at_another_facility(personas, patient):
    admit(personas, patient, visit_number="A100")
    elsewhere = register_patient(personas, facility=personas.other_facility, family="Brightwater")
    other_attending = make_user("dr.ines", Role.CLINICIAN)
    other_attending.facilities.add(personas.other_facility)
    encounter = admit(
        personas,
        elsewhere,
        facility=personas.other_facility,
        visit_number="A100",
        attending=other_attending,
        acting_user=personas.outsider,
    )
    assert encounter.visit_number == "A100"


def test_a_malformed_visit_number_is_refused(personas, patient):
    with pytest.raises(ValidationError) as excinfo:
        admit(personas, patient, visit_number="12 34<script>")
    assert "letters, digits and hyphens" in errors_of(excinfo)["visit_number"][0]


def test_an_inpatient_admission_needs_an_attending(personas, patient):
    with pytest.raises(ValidationError) as excinfo:
        admit(personas, patient, attending=None)
    assert "attending physician" in errors_of(excinfo)["attending"][0]


def test_an_outpatient_visit_needs_no_attending_or_unit(personas, patient):
    encounter = admit(
        personas,
        patient,
        encounter_class=EncounterClass.OUTPATIENT,
        attending=None,
        unit="",
        bed="",
    )
    assert encounter.attending is None
    assert not encounter.locations.exists()


@pytest.mark.parametrize(
    "who, message",
    [
        ("coder", "clinician role"),
        ("inactive", "active clinician"),
        ("elsewhere", "does not practise at this facility"),
    ],
)
def test_the_attending_must_be_an_active_clinician_of_the_facility(personas, patient, who, message):
    if who == "coder":
        attending = personas.coder
    elif who == "inactive":
        attending = make_user("dr.gone", Role.CLINICIAN, is_active=False)
        attending.facilities.add(personas.facility)
    else:
        attending = make_user("dr.away", Role.CLINICIAN)
        attending.facilities.add(personas.other_facility)
    with pytest.raises(ValidationError) as excinfo:
        admit(personas, patient, attending=attending)
    assert message in errors_of(excinfo)["attending"][0]


def test_an_admission_in_the_future_is_refused_unless_planned(personas, patient):
    tomorrow = NOW + dt.timedelta(days=1)
    with pytest.raises(ValidationError) as excinfo:
        admit(personas, patient, started_at=tomorrow)
    assert "in the future" in errors_of(excinfo)["started_at"][0]
    planned = admit(personas, patient, started_at=tomorrow, status=EncounterStatus.PLANNED)
    assert planned.status == EncounterStatus.PLANNED
    # The booked bed is not occupied until the patient arrives.
    assert not planned.locations.exists()


def test_an_admission_before_birth_is_refused(personas, patient):
    with pytest.raises(ValidationError) as excinfo:
        admit(personas, patient, started_at=dt.datetime(1960, 1, 1, 12, tzinfo=UTC))
    assert "before the patient's date of birth" in errors_of(excinfo)["started_at"][0]


def test_a_new_encounter_cannot_be_registered_as_finished(personas, patient):
    with pytest.raises(ValidationError) as excinfo:
        admit(personas, patient, status=EncounterStatus.FINISHED)
    assert "planned or in progress" in errors_of(excinfo)["status"][0]


def test_a_bed_needs_its_unit(personas, patient):
    with pytest.raises(ValidationError) as excinfo:
        admit(personas, patient, unit="", bed="7")
    assert "unit of this bed" in errors_of(excinfo)["bed"][0]


def test_the_patient_needs_a_record_number_at_the_facility(personas, patient):
    personas.technician.facilities.add(personas.other_facility)
    with pytest.raises(ValidationError) as excinfo:
        admit(personas, patient, facility=personas.other_facility)
    assert "no medical record number at this facility" in errors_of(excinfo)["facility"][0]


def test_a_role_without_the_permission_is_refused_and_audited(personas, patient, audit_rows):
    with pytest.raises(AccessDenied):
        admit(personas, patient, acting_user=personas.coder)
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.coder
    assert denied.object_type == "encounter"
    assert "encounters.manage" in denied.reason
    assert not Encounter.objects.exists()


# --- check-in of a planned encounter ------------------------------------------------------


def test_a_planned_encounter_is_checked_in(personas, patient, audit_rows):
    planned = admit(
        personas, patient, started_at=NOW + dt.timedelta(days=3), status=EncounterStatus.PLANNED
    )
    arrived = NOW - dt.timedelta(hours=1)
    actions.do_start_encounter(
        planned, started_at=arrived, acting_user=personas.technician, bed="3"
    )
    planned.refresh_from_db()
    assert planned.status == EncounterStatus.IN_PROGRESS
    assert planned.started_at == arrived
    (location,) = planned.locations.all()
    assert (location.unit, location.bed, location.started_at) == ("4 West", "3", arrived)
    assert planned.version == 2
    assert audit_rows(action=Action.UPDATE, object_type="encounter")[-1].detail["event"] == "start"


def test_only_a_planned_encounter_is_checked_in(personas, patient):
    encounter = admit(personas, patient)
    with pytest.raises(ValidationError) as excinfo:
        actions.do_start_encounter(encounter, started_at=NOW, acting_user=personas.technician)
    assert "Only a planned encounter" in errors_of(excinfo)["status"][0]


# --- transfers ------------------------------------------------------------------------------


def test_a_transfer_closes_the_location_and_opens_the_next(personas, patient, audit_rows):
    encounter = admit(personas, patient)
    moved = ADMIT + dt.timedelta(hours=20)
    actions.do_transfer(encounter, unit="ICU", bed="2", at=moved, acting_user=personas.technician)
    first, second = encounter.locations.order_by("started_at")
    assert first.ended_at == moved
    assert (second.unit, second.bed, second.started_at, second.ended_at) == (
        "ICU",
        "2",
        moved,
        None,
    )
    encounter.refresh_from_db()
    assert (encounter.unit, encounter.bed, encounter.version) == ("ICU", "2", 2)
    version = encounter.versions.get(number=2)
    assert [loc["unit"] for loc in version.snapshot["locations"]] == ["4 West", "ICU"]
    assert encounter.versions.get(number=1).snapshot["locations"][0]["ended_at"] is None
    assert audit_rows(action=Action.UPDATE)[-1].detail["event"] == "transfer"


def test_a_transfer_must_come_after_the_previous_move(personas, patient):
    encounter = admit(personas, patient)
    actions.do_transfer(
        encounter, unit="ICU", at=ADMIT + dt.timedelta(hours=5), acting_user=personas.technician
    )
    with pytest.raises(ValidationError) as excinfo:
        actions.do_transfer(
            encounter,
            unit="5 East",
            at=ADMIT + dt.timedelta(hours=4),
            acting_user=personas.technician,
        )
    assert "not after the previous move" in errors_of(excinfo)["at"][0]
    assert encounter.locations.count() == 2


def test_a_transfer_before_the_admission_or_in_the_future_is_refused(personas, patient):
    encounter = admit(personas, patient)
    with pytest.raises(ValidationError) as excinfo:
        actions.do_transfer(
            encounter, unit="ICU", at=ADMIT - dt.timedelta(hours=1), acting_user=personas.technician
        )
    assert "not after the admission" in errors_of(excinfo)["at"][0]
    with pytest.raises(ValidationError) as excinfo:
        actions.do_transfer(
            encounter, unit="ICU", at=NOW + dt.timedelta(hours=1), acting_user=personas.technician
        )
    assert "in the future" in errors_of(excinfo)["at"][0]


def test_a_transfer_to_the_same_bed_is_refused(personas, patient):
    encounter = admit(personas, patient)
    with pytest.raises(ValidationError) as excinfo:
        actions.do_transfer(
            encounter, unit="4 West", bed="12A", at=NOW, acting_user=personas.technician
        )
    assert "already in this unit and bed" in errors_of(excinfo)["unit"][0]


def test_a_discharged_patient_is_not_transferred(personas, patient):
    encounter = admit(personas, patient)
    actions.do_discharge(encounter, ended_at=NOW, disposition="01", acting_user=personas.technician)
    with pytest.raises(ValidationError) as excinfo:
        actions.do_transfer(encounter, unit="ICU", at=NOW, acting_user=personas.technician)
    assert "still in the facility" in errors_of(excinfo)["status"][0]


def test_another_facilitys_encounter_is_refused_and_audited(personas, patient, audit_rows):
    encounter = admit(personas, patient)
    with pytest.raises(AccessDenied):
        actions.do_transfer(encounter, unit="ICU", at=NOW, acting_user=personas.outsider)
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.outsider
    assert denied.object_id == str(encounter.public_id)


# --- discharge ------------------------------------------------------------------------------


def test_a_discharge_finishes_the_encounter_and_closes_the_location(personas, patient, audit_rows):
    encounter = admit(personas, patient)
    actions.do_discharge(encounter, ended_at=NOW, disposition="01", acting_user=personas.technician)
    encounter.refresh_from_db()
    assert (encounter.status, encounter.ended_at, encounter.disposition) == (
        EncounterStatus.FINISHED,
        NOW,
        "01",
    )
    assert encounter.locations.get().ended_at == NOW
    assert encounter.versions.get(number=2).reason == "discharged"
    event = audit_rows(action=Action.UPDATE)[-1]
    assert event.detail["event"] == "discharge"
    assert event.detail["disposition"] == "01"


def test_a_discharge_before_the_admission_is_refused_and_nothing_changes(
    personas, patient, audit_rows
):
    encounter = admit(personas, patient)
    with pytest.raises(ValidationError) as excinfo:
        actions.do_discharge(
            encounter,
            ended_at=ADMIT - dt.timedelta(hours=3),
            disposition="01",
            acting_user=personas.technician,
        )
    message = errors_of(excinfo)["ended_at"][0]
    assert "is not after the admission" in message
    encounter.refresh_from_db()
    assert (encounter.status, encounter.version, encounter.ended_at) == (
        EncounterStatus.IN_PROGRESS,
        1,
        None,
    )
    assert encounter.locations.get().ended_at is None
    assert not audit_rows(action=Action.UPDATE)


def test_a_discharge_in_the_future_is_refused(personas, patient):
    encounter = admit(personas, patient)
    with pytest.raises(ValidationError) as excinfo:
        actions.do_discharge(
            encounter,
            ended_at=NOW + dt.timedelta(hours=2),
            disposition="01",
            acting_user=personas.technician,
        )
    assert "in the future" in errors_of(excinfo)["ended_at"][0]


def test_an_inpatient_discharge_needs_a_disposition(personas, patient):
    encounter = admit(personas, patient)
    with pytest.raises(ValidationError) as excinfo:
        actions.do_discharge(encounter, ended_at=NOW, acting_user=personas.technician)
    assert "disposition" in errors_of(excinfo)["disposition"][0]


def test_an_outpatient_visit_ends_without_a_disposition(personas, patient):
    visit = admit(
        personas,
        patient,
        encounter_class=EncounterClass.OUTPATIENT,
        attending=None,
        unit="",
        bed="",
    )
    actions.do_discharge(visit, ended_at=NOW, acting_user=personas.technician)
    assert visit.status == EncounterStatus.FINISHED


def test_a_discharge_before_the_last_transfer_is_refused(personas, patient):
    encounter = admit(personas, patient)
    actions.do_transfer(
        encounter, unit="ICU", at=ADMIT + dt.timedelta(days=1), acting_user=personas.technician
    )
    with pytest.raises(ValidationError) as excinfo:
        actions.do_discharge(
            encounter,
            ended_at=ADMIT + dt.timedelta(hours=12),
            disposition="01",
            acting_user=personas.technician,
        )
    assert "before the last transfer" in errors_of(excinfo)["ended_at"][0]


def test_an_attending_who_has_left_does_not_block_the_discharge(personas, patient):
    encounter = admit(personas, patient)
    personas.clinician.is_active = False
    personas.clinician.save()
    actions.do_discharge(encounter, ended_at=NOW, disposition="01", acting_user=personas.technician)
    assert encounter.status == EncounterStatus.FINISHED


def test_a_discharge_that_did_not_happen_is_cancelled(personas, patient):
    encounter = admit(personas, patient)
    actions.do_discharge(encounter, ended_at=NOW, disposition="01", acting_user=personas.technician)
    actions.do_cancel_discharge(
        encounter, reason="Patient was not discharged", acting_user=personas.technician
    )
    encounter.refresh_from_db()
    assert (encounter.status, encounter.ended_at, encounter.disposition) == (
        EncounterStatus.IN_PROGRESS,
        None,
        "",
    )
    assert encounter.locations.get().ended_at is None
    # The discharge stays readable in the history.
    assert encounter.versions.get(number=2).snapshot["ended_at"] == NOW.isoformat()
    assert encounter.versions.get(number=3).reason.startswith("discharge cancelled")


# --- corrections ----------------------------------------------------------------------------


def test_a_correction_is_a_new_version_and_the_old_one_stays(personas, patient, audit_rows):
    encounter = admit(personas, patient)
    corrected_admit = ADMIT - dt.timedelta(hours=2)
    actions.do_correct_encounter(
        encounter,
        changes={"started_at": corrected_admit, "service": "cardiology", "bed": "14"},
        reason="Admission time was typed from the wrong form",
        acting_user=personas.administrator,
    )
    encounter.refresh_from_db()
    assert (encounter.started_at, encounter.service, encounter.bed, encounter.version) == (
        corrected_admit,
        "cardiology",
        "14",
        2,
    )
    location = encounter.locations.get()
    assert (location.started_at, location.bed) == (corrected_admit, "14")
    old, new = encounter.versions.order_by("number")
    assert old.snapshot["started_at"] == ADMIT.isoformat()
    assert old.snapshot["service"] == "medicine"
    assert new.snapshot["started_at"] == corrected_admit.isoformat()
    assert new.changed_by == personas.administrator
    assert "wrong form" in new.reason
    event = audit_rows(action=Action.UPDATE)[-1]
    assert event.detail["fields"] == ["bed", "service", "started_at"]


def test_a_correction_needs_a_reason_and_a_change(personas, patient):
    encounter = admit(personas, patient)
    with pytest.raises(ValidationError) as excinfo:
        actions.do_correct_encounter(
            encounter, changes={"service": "surgery"}, reason="", acting_user=personas.technician
        )
    assert "Say what was wrong" in errors_of(excinfo)["reason"][0]
    with pytest.raises(ValidationError) as excinfo:
        actions.do_correct_encounter(
            encounter,
            changes={"service": "medicine"},
            reason="Checking the service",
            acting_user=personas.technician,
        )
    assert "Nothing to correct" in errors_of(excinfo)["__all__"][0]
    with pytest.raises(ValidationError) as excinfo:
        actions.do_correct_encounter(
            encounter,
            changes={"status": "finished"},
            reason="Sneaking a status past the workflow",
            acting_user=personas.technician,
        )
    assert "cannot be corrected here: status" in errors_of(excinfo)["__all__"][0]
    assert encounter.versions.count() == 1


def test_a_corrected_discharge_before_the_admission_is_refused(personas, patient):
    encounter = admit(personas, patient)
    actions.do_discharge(encounter, ended_at=NOW, disposition="01", acting_user=personas.technician)
    with pytest.raises(ValidationError) as excinfo:
        actions.do_correct_encounter(
            encounter,
            changes={"ended_at": ADMIT - dt.timedelta(days=1)},
            reason="Discharge date from the paper chart",
            acting_user=personas.technician,
        )
    assert "is not after the admission" in errors_of(excinfo)["ended_at"][0]
    encounter.refresh_from_db()
    assert encounter.ended_at == NOW
    assert encounter.version == 2


def test_a_corrected_discharge_time_moves_the_last_location(personas, patient):
    encounter = admit(personas, patient)
    actions.do_discharge(encounter, ended_at=NOW, disposition="01", acting_user=personas.technician)
    earlier = NOW - dt.timedelta(hours=3)
    actions.do_correct_encounter(
        encounter,
        changes={"ended_at": earlier, "disposition": "06"},
        reason="Discharge time from the nursing note",
        acting_user=personas.technician,
    )
    assert encounter.locations.get().ended_at == earlier
    assert encounter.disposition == "06"


def test_a_correction_to_a_taken_visit_number_is_refused(personas, patient):
    admit(personas, patient, visit_number="A1")
    second = admit(personas, patient, visit_number="A2", unit="5 East", bed="1")
    with pytest.raises(ValidationError) as excinfo:
        actions.do_correct_encounter(
            second,
            changes={"visit_number": "A1"},
            reason="Wrong account number",
            acting_user=personas.technician,
        )
    assert "already used" in errors_of(excinfo)["visit_number"][0]


def test_an_admission_corrected_past_a_transfer_is_refused(personas, patient):
    encounter = admit(personas, patient)
    actions.do_transfer(
        encounter, unit="ICU", at=ADMIT + dt.timedelta(hours=6), acting_user=personas.technician
    )
    with pytest.raises(ValidationError) as excinfo:
        actions.do_correct_encounter(
            encounter,
            changes={"started_at": ADMIT + dt.timedelta(hours=7)},
            reason="Admission time from the ED log",
            acting_user=personas.technician,
        )
    assert "after the transfer" in errors_of(excinfo)["started_at"][0]


# --- cancellation ----------------------------------------------------------------------------


def test_a_cancelled_encounter_is_kept_and_hidden_from_the_timeline(personas, patient, audit_rows):
    encounter = admit(personas, patient)
    actions.do_cancel_encounter(
        encounter, reason="Admission cancelled by the ward", acting_user=personas.technician
    )
    encounter.refresh_from_db()
    assert encounter.status == EncounterStatus.CANCELLED
    assert encounter.versions.count() == 2
    assert encounter.versions.get(number=2).reason.startswith("cancelled:")
    assert list(encounters_for_chart(patient)) == []
    assert list(encounters_for_chart(patient, include_void=True)) == [encounter]
    event = audit_rows(action=Action.UPDATE)[-1]
    assert (event.detail["event"], event.detail["previous_status"]) == ("cancel", "in-progress")


def test_a_visit_that_took_place_is_entered_in_error_not_cancelled(personas, patient):
    encounter = admit(personas, patient)
    actions.do_discharge(encounter, ended_at=NOW, disposition="01", acting_user=personas.technician)
    with pytest.raises(ValidationError) as excinfo:
        actions.do_cancel_encounter(
            encounter, reason="Wrong patient", acting_user=personas.technician
        )
    assert "entered in error instead" in errors_of(excinfo)["status"][0]
    actions.do_cancel_encounter(
        encounter,
        status=EncounterStatus.ENTERED_IN_ERROR,
        reason="Registered on the wrong patient",
        acting_user=personas.technician,
    )
    assert encounter.status == EncounterStatus.ENTERED_IN_ERROR


def test_a_cancellation_needs_a_reason_and_a_cancelled_encounter_stays_as_it_was(personas, patient):
    encounter = admit(personas, patient)
    with pytest.raises(ValidationError):
        actions.do_cancel_encounter(encounter, reason=" ", acting_user=personas.technician)
    actions.do_cancel_encounter(encounter, reason="Did not arrive", acting_user=personas.technician)
    with pytest.raises(ValidationError) as excinfo:
        actions.do_correct_encounter(
            encounter,
            changes={"service": "surgery"},
            reason="Trying to edit a cancelled one",
            acting_user=personas.technician,
        )
    assert "cannot be corrected" in errors_of(excinfo)["status"][0]
    with pytest.raises(ValidationError):
        actions.do_cancel_encounter(
            encounter, reason="Cancel it twice", acting_user=personas.technician
        )
