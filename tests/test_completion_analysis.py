"""Chart completion analysis: at discharge and on every document change (through the
signals, committed), idempotent, closing what was resolved, voiding what no longer
applies, hands off waived and hand-added deficiencies; record status, delinquency
dates across daylight saving and month ends, readmissions, clinicians who left, the
policy's facility override, the audit trail and the `completion analyse` command."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import time_machine
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from completion.analysis import analyse_encounter
from completion.models import (
    CompletionPolicy,
    Deficiency,
    DeficiencyKind,
    DeficiencyStatus,
    RecordCompletion,
    RecordStatus,
)
from documents import actions as documents
from documents.access import ActionRefused
from documents.models import DocumentType, DocumentVersion
from documents.testing import BODY
from encounters import actions as encounters
from encounters.models import EncounterClass
from recordroom.testing import PASSWORD, register_patient

pytestmark = pytest.mark.django_db
UTC = dt.UTC
HP, DS, OP, POSTOP, ORDERS, PROGRESS = (
    "34117-2",
    "18842-5",
    "11504-8",
    "28570-0",
    "46209-3",
    "11506-3",
)
ADMIT = dt.datetime(2025, 6, 2, 14, 0, tzinfo=UTC)  # 10:00 in New York (EDT)
DISCHARGE = ADMIT + dt.timedelta(days=3)


# --- helpers shared by the completion test modules -----------------------------------------


def at(moment: dt.datetime):
    return time_machine.travel(moment, tick=False)


def committer(capture):
    """Run an action and then its on-commit work (the completion signal receivers
    enqueue the analysis there; the test task backend runs it at once)."""

    def run(fn, *args, **kwargs):
        with capture(execute=True):
            return fn(*args, **kwargs)

    return run


class Chart:
    """One patient's stay, built through the real actions at the times given."""

    def __init__(self, personas, committed, patient=None):
        self.p = personas
        self.run = committed
        self.patient = patient or register_patient(personas)

    def admit(self, started_at=ADMIT, *, cls=EncounterClass.INPATIENT, attending=None, **kw):
        with at(started_at + dt.timedelta(minutes=5)):
            return self.run(
                encounters.do_register_encounter,
                self.patient,
                facility=kw.pop("facility", self.p.facility),
                encounter_class=cls,
                started_at=started_at,
                attending=attending or self.p.clinician,
                unit="4 West",
                acting_user=self.p.technician,
                **kw,
            )

    def discharge(self, encounter, ended_at=DISCHARGE):
        with at(ended_at + dt.timedelta(minutes=5)):
            return self.run(
                encounters.do_discharge,
                encounter,
                ended_at=ended_at,
                disposition="01",
                acting_user=self.p.technician,
            )

    def write(self, encounter, code, *, service_at, written_at=None, author=None, **kw):
        """A draft by ``author`` (the attending by default), written at ``written_at``."""
        author = author or self.p.clinician
        with at(written_at or service_at + dt.timedelta(minutes=30)):
            return self.run(
                documents.do_create_document,
                self.patient,
                doc_type=DocumentType.objects.get(loinc_code=code),
                title=kw.pop("title", "Note"),
                body=kw.pop("body", BODY),
                service_at=service_at,
                encounter=encounter,
                acting_user=author,
                **kw,
            )

    def sign(self, document, when=None, *, by=None):
        with at(when or document.entered_at + dt.timedelta(minutes=10)):
            return self.run(
                documents.do_sign_document,
                document,
                password=PASSWORD,
                acting_user=by or document.author,
            )

    def signed(self, encounter, code, *, service_at, written_at=None, author=None, **kw):
        document = self.write(
            encounter, code, service_at=service_at, written_at=written_at, author=author, **kw
        )
        self.sign(document)
        return document

    def record(self, encounter, resource, when):
        from clinical.actions import do_record_clinical_entry

        with at(when):
            return self.run(
                do_record_clinical_entry,
                self.patient,
                resource=resource,
                encounter=encounter,
                acting_user=self.p.clinician,
            )

    def diagnosis(self, encounter, when=None, category="encounter-diagnosis"):
        return self.record(
            encounter, condition(category), when or DISCHARGE - dt.timedelta(hours=2)
        )

    def surgery(self, encounter, performed_at, **kw):
        return self.record(
            encounter, procedure(performed_at, **kw), performed_at + dt.timedelta(hours=1)
        )

    def complete_stay(self, encounter=None, *, admitted=ADMIT, discharged=DISCHARGE):
        """An inpatient stay with everything the default rules ask for."""
        encounter = encounter or self.admit(admitted)
        self.signed(encounter, HP, service_at=admitted + dt.timedelta(hours=2))
        self.diagnosis(encounter, discharged - dt.timedelta(hours=2))
        self.signed(encounter, DS, service_at=discharged - dt.timedelta(hours=1))
        self.discharge(encounter, discharged)
        return encounter


