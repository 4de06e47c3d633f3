"""Reminders before a record becomes delinquent: inbox messages and e-mails, once per
threshold, counted in calendar days across daylight-saving changes; a single notice
when the record turns delinquent; administrators told about deficiencies nobody who can
sign in holds. Texts name no patient."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail

from audit.models import AuditEvent
from completion import reminders
from completion.models import Deficiency, DeficiencyKind, DeficiencyStatus, InboxMessage
from completion.reminder_tasks import (
    daily_completion_reminders,
    next_run_after,
    schedule_next,
    send_completion_reminders,
)
from completion.reminders import send_reminders, threshold_for
from encounters.models import Encounter, EncounterStatus
from recordroom.testing import register_patient

pytestmark = pytest.mark.django_db
LOCAL = ZoneInfo("America/New_York")


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LOCAL)


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.TIME_ZONE = "America/New_York"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def patient(personas):
    return register_patient(personas)


def make_encounter(personas, patient, *, facility=None, attending=None) -> Encounter:
    started = local(2025, 1, 2, 9, 0)
    return Encounter.objects.create(
        patient=patient,
        facility=facility or personas.facility,
        visit_number=uuid.uuid4().hex[:12].upper(),
        encounter_class="IMP",
        status=EncounterStatus.FINISHED,
        started_at=started,
        ended_at=started + dt.timedelta(days=3),
        attending=attending or personas.clinician,
        created_at=started,
        updated_at=started,
    )


def make_deficiency(encounter, responsible, delinquent_at, **fields) -> Deficiency:
    return Deficiency.objects.create(
        encounter=encounter,
        patient=encounter.patient,
        kind=fields.pop("kind", DeficiencyKind.MISSING),
        key=fields.pop("key", f"test:{uuid.uuid4().hex}"),
        description=fields.pop("description", "Discharge summary missing"),
        responsible=responsible,
        due_at=fields.pop("due_at", delinquent_at - dt.timedelta(days=28)),
        delinquent_at=delinquent_at,
        opened_at=fields.pop("opened_at", delinquent_at - dt.timedelta(days=30)),
        **fields,
    )


def run_at(moment: dt.datetime) -> dict:
    with time_machine.travel(moment, tick=False):
        return send_reminders()


def messages_of(user, kind=None) -> list[InboxMessage]:
    found = InboxMessage.objects.filter(recipient=user).order_by("created_at", "pk")
    return list(found.filter(kind=kind) if kind else found)


# --- thresholds ---------------------------------------------------------------------------


def test_the_nearest_threshold_reached_is_chosen():
    assert threshold_for(10, [7, 3, 1]) is None
    assert threshold_for(7, [1, 3, 7]) == 7
    assert threshold_for(5, [7, 3, 1]) == 7
    assert threshold_for(3, [7, 3, 1]) == 3
    assert threshold_for(0, [7, 3, 1]) == 1
    assert threshold_for(2, []) is None


def test_one_reminder_at_each_threshold_then_a_single_delinquent_notice(personas, patient):
    encounter = make_encounter(personas, patient)
    due = local(2025, 6, 20, 10, 0)
    make_deficiency(encounter, personas.clinician, due)
    clinician = personas.clinician

    assert run_at(local(2025, 6, 12, 7, 0))["messages"] == 0  # 8 days before
    counts = run_at(local(2025, 6, 13, 7, 0))  # 7 days before
    assert counts["messages"] == 1 and counts["reminders"] == 1 and counts["emails"] == 1
    (first,) = messages_of(clinician)
    assert first.dedupe_key.endswith(":7d:2025-06-20")
    assert "in 7 days" in first.subject

    again = run_at(local(2025, 6, 13, 16, 0))  # the same day: nothing twice
    assert again["messages"] == 0 and again["skipped"] == 1 and again["emails"] == 0
    assert run_at(local(2025, 6, 15, 7, 0))["messages"] == 0  # 5 days: still the 7-day one
    assert run_at(local(2025, 6, 17, 7, 0))["messages"] == 1  # 3 days
    assert run_at(local(2025, 6, 19, 7, 0))["messages"] == 1  # 1 day
    assert run_at(local(2025, 6, 20, 7, 0))["messages"] == 0  # the day itself: 1-day one sent
    assert [m.kind for m in messages_of(clinician)] == [reminders.KIND_REMINDER] * 3

    late = run_at(local(2025, 6, 20, 10, 30))  # delinquent since 10:00
    assert late["delinquent"] == 1
    notice = messages_of(clinician, reminders.KIND_DELINQUENT)[0]
    assert "now delinquent" in notice.subject
    assert run_at(local(2025, 6, 21, 7, 0))["messages"] == 0
    assert len(mail.outbox) == 4


def test_a_missed_run_sends_only_the_nearest_threshold(personas, patient):
    make_deficiency(make_encounter(personas, patient), personas.clinician, local(2025, 6, 20, 10))
    assert run_at(local(2025, 6, 18, 7, 0))["messages"] == 1  # 2 days before: the 3-day one
    (message,) = messages_of(personas.clinician)
    assert ":3d:" in message.dedupe_key


def test_calendar_days_count_across_the_spring_forward_change(personas, patient):
    """Clocks went forward on Sunday 9 March 2025: 7 calendar days before 09:00 on
    12 March is any time on 5 March, although fewer than 7×24 hours remain at 00:30."""
    make_deficiency(make_encounter(personas, patient), personas.clinician, local(2025, 3, 12, 9))
    assert run_at(local(2025, 3, 4, 23, 30))["messages"] == 0
    assert run_at(local(2025, 3, 5, 0, 30))["messages"] == 1
    assert run_at(local(2025, 3, 9, 1, 30))["messages"] == 1  # 3 days, before the change
    assert run_at(local(2025, 3, 9, 3, 30))["messages"] == 0  # same day, after it
    assert run_at(local(2025, 3, 11, 23, 59))["messages"] == 1  # 1 day


def test_calendar_days_count_across_the_fall_back_change(personas, patient):
    """Clocks went back on Sunday 2 November 2025 (a 25-hour day)."""
    make_deficiency(make_encounter(personas, patient), personas.clinician, local(2025, 11, 5, 8))
    assert run_at(local(2025, 10, 28, 23, 30))["messages"] == 0  # 8 days
    assert run_at(local(2025, 11, 1, 23, 30))["messages"] == 1  # 4 days: the 7-day one
    assert run_at(local(2025, 11, 2, 1, 30))["messages"] == 1  # 3 days, before the change
    assert run_at(local(2025, 11, 2, 1, 30).replace(fold=1))["messages"] == 0  # after it
    assert run_at(local(2025, 11, 2, 23, 30))["messages"] == 0  # still 3 days


def test_deficiencies_due_the_same_day_make_one_message_with_counts(personas, patient):
    due = local(2025, 6, 20, 10, 0)
    first = make_encounter(personas, patient)
    second = make_encounter(personas, patient)
    make_deficiency(first, personas.clinician, due)
    make_deficiency(first, personas.clinician, due)
    make_deficiency(second, personas.clinician, due + dt.timedelta(hours=3))
    make_deficiency(first, personas.other_clinician, due)
    counts = run_at(local(2025, 6, 17, 7, 0))
    assert counts["messages"] == 2
    (message,) = messages_of(personas.clinician)
    assert "3 deficiencies on 2 records" in message.body
    assert "Friday 20 June 2025" in message.body
    assert len(messages_of(personas.other_clinician)) == 1


def test_closed_deficiencies_and_records_not_yet_discharged_get_nothing(personas, patient):
    encounter = make_encounter(personas, patient)
    make_deficiency(
        encounter, personas.clinician, local(2025, 6, 20), status=DeficiencyStatus.WAIVED
    )
    Deficiency.objects.create(
        encounter=encounter,
        patient=patient,
        kind=DeficiencyKind.UNSIGNED,
        key="no-delinquency",
        description="Progress note not signed",
        responsible=personas.clinician,
        due_at=local(2025, 6, 10),
        opened_at=local(2025, 6, 9),
    )
    assert run_at(local(2025, 6, 19, 7, 0))["messages"] == 0
    assert not InboxMessage.objects.exists()


# --- what the texts say -------------------------------------------------------------------


def test_the_texts_name_no_patient_and_link_to_the_queue(personas, patient):
    encounter = make_encounter(personas, patient)
    make_deficiency(encounter, personas.clinician, local(2025, 6, 20, 10))
    run_at(local(2025, 6, 17, 7, 0))
    (message,) = messages_of(personas.clinician)
    (email,) = mail.outbox
    assert email.to == [personas.clinician.email]
    assert message.link == "/completion/mine/"
    assert "/completion/mine/" in email.body
    mrn = patient.identifiers.get(kind="MR").value
    for text in (message.subject, message.body, email.subject, email.body):
        for secret in ("Quillfeather", "Marigold", mrn, encounter.visit_number, "123-45-6789"):
            assert secret not in text
    assert message.emailed_at is not None


def test_the_email_link_is_absolute_when_the_site_is_known(personas, patient, settings):
    settings.SITE_URL = "https://records.example.invalid/"
    make_deficiency(make_encounter(personas, patient), personas.clinician, local(2025, 6, 20, 10))
    run_at(local(2025, 6, 17, 7, 0))
    assert "https://records.example.invalid/completion/mine/" in mail.outbox[0].body


def test_a_clinician_without_an_address_gets_the_inbox_message_only(personas, patient):
    clinician = personas.clinician
    clinician.email = ""
    clinician.save(update_fields=["email"])
    make_deficiency(make_encounter(personas, patient), clinician, local(2025, 6, 20, 10))
    counts = run_at(local(2025, 6, 17, 7, 0))
    assert counts["messages"] == 1 and counts["emails"] == 0
    assert mail.outbox == []
    assert messages_of(clinician)[0].emailed_at is None


def test_a_failed_email_is_kept_and_sent_by_the_next_run(personas, patient, monkeypatch):
    make_deficiency(make_encounter(personas, patient), personas.clinician, local(2025, 6, 20, 10))

    def refuse(*args, **kwargs):
        raise OSError("mail server down")

    monkeypatch.setattr(reminders, "send_mail", refuse)
    counts = run_at(local(2025, 6, 17, 7, 0))
    assert counts["messages"] == 1 and counts["emails"] == 0 and counts["email_failures"] == 1
    assert messages_of(personas.clinician)[0].emailed_at is None
    monkeypatch.undo()
    counts = run_at(local(2025, 6, 17, 8, 0))
    assert counts["messages"] == 0 and counts["emails"] == 1
    assert len(mail.outbox) == 1


def test_a_message_read_in_the_app_is_not_emailed_later(personas, patient, monkeypatch):
    make_deficiency(make_encounter(personas, patient), personas.clinician, local(2025, 6, 20, 10))
    monkeypatch.setattr(reminders, "send_mail", lambda *a, **k: (_ for _ in ()).throw(OSError()))
    run_at(local(2025, 6, 17, 7, 0))
    monkeypatch.undo()
    InboxMessage.objects.update(read_at=local(2025, 6, 17, 7, 30))
    assert run_at(local(2025, 6, 17, 8, 0))["emails"] == 0


# --- who gets it ----------------------------------------------------------------------------


def test_deficiencies_of_a_clinician_who_left_go_to_the_administrators(personas, patient):
    gone = personas.other_clinician
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    encounter = make_encounter(personas, patient)
    make_deficiency(encounter, gone, local(2025, 6, 20, 10))
    make_deficiency(encounter, None, local(2025, 6, 20, 10))
    make_deficiency(encounter, gone, local(2025, 5, 1, 10))  # long delinquent
    counts = run_at(local(2025, 6, 17, 7, 0))
    assert counts["reassign"] == 1 and counts["messages"] == 1
    assert messages_of(gone) == []
    (notice,) = messages_of(personas.administrator)
    assert notice.kind == reminders.KIND_REASSIGN
    assert "3 deficiencies at RecordRoom General Hospital" in notice.subject
    assert "2 become delinquent soon and 1 already are" in notice.body
    assert mail.outbox[0].to == [personas.administrator.email]
    assert run_at(local(2025, 6, 17, 9, 0))["messages"] == 0  # once a day
    assert run_at(local(2025, 6, 18, 7, 0))["reassign"] == 1  # until reassigned


def test_an_administrator_of_another_facility_is_not_told(personas, patient):
    from recordroom.testing import make_user

    elsewhere = make_user("ada.elsewhere", "him_administrator")
    elsewhere.facilities.add(personas.other_facility)
    make_deficiency(make_encounter(personas, patient), None, local(2025, 6, 20, 10))
    run_at(local(2025, 6, 17, 7, 0))
    assert messages_of(elsewhere) == []
    assert len(messages_of(personas.administrator)) == 1


def test_the_policy_in_force_at_the_facility_sets_the_reminder_days(personas, patient):
    from completion.rule_actions import do_change_policy

    do_change_policy(
        facility=personas.facility,
        effective_from=dt.date(2025, 1, 1),
        reminder_days=[2],
        reason="Bylaws amended: one reminder",
        acting_user=personas.administrator,
    )
    make_deficiency(make_encounter(personas, patient), personas.clinician, local(2025, 6, 20, 10))
    assert run_at(local(2025, 6, 13, 7, 0))["messages"] == 0  # 7 days: not a threshold here
    assert run_at(local(2025, 6, 17, 7, 0))["messages"] == 0  # 3 days: not one either
    assert run_at(local(2025, 6, 18, 7, 0))["messages"] == 1  # 2 days
    (message,) = messages_of(personas.clinician)
    assert ":2d:" in message.dedupe_key


def test_no_reminder_days_means_no_reminders_but_still_the_delinquent_notice(personas, patient):
    from completion.rule_actions import do_change_policy

    do_change_policy(
        effective_from=dt.date(2025, 1, 1),
        reminder_days=[],
        reason="Reminders switched off",
        acting_user=personas.administrator,
    )
    make_deficiency(make_encounter(personas, patient), personas.clinician, local(2025, 6, 20, 10))
    assert run_at(local(2025, 6, 19, 7, 0))["messages"] == 0
    assert run_at(local(2025, 6, 20, 12, 0))["delinquent"] == 1


def test_old_delinquent_records_do_not_flood_a_first_run(personas, patient):
    make_deficiency(make_encounter(personas, patient), personas.clinician, local(2025, 1, 10, 10))
    assert run_at(local(2025, 6, 17, 7, 0))["messages"] == 0


# --- audit and scheduling ----------------------------------------------------------------------


def test_each_run_is_audited_with_its_counts(personas, patient, audit_rows):
    make_deficiency(make_encounter(personas, patient), personas.clinician, local(2025, 6, 20, 10))
    run_at(local(2025, 6, 17, 7, 0))
    created, emailed = audit_rows(object_type="completion.reminders")
    assert created.actor is None and created.purpose == "HOPERAT"
    assert created.detail["messages"] == 1 and created.detail["reminders"] == 1
    assert emailed.detail == {"emails": 1, "email_failures": 0}
    assert not AuditEvent.objects.filter(seq__gt=emailed.seq).exists()


def test_the_task_sends_the_reminders(personas, patient):
    make_deficiency(make_encounter(personas, patient), personas.clinician, local(2025, 6, 20, 10))
    with time_machine.travel(local(2025, 6, 17, 7, 0), tick=False):
        result = send_completion_reminders.enqueue()
        assert result.return_value["messages"] == 1
        daily = daily_completion_reminders.enqueue()
        assert daily.return_value["skipped"] == 1
        # Immediate mode (tests) cannot defer: the daily chain is not re-queued.
        assert schedule_next() is None


def test_the_daily_run_is_queued_for_seven_local_time_across_a_clock_change():
    assert next_run_after(local(2025, 3, 8, 8, 0)) == local(2025, 3, 9, 7, 0)
    assert next_run_after(local(2025, 3, 9, 6, 0)) == local(2025, 3, 9, 7, 0)
    assert next_run_after(local(2025, 3, 9, 6, 0)).utcoffset() == dt.timedelta(hours=-4)


def test_the_daily_run_queues_itself_once_in_the_database_backend(settings):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    with time_machine.travel(local(2025, 6, 17, 8, 0), tick=False):
        assert schedule_next() is not None
        assert schedule_next() is None  # one chain only
    (queued,) = DBTaskResult.objects.all()
    assert queued.run_after == local(2025, 6, 18, 7, 0)


def test_the_command_sends_the_reminders(personas, patient):
    from io import StringIO

    from django.core.management import call_command

    make_deficiency(make_encounter(personas, patient), personas.clinician, local(2025, 6, 20, 10))
    out = StringIO()
    with time_machine.travel(local(2025, 6, 17, 7, 0), tick=False):
        call_command("completion", "remind", stdout=out)
    assert "messages: 1" in out.getvalue() and "emails: 1" in out.getvalue()
    assert len(mail.outbox) == 1


def test_the_daily_run_first_opens_the_deficiencies_that_fell_due(personas, patient):
    """No change to a record happens when a deadline passes: the daily task's sweep is
    what turns "H&P not yet written" into a deficiency once the 24 hours are over."""
    from completion.reminder_tasks import daily_completion_reminders
    from encounters.actions import do_register_encounter
    from encounters.models import EncounterClass

    admitted = local(2026, 3, 2, 9)
    with time_machine.travel(admitted + dt.timedelta(minutes=5), tick=False):
        encounter = do_register_encounter(
            patient,
            facility=personas.facility,
            encounter_class=EncounterClass.INPATIENT,
            started_at=admitted,
            acting_user=personas.technician,
            attending=personas.clinician,
            unit="4 West",
        )
        daily_completion_reminders.call()
        assert not Deficiency.objects.filter(encounter=encounter).exists()
    with time_machine.travel(admitted + dt.timedelta(hours=30), tick=False):
        counts = daily_completion_reminders.call()
    (deficiency,) = Deficiency.objects.filter(encounter=encounter, status=DeficiencyStatus.OPEN)
    assert deficiency.rule.code == "hp-timely"
    assert deficiency.responsible == personas.clinician
    assert counts["analysed"] >= 1 and counts["opened"] >= 1
