"""Quality audits (completion.quality): checklists, seeded and targeted samples of
discharges, scoring with hand-computed arithmetic, corrections from not-met items, the
audit's score, permissions and the audit trail of patient-level access."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.http import Http404

from accounts.access import AccessDenied
from accounts.roles import Role
from audit.models import Action, AuditEvent, Outcome
from completion import quality
from completion.models import (
    AuditedRecord,
    CompletionPolicy,
    Correction,
    CorrectionStatus,
    Deficiency,
    DeficiencyKind,
    DeficiencyStatus,
    ItemScore,
    QualityAudit,
    QualityAuditStatus,
    RecordCompletion,
    RecordStatus,
    ReviewChecklist,
)
from completion.quality import ItemData, SampleCriteria, ScoreData
from encounters import actions as encounter_actions
from encounters.models import EncounterClass, EncounterStatus
from recordroom.testing import make_user, register_patient

pytestmark = pytest.mark.django_db
UTC = dt.UTC
NOW = dt.datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
FEB_1, FEB_28 = dt.date(2025, 2, 1), dt.date(2025, 2, 28)
MET, NOT_MET, NA = "met", "not_met", "na"


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


def discharge(personas, patient, day: int, *, month=2, service="medicine", attending=None, **kw):
    """An inpatient stay of 2025-<month>-<day>, 08:00 to 18:00 UTC, discharged home."""
    cls = kw.pop("encounter_class", EncounterClass.INPATIENT)
    encounter = encounter_actions.do_register_encounter(
        patient,
        facility=kw.pop("facility", personas.facility),
        encounter_class=cls,
        started_at=dt.datetime(2025, month, day, 8, 0, tzinfo=UTC),
        attending=attending or personas.clinician,
        service=service,
        acting_user=personas.technician,
    )
    return encounter_actions.do_discharge(
        encounter,
        ended_at=dt.datetime(2025, month, day, 18, 0, tzinfo=UTC),
        disposition="01",
        acting_user=personas.technician,
    )


@pytest.fixture
def february(personas, patient):
    """Twelve discharges on 1-12 February (medicine), one per day."""
    return [discharge(personas, patient, day) for day in range(1, 13)]


@pytest.fixture
def checklist(personas):
    return quality.do_create_checklist(
        name="Inpatient record review",
        items=[
            ItemData("History and physical within 24 hours", 3),
            ItemData("Discharge summary authenticated", 2),
            ItemData("Operative report present", 1),
            ItemData("Final diagnosis recorded", 4),
        ],
        acting_user=personas.administrator,
    )


def criteria(personas, **overrides):
    values = {
        "facility": personas.facility,
        "period_start": FEB_1,
        "period_end": FEB_28,
        "size": 5,
        "seed": 42,
    }
    values.update(overrides)
    return SampleCriteria(**values)


def draw(personas, checklist, **overrides):
    return quality.do_draw_sample(
        checklist=checklist,
        criteria=criteria(personas, **overrides),
        acting_user=personas.administrator,
    )


def drawn(audit) -> set:
    return set(AuditedRecord.objects.filter(audit=audit).values_list("encounter_id", flat=True))


def record_of(audit, encounter=None) -> AuditedRecord:
    records = AuditedRecord.objects.filter(audit=audit).select_related(
        "audit", "encounter", "encounter__patient", "encounter__attending", "reviewer"
    )
    if encounter is not None:
        records = records.filter(encounter=encounter)
    return records.order_by("encounter__ended_at").first()


def score(record, results, *, user, comments=None, assign=None):
    comments = comments or {}
    assign = assign or {}
    return quality.do_score_record(
        record,
        scores=[
            ScoreData(
                position=p,
                result=r,
                comment=comments.get(p, "Not documented" if r == NOT_MET else ""),
                assign_to=assign.get(p),
            )
            for p, r in enumerate(results, start=1)
        ],
        acting_user=user,
    )


# --- checklists -----------------------------------------------------------------------


def test_a_checklist_keeps_its_items_in_order_with_weights_and_is_audited(personas, audit_rows):
    checklist = quality.do_create_checklist(
        name="  Outpatient   review ",
        items=[ItemData("Reason for visit documented"), ItemData("Note signed", 5)],
        acting_user=personas.administrator,
    )
    assert checklist.name == "Outpatient review" and checklist.active
    items = list(checklist.items.values_list("position", "text", "weight"))
    assert items == [(1, "Reason for visit documented", 1), (2, "Note signed", 5)]
    (event,) = audit_rows(object_type="completion.checklist")
    assert event.action == Action.CREATE
    assert event.detail == {"items": 2, "total_weight": 6}


@pytest.mark.parametrize(
    "name, items, key, message",
    [
        ("", [ItemData("A")], "name", "Name the checklist."),
        ("Review", [], "items", "at least one item"),
        ("Review", [ItemData("A", 0)], "items", "Item 1 has weight 0"),
        ("Review", [ItemData("A", 101)], "items", "from 1 to 100"),
        ("Review", [ItemData("A"), ItemData(" ")], "items", "Item 2 has no text."),
        ("Review", [ItemData("Signed"), ItemData("signed")], "items", "Item 2 repeats"),
        ("Review", [ItemData("x" * 301)], "items", "longer than 300"),
    ],
)
def test_a_bad_checklist_is_refused_and_nothing_is_written(personas, name, items, key, message):
    with pytest.raises(ValidationError) as excinfo:
        quality.do_create_checklist(name=name, items=items, acting_user=personas.administrator)
    assert message in " ".join(excinfo.value.message_dict[key])
    assert ReviewChecklist.objects.count() == 0


def test_a_new_version_is_a_new_checklist_and_retires_the_old_one(
    personas, patient, february, checklist
):
    audit = draw(personas, checklist)
    version_2 = quality.do_create_checklist(
        name="Inpatient record review",
        items=[ItemData("History and physical within 24 hours", 3)],
        replaces=checklist,
        acting_user=personas.administrator,
    )
    checklist.refresh_from_db()
    assert not checklist.active and version_2.active and version_2.pk != checklist.pk
    # The audit drawn with the old version keeps it, items unchanged.
    audit.refresh_from_db()
    assert audit.checklist_id == checklist.pk
    assert checklist.items.count() == 4
    with pytest.raises(ValidationError, match="already replaced or retired"):
        quality.do_create_checklist(
            name="Again",
            items=[ItemData("x")],
            replaces=checklist,
            acting_user=personas.administrator,
        )
    with pytest.raises(ValidationError, match="retired; choose one in use"):
        draw(personas, checklist)


def test_retiring_a_checklist_needs_a_reason(personas, checklist):
    with pytest.raises(ValidationError, match="Say why"):
        quality.do_retire_checklist(checklist, reason="", acting_user=personas.administrator)
    quality.do_retire_checklist(
        checklist, reason="Replaced by the 2025 form", acting_user=personas.administrator
    )
    checklist.refresh_from_db()
    assert not checklist.active


@pytest.mark.parametrize("persona", ["technician", "clinician", "coder"])
def test_only_a_quality_manager_defines_checklists_and_the_refusal_is_audited(
    personas, persona, audit_rows
):
    with pytest.raises(AccessDenied):
        quality.do_create_checklist(
            name="Review", items=[ItemData("A")], acting_user=getattr(personas, persona)
        )
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.object_type == "completion.checklist"
    assert "completion.manage_quality_audits" in event.reason
    assert ReviewChecklist.objects.count() == 0


# --- drawing a sample -----------------------------------------------------------------


def test_a_seeded_random_draw_is_reproducible(personas, february, checklist, audit_rows):
    first = draw(personas, checklist, seed=42)
    again = draw(personas, checklist, seed=42)
    other = draw(personas, checklist, seed=7)
    assert len(drawn(first)) == 5
    assert drawn(first) == drawn(again)
    assert drawn(other) != drawn(first)
    assert drawn(first) <= {e.pk for e in february}
    c = first.criteria
    assert (c["seed"], c["size"], c["population"], c["drawn"], c["took_all"]) == (
        42,
        5,
        12,
        5,
        False,
    )
    assert c["method"] == "random" and c["hash"] == quality.DRAW_HASH
    assert c["facility_id"] == str(personas.facility.public_id)
    assert quality.sample_message(first) == "5 of 12 discharges drawn (random, seed 42)."
    created = audit_rows(action=Action.CREATE, object_type="completion.quality_audit")
    assert created[0].detail["seed"] == 42 and created[0].detail["population"] == 12


def test_a_draw_without_a_seed_stores_the_one_it_used_so_it_can_be_repeated(
    personas, february, checklist
):
    first = draw(personas, checklist, seed=None)
    seed = first.criteria["seed"]
    assert isinstance(seed, int)
    assert drawn(draw(personas, checklist, seed=seed)) == drawn(first)


def test_the_draw_is_spread_over_the_population(personas, patient, checklist):
    """Every discharge can be drawn: across 40 seeds, each of 12 discharges is picked."""
    encounters = [discharge(personas, patient, day) for day in range(1, 13)]
    picked = set()
    for seed in range(40):
        audit = draw(personas, checklist, seed=seed, size=3)
        picked |= drawn(audit)
    assert picked == {e.pk for e in encounters}


def test_only_discharges_of_the_period_facility_service_and_class_are_sampled(
    personas, patient, checklist
):
    wanted = discharge(personas, patient, 3)
    discharge(personas, patient, 4, service="surgery")
    discharge(personas, patient, 5, encounter_class=EncounterClass.EMERGENCY)
    discharge(personas, patient, 10, month=1)  # January: outside the period
    cancelled = encounter_actions.do_register_encounter(
        patient,
        facility=personas.facility,
        encounter_class=EncounterClass.OUTPATIENT,
        started_at=dt.datetime(2025, 2, 6, 9, 0, tzinfo=UTC),
        acting_user=personas.technician,
    )
    encounter_actions.do_cancel_encounter(
        cancelled, reason="Patient did not come", acting_user=personas.technician
    )
    in_error = discharge(personas, patient, 7)
    encounter_actions.do_cancel_encounter(
        in_error,
        reason="Registered on the wrong patient",
        status=EncounterStatus.ENTERED_IN_ERROR,
        acting_user=personas.technician,
    )
    encounter_actions.do_register_encounter(  # still in the hospital: not a discharge
        patient,
        facility=personas.facility,
        encounter_class=EncounterClass.INPATIENT,
        started_at=dt.datetime(2025, 2, 20, 9, 0, tzinfo=UTC),
        attending=personas.clinician,
        service="medicine",
        acting_user=personas.technician,
    )
    audit = draw(
        personas, checklist, service="MEDICINE", encounter_class=EncounterClass.INPATIENT, size=30
    )
    assert drawn(audit) == {wanted.pk}


def test_a_sample_larger_than_the_population_takes_all_and_says_so(personas, february, checklist):
    audit = draw(personas, checklist, size=30)
    assert drawn(audit) == {e.pk for e in february}
    assert audit.criteria["took_all"] is True and audit.criteria["drawn"] == 12
    assert "every one of them is in the sample" in quality.sample_message(audit)
    assert "12 discharge(s), no more than the 30 asked for" in quality.sample_message(audit)


def test_a_sample_of_an_empty_period_is_refused_clearly_and_opens_nothing(
    personas, february, checklist, audit_rows
):
    with pytest.raises(ValidationError) as excinfo:
        draw(personas, checklist, period_start=dt.date(2024, 6, 1), period_end=dt.date(2024, 6, 30))
    (message,) = excinfo.value.message_dict["__all__"]
    assert message.startswith("No discharges match these criteria (RecordRoom General Hospital")
    assert "discharged 2024-06-01 to 2024-06-30" in message and "no audit was opened" in message
    assert QualityAudit.objects.count() == 0
    assert audit_rows(object_type="completion.quality_audit") == []


@pytest.mark.parametrize(
    "overrides, key, message",
    [
        ({"period_end": dt.date(2025, 1, 1)}, "period_end", "ends (2025-01-01) before it starts"),
        (
            {"period_start": dt.date(2025, 4, 1), "period_end": dt.date(2025, 4, 2)},
            "period_start",
            "in the future",
        ),
        ({"size": 0}, "size", "from 1 to 500"),
        ({"size": 501}, "size", "from 1 to 500"),
        ({"method": "targeted"}, "target", "Choose what the targeted sample looks for"),
        ({"method": "targeted", "target": "attending"}, "attending", "Choose the attending"),
        ({"method": "magic"}, "method", "Choose random or targeted"),
        ({"seed": -1}, "seed", "The seed is a whole number"),
        ({"period_start": None}, "period_start", "first day"),
    ],
)
def test_bad_criteria_are_refused_naming_what_is_wrong(
    personas, february, checklist, overrides, key, message
):
    with pytest.raises(ValidationError) as excinfo:
        draw(personas, checklist, **overrides)
    assert message in " ".join(excinfo.value.message_dict[key])
    assert QualityAudit.objects.count() == 0


def test_a_facility_the_manager_does_not_work_at_is_refused(personas, february, checklist):
    with pytest.raises(ValidationError, match="You do not work at this facility"):
        draw(personas, checklist, facility=personas.other_facility)


def test_a_targeted_sample_of_one_attending(personas, patient, checklist):
    mine = [discharge(personas, patient, day) for day in (1, 2)]
    theirs = [
        discharge(personas, patient, day, attending=personas.other_clinician) for day in (3, 4, 5)
    ]
    audit = draw(
        personas,
        checklist,
        method="targeted",
        target="attending",
        attending=personas.other_clinician,
        size=30,
    )
    assert drawn(audit) == {e.pk for e in theirs}
    assert audit.criteria["attending"] == str(personas.other_clinician.public_id)
    assert not drawn(audit) & {e.pk for e in mine}


def _deficiency(encounter, status, key):
    return Deficiency.objects.create(
        encounter=encounter,
        patient=encounter.patient,
        kind=DeficiencyKind.MISSING,
        key=key,
        description="Discharge summary missing",
        responsible=encounter.attending,
        status=status,
        due_at=NOW,
        opened_at=NOW,
    )


def test_a_targeted_sample_of_records_with_deficiencies(personas, february, checklist):
    _deficiency(february[0], DeficiencyStatus.OPEN, "a")
    _deficiency(february[1], DeficiencyStatus.COMPLETED, "b")
    _deficiency(february[2], DeficiencyStatus.VOID, "c")  # no longer applies: not a deficiency
    audit = draw(personas, checklist, method="targeted", target="deficiencies", size=10)
    assert drawn(audit) == {february[0].pk, february[1].pk}


def test_a_targeted_sample_of_delinquent_records(personas, february, checklist):
    def completion(encounter, status, due):
        RecordCompletion.objects.create(
            encounter=encounter, status=status, discharged_at=encounter.ended_at, due_at=due
        )

    completion(february[0], RecordStatus.INCOMPLETE, NOW - dt.timedelta(days=2))  # delinquent
    completion(february[1], RecordStatus.INCOMPLETE, NOW + dt.timedelta(days=2))  # not yet
    completion(february[2], RecordStatus.COMPLETE, NOW - dt.timedelta(days=2))  # complete
    audit = draw(personas, checklist, method="targeted", target="delinquent", size=10)
    assert drawn(audit) == {february[0].pk}


@pytest.mark.parametrize("persona", ["technician", "clinician", "coder", "outsider"])
def test_only_a_quality_manager_draws_a_sample_and_the_refusal_is_audited(
    personas, february, checklist, persona, audit_rows
):
    with pytest.raises(AccessDenied):
        quality.do_draw_sample(
            checklist=checklist,
            criteria=criteria(personas),
            acting_user=getattr(personas, persona),
        )
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.object_type == "completion.quality_audit"
    assert QualityAudit.objects.count() == 0


# --- scoring --------------------------------------------------------------------------


def test_a_record_score_is_weighted_met_over_weighted_applicable(
    personas, february, checklist, audit_rows
):
    audit = draw(personas, checklist, size=1)
    record = record_of(audit)
    # Weights 3, 2, 1, 4. Met: items 1 and 4 (3 + 4 = 7). Not met: item 2 (2).
    # Item 3 does not apply. Applicable weight 3 + 2 + 4 = 9. 7 / 9 x 100 = 77.777... -> 77.78
    scored = score(
        record,
        [MET, NOT_MET, NA, MET],
        user=personas.technician,
        comments={2: "Summary unsigned after 30 days"},
    )
    assert scored.score == Decimal("77.78")
    record.refresh_from_db()
    assert record.score == Decimal("77.78")
    assert record.reviewer == personas.technician and record.reviewed_at == NOW
    (correction,) = Correction.objects.filter(record=record)
    assert correction.item.position == 2
    assert correction.status == CorrectionStatus.OPEN
    assert correction.description == "Summary unsigned after 30 days"
    assert correction.assigned_to == personas.clinician  # the encounter's attending
    (event,) = audit_rows(object_type="completion.audited_record")
    assert event.action == Action.UPDATE and event.actor == personas.technician
    assert event.patient_id == record.encounter.patient.public_id
    assert event.detail["score"] == "77.78" and event.detail["not_met"] == [2]
    assert event.detail["corrections"] == {"opened": 1}
    assert "Quillfeather" not in str(event.detail) and "Summary" not in str(event.detail)


def test_all_met_scores_100_and_none_met_scores_0(personas, february, checklist):
    audit = draw(personas, checklist, size=2)
    first, second = AuditedRecord.objects.filter(audit=audit).select_related(
        "audit", "encounter", "encounter__patient"
    )
    assert score(first, [MET, MET, MET, MET], user=personas.technician).score == Decimal("100.00")
    # Not met 3 + 2 + 4 = 9, item 3 n/a: 0 / 9 -> 0.00
    assert score(second, [NOT_MET, NOT_MET, NA, NOT_MET], user=personas.technician).score == 0
    assert Correction.objects.filter(record=second).count() == 3


def test_scoring_twice_updates_the_same_corrections_and_never_duplicates(
    personas, february, checklist
):
    audit = draw(personas, checklist, size=1)
    record = record_of(audit)
    score(record, [MET, NOT_MET, NA, MET], user=personas.technician, comments={2: "Unsigned"})
    (first,) = Correction.objects.filter(record=record)

    # Again: item 2 still not met (new comment, now for HIM), item 4 now not met.
    # Met 3; applicable 3 + 2 + 4 = 9; 3 / 9 x 100 = 33.333... -> 33.33
    again = score(
        record,
        [MET, NOT_MET, NA, NOT_MET],
        user=personas.technician,
        comments={2: "Unsigned, still", 4: "No final diagnosis"},
        assign={2: personas.technician},
    )
    assert again.score == Decimal("33.33")
    corrections = {c.item.position: c for c in Correction.objects.filter(record=record)}
    assert set(corrections) == {2, 4}
    assert corrections[2].pk == first.pk
    assert corrections[2].description == "Unsigned, still"
    assert corrections[2].assigned_to == personas.technician
    assert ItemScore.objects.filter(record=record).count() == 4

    # Then: item 2 met (it was fixed) and item 4 not applicable after all.
    # Met 3 + 2 = 5; applicable 5; 100.00.
    assert score(record, [MET, MET, NA, NA], user=personas.technician).score == Decimal("100.00")
    corrections = {c.item.position: c for c in Correction.objects.filter(record=record)}
    assert corrections[2].status == CorrectionStatus.CORRECTED
    assert corrections[2].resolved_by == personas.technician
    assert corrections[4].status == CorrectionStatus.CLOSED

    # Found again: the same correction opens once more.
    score(record, [MET, NOT_MET, NA, NA], user=personas.technician, comments={2: "Unsigned again"})
    corrections = {c.item.position: c for c in Correction.objects.filter(record=record)}
    assert len(corrections) == 2 and Correction.objects.filter(record=record).count() == 2
    assert corrections[2].pk == first.pk and corrections[2].status == CorrectionStatus.OPEN
    assert corrections[2].resolved_at is None and corrections[2].resolution == ""


@pytest.mark.parametrize(
    "results, comments, key, message",
    [
        ([MET, MET, MET], {}, "__all__", "Score every item; not scored: 4."),
        ([MET, NOT_MET, MET, MET], {2: ""}, "item_2", "Item 2 is not met: say what is wrong"),
        ([NA, NA, NA, NA], {}, "__all__", "at least one item must apply"),
        ([MET, "maybe", MET, MET], {}, "item_2", "choose met, not met or not applicable"),
    ],
)
def test_bad_scores_are_refused_and_nothing_is_written(
    personas, february, checklist, results, comments, key, message
):
    audit = draw(personas, checklist, size=1)
    record = record_of(audit)
    with pytest.raises(ValidationError) as excinfo:
        score(record, results, user=personas.technician, comments=comments)
    assert message in " ".join(excinfo.value.message_dict[key])
    assert ItemScore.objects.count() == 0 and Correction.objects.count() == 0
    record.refresh_from_db()
    assert record.score is None and record.reviewer is None


def test_a_correction_goes_only_to_the_attending_or_an_him_reviewer(personas, february, checklist):
    audit = draw(personas, checklist, size=1)
    record = record_of(audit)
    with pytest.raises(ValidationError, match="goes to the attending or to an HIM reviewer"):
        score(
            record, [MET, NOT_MET, MET, MET], user=personas.technician, assign={2: personas.coder}
        )


def test_the_assigned_reviewer_alone_scores_a_record(personas, february, checklist, audit_rows):
    audit = draw(personas, checklist, size=1)
    count = quality.do_assign_reviewer(
        audit, reviewer=personas.technician, acting_user=personas.administrator
    )
    assert count == 1
    record = record_of(audit)
    assert record.reviewer == personas.technician
    with pytest.raises(AccessDenied):
        score(record, [MET, MET, MET, MET], user=personas.administrator)
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.reason == "This record is assigned to Tina.Tech Testperson."
    assert event.patient_id == record.encounter.patient.public_id
    assert score(record, [MET, MET, MET, MET], user=personas.technician).score == 100


def test_a_clinician_never_reviews_their_own_record(personas, patient, checklist, audit_rows):
    hybrid = make_user("dr.hilda", Role.CLINICIAN, Role.HIM_TECHNICIAN)
    hybrid.facilities.add(personas.facility)
    discharge(personas, patient, 3, attending=hybrid)
    audit = draw(personas, checklist)
    with pytest.raises(ValidationError, match="own care"):
        quality.do_assign_reviewer(audit, reviewer=hybrid, acting_user=personas.administrator)
    record = record_of(audit)
    with pytest.raises(AccessDenied):
        score(record, [MET, MET, MET, MET], user=hybrid)
    (event,) = audit_rows(outcome=Outcome.DENIED, object_type="completion.audited_record")
    assert "your own care" in event.reason


def test_assigning_refuses_someone_who_cannot_review(personas, february, checklist):
    audit = draw(personas, checklist)
    with pytest.raises(ValidationError, match="quality-review permission"):
        quality.do_assign_reviewer(
            audit, reviewer=personas.coder, acting_user=personas.administrator
        )
    with pytest.raises(ValidationError, match="quality-review permission"):
        quality.do_assign_reviewer(
            audit, reviewer=personas.outsider, acting_user=personas.administrator
        )
    quality.do_assign_reviewer(
        audit, reviewer=personas.technician, acting_user=personas.administrator
    )
    with pytest.raises(ValidationError, match="already assigned"):
        quality.do_assign_reviewer(
            audit, reviewer=personas.technician, acting_user=personas.administrator
        )


@pytest.mark.parametrize("persona", ["clinician", "coder", "roi_specialist"])
def test_scoring_needs_the_review_permission_and_the_refusal_is_audited(
    personas, february, checklist, persona, audit_rows
):
    audit = draw(personas, checklist, size=1)
    record = record_of(audit)
    with pytest.raises(AccessDenied):
        score(record, [MET, MET, MET, MET], user=getattr(personas, persona))
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.patient_id == record.encounter.patient.public_id
    assert "completion.review_quality" in event.reason


def test_a_reviewer_of_another_facility_gets_a_404_and_it_is_audited(
    personas, february, checklist, audit_rows
):
    audit = draw(personas, checklist, size=1)
    record = record_of(audit)
    with pytest.raises(Http404):
        score(record, [MET, MET, MET, MET], user=personas.outsider)
    with pytest.raises(Http404):
        quality.access_record_review(personas.outsider, audit.public_id, record.encounter.public_id)
    with pytest.raises(Http404):
        quality.access_audit(personas.outsider, audit.public_id)
    assert len(audit_rows(outcome=Outcome.DENIED)) == 3
    assert quality.list_audits(personas.outsider) == []


# --- the audit trail of patient-level reads --------------------------------------------


def test_opening_a_record_to_score_goes_through_the_patients_door_and_is_audited(
    personas, patient, february, checklist, audit_rows
):
    audit = draw(personas, checklist, size=1)
    record = record_of(audit)
    review = quality.access_record_review(
        personas.technician, audit.public_id, record.encounter.public_id
    )
    assert review.patient == patient and review.mrn and review.may_score
    assert [i.position for i in review.items] == [1, 2, 3, 4]
    assert review.assignees[0] == personas.clinician
    events = audit_rows(action=Action.VIEW, actor=personas.technician)
    assert [(e.object_type, e.patient_id) for e in events] == [
        ("patient", patient.public_id),
        ("completion.audited_record", patient.public_id),
    ]
    assert events[0].purpose == "HOPERAT"


def test_the_audit_screen_and_the_corrections_list_audit_the_patients_shown(
    personas, patient, february, checklist, audit_rows
):
    audit = draw(personas, checklist, size=2)
    score(record_of(audit), [MET, NOT_MET, MET, MET], user=personas.technician)
    report = quality.access_audit_report(personas.technician, audit.public_id)
    assert report.total == 2
    (event,) = audit_rows(action=Action.VIEW, object_type="completion.quality_audit")
    assert event.detail == {"shown": [str(patient.public_id)]}
    lines = quality.list_corrections(personas.technician)
    assert len(lines) == 1
    (event,) = audit_rows(action=Action.SEARCH, object_type="completion.correction")
    assert event.detail["shown"] == [str(patient.public_id)] and event.detail["count"] == 1


def test_the_export_is_audited_as_an_export_naming_the_patients(
    personas, patient, february, checklist, audit_rows
):
    audit = draw(personas, checklist, size=3)
    report = quality.export_audit(personas.administrator, audit.public_id)
    assert report.total == 3
    (event,) = audit_rows(action=Action.EXPORT)
    assert event.object_id == str(audit.public_id)
    assert event.detail == {"format": "csv", "records": 3, "patients": [str(patient.public_id)]}
    with pytest.raises(AccessDenied):
        quality.export_audit(personas.technician, audit.public_id)
    (denied,) = audit_rows(action=Action.EXPORT, outcome=Outcome.DENIED)
    assert denied.actor == personas.technician


# --- corrections ----------------------------------------------------------------------


def test_the_corrections_lifecycle(personas, february, checklist, audit_rows):
    audit = draw(personas, checklist, size=1)
    record = record_of(audit)
    score(record, [MET, NOT_MET, MET, NOT_MET], user=personas.technician)
    open_lines = quality.list_corrections(personas.technician)
    assert [line.correction.item.position for line in open_lines] == [2, 4]
    assert all(not line.overdue for line in open_lines)
    assert open_lines[0].due == NOW + dt.timedelta(days=30)

    # The attending sees the corrections assigned to them, read-only.
    assert len(quality.list_corrections(personas.clinician)) == 2
    assert quality.list_corrections(personas.other_clinician) == []

    correction = quality.access_correction(personas.technician, open_lines[0].correction.public_id)
    with pytest.raises(ValidationError) as excinfo:
        quality.do_resolve_correction(
            correction, status="corrected", resolution="ok", acting_user=personas.technician
        )
    assert "at least 5 characters" in excinfo.value.message_dict["resolution"][0]
    with pytest.raises(ValidationError, match="Choose corrected or closed"):
        quality.do_resolve_correction(
            correction, status="open", resolution="Summary signed", acting_user=personas.technician
        )
    with pytest.raises(AccessDenied):
        quality.do_resolve_correction(
            correction,
            status="corrected",
            resolution="Summary signed",
            acting_user=personas.clinician,
        )
    quality.do_resolve_correction(
        correction,
        status="corrected",
        resolution="Summary signed 03-14",
        acting_user=personas.technician,
    )
    correction.refresh_from_db()
    assert correction.status == CorrectionStatus.CORRECTED
    assert (correction.resolved_by, correction.resolved_at) == (personas.technician, NOW)
    assert correction.resolution == "Summary signed 03-14"
    (event,) = audit_rows(
        object_type="completion.correction", action=Action.UPDATE, outcome="allowed"
    )
    assert event.detail["status"] == "corrected"
    assert event.patient_id == record.encounter.patient.public_id
    with pytest.raises(ValidationError, match="already corrected"):
        quality.do_resolve_correction(
            correction, status="closed", resolution="Second try", acting_user=personas.technician
        )
    other = Correction.objects.get(record=record, item__position=4)
    quality.do_resolve_correction(
        other,
        status="closed",
        resolution="Diagnosis is in the coded abstract",
        acting_user=personas.technician,
    )
    assert quality.list_corrections(personas.technician) == []
    resolved = quality.list_corrections(personas.technician, state="resolved")
    assert {line.correction.status for line in resolved} == {"corrected", "closed"}


def test_a_correction_open_past_the_completion_limit_is_overdue(personas, february, checklist):
    audit = draw(personas, checklist, size=1)
    score(record_of(audit), [MET, NOT_MET, MET, MET], user=personas.technician)
    assert quality.list_corrections(personas.technician, state="overdue") == []
    with time_machine.travel(NOW + dt.timedelta(days=31), tick=False):
        (line,) = quality.list_corrections(personas.technician, state="overdue")
        assert line.overdue
    # A facility's bylaws of 10 days make it overdue sooner.
    CompletionPolicy.objects.create(
        facility=personas.facility,
        effective_from=dt.date(2025, 1, 1),
        completion_days=10,
        created_at=NOW,
    )
    with time_machine.travel(NOW + dt.timedelta(days=11), tick=False):
        (line,) = quality.list_corrections(personas.technician, state="overdue")
        assert line.due == NOW + dt.timedelta(days=10)


def test_the_corrections_list_is_refused_to_a_role_without_either_permission(personas, audit_rows):
    with pytest.raises(AccessDenied):
        quality.list_corrections(personas.coder)
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.object_type == "completion.correction"


# --- closing and the audit's score ----------------------------------------------------


def test_the_audit_score_is_the_mean_of_record_scores_with_per_item_compliance(
    personas, february, checklist, audit_rows
):
    audit = draw(personas, checklist, size=3)
    first, second, third = (
        AuditedRecord.objects.filter(audit=audit)
        .select_related("audit", "encounter", "encounter__patient", "encounter__attending")
        .order_by("encounter__ended_at")
    )
    # Weights 3, 2, 1, 4.
    score(first, [MET, NOT_MET, NA, MET], user=personas.technician)  # 7 / 9 -> 77.78
    score(second, [MET, MET, MET, MET], user=personas.technician)  # 10 / 10 -> 100.00
    with pytest.raises(ValidationError, match="1 of 3 records are not scored yet"):
        quality.do_close_audit(audit, acting_user=personas.administrator)
    score(third, [NOT_MET, MET, MET, NA], user=personas.technician)  # 3 / 6 -> 50.00

    report = quality.do_close_audit(audit, acting_user=personas.administrator)
    # (77.78 + 100.00 + 50.00) / 3 = 227.78 / 3 = 75.926... -> 75.93
    assert report.score == Decimal("75.93")
    compliance = {line.item.position: line for line in report.items}
    # Item 1: met, met, not met -> 2 / 3 = 66.67 %
    assert (compliance[1].met, compliance[1].not_met, compliance[1].percent) == (
        2,
        1,
        Decimal("66.67"),
    )
    # Item 2: not met, met, met -> 66.67 %
    assert compliance[2].percent == Decimal("66.67")
    # Item 3: n/a, met, met -> 2 / 2 = 100 %, one not applicable
    assert (compliance[3].not_applicable, compliance[3].percent) == (1, Decimal("100.00"))
    # Item 4: met, met, n/a -> 100 %
    assert compliance[4].percent == Decimal("100.00")
    assert report.open_corrections == 2

    audit.refresh_from_db()
    assert audit.status == QualityAuditStatus.CLOSED and audit.closed_at == NOW
    (event,) = audit_rows(object_type="completion.quality_audit", action=Action.UPDATE)
    assert event.detail["event"] == "close" and event.detail["score"] == "75.93"
    assert event.detail["items"] == {"1": "66.67", "2": "66.67", "3": "100.00", "4": "100.00"}

    # Closed: scores are final; closing twice is refused; corrections stay tracked.
    with pytest.raises(ValidationError, match="closed; its scores are final"):
        score(first, [MET, MET, MET, MET], user=personas.technician)
    with pytest.raises(ValidationError, match="already closed"):
        quality.do_close_audit(audit, acting_user=personas.administrator)
    assert len(quality.list_corrections(personas.technician)) == 2
    (row,) = quality.list_audits(personas.technician)
    assert (row.score, row.scored, row.records, row.open_corrections) == (Decimal("75.93"), 3, 3, 2)


def test_only_a_quality_manager_closes_an_audit(personas, february, checklist, audit_rows):
    audit = draw(personas, checklist, size=1)
    with pytest.raises(AccessDenied):
        quality.do_close_audit(audit, acting_user=personas.technician)
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.object_id == str(audit.public_id)
    assert QualityAudit.objects.get(pk=audit.pk).status == QualityAuditStatus.OPEN


def test_the_audit_list_shows_what_is_left_for_me_to_score(personas, february, checklist):
    audit = draw(personas, checklist, size=4)
    quality.do_assign_reviewer(
        audit, reviewer=personas.technician, acting_user=personas.administrator
    )
    (row,) = quality.list_audits(personas.technician)
    assert (row.records, row.scored, row.mine_to_score, row.score) == (4, 0, 4, None)
    score(record_of(audit), [MET, MET, MET, MET], user=personas.technician)
    (row,) = quality.list_audits(personas.technician)
    assert (row.scored, row.mine_to_score, row.score) == (1, 3, Decimal("100.00"))
    assert quality.list_audits(personas.technician, status="closed") == []
    assert (
        AuditEvent.objects.filter(
            action=Action.SEARCH, object_type="completion.quality_audit"
        ).count()
        == 3
    )