def condition(category="encounter-diagnosis"):
    return {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "category": [{"coding": [{"code": category}]}],
        "code": {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/sid/icd-10-cm",
                    "code": "J18.9",
                    "display": "Pneumonia, unspecified organism",
                }
            ]
        },
        "subject": {"reference": "Patient/x"},
    }


def procedure(performed_at, *, category="387713003", anaesthesia=None, status="completed"):
    resource = {
        "resourceType": "Procedure",
        "status": status,
        "category": {"coding": [{"system": "http://snomed.info/sct", "code": category}]},
        "code": {
            "coding": [{"system": "http://snomed.info/sct", "code": "80146002"}],
            "text": "Appendectomy",
        },
        "subject": {"reference": "Patient/x"},
        "performedDateTime": performed_at.isoformat(),
    }
    if anaesthesia is not None:
        resource["extension"] = [
            {
                "url": "https://recordroom.org/fhir/StructureDefinition/procedure-anaesthesia",
                "valueCode": anaesthesia,
            }
        ]
    return resource


def open_deficiencies(encounter, **filters):
    return list(
        Deficiency.objects.filter(encounter=encounter, status=DeficiencyStatus.OPEN, **filters)
        .select_related("rule")
        .order_by("pk")
    )


def by_rule(encounter, status=DeficiencyStatus.OPEN) -> dict[str, Deficiency]:
    return {
        d.rule.code if d.rule else "manual": d
        for d in Deficiency.objects.filter(encounter=encounter, status=status).select_related(
            "rule"
        )
    }


def record_of(encounter) -> RecordCompletion:
    return RecordCompletion.objects.get(encounter=encounter)


@pytest.fixture
def chart(personas, django_capture_on_commit_callbacks):
    return Chart(personas, committer(django_capture_on_commit_callbacks))


# --- at discharge ------------------------------------------------------------------------------


def test_a_stay_with_everything_is_complete_at_discharge(chart):
    encounter = chart.complete_stay()
    record = record_of(encounter)
    assert record.status == RecordStatus.COMPLETE
    assert record.open_count == 0
    # Nothing was ever missing: complete as of the discharge, not as of the analysis
    # (which ran five minutes later), so a backlog analysed late is not counted as
    # delinquent in the months before.
    assert record.completed_at == DISCHARGE
    assert record.discharged_at == DISCHARGE
    assert not Deficiency.objects.filter(encounter=encounter).exists()


