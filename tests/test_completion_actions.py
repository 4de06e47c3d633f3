"""An analyst adds, reassigns and waives deficiencies with a reason; a clinician signs
their verbal and telephone orders in bulk after the page showed them in full. Every
action checks its permission first (refusal audited), writes a history event and the
audit row, and leaves the record's status right."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.http import Http404

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from completion import actions
from completion.models import Deficiency, DeficiencyKind, DeficiencyStatus, RecordStatus
from documents.actions import do_create_document
from documents.models import DocumentStatus
from recordroom.testing import PASSWORD, make_user, register_patient
from tests.test_completion_queue import (
    NOW,
    discharged,
    doc_type,
    make_deficiency,
    make_encounter,
    make_record,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def encounter(personas, patient):
    encounter = discharged(personas, patient, days_ago=5)
    make_record(encounter, status=RecordStatus.COMPLETE, open_count=0, completed_at=NOW)
    return encounter


def add(encounter, personas, **overrides):
    values = {
        "kind": DeficiencyKind.MISSING,
        "description": "Consent for surgery missing",
        "reason": "Found on retrospective review",
        "responsible": personas.clinician,
        "due_at": NOW + dt.timedelta(days=2),
        "document_type": doc_type("59284-0"),
        "acting_user": personas.technician,
    }
    values.update(overrides)
    return actions.do_add_deficiency(encounter, **values)


# --- add ------------------------------------------------------------------------------


def test_an_analyst_adds_a_deficiency_and_the_record_becomes_incomplete(
    personas, encounter, audit_rows
):
    deficiency = add(encounter, personas)
    assert deficiency.status == DeficiencyStatus.OPEN
    assert deficiency.opened_by == personas.technician and deficiency.rule is None
    assert deficiency.delinquent_at == encounter.ended_at + dt.timedelta(days=30)
    (event,) = deficiency.events.all()
    assert (event.event, event.by, event.to_user, event.reason) == (
        "opened",
        personas.technician,
        personas.clinician,
        "Found on retrospective review",
    )
    encounter.completion.refresh_from_db()
    assert encounter.completion.status == RecordStatus.INCOMPLETE
    assert encounter.completion.open_count == 1
    (audited,) = audit_rows(action=Action.CREATE, object_type="completion.deficiency")
    assert audited.patient_id == encounter.patient.public_id
    assert audited.object_id == str(deficiency.public_id)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"reason": ""}, "reason"),
        ({"reason": "x"}, "reason"),
        ({"description": "  "}, "description"),
        ({"description": "<script>"}, "description"),
        ({"kind": "lost"}, "kind"),
        ({"document_type": None}, "document_type"),
        ({"due_at": NOW.replace(tzinfo=None)}, "due_at"),  # naive
        ({"due_at": NOW - dt.timedelta(days=60)}, "due_at"),  # before the encounter
        ({"kind": DeficiencyKind.UNSIGNED}, "document"),
    ],
)
def test_bad_input_is_refused_with_the_field_named_and_nothing_written(
    personas, encounter, overrides, field
):
    with pytest.raises(ValidationError) as caught:
        add(encounter, personas, **overrides)
    assert field in caught.value.message_dict
    assert not Deficiency.objects.exists()


def test_the_responsible_must_be_an_active_author_at_the_facility(personas, encounter):
    left = make_user("dr.gone", "clinician", is_active=False)
    left.facilities.add(personas.facility)
    elsewhere = make_user("dr.far", "clinician")
    elsewhere.facilities.add(personas.other_facility)
    for person, words in (
        (left, "inactive"),
        (elsewhere, "does not write documents"),
        (personas.coder, "does not write documents"),
    ):
        with pytest.raises(ValidationError) as caught:
            add(encounter, personas, responsible=person)
        assert words in " ".join(caught.value.message_dict["responsible"])
    assert not Deficiency.objects.exists()


def test_a_document_of_another_encounter_is_refused(personas, patient, encounter):
    other = make_encounter(personas, patient, started=NOW - dt.timedelta(days=1))
    document = do_create_document(
        patient,
        doc_type=doc_type("11506-3"),
        title="Progress note",
        body="Stable.",
        service_at=NOW - dt.timedelta(hours=2),
        encounter=other,
        acting_user=personas.clinician,
    )
    with pytest.raises(ValidationError) as caught:
        add(encounter, personas, kind=DeficiencyKind.INCOMPLETE, document=document)
    assert "document" in caught.value.message_dict


def test_a_cancelled_encounter_takes_no_deficiency(personas, patient):
    cancelled = make_encounter(
        personas, patient, started=NOW - dt.timedelta(days=3), status="cancelled"
    )
    with pytest.raises(ValidationError) as caught:
        add(cancelled, personas)
    assert "encounter" in caught.value.message_dict


@pytest.mark.parametrize("who", ["clinician", "coder", "no_role"])
def test_adding_needs_manage_permission_and_the_refusal_is_audited(
    personas, encounter, audit_rows, who
):
    with pytest.raises(AccessDenied):
        add(encounter, personas, acting_user=getattr(personas, who))
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.action == Action.CREATE and event.object_type == "completion.deficiency"
    assert not Deficiency.objects.exists()


# --- reassign ---------------------------------------------------------------------------


def test_an_analyst_reassigns_from_a_clinician_who_left(personas, encounter, audit_rows):
    deficiency = make_deficiency(encounter, responsible=personas.clinician)
    personas.clinician.is_active = False
    personas.clinician.save()
    actions.do_reassign_deficiency(
        deficiency,
        to_user=personas.other_clinician,
        reason="Dr Carl left the staff",
        acting_user=personas.technician,
    )
    deficiency.refresh_from_db()
    assert deficiency.responsible == personas.other_clinician
    (event,) = deficiency.events.all()
    assert (event.event, event.from_user, event.to_user) == (
        "reassigned",
        personas.clinician,
        personas.other_clinician,
    )
    (audited,) = audit_rows(action=Action.UPDATE, object_type="completion.deficiency")
    assert audited.detail["to"] == str(personas.other_clinician.public_id)


def test_reassigning_needs_a_reason_and_an_eligible_clinician(personas, encounter):
    deficiency = make_deficiency(encounter, responsible=personas.clinician)
    with pytest.raises(ValidationError) as caught:
        actions.do_reassign_deficiency(
            deficiency, to_user=personas.coder, reason="", acting_user=personas.technician
        )
    assert set(caught.value.message_dict) == {"reason", "to_user"}
    with pytest.raises(ValidationError) as caught:
        actions.do_reassign_deficiency(
            deficiency,
            to_user=personas.clinician,
            reason="Same person again",
            acting_user=personas.technician,
        )
    assert "already responsible" in caught.value.message_dict["to_user"][0]
    deficiency.refresh_from_db()
    assert deficiency.responsible == personas.clinician and not deficiency.events.exists()


def test_a_closed_deficiency_cannot_be_reassigned(personas, encounter):
    deficiency = make_deficiency(
        encounter, responsible=personas.clinician, status=DeficiencyStatus.COMPLETED
    )
    with pytest.raises(ValidationError, match="no longer open"):
        actions.do_reassign_deficiency(
            deficiency,
            to_user=personas.other_clinician,
            reason="Reassign it anyway",
            acting_user=personas.technician,
        )


def test_reassigning_is_refused_to_a_clinician_and_audited(personas, encounter, audit_rows):
    deficiency = make_deficiency(encounter, responsible=personas.clinician)
    with pytest.raises(AccessDenied):
        actions.do_reassign_deficiency(
            deficiency,
            to_user=personas.other_clinician,
            reason="Not mine",
            acting_user=personas.clinician,
        )
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.object_id == str(deficiency.public_id)


# --- waive ------------------------------------------------------------------------------


def test_waiving_the_last_deficiency_completes_the_record(personas, encounter, audit_rows):
    deficiency = make_deficiency(encounter, responsible=personas.clinician)
    encounter.completion.status = RecordStatus.INCOMPLETE
    encounter.completion.save()
    actions.do_waive_deficiency(
        deficiency, reason="Completed on paper, scanned", acting_user=personas.technician
    )
    deficiency.refresh_from_db()
    assert deficiency.status == DeficiencyStatus.WAIVED
    assert (deficiency.closed_by, deficiency.closed_at) == (personas.technician, NOW)
    assert deficiency.close_reason == "Completed on paper, scanned"
    assert [e.event for e in deficiency.events.all()] == ["waived"]
    encounter.completion.refresh_from_db()
    assert encounter.completion.status == RecordStatus.COMPLETE
    assert encounter.completion.open_count == 0
    (audited,) = audit_rows(action=Action.UPDATE, object_type="completion.deficiency")
    assert audited.detail == {"change": "waived", "record_status": "complete"}


def test_waiving_one_of_two_keeps_the_record_incomplete(personas, encounter):
    first = make_deficiency(encounter, responsible=personas.clinician)
    make_deficiency(encounter, responsible=personas.clinician, kind=DeficiencyKind.INCOMPLETE)
    actions.do_waive_deficiency(first, reason="Not applicable", acting_user=personas.technician)
    encounter.completion.refresh_from_db()
    assert encounter.completion.status == RecordStatus.INCOMPLETE
    assert encounter.completion.open_count == 1


def test_waiving_needs_a_reason_and_an_open_deficiency(personas, encounter):
    deficiency = make_deficiency(encounter, responsible=personas.clinician)
    with pytest.raises(ValidationError) as caught:
        actions.do_waive_deficiency(deficiency, reason=" ", acting_user=personas.technician)
    assert "reason" in caught.value.message_dict
    deficiency.refresh_from_db()
    assert deficiency.status == DeficiencyStatus.OPEN
    actions.do_waive_deficiency(deficiency, reason="Duplicate", acting_user=personas.technician)
    with pytest.raises(ValidationError, match="no longer open"):
        actions.do_waive_deficiency(deficiency, reason="Again", acting_user=personas.technician)
    assert deficiency.events.count() == 1


def test_waiving_is_refused_to_a_coder_and_audited(personas, encounter, audit_rows):
    deficiency = make_deficiency(encounter, responsible=personas.clinician)
    with pytest.raises(AccessDenied):
        actions.do_waive_deficiency(deficiency, reason="No", acting_user=personas.coder)
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.action == Action.UPDATE


# --- bulk signing -----------------------------------------------------------------------


def verbal_order(personas, patient, encounter, *, author=None, mode="verbal", body="Give it."):
    return do_create_document(
        patient,
        doc_type=doc_type("46209-3"),
        title=f"{mode.title()} order",
        body=body,
        service_at=NOW - dt.timedelta(hours=6),
        encounter=encounter,
        order_mode=mode,
        acting_user=author or personas.clinician,
    )


@pytest.fixture
def orders(personas, patient):
    encounter = make_encounter(personas, patient, started=NOW - dt.timedelta(days=2))
    made = [verbal_order(personas, patient, encounter, body=f"Order number {n}.") for n in range(3)]
    made.append(verbal_order(personas, patient, encounter, mode="telephone"))
    for order in made:
        make_deficiency(
            encounter, responsible=personas.clinician, kind=DeficiencyKind.UNSIGNED, document=order
        )
    return made


def ids(documents):
    return [str(d.public_id) for d in documents]


def test_a_clinician_signs_viewed_orders_at_once(personas, orders, audit_rows):
    result = actions.do_bulk_sign(personas.clinician, ids(orders), PASSWORD, ids(orders))
    assert [d.public_id for d in result.signed] == [d.public_id for d in orders]
    assert result.failed == []
    for order in orders:
        order.refresh_from_db()
        assert order.status == DocumentStatus.FINAL and order.signed_at == NOW
    assert not Deficiency.objects.filter(status=DeficiencyStatus.OPEN).exists()
    closed = Deficiency.objects.first()
    assert closed.status == DeficiencyStatus.COMPLETED and closed.closed_by == personas.clinician
    assert [e.event for e in closed.events.all()] == ["completed"]
    assert len(audit_rows(action=Action.SIGN, object_type="document")) == 4
    (batch,) = audit_rows(object_type="completion.bulk_sign")
    assert batch.detail == {"signed": ids(orders), "failed": []}


def test_an_order_not_shown_on_the_page_is_not_signed(personas, orders):
    result = actions.do_bulk_sign(personas.clinician, ids(orders), PASSWORD, ids(orders[:2]))
    assert len(result.signed) == 2
    assert [i for i, _ in result.failed] == [o.public_id for o in orders[2:]]
    assert "Not shown" in result.failed[0][1]
    orders[3].refresh_from_db()
    assert orders[3].status == DocumentStatus.DRAFT


def test_a_wrong_password_signs_nothing_and_is_audited(personas, orders, audit_rows):
    with pytest.raises(ValidationError) as caught:
        actions.do_bulk_sign(personas.clinician, ids(orders), "wrong", ids(orders))
    assert "password" in caught.value.message_dict
    assert all(o.status == DocumentStatus.DRAFT for o in orders)
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.reason == "wrong password at bulk signing"


def test_someone_elses_order_and_a_non_order_fail_while_the_rest_are_signed(
    personas, patient, orders
):
    encounter = orders[0].encounter
    theirs = verbal_order(personas, patient, encounter, author=personas.other_clinician)
    note = do_create_document(
        patient,
        doc_type=doc_type("11506-3"),
        title="Progress note",
        body="Stable.",
        service_at=NOW - dt.timedelta(hours=2),
        encounter=encounter,
        acting_user=personas.clinician,
    )
    batch = [orders[0], theirs, note]
    result = actions.do_bulk_sign(personas.clinician, ids(batch), PASSWORD, ids(batch))
    assert [d.public_id for d in result.signed] == [orders[0].public_id]
    reasons = dict(result.failed)
    assert "author" in reasons[theirs.public_id]
    assert "Not a verbal or telephone order" in reasons[note.public_id]
    theirs.refresh_from_db()
    assert theirs.status == DocumentStatus.DRAFT


def test_an_already_signed_order_is_reported_not_signed_twice(personas, orders):
    actions.do_bulk_sign(personas.clinician, ids(orders[:1]), PASSWORD, ids(orders))
    result = actions.do_bulk_sign(personas.clinician, ids(orders[:2]), PASSWORD, ids(orders))
    assert [d.public_id for d in result.signed] == [orders[1].public_id]
    assert "already signed" in result.failed[0][1]


def test_bulk_signing_needs_a_choice_and_valid_ids(personas, orders):
    with pytest.raises(ValidationError, match="Tick"):
        actions.do_bulk_sign(personas.clinician, [], PASSWORD, ids(orders))
    with pytest.raises(ValidationError, match="not valid"):
        actions.do_bulk_sign(personas.clinician, ["nope"], PASSWORD, ids(orders))


def test_an_unknown_order_is_reported(personas, orders):
    missing = "00000000-0000-0000-0000-000000000000"
    result = actions.do_bulk_sign(personas.clinician, [missing], PASSWORD, [missing])
    assert result.failed == [(uuid.UUID(missing), "No such order.")]


@pytest.mark.parametrize("who", ["technician", "coder", "no_role"])
def test_bulk_signing_is_refused_without_the_permissions_and_audited(
    personas, orders, audit_rows, who
):
    with pytest.raises(AccessDenied):
        actions.do_bulk_sign(getattr(personas, who), ids(orders), PASSWORD, ids(orders))
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.action == Action.SIGN and event.object_type == "completion.bulk_sign"


def test_access_to_an_outsiders_order_is_a_failure_not_a_leak(personas, orders):
    # The outsider holds no author permission at all: refused before anything.
    with pytest.raises((AccessDenied, Http404)):
        actions.do_bulk_sign(personas.outsider, ids(orders), PASSWORD, ids(orders))
