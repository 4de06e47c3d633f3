"""Chart completion in the demo department: every state of a deficiency and of a record,
reminders, the suspension list and a quality audit, whatever the population's size —
and the record the browser test signs really becomes complete."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from completion import access
from completion.actions import do_bulk_sign
from completion.analysis import analyse_encounter
from completion.models import (
    AuditedRecord,
    Correction,
    Deficiency,
    DeficiencyEvent,
    DeficiencyStatus,
    InboxMessage,
    QualityAudit,
    RecordCompletion,
    RecordStatus,
)
from completion.reminders import KIND_DELINQUENT, KIND_REMINDER, send_reminders
from documents.actions import do_sign_document
from documents.models import Document, DocumentStatus, OrderMode
from recordroom import clock
from recordroom.demo import DEMO_PASSWORD, load_demo_facilities
from recordroom.demo_data.population import load_population

pytestmark = pytest.mark.django_db

OPEN, COMPLETED, WAIVED, VOID = (
    DeficiencyStatus.OPEN,
    DeficiencyStatus.COMPLETED,
    DeficiencyStatus.WAIVED,
    DeficiencyStatus.VOID,
)


def _user(username):
    return get_user_model().objects.get(username=username)


@pytest.fixture
def demo():
    """A small demo department: the users, then a population of eight patients (the
    completion step runs after it)."""
    call_command("demo", "--patients", "0", "--quiet-logins")
    load_population(8, seed=5)
    return {
        "clinician": _user("clinician"),
        "admin": _user("admin"),
        "tech": _user("tech"),
        "hospital": load_demo_facilities()[0],
    }


def _open_of(encounter):
    return list(Deficiency.objects.filter(encounter=encounter, status=OPEN))


def _ready_to_sign(clinician):
    """Records whose one open deficiency is the clinician's unsigned draft discharge
    summary: what the browser test looks for."""
    found = []
    for record in RecordCompletion.objects.filter(status=RecordStatus.INCOMPLETE, open_count=1):
        (deficiency,) = _open_of(record.encounter)
        document = deficiency.document
        if (
            deficiency.kind == "unsigned"
            and deficiency.responsible == clinician
            and document is not None
            and document.doc_type.loinc_code == "18842-5"
            and document.status == DocumentStatus.DRAFT
        ):
            found.append((record, deficiency))
    return found


def test_the_demo_has_deficiencies_in_every_state(demo):
    clinician, hospital = demo["clinician"], demo["hospital"]
    now = clock.now()
    by_state = Counter(Deficiency.objects.values_list("status", "kind"))
    assert by_state[(OPEN, "missing")] >= 4
    assert by_state[(OPEN, "unsigned")] >= 5
    assert by_state[(COMPLETED, "unsigned")] >= 1, "a draft signed later"
    assert by_state[(WAIVED, "missing")] >= 1
    assert by_state[(VOID, "unsigned")] >= 1, "a draft withdrawn as entered in error"

    waived = Deficiency.objects.get(status=WAIVED)
    assert waived.closed_by == demo["admin"]
    assert "against medical advice" in waived.close_reason
    reassigned = DeficiencyEvent.objects.get(event="reassigned")
    assert reassigned.to_user == clinician
    assert reassigned.from_user.username == "dr.okoye"
    assert reassigned.by == demo["admin"] and reassigned.reason
    assert reassigned.deficiency.status == OPEN
    assert reassigned.deficiency.responsible == clinician
    manual = Deficiency.objects.get(rule__isnull=True)
    assert manual.opened_by == demo["admin"]
    assert manual.responsible == clinician
    assert manual.document_type.loinc_code == "59284-0"

    # Open verbal and telephone orders of the demo clinician, ready for bulk signing.
    orders = Deficiency.objects.filter(
        status=OPEN,
        kind="unsigned",
        responsible=clinician,
        document__order_mode__in=[OrderMode.VERBAL, OrderMode.TELEPHONE],
        document__doc_type__loinc_code="46209-3",
    )
    assert orders.count() == 3
    candidates = access.bulk_sign_candidates(clinician)
    assert len(candidates) == 4, "three past the 48-hour limit, one given this morning"

    # Records: complete ones, delinquent ones (past the 30 days of the policy) and
    # near-delinquent ones (delinquent within 1 to 7 days).
    records = RecordCompletion.objects.filter(encounter__facility=hospital)
    assert records.filter(status=RecordStatus.COMPLETE).count() >= 2
    incomplete = records.filter(status=RecordStatus.INCOMPLETE)
    delinquent = incomplete.filter(due_at__lt=now)
    assert delinquent.count() == 3
    assert all((r.due_at - r.discharged_at).days == 30 for r in delinquent)
    near = incomplete.filter(
        due_at__gte=now + dt.timedelta(days=1), due_at__lte=now + dt.timedelta(days=7)
    )
    assert near.count() == 2
    assert len(_ready_to_sign(clinician)) == 1

    # The clinician's queue puts the delinquent records first; the analysts' figures
    # and the suspension list (more than 14 days delinquent) name her.
    queue = access.my_queue(clinician, now=now)
    assert len(queue) == Deficiency.objects.filter(status=OPEN, responsible=clinician).count()
    assert queue[0].overdue and not queue[-1].overdue
    suspension = access.suspension_list(demo["admin"], facility=hospital, now=now)
    listed = {row.clinician.username for row in suspension["rows"]}
    assert {"clinician", "dr.lindgren"} <= listed
    counts = access.completion_counts(demo["admin"], facility=hospital, now=now)
    assert counts.delinquent == 3 and counts.incomplete >= 6

    # One run of the reminders: the clinician's inbox has reminders at 7 and 3 days
    # and the notice of a record that turned delinquent three days ago.
    inbox = Counter(InboxMessage.objects.filter(recipient=clinician).values_list("kind", flat=True))
    assert inbox[KIND_REMINDER] == 2
    assert inbox[KIND_DELINQUENT] == 1
    assert not mail.outbox or all("@recordroom.invalid" in m.to[0] for m in mail.outbox)

    # A quality audit, partly scored, with a correction for the discrepancy found.
    audit = QualityAudit.objects.get()
    scored = AuditedRecord.objects.filter(audit=audit, score__isnull=False)
    assert scored.count() == 3
    assert AuditedRecord.objects.filter(audit=audit, score__isnull=True).exists()
    correction = Correction.objects.get()
    assert correction.record.encounter.attending == correction.assigned_to


def test_signing_the_demo_summary_completes_its_record_and_orders_sign_in_bulk(demo):
    clinician = demo["clinician"]
    ((record, deficiency),) = _ready_to_sign(clinician)
    do_sign_document(deficiency.document, password=DEMO_PASSWORD, acting_user=clinician)
    analyse_encounter(record.encounter, trigger="document signed")
    record.refresh_from_db()
    assert record.status == RecordStatus.COMPLETE
    assert record.completed_at is not None
    deficiency.refresh_from_db()
    assert deficiency.status == COMPLETED

    orders = access.bulk_sign_candidates(clinician)
    ids = [str(o.document.public_id) for o in orders]
    result = do_bulk_sign(clinician, ids, DEMO_PASSWORD, ids)
    assert len(result.signed) == 4 and not result.failed
    assert not Document.objects.filter(
        author=clinician, status=DocumentStatus.DRAFT, order_mode__in=["verbal", "telephone"]
    ).exists()
    assert not [
        r
        for r in access.my_queue(clinician)
        if r.deficiency.document_id in {o.document.pk for o in orders}
    ]


def test_the_reminders_are_sent_once(demo):
    before = InboxMessage.objects.count()
    assert before >= 3
    again = send_reminders()
    assert again["messages"] == 0
    assert again["skipped"] >= 3
    assert InboxMessage.objects.count() == before


def test_a_population_without_hospital_patients_skips_the_stays():
    from recordroom.demo_data.completion import load_completion
    from recordroom.demo_data.population import Generator

    call_command("demo", "--patients", "0", "--quiet-logins")
    result = load_completion(Generator(seed=1, today=timezone.localdate(clock.now())))
    assert result.skipped == "no patient at the hospital to admit"
    assert not Deficiency.objects.exists()