def test_discharge_opens_each_missing_document_for_the_attending(chart, personas):
    encounter = chart.admit()
    chart.discharge(encounter)
    found = by_rule(encounter)
    assert set(found) == {"hp-timely", "discharge-summary", "final-diagnosis"}
    for deficiency in found.values():
        assert deficiency.kind == DeficiencyKind.MISSING
        assert deficiency.responsible == personas.clinician
        assert deficiency.opened_by is None
        assert deficiency.delinquent_at == DISCHARGE + dt.timedelta(days=30)
        assert deficiency.events.get().event == "opened"
    assert found["hp-timely"].due_at == ADMIT + dt.timedelta(hours=24)
    assert found["discharge-summary"].due_at == DISCHARGE + dt.timedelta(hours=48)
    assert found["discharge-summary"].document_type.loinc_code == DS
    assert found["final-diagnosis"].due_at == DISCHARGE + dt.timedelta(hours=48)
    record = record_of(encounter)
    assert (record.status, record.open_count) == (RecordStatus.INCOMPLETE, 3)
    assert record.due_at == DISCHARGE + dt.timedelta(days=30)
    assert record.completed_at is None


def test_signing_the_discharge_summary_closes_its_deficiency_and_completes_the_record(
    chart, personas
):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT + dt.timedelta(hours=1))
    chart.diagnosis(encounter)
    summary = chart.write(encounter, DS, service_at=DISCHARGE - dt.timedelta(hours=1))
    chart.discharge(encounter)
    (deficiency,) = open_deficiencies(encounter)
    assert deficiency.kind == DeficiencyKind.UNSIGNED
    assert deficiency.document == summary
    assert deficiency.responsible == personas.clinician
    assert record_of(encounter).status == RecordStatus.INCOMPLETE

    signed_at = DISCHARGE + dt.timedelta(days=1)
    chart.sign(summary, signed_at)  # the signal path: no direct call of the analysis

    deficiency.refresh_from_db()
    assert deficiency.status == DeficiencyStatus.COMPLETED
    assert deficiency.closed_at == signed_at
    assert deficiency.close_reason == "signed by its author"
    assert [e.event for e in deficiency.events.all()] == ["opened", "completed"]
    record = record_of(encounter)
    assert (record.status, record.open_count, record.completed_at) == (
        RecordStatus.COMPLETE,
        0,
        signed_at,
    )


def test_writing_the_missing_summary_turns_missing_into_unsigned_then_complete(chart):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT + dt.timedelta(hours=1))
    chart.diagnosis(encounter)
    chart.discharge(encounter)
    (missing,) = open_deficiencies(encounter)
    summary = chart.write(
        encounter, DS, service_at=DISCHARGE, written_at=DISCHARGE + dt.timedelta(hours=5)
    )
    missing.refresh_from_db()
    assert (missing.status, missing.close_reason) == (
        DeficiencyStatus.COMPLETED,
        "now in the record",
    )
    (unsigned,) = open_deficiencies(encounter)
    assert unsigned.kind == DeficiencyKind.UNSIGNED
    chart.sign(summary)
    assert open_deficiencies(encounter) == []
    assert record_of(encounter).status == RecordStatus.COMPLETE


def test_analysing_twice_opens_nothing_twice(chart):
    encounter = chart.admit()
    chart.discharge(encounter)
    before = list(Deficiency.objects.filter(encounter=encounter).values_list("pk", flat=True))
    with at(DISCHARGE + dt.timedelta(hours=1)):
        first = analyse_encounter(encounter)
        second = analyse_encounter(encounter)
    for result in (first, second):
        assert (result.opened, result.closed, result.voided, result.unchanged) == (0, 0, 0, 3)
    after = list(Deficiency.objects.filter(encounter=encounter).values_list("pk", flat=True))
    assert before == after


def test_a_reopened_gap_after_completion_opens_a_new_deficiency(chart):
    encounter = chart.complete_stay()
    summary = encounter.documents.get(doc_type__loinc_code=DS)
    with at(DISCHARGE + dt.timedelta(days=2)):
        chart.run(
            documents.do_amend_document,
            summary,
            body=BODY + "\nFollow-up in two weeks.",
            reason="Added the follow-up plan",
            kind="amendment",
            acting_user=summary.author,
        )
    (amendment,) = open_deficiencies(encounter)
    assert amendment.kind == DeficiencyKind.UNSIGNED
    assert amendment.key.endswith(":v2")
    record = record_of(encounter)
    assert (record.status, record.completed_at) == (RecordStatus.INCOMPLETE, None)
    chart.sign(summary, DISCHARGE + dt.timedelta(days=2, hours=1))
    assert record_of(encounter).status == RecordStatus.COMPLETE


