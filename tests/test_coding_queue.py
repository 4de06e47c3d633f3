"""The coding work queue: discharged encounters ready for coding (record complete, or
the policy allows coding before, or coding begun), oldest discharge first, filtered by
service, payer, class, status and claim; claiming and releasing, audited.

The row builders below (encounters with their completion record, abstracts written
directly, as a test may) are shared by the other coding-work test modules."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.http import Http404

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from coding import queue
from coding.models import (
    Abstract,
    AbstractDiagnosis,
    AbstractProcedure,
    AbstractStatus,
    AbstractVersion,
    CodingPolicy,
)
from completion.models import RecordCompletion, RecordStatus
from encounters.models import Encounter, EncounterStatus
from patients.models import IdentifierKind, PatientIdentifier
from recordroom.testing import make_user, register_patient, sign_in

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 20, 15, 0, tzinfo=dt.UTC)


# --- row builders ---------------------------------------------------------------------


def discharged(
    personas,
    patient,
    *,
    days_ago: float,
    record: str | None = RecordStatus.COMPLETE,
    service: str = "medicine",
    encounter_class: str = "IMP",
    facility=None,
    attending=None,
    status: str = EncounterStatus.FINISHED,
    now=NOW,
) -> Encounter:
    ended = now - dt.timedelta(days=days_ago)
    started = ended - dt.timedelta(days=3)
    encounter = Encounter.objects.create(
        patient=patient,
        facility=facility or personas.facility,
        visit_number=uuid.uuid4().hex[:12].upper(),
        encounter_class=encounter_class,
        status=status,
        service=service,
        started_at=started,
        ended_at=ended,
        admit_source="7",
        disposition="01",
        attending=attending or personas.clinician,
        created_at=started,
        updated_at=ended,
    )
    if record:
        RecordCompletion.objects.create(
            encounter=encounter,
            status=record,
            discharged_at=ended,
            due_at=ended + dt.timedelta(days=30),
            analysed_at=ended,
            completed_at=ended if record == RecordStatus.COMPLETE else None,
        )
    return encounter


def make_abstract(
    encounter: Encounter,
    *,
    status: str = AbstractStatus.IN_PROGRESS,
    coder=None,
    diagnoses=(("I5033", "Y"), ("E119", "Y")),
    procedures=(),
    finalised_by=None,
    finalised_at: dt.datetime | None = None,
    drg: str = "",
    payer: str = "",
) -> Abstract:
    """An abstract with its codes and versions: one version coding it, and for a final
    one a second version finalising it (by ``finalised_by`` at ``finalised_at``)."""
    at = encounter.ended_at + dt.timedelta(hours=2)
    done = status in (AbstractStatus.FINAL, AbstractStatus.REBILLED)
    abstract = Abstract.objects.create(
        encounter=encounter,
        patient=encounter.patient,
        status=status,
        coder=coder,
        claimed_at=at if coder else None,
        payer=payer,
        drg=drg,
        mdc="05" if drg else "",
        finalised_by=finalised_by if done else None,
        finalised_at=finalised_at if done else None,
        created_at=at,
        updated_at=finalised_at or at,
        version=0,
    )
    for n, (code, poa) in enumerate(diagnoses, start=1):
        AbstractDiagnosis.objects.create(abstract=abstract, sequence=n, code=code, poa=poa)
    for n, (system, code) in enumerate(procedures, start=1):
        AbstractProcedure.objects.create(
            abstract=abstract,
            sequence=n,
            system=system,
            code=code,
            performed_on=encounter.started_at.date(),
        )
    if status != AbstractStatus.NOT_STARTED:
        who = coder or finalised_by
        AbstractVersion.objects.create(
            abstract=abstract,
            number=1,
            status=AbstractStatus.IN_PROGRESS,
            snapshot={},
            changed_by=who,
            changed_at=at,
            reason="coded",
        )
        abstract.version = 1
        if done or status == AbstractStatus.ON_HOLD:
            AbstractVersion.objects.create(
                abstract=abstract,
                number=2,
                status=status,
                snapshot={},
                changed_by=finalised_by or who,
                changed_at=finalised_at or at,
                reason="finalised" if done else "on hold",
            )
            abstract.version = 2
        abstract.save(update_fields=["version"])
    return abstract


@pytest.fixture
def patient(personas):
    return register_patient(personas)


# --- the queue --------------------------------------------------------------------------


def _ids(page):
    return [r.encounter.pk for r in page.rows]


def test_the_queue_lists_ready_encounters_oldest_discharge_first(personas, patient):
    recent = discharged(personas, patient, days_ago=1)
    old = discharged(personas, patient, days_ago=20)
    middle = discharged(personas, patient, days_ago=5)
    incomplete = discharged(personas, patient, days_ago=9, record=RecordStatus.INCOMPLETE)
    unanalysed = discharged(personas, patient, days_ago=9, record=None)
    final = discharged(personas, patient, days_ago=8)
    make_abstract(final, status=AbstractStatus.FINAL, finalised_by=personas.coder, finalised_at=NOW)
    cancelled = discharged(personas, patient, days_ago=3, status=EncounterStatus.CANCELLED)
    with time_machine.travel(NOW, tick=False):
        page = queue.work_queue(personas.coder)
    assert _ids(page) == [old.pk, middle.pk, recent.pk]
    assert page.count == 3
    assert incomplete.pk not in _ids(page) and unanalysed.pk not in _ids(page)
    assert cancelled.pk not in _ids(page)
    assert page.rows[0].days_since_discharge == 20
    assert page.rows[0].status == AbstractStatus.NOT_STARTED


def test_coding_begun_on_an_incomplete_record_stays_in_the_queue(personas, patient):
    begun = discharged(personas, patient, days_ago=4, record=RecordStatus.INCOMPLETE)
    make_abstract(begun, status=AbstractStatus.IN_PROGRESS, coder=personas.coder)
    held = discharged(personas, patient, days_ago=6, record=RecordStatus.INCOMPLETE)
    make_abstract(held, status=AbstractStatus.ON_HOLD, coder=personas.coder)
    page = queue.work_queue(personas.coder, now=NOW)
    assert set(_ids(page)) == {begun.pk, held.pk}


def test_the_policy_may_allow_coding_before_the_record_is_complete(personas, patient):
    incomplete = discharged(personas, patient, days_ago=2, record=RecordStatus.INCOMPLETE)
    assert queue.work_queue(personas.coder, now=NOW).count == 0
    CodingPolicy.objects.create(
        facility=personas.facility,
        effective_from=dt.date(2020, 1, 1),
        code_before_complete=True,
        created_at=NOW,
    )
    assert _ids(queue.work_queue(personas.coder, now=NOW)) == [incomplete.pk]


def test_a_policy_not_yet_in_force_does_not_apply(personas, patient):
    discharged(personas, patient, days_ago=2, record=RecordStatus.INCOMPLETE)
    CodingPolicy.objects.create(
        facility=personas.facility,
        effective_from=dt.date(2099, 1, 1),
        code_before_complete=True,
        created_at=NOW,
    )
    assert queue.work_queue(personas.coder, now=NOW).count == 0


def test_other_facilities_encounters_are_not_in_the_queue(personas, patient):
    other = register_patient(personas, facility=personas.other_facility, family="Elsewhere")
    discharged(personas, other, days_ago=2, facility=personas.other_facility)
    mine = discharged(personas, patient, days_ago=2)
    assert _ids(queue.work_queue(personas.coder, now=NOW)) == [mine.pk]


def test_filters_by_service_class_payer_status_claim_and_dates(personas, patient):
    surgery = discharged(personas, patient, days_ago=3, service="surgery")
    medicine = discharged(personas, patient, days_ago=10, service="medicine")
    outpatient = discharged(personas, patient, days_ago=1, encounter_class="AMB")
    claimed = discharged(personas, patient, days_ago=2)
    make_abstract(claimed, coder=personas.coder, payer="Acme Health Plan")
    f = queue.QueueFilter
    coder = personas.coder
    assert _ids(queue.work_queue(coder, f(service="SURGERY"), now=NOW)) == [surgery.pk]
    assert _ids(queue.work_queue(coder, f(encounter_class="AMB"), now=NOW)) == [outpatient.pk]
    assert _ids(queue.work_queue(coder, f(payer="acme health plan"), now=NOW)) == [claimed.pk]
    assert claimed.pk not in _ids(queue.work_queue(coder, f(payer=queue.NO_PAYER), now=NOW))
    assert _ids(queue.work_queue(coder, f(status="in_progress"), now=NOW)) == [claimed.pk]
    assert _ids(queue.work_queue(coder, f(claim="mine"), now=NOW)) == [claimed.pk]
    assert claimed.pk not in _ids(queue.work_queue(coder, f(claim="unclaimed"), now=NOW))
    assert _ids(queue.work_queue(coder, f(claim="claimed"), now=NOW)) == [claimed.pk]
    window = f(
        discharged_from=(NOW - dt.timedelta(days=11)).date(),
        discharged_to=(NOW - dt.timedelta(days=9)).date(),
    )
    assert _ids(queue.work_queue(coder, window, now=NOW)) == [medicine.pk]
    newest = queue.work_queue(coder, f(sort="-discharged"), now=NOW)
    assert _ids(newest)[0] == outpatient.pk


def test_the_payer_comes_from_the_member_id_when_there_is_no_abstract(personas, patient):
    encounter = discharged(personas, patient, days_ago=2)
    PatientIdentifier.objects.create(
        patient=patient,
        kind=IdentifierKind.MEMBER_ID,
        issuer="Harbor Mutual",
        value="HM123",
        created_at=NOW,
    )
    page = queue.work_queue(personas.coder, queue.QueueFilter(payer="Harbor Mutual"), now=NOW)
    assert _ids(page) == [encounter.pk]
    assert page.rows[0].payer == "Harbor Mutual"


@pytest.mark.parametrize(
    "bad",
    [
        {"status": "final"},
        {"encounter_class": "XYZ"},
        {"claim": "theirs"},
        {"sort": "name"},
        {"discharged_from": dt.date(2025, 3, 10), "discharged_to": dt.date(2025, 3, 1)},
    ],
)
def test_bad_filters_are_refused_with_a_message(personas, bad):
    with pytest.raises(ValidationError):
        queue.work_queue(personas.coder, queue.QueueFilter(**bad), now=NOW)


def test_the_queue_is_audited_with_the_patients_shown(personas, patient, audit_rows):
    discharged(personas, patient, days_ago=2)
    queue.work_queue(personas.coder, now=NOW)
    (row,) = audit_rows(object_type="coding.queue")
    assert row.outcome == Outcome.ALLOWED
    assert row.detail["shown"] == [str(patient.public_id)]


@pytest.mark.parametrize("who", ["clinician", "technician", "roi_specialist", "no_role"])
def test_the_queue_refuses_non_coders_and_audits_it(personas, who, audit_rows):
    with pytest.raises(AccessDenied):
        queue.work_queue(getattr(personas, who), now=NOW)
    (row,) = audit_rows(object_type="coding.queue")
    assert row.outcome == Outcome.DENIED


# --- claiming -----------------------------------------------------------------------------


def test_a_coder_claims_and_releases_an_encounter(personas, patient, audit_rows):
    encounter = discharged(personas, patient, days_ago=2)
    with time_machine.travel(NOW, tick=False):
        abstract = queue.do_claim(personas.coder, encounter.public_id)
    assert abstract.coder == personas.coder and abstract.claimed_at == NOW
    assert abstract.status == AbstractStatus.NOT_STARTED
    claim = audit_rows(object_type="coding.claim")[-1]
    assert claim.action == Action.UPDATE and claim.patient_id == patient.public_id
    assert claim.detail["claimed"] is True
    queue.do_release(personas.coder, encounter.public_id)
    abstract.refresh_from_db()
    assert abstract.coder is None and abstract.claimed_at is None
    assert audit_rows(object_type="coding.claim")[-1].detail["claimed"] is False


def test_a_claim_held_by_another_coder_is_refused(personas, patient):
    other = make_user("carl.coder", "coder")
    other.facilities.add(personas.facility)
    encounter = discharged(personas, patient, days_ago=2)
    queue.do_claim(other, encounter.public_id)
    with pytest.raises(ValidationError, match="has claimed"):
        queue.do_claim(personas.coder, encounter.public_id)
    with pytest.raises(ValidationError, match="already claimed"):
        queue.do_claim(other, encounter.public_id)
    with pytest.raises(ValidationError, match="Only the coder"):
        queue.do_release(personas.coder, encounter.public_id)
    assert Abstract.objects.get(encounter=encounter).coder == other


def test_nobody_to_release_is_a_clear_message(personas, patient):
    encounter = discharged(personas, patient, days_ago=2)
    with pytest.raises(ValidationError, match="Nobody"):
        queue.do_release(personas.coder, encounter.public_id)


def test_claiming_an_encounter_not_in_the_queue_is_an_audited_404(personas, patient, audit_rows):
    incomplete = discharged(personas, patient, days_ago=2, record=RecordStatus.INCOMPLETE)
    for key in (incomplete.public_id, uuid.uuid4(), "not-a-uuid"):
        with pytest.raises(Http404):
            queue.do_claim(personas.coder, key)
    rows = audit_rows(object_type="coding.claim")
    assert len(rows) == 3 and {r.outcome for r in rows} == {Outcome.DENIED}
    assert not Abstract.objects.exists()


def test_claiming_refuses_a_clinician_and_audits_it(personas, patient, audit_rows):
    encounter = discharged(personas, patient, days_ago=2)
    with pytest.raises(AccessDenied):
        queue.do_claim(personas.clinician, encounter.public_id)
    assert audit_rows(object_type="coding.claim")[0].outcome == Outcome.DENIED


# --- the screens ----------------------------------------------------------------------------


def test_the_queue_page_shows_the_rows_and_filters(client, personas, patient, audit_rows):
    discharged(personas, patient, days_ago=2, service="surgery")
    sign_in(client, personas.coder)
    response = client.get("/coding/queue/", {"service": "surgery"})
    assert response.status_code == 200
    assert patient.display_name in response.content.decode()
    assert audit_rows(object_type="coding.queue")[-1].detail["filters"]["service"] == "surgery"


def test_the_queue_page_says_what_is_wrong_with_bad_filters(client, personas):
    sign_in(client, personas.coder)
    response = client.get(
        "/coding/queue/", {"discharged_from": "2025-03-10", "discharged_to": "2025-03-01"}
    )
    assert response.status_code == 400
    assert "before its start" in response.content.decode()


def test_the_queue_page_requires_login(client):
    response = client.get("/coding/queue/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_queue_page_refuses_a_clinician_and_audits_it(client, personas, audit_rows):
    sign_in(client, personas.clinician)
    assert client.get("/coding/queue/").status_code == 403
    assert audit_rows(object_type="coding.queue")[0].outcome == Outcome.DENIED


def test_claim_and_release_are_post_only(client, personas, patient):
    encounter = discharged(personas, patient, days_ago=2)
    sign_in(client, personas.coder)
    assert client.get(f"/coding/queue/{encounter.public_id}/claim/").status_code == 405
    assert client.get(f"/coding/queue/{encounter.public_id}/release/").status_code == 405


def test_claim_from_the_page(client, personas, patient):
    encounter = discharged(personas, patient, days_ago=2)
    sign_in(client, personas.coder)
    response = client.post(f"/coding/queue/{encounter.public_id}/claim/")
    assert response.status_code == 302
    assert Abstract.objects.get(encounter=encounter).coder == personas.coder
    again = client.post(f"/coding/queue/{encounter.public_id}/claim/", follow=True)
    assert "already claimed" in again.content.decode()
    client.post(f"/coding/queue/{encounter.public_id}/release/")
    assert Abstract.objects.get(encounter=encounter).coder is None


def test_claim_from_the_page_refuses_a_clinician(client, personas, patient, audit_rows):
    encounter = discharged(personas, patient, days_ago=2)
    sign_in(client, personas.clinician)
    assert client.post(f"/coding/queue/{encounter.public_id}/claim/").status_code == 403
    assert audit_rows(object_type="coding.claim")[0].outcome == Outcome.DENIED
