"""The clinician's work queue: their open deficiencies, nearest to delinquency first,
each with the one click that resolves it; audited once with the patients shown.

The row builders below (encounters, records, deficiencies written directly, as a test
may) are shared by the other chart-completion test modules."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import time_machine

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from completion import access
from completion.models import (
    Deficiency,
    DeficiencyKind,
    DeficiencyStatus,
    RecordCompletion,
    RecordStatus,
)
from documents.models import DocumentType
from encounters.models import Encounter, EncounterStatus
from recordroom.testing import register_patient

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 20, 15, 0, tzinfo=dt.UTC)


# --- row builders ---------------------------------------------------------------------


def doc_type(code: str = "18842-5") -> DocumentType:
    return DocumentType.objects.get(loinc_code=code)


def make_encounter(
    personas,
    patient,
    *,
    started: dt.datetime,
    ended: dt.datetime | None = None,
    service: str = "medicine",
    attending=None,
    facility=None,
    encounter_class: str = "IMP",
    status: str | None = None,
) -> Encounter:
    return Encounter.objects.create(
        patient=patient,
        facility=facility or personas.facility,
        visit_number=uuid.uuid4().hex[:12].upper(),
        encounter_class=encounter_class,
        status=status or (EncounterStatus.FINISHED if ended else EncounterStatus.IN_PROGRESS),
        service=service,
        started_at=started,
        ended_at=ended,
        attending=attending or personas.clinician,
        created_at=started,
        updated_at=ended or started,
    )


def make_record(
    encounter: Encounter,
    *,
    status: str = RecordStatus.INCOMPLETE,
    days: int = 30,
    completed_at: dt.datetime | None = None,
    open_count: int = 1,
) -> RecordCompletion:
    ended = encounter.ended_at
    return RecordCompletion.objects.create(
        encounter=encounter,
        status=status,
        discharged_at=ended,
        due_at=ended + dt.timedelta(days=days) if ended else None,
        analysed_at=ended or encounter.started_at,
        completed_at=completed_at,
        open_count=open_count if status == RecordStatus.INCOMPLETE else 0,
    )


def make_deficiency(
    encounter: Encounter,
    *,
    responsible,
    kind: str = DeficiencyKind.MISSING,
    document=None,
    document_type: DocumentType | None = None,
    status: str = DeficiencyStatus.OPEN,
    due_at: dt.datetime | None = None,
    delinquent_at: dt.datetime | None = None,
    description: str = "Discharge summary missing",
) -> Deficiency:
    ended = encounter.ended_at
    if delinquent_at is None and ended is not None:
        delinquent_at = ended + dt.timedelta(days=30)
    return Deficiency.objects.create(
        encounter=encounter,
        patient=encounter.patient,
        kind=kind,
        document=document,
        document_type=document_type or (None if document else doc_type()),
        key=f"test:{uuid.uuid4().hex}",
        description=description,
        responsible=responsible,
        status=status,
        due_at=due_at or ended or encounter.started_at,
        delinquent_at=delinquent_at,
        opened_at=ended or encounter.started_at,
    )


def discharged(personas, patient, *, days_ago: float, now=NOW, **kwargs) -> Encounter:
    ended = now - dt.timedelta(days=days_ago)
    return make_encounter(
        personas, patient, started=ended - dt.timedelta(days=3), ended=ended, **kwargs
    )


# --- the queue ------------------------------------------------------------------------


@pytest.fixture
def patient(personas):
    return register_patient(personas)


def test_the_queue_lists_own_open_deficiencies_nearest_to_delinquency_first(personas, patient):
    recent = discharged(personas, patient, days_ago=2)
    old = discharged(personas, patient, days_ago=40)
    middle = discharged(personas, patient, days_ago=20)
    in_house = make_encounter(personas, patient, started=NOW - dt.timedelta(days=1))
    a = make_deficiency(recent, responsible=personas.clinician)
    b = make_deficiency(old, responsible=personas.clinician)
    c = make_deficiency(middle, responsible=personas.clinician)
    d = make_deficiency(in_house, responsible=personas.clinician, kind=DeficiencyKind.UNSIGNED)
    make_deficiency(recent, responsible=personas.other_clinician)
    make_deficiency(old, responsible=personas.clinician, status=DeficiencyStatus.COMPLETED)

    rows = access.my_queue(personas.clinician, now=NOW)

    assert [r.deficiency for r in rows] == [b, c, a, d]
    assert rows[0].overdue and rows[0].days_to_delinquent == -10 and rows[0].days_overdue == 10
    assert rows[1].days_to_delinquent == 10 and not rows[1].overdue
    assert rows[3].days_to_delinquent is None


def test_the_queue_shows_name_mrn_and_the_link_that_resolves_each_gap(personas, patient):
    encounter = discharged(personas, patient, days_ago=3)
    make_deficiency(encounter, responsible=personas.clinician)
    (row,) = access.my_queue(personas.clinician, now=NOW)
    assert row.patient_name == "QUILLFEATHER, Marigold June"
    assert row.mrn and row.mrn == patient.identifiers.get(kind="MR").value
    assert row.open_url == (
        f"/documents/new/{patient.public_id}/?encounter={encounter.public_id}&doc_type=18842-5"
    )
    assert row.open_label == "Write the document"


def test_the_queue_hides_deficiencies_at_another_facility(personas, patient):
    from patients.actions import IdentifierData

    elsewhere = register_patient(
        personas,
        facility=personas.other_facility,
        family="Otherplace",
        identifiers=[IdentifierData(kind="SS", value="234-56-7890")],
    )
    encounter = discharged(personas, elsewhere, days_ago=3, facility=personas.other_facility)
    make_deficiency(encounter, responsible=personas.clinician)
    assert access.my_queue(personas.clinician, now=NOW) == []


def test_the_queue_is_audited_once_with_the_patients_shown(personas, patient, audit_rows):
    encounter = discharged(personas, patient, days_ago=3)
    make_deficiency(encounter, responsible=personas.clinician)
    make_deficiency(encounter, responsible=personas.clinician, kind=DeficiencyKind.INCOMPLETE)
    access.my_queue(personas.clinician, now=NOW)
    (event,) = audit_rows(object_type="completion.queue")
    assert event.action == Action.VIEW and event.outcome == Outcome.ALLOWED
    assert event.detail["shown"] == [str(patient.public_id)]


def test_a_role_without_completion_permissions_is_refused_and_audited(personas, audit_rows):
    with pytest.raises(AccessDenied):
        access.my_queue(personas.roi_specialist)
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.object_type == "completion.queue"


def test_an_unsigned_verbal_order_is_signable_in_bulk(personas, patient):
    from documents.actions import do_create_document

    encounter = make_encounter(personas, patient, started=NOW - dt.timedelta(days=2))
    with time_machine.travel(NOW, tick=False):
        order = do_create_document(
            patient,
            doc_type=doc_type("46209-3"),
            title="Verbal order",
            body="Give 1 g paracetamol now.",
            service_at=NOW - dt.timedelta(hours=5),
            encounter=encounter,
            order_mode="verbal",
            acting_user=personas.clinician,
        )
    make_deficiency(
        encounter, responsible=personas.clinician, kind=DeficiencyKind.UNSIGNED, document=order
    )
    (row,) = access.my_queue(personas.clinician, now=NOW)
    assert row.bulk_signable
    assert row.open_url == f"/documents/{order.public_id}/sign/"