# --- before discharge --------------------------------------------------------------------------


def test_before_discharge_a_gap_becomes_a_deficiency_only_once_due(chart, personas):
    encounter = chart.admit()
    draft = chart.write(encounter, PROGRESS, service_at=ADMIT + dt.timedelta(hours=2))
    assert open_deficiencies(encounter) == []  # written just now, not due
    with at(ADMIT + dt.timedelta(hours=23)):
        assert analyse_encounter(encounter).opened == 0
    with at(ADMIT + dt.timedelta(hours=27)):
        result = analyse_encounter(encounter)
    found = by_rule(encounter)
    assert set(found) == {"hp-timely", "authentication"}
    assert result.opened == 2
    assert found["authentication"].document == draft
    assert found["authentication"].due_at == draft.entered_at + dt.timedelta(hours=24)
    assert found["authentication"].delinquent_at is None
    record = record_of(encounter)
    assert (record.status, record.due_at) == (RecordStatus.INCOMPLETE, None)


def test_cancelling_the_discharge_voids_what_only_discharge_asked_for(chart):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT + dt.timedelta(hours=1))
    chart.discharge(encounter)
    assert set(by_rule(encounter)) == {"discharge-summary", "final-diagnosis"}
    with at(DISCHARGE + dt.timedelta(hours=1)):
        chart.run(
            encounters.do_cancel_discharge,
            encounter,
            reason="Patient not fit to leave",
            acting_user=chart.p.technician,
        )
    assert open_deficiencies(encounter) == []
    void = by_rule(encounter, DeficiencyStatus.VOID)
    assert set(void) == {"discharge-summary", "final-diagnosis"}
    assert {d.close_reason for d in void.values()} == {"the encounter is no longer discharged"}
    assert record_of(encounter).status == RecordStatus.NOT_ANALYSED


def test_a_cancelled_encounter_voids_its_deficiencies(chart):
    encounter = chart.admit()
    with at(ADMIT + dt.timedelta(hours=30)):
        analyse_encounter(encounter)
    (missing,) = open_deficiencies(encounter)
    with at(ADMIT + dt.timedelta(hours=31)):
        chart.run(
            encounters.do_cancel_encounter,
            encounter,
            reason="Registered twice",
            acting_user=chart.p.technician,
        )
    missing.refresh_from_db()
    assert missing.status == DeficiencyStatus.VOID
    assert missing.close_reason == "the encounter is cancelled"
    assert missing.events.last().event == "void"


# --- hands off ---------------------------------------------------------------------------------


def test_a_waived_deficiency_is_not_reopened(chart, personas):
    encounter = chart.admit()
    chart.discharge(encounter)
    waived = by_rule(encounter)["final-diagnosis"]
    # What an analyst's waiver leaves (the analyst's action is the work queue's).
    Deficiency.objects.filter(pk=waived.pk).update(
        status=DeficiencyStatus.WAIVED, closed_by=personas.administrator, close_reason="Coded"
    )
    with at(DISCHARGE + dt.timedelta(days=1)):
        result = analyse_encounter(encounter)
    assert result.opened == 0
    assert "final-diagnosis" not in by_rule(encounter)
    assert Deficiency.objects.filter(encounter=encounter, key=waived.key).count() == 1


def test_a_deficiency_added_by_hand_is_left_alone(chart, personas):
    encounter = chart.complete_stay()
    manual = Deficiency.objects.create(
        encounter=encounter,
        patient=encounter.patient,
        kind=DeficiencyKind.INCOMPLETE,
        key="manual:consent",
        description="Consent form not in the chart",
        responsible=personas.clinician,
        due_at=DISCHARGE,
        opened_at=DISCHARGE,
        opened_by=personas.administrator,
    )
    with at(DISCHARGE + dt.timedelta(days=1)):
        result = analyse_encounter(encounter)
    manual.refresh_from_db()
    assert manual.status == DeficiencyStatus.OPEN
    assert (result.status, result.open_count) == (RecordStatus.INCOMPLETE, 1)


# --- documents ---------------------------------------------------------------------------------


def test_a_document_entered_in_error_voids_its_deficiency(chart):
    encounter = chart.complete_stay()
    draft = chart.write(
        encounter,
        PROGRESS,
        service_at=DISCHARGE - dt.timedelta(hours=3),
        written_at=DISCHARGE + dt.timedelta(hours=1),
    )
    (unsigned,) = open_deficiencies(encounter)
    with at(DISCHARGE + dt.timedelta(hours=2)):
        chart.run(
            documents.do_mark_entered_in_error,
            draft,
            reason="Written in the wrong chart",
            acting_user=draft.author,
        )
    unsigned.refresh_from_db()
    assert unsigned.status == DeficiencyStatus.VOID
    assert unsigned.close_reason == "the document was entered in error"
    assert record_of(encounter).status == RecordStatus.COMPLETE


def test_only_the_author_can_sign_so_the_deficiency_stays_open(chart, personas):
    encounter = chart.complete_stay()
    draft = chart.write(encounter, PROGRESS, service_at=DISCHARGE - dt.timedelta(hours=3))
    (unsigned,) = open_deficiencies(encounter)
    with pytest.raises(ActionRefused):
        chart.sign(draft, by=personas.other_clinician)
    unsigned.refresh_from_db()
    assert unsigned.status == DeficiencyStatus.OPEN
    assert unsigned.responsible == personas.clinician


def test_a_signature_by_someone_else_does_not_authenticate(chart, personas):
    """Data that arrived signed by another person (an interface) is still unsigned."""
    encounter = chart.complete_stay()
    draft = chart.write(encounter, PROGRESS, service_at=DISCHARGE - dt.timedelta(hours=3))
    DocumentVersion.objects.filter(document=draft).update(
        signed_by=personas.other_clinician, signed_at=DISCHARGE + dt.timedelta(hours=1)
    )
    with at(DISCHARGE + dt.timedelta(hours=2)):
        analyse_encounter(encounter)
    (unsigned,) = open_deficiencies(encounter)
    assert unsigned.kind == DeficiencyKind.UNSIGNED
    assert unsigned.responsible == personas.clinician
    assert "someone other than its author" in unsigned.description


# --- people ------------------------------------------------------------------------------------


def test_a_clinician_who_left_stays_responsible_and_is_flagged(chart, personas):
    encounter = chart.admit()
    personas.clinician.is_active = False
    personas.clinician.save(update_fields=["is_active"])
    with at(DISCHARGE + dt.timedelta(minutes=5)):
        chart.run(
            encounters.do_discharge,
            encounter,
            ended_at=DISCHARGE,
            disposition="01",
            acting_user=personas.technician,
        )
    with at(DISCHARGE + dt.timedelta(hours=1)):
        result = analyse_encounter(encounter)  # nothing new: flags what it opened before
    found = open_deficiencies(encounter)
    assert len(found) == 3
    assert {d.responsible for d in found} == {personas.clinician}
    assert result.inactive_responsible == []
    for deficiency in found:
        assert "left the staff" in deficiency.events.get(event="opened").reason


def test_the_result_names_deficiencies_of_inactive_clinicians(chart, personas):
    encounter = chart.admit()
    chart.write(encounter, PROGRESS, service_at=ADMIT + dt.timedelta(hours=2))
    personas.clinician.is_active = False
    personas.clinician.save(update_fields=["is_active"])
    with at(ADMIT + dt.timedelta(hours=30)):
        result = analyse_encounter(encounter)
    assert len(result.inactive_responsible) == 2
    assert {str(d.public_id) for d in open_deficiencies(encounter)} == set(
        result.inactive_responsible
    )


# --- time --------------------------------------------------------------------------------------


def test_deadlines_across_the_spring_daylight_saving_change(chart):
    # New York springs forward on Sunday 9 March 2025 at 02:00.
    admitted = dt.datetime(2025, 3, 8, 17, 0, tzinfo=UTC)  # Sat 12:00 EST
    discharged = dt.datetime(2025, 3, 8, 22, 0, tzinfo=UTC)  # Sat 17:00 EST
    encounter = chart.admit(admitted)
    chart.discharge(encounter, discharged)
    found = by_rule(encounter)
    # Hours are elapsed time: 24 h later is 13:00 EDT on Sunday.
    assert found["hp-timely"].due_at == dt.datetime(2025, 3, 9, 17, 0, tzinfo=UTC)
    # Days are calendar days at the same local time: 7 April 17:00 EDT.
    assert found["hp-timely"].delinquent_at == dt.datetime(2025, 4, 7, 21, 0, tzinfo=UTC)
    assert record_of(encounter).due_at == dt.datetime(2025, 4, 7, 21, 0, tzinfo=UTC)


def test_deadlines_across_the_autumn_change_and_a_month_end(chart):
    # Discharged Friday 31 October 2025 at 23:30 EDT; clocks fall back on 2 November.
    admitted = dt.datetime(2025, 10, 29, 14, 0, tzinfo=UTC)
    discharged = dt.datetime(2025, 11, 1, 3, 30, tzinfo=UTC)  # 31 Oct 23:30 EDT
    encounter = chart.complete_stay(admitted=admitted, discharged=discharged)
    summary = encounter.documents.get(doc_type__loinc_code=DS)
    record = record_of(encounter)
    # 30 calendar days after 31 October 23:30 EDT: 30 November 23:30 EST.
    assert record.due_at == dt.datetime(2025, 12, 1, 4, 30, tzinfo=UTC)
    assert summary.status == "final"


def test_a_discharge_on_the_last_day_of_january(chart):
    discharged = dt.datetime(2025, 1, 31, 20, 0, tzinfo=UTC)  # 15:00 EST
    encounter = chart.admit(discharged - dt.timedelta(days=2))
    chart.discharge(encounter, discharged)
    assert record_of(encounter).due_at == dt.datetime(2025, 3, 2, 20, 0, tzinfo=UTC)


def test_a_readmission_the_same_day_is_analysed_on_its_own(chart, personas):
    first = chart.complete_stay()
    readmitted = DISCHARGE + dt.timedelta(hours=4)  # same local day
    second = chart.admit(readmitted)
    with at(readmitted + dt.timedelta(hours=30)):
        analyse_encounter(first)
        analyse_encounter(second)
    assert record_of(first).status == RecordStatus.COMPLETE
    (missing,) = open_deficiencies(second)
    assert missing.rule.code == "hp-timely"
    assert missing.due_at == readmitted + dt.timedelta(hours=24)
    # The first stay's H&P does not satisfy the second.
    chart.signed(
        second,
        HP,
        service_at=readmitted + dt.timedelta(hours=1),
        written_at=readmitted + dt.timedelta(hours=31),
    )
    assert record_of(first).status == RecordStatus.COMPLETE
    assert open_deficiencies(second) == []


# --- policy ------------------------------------------------------------------------------------


def test_a_facility_policy_overrides_the_default(chart, personas):
    CompletionPolicy.objects.create(
        facility=personas.facility,
        effective_from=dt.date(2025, 1, 1),
        completion_days=14,
        verbal_order_hours=24,
        reminder_days=[3, 1],
        created_at=ADMIT,
    )
    encounter = chart.admit()
    chart.discharge(encounter)
    assert record_of(encounter).due_at == DISCHARGE + dt.timedelta(days=14)
    assert {d.delinquent_at for d in open_deficiencies(encounter)} == {
        DISCHARGE + dt.timedelta(days=14)
    }


def test_the_policy_in_force_on_the_discharge_date_applies(chart):
    CompletionPolicy.objects.create(
        facility=None,
        effective_from=DISCHARGE.date() + dt.timedelta(days=1),
        completion_days=21,
        reminder_days=[3],
        created_at=ADMIT,
    )
    encounter = chart.admit()
    chart.discharge(encounter)
    assert record_of(encounter).due_at == DISCHARGE + dt.timedelta(days=30)


# --- audit -------------------------------------------------------------------------------------


def test_each_analysis_is_audited_with_counts_and_ids_only(chart, audit_rows):
    encounter = chart.admit()
    chart.discharge(encounter)
    (event,) = [
        e
        for e in audit_rows(object_type="encounter")
        if e.detail.get("event") == "completion_analysis"
    ]
    assert event.actor is None
    assert event.patient_id == encounter.patient.public_id
    assert event.object_id == str(encounter.public_id)
    assert event.detail["trigger"] == "encounter discharged"
    assert (event.detail["opened"], event.detail["open_count"]) == (3, 3)
    assert event.detail["status"] == RecordStatus.INCOMPLETE
    assert "Quillfeather" not in str(event.detail)


# --- the command -------------------------------------------------------------------------------


def test_the_command_analyses_one_encounter(chart, capsys):
    encounter = chart.admit()
    with at(ADMIT + dt.timedelta(hours=30)):
        call_command("completion", "analyse", "--encounter", str(encounter.public_id))
    out = capsys.readouterr().out
    assert "1 opened" in out
    assert by_rule(encounter).keys() == {"hp-timely"}
    assert AuditEvent.objects.filter(
        object_id=str(encounter.public_id), detail__trigger="command"
    ).exists()


def test_the_command_analyses_every_open_record(chart, personas, capsys):
    done = chart.complete_stay()
    other = Chart(chart.p, chart.run, register_patient(personas, given="Rowan", family="Ashdown"))
    waiting = other.admit()
    with at(ADMIT + dt.timedelta(days=5)):
        call_command("completion", "analyse", "--all-open")
    out = capsys.readouterr().out
    assert "Analysed 1 record" in out
    assert by_rule(waiting).keys() == {"hp-timely"}
    assert record_of(done).status == RecordStatus.COMPLETE


@pytest.mark.parametrize(
    "args, words",
    [
        ([], "Give either --encounter"),
        (["--all-open", "--encounter", str(uuid.uuid4())], "Give either --encounter"),
        (["--encounter", "not-a-uuid"], "is not an encounter id"),
        (["--encounter", "00000000-0000-0000-0000-000000000000"], "No encounter"),
    ],
)
def test_the_command_refuses_bad_arguments(args, words):
    with pytest.raises(CommandError, match=words):
        call_command("completion", "analyse", *args)


def test_the_command_runs_in_its_own_process(isolated_env):
    from recordroom.testing import run_recordroom

    run_recordroom(isolated_env, "migrate", "--no-input", "-v", "0")
    result = run_recordroom(isolated_env, "completion", "analyse", "--all-open")
    assert "Analysed 0 records" in result.stdout


def test_the_command_sends_reminders_through_the_reminders_module(chart, capsys):
    encounter = chart.admit()
    chart.discharge(encounter)
    with at(DISCHARGE + dt.timedelta(days=23, hours=1)):  # 7 days before delinquency
        call_command("completion", "remind")
    out = capsys.readouterr().out
    assert out.startswith("Reminders sent.")
    assert "messages: 1" in out
