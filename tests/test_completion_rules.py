"""Each completion rule kind finds the right gap, with the right kind, responsible
clinician and due date; the seeded US defaults; which rules apply to an encounter;
parameters are validated; provider orders carry their order mode."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from completion.analysis import analyse_encounter
from completion.models import (
    CompletionPolicy,
    CompletionRule,
    DeficiencyKind,
    DeficiencyStatus,
    RuleKind,
)
from completion.policy import policy_for
from completion.rules import PARAMETERS, rules_in_force, validate_parameters
from documents import actions as documents
from documents.models import DocumentType
from encounters.models import EncounterClass
from recordroom.testing import make_facility
from tests.test_completion_analysis import (
    ADMIT,
    DISCHARGE,
    DS,
    HP,
    OP,
    ORDERS,
    POSTOP,
    PROGRESS,
    Chart,
    at,
    committer,
    open_deficiencies,
    record_of,
)

pytestmark = pytest.mark.django_db
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


@pytest.fixture
def chart(personas, django_capture_on_commit_callbacks):
    return Chart(personas, committer(django_capture_on_commit_callbacks))


def late_ones(encounter) -> dict:
    return {
        d.rule.code: d
        for d in encounter.deficiencies.filter(kind=DeficiencyKind.LATE).select_related("rule")
    }


def analyse_at(encounter, moment):
    with at(moment):
        return analyse_encounter(encounter)


# --- the defaults ------------------------------------------------------------------------------


def test_the_us_defaults_are_seeded():
    codes = set(CompletionRule.objects.values_list("code", flat=True))
    assert codes == {
        "hp-timely",
        "hp-update",
        "hp-before-procedure",
        "operative-report",
        "discharge-summary",
        "authentication",
        "verbal-orders",
        "final-diagnosis",
    }
    for rule in CompletionRule.objects.all():
        assert rule.citation.startswith("42 CFR 482.")
        assert validate_parameters(rule.kind, rule.parameters) == rule.parameters
    policy = policy_for(None, dt.date(2025, 6, 1))
    assert policy.pk is not None
    assert (policy.completion_days, policy.verbal_order_hours, policy.suspension_days) == (
        30,
        48,
        14,
    )
    assert policy.delinquency_alert_percent == 50
    assert policy.reminder_days == [7, 3, 1]


def test_without_any_policy_row_the_defaults_apply():
    CompletionPolicy.objects.all().delete()
    policy = policy_for(None)
    assert policy.pk is None
    assert (policy.completion_days, policy.verbal_order_hours) == (30, 48)


# --- H&P ---------------------------------------------------------------------------------------


def test_an_hp_up_to_30_days_before_admission_with_an_update_is_on_time(chart):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT - 29 * D, written_at=ADMIT - H)
    chart.signed(encounter, PROGRESS, service_at=ADMIT + 20 * H, title="H&P update: no changes")
    analyse_at(encounter, ADMIT + 30 * H)
    assert open_deficiencies(encounter) == []
    assert late_ones(encounter) == {}


def test_an_hp_before_admission_without_an_update_needs_one(chart, personas):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT - 3 * D, written_at=ADMIT - H)
    chart.signed(encounter, PROGRESS, service_at=ADMIT + 2 * H, title="Progress note")
    analyse_at(encounter, ADMIT + 25 * H)
    (update,) = open_deficiencies(encounter)
    assert update.rule.code == "hp-update"
    assert update.kind == DeficiencyKind.MISSING
    assert update.responsible == personas.clinician
    assert update.due_at == ADMIT + 24 * H
    # A new H&P after admission counts as the update.
    chart.signed(encounter, HP, service_at=ADMIT + 26 * H)
    update.refresh_from_db()
    assert update.status == DeficiencyStatus.COMPLETED
    (late,) = late_ones(encounter).values()
    assert (late.kind, late.close_reason) == (DeficiencyKind.LATE, "recorded late")


def test_an_hp_older_than_30_days_cannot_be_updated(chart):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT - 31 * D, written_at=ADMIT - H)
    chart.signed(encounter, PROGRESS, service_at=ADMIT + H, title="H&P update")
    analyse_at(encounter, ADMIT + 25 * H)
    (missing,) = open_deficiencies(encounter)
    assert missing.rule.code == "hp-timely"
    assert missing.kind == DeficiencyKind.MISSING
    assert "older than 30 days" in missing.description


def test_an_hp_after_24_hours_is_recorded_late_and_closed_at_once(chart, personas):
    encounter = chart.admit()
    analyse_at(encounter, ADMIT + 25 * H)
    (missing,) = open_deficiencies(encounter)
    hp = chart.signed(encounter, HP, service_at=ADMIT + 26 * H)
    missing.refresh_from_db()
    assert missing.status == DeficiencyStatus.COMPLETED
    late = late_ones(encounter)["hp-timely"]
    assert late.kind == DeficiencyKind.LATE
    assert late.document == hp
    assert late.responsible == personas.clinician
    assert late.due_at == ADMIT + 24 * H
    assert late.closed_at == late.opened_at
    assert [e.event for e in late.events.all()] == ["opened", "completed"]
    # Recorded once, however often the record is analysed again.
    analyse_at(encounter, ADMIT + 40 * H)
    assert encounter.deficiencies.filter(kind=DeficiencyKind.LATE).count() == 1


def test_a_procedure_under_anaesthesia_before_the_hp_makes_it_late(chart):
    encounter = chart.admit()
    surgery = chart.surgery(encounter, ADMIT + 2 * H, anaesthesia="general")
    chart.signed(encounter, OP, service_at=ADMIT + 2 * H)
    chart.signed(encounter, HP, service_at=ADMIT + 5 * H)
    analyse_at(encounter, ADMIT + 30 * H)
    late = late_ones(encounter)["hp-before-procedure"]
    assert late.kind == DeficiencyKind.LATE
    assert late.key.endswith(str(surgery.public_id))
    assert late.due_at == ADMIT + 2 * H
    assert open_deficiencies(encounter) == []


def test_a_procedure_under_local_anaesthesia_needs_no_hp_first(chart):
    encounter = chart.admit()
    chart.surgery(encounter, ADMIT + 2 * H, anaesthesia="local")
    chart.signed(encounter, OP, service_at=ADMIT + 2 * H)
    chart.signed(encounter, HP, service_at=ADMIT + 5 * H)
    analyse_at(encounter, ADMIT + 30 * H)
    assert late_ones(encounter) == {}


def test_an_outpatient_surgery_without_any_hp_is_missing_one(chart, personas):
    encounter = chart.admit(cls=EncounterClass.OUTPATIENT)
    surgery = chart.surgery(encounter, ADMIT + H)
    chart.signed(encounter, OP, service_at=ADMIT + H)
    analyse_at(encounter, ADMIT + 3 * H)
    (missing,) = open_deficiencies(encounter)
    assert missing.rule.code == "hp-before-procedure"
    assert missing.key == f"hp-before-procedure:missing:{surgery.public_id}"
    assert missing.due_at == ADMIT + H
    assert missing.responsible == personas.clinician


# --- operative report --------------------------------------------------------------------------


def test_every_surgical_procedure_needs_an_operative_report(chart, personas):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT + H)
    first = chart.surgery(encounter, ADMIT + 3 * H)
    second = chart.surgery(encounter, ADMIT + 30 * H)
    chart.record(encounter, _not_surgical(ADMIT + 4 * H), ADMIT + 5 * H)
    chart.signed(encounter, OP, service_at=ADMIT + 3 * H)  # reports the first
    analyse_at(encounter, ADMIT + 60 * H)
    (missing,) = open_deficiencies(encounter)
    assert missing.rule.code == "operative-report"
    assert missing.key == f"operative-report:missing:{second.public_id}"
    assert missing.due_at == ADMIT + 54 * H
    assert missing.responsible == personas.clinician
    assert missing.document_type.loinc_code == OP
    assert str(first.public_id) not in "".join(d.key for d in open_deficiencies(encounter))


def _not_surgical(when):
    from tests.test_completion_analysis import procedure

    return procedure(when, category="103693007")  # diagnostic procedure


def test_a_late_operative_report_is_late_unless_a_postop_note_was_written(chart):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT + H)
    chart.surgery(encounter, ADMIT + 3 * H)
    chart.signed(encounter, OP, service_at=ADMIT + 3 * H, written_at=ADMIT + 40 * H)
    analyse_at(encounter, ADMIT + 41 * H)
    assert "operative-report" in late_ones(encounter)

    other = chart.admit(ADMIT + 10 * D)
    chart.signed(other, HP, service_at=ADMIT + 10 * D + H)
    chart.surgery(other, ADMIT + 10 * D + 3 * H)
    chart.signed(other, POSTOP, service_at=ADMIT + 10 * D + 4 * H, title="Brief op note")
    chart.signed(other, OP, service_at=ADMIT + 10 * D + 3 * H, written_at=ADMIT + 11 * D + 16 * H)
    analyse_at(other, ADMIT + 12 * D)
    assert late_ones(other) == {}
    assert open_deficiencies(other) == []


def test_a_postop_note_replaces_the_report_when_the_rule_says_so(chart, personas):
    from completion.rule_actions import do_change_rule

    rule = CompletionRule.objects.get(code="operative-report")
    params = {**rule.parameters, "postop_note_replaces_report": True}
    with at(ADMIT - 2 * D):
        do_change_rule(
            rule,
            changes={"parameters": params},
            effective_from=(ADMIT - 2 * D).date(),
            reason="Minor procedures: a procedure note is enough",
            acting_user=personas.administrator,
        )
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT + H)
    chart.surgery(encounter, ADMIT + 3 * H)
    chart.signed(encounter, POSTOP, service_at=ADMIT + 4 * H)
    analyse_at(encounter, ADMIT + 40 * H)
    assert open_deficiencies(encounter) == []


# --- discharge summary, final diagnosis --------------------------------------------------------


def test_a_discharge_summary_written_after_its_limit_is_late(chart):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT + H)
    chart.diagnosis(encounter)
    chart.discharge(encounter)
    chart.signed(encounter, DS, service_at=DISCHARGE, written_at=DISCHARGE + 50 * H)
    assert open_deficiencies(encounter) == []
    late = late_ones(encounter)["discharge-summary"]
    assert (late.kind, late.due_at) == (DeficiencyKind.LATE, DISCHARGE + 48 * H)
    assert record_of(encounter).status == "complete"


def test_an_observation_stay_needs_no_discharge_summary(chart):
    encounter = chart.admit(cls=EncounterClass.OBSERVATION)
    chart.signed(encounter, HP, service_at=ADMIT + H)
    chart.diagnosis(encounter)
    chart.discharge(encounter)
    assert open_deficiencies(encounter) == []


def test_recording_the_final_diagnosis_closes_its_deficiency(chart):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT + H)
    chart.signed(encounter, DS, service_at=DISCHARGE - H)
    chart.diagnosis(encounter, category="problem-list-item")  # not a diagnosis of the stay
    chart.discharge(encounter)
    (missing,) = open_deficiencies(encounter)
    assert missing.rule.code == "final-diagnosis"
    chart.diagnosis(encounter, DISCHARGE + 3 * H)  # through the clinical action's save
    missing.refresh_from_db()
    assert missing.status == DeficiencyStatus.COMPLETED
    assert record_of(encounter).status == "complete"


def test_a_diagnosis_entered_in_error_does_not_count(chart, personas):
    from clinical.actions import do_mark_clinical_entry_in_error

    encounter = chart.complete_stay()
    (entry,) = encounter.clinical_entries.all()
    with at(DISCHARGE + D):
        chart.run(
            do_mark_clinical_entry_in_error,
            entry,
            reason="Wrong patient",
            acting_user=personas.administrator,
        )
    (missing,) = open_deficiencies(encounter)
    assert missing.rule.code == "final-diagnosis"


# --- authentication ----------------------------------------------------------------------------


def test_a_note_with_template_blanks_is_incomplete_until_finished(chart, personas):
    encounter = chart.complete_stay()
    draft = chart.write(
        encounter,
        PROGRESS,
        service_at=DISCHARGE - 3 * H,
        body="Assessment: ***\nPlan: ***",
        author=personas.other_clinician,
    )
    (incomplete,) = open_deficiencies(encounter)
    assert incomplete.kind == DeficiencyKind.INCOMPLETE
    assert incomplete.responsible == personas.other_clinician
    with at(DISCHARGE + 2 * H):
        chart.run(
            documents.do_revise_draft,
            draft,
            body="Assessment: improving.\nPlan: home.",
            acting_user=personas.other_clinician,
        )
    incomplete.refresh_from_db()
    assert incomplete.status == DeficiencyStatus.COMPLETED
    (unsigned,) = open_deficiencies(encounter)
    assert unsigned.kind == DeficiencyKind.UNSIGNED
    chart.sign(draft, DISCHARGE + 3 * H)
    assert open_deficiencies(encounter) == []


def test_an_addendum_is_signed_by_its_own_author(chart, personas):
    encounter = chart.complete_stay()
    summary = encounter.documents.get(doc_type__loinc_code=DS)
    with at(DISCHARGE + D):
        addendum = chart.run(
            documents.do_add_addendum,
            summary,
            body="Pending culture: negative.",
            acting_user=personas.other_clinician,
        )
    (unsigned,) = open_deficiencies(encounter)
    assert (unsigned.document, unsigned.responsible) == (addendum, personas.other_clinician)


def test_filed_documents_are_authenticated_on_paper(chart, personas, settings, tmp_path):
    from documents.testing import pdf, temporary_storage

    temporary_storage(settings, tmp_path)
    encounter = chart.complete_stay()
    with at(DISCHARGE + D):
        chart.run(
            documents.do_create_document,
            chart.patient,
            doc_type=DocumentType.objects.get(loinc_code="11503-0"),
            title="Transfer records",
            service_at=ADMIT,
            encounter=encounter,
            source="scanned",
            attachment=pdf(),
            acting_user=personas.technician,
        )
    assert open_deficiencies(encounter) == []


# --- verbal orders -----------------------------------------------------------------------------


def _order(chart, encounter, given_at, mode="verbal", **kw):
    return chart.write(
        encounter,
        ORDERS,
        service_at=given_at,
        title="Orders",
        body="Acetaminophen 650 mg by mouth every 6 hours as needed",
        order_mode=mode,
        **kw,
    )


def test_a_verbal_order_unsigned_past_the_limit_is_a_deficiency_of_its_author(chart, personas):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT + H)
    order = _order(chart, encounter, ADMIT + 2 * H, "telephone", author=personas.other_clinician)
    analyse_at(encounter, ADMIT + 49 * H)
    assert open_deficiencies(encounter) == []  # 48 h limit not passed yet
    analyse_at(encounter, ADMIT + 51 * H)
    (unsigned,) = open_deficiencies(encounter)
    assert (unsigned.rule.code, unsigned.kind) == ("verbal-orders", DeficiencyKind.UNSIGNED)
    assert unsigned.responsible == personas.other_clinician
    assert unsigned.due_at == ADMIT + 50 * H
    assert unsigned.document == order
    chart.sign(order, ADMIT + 52 * H)
    unsigned.refresh_from_db()
    assert unsigned.status == DeficiencyStatus.COMPLETED
    assert late_ones(encounter)["verbal-orders"].kind == DeficiencyKind.LATE


def test_a_verbal_order_signed_in_time_is_fine(chart):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT + H)
    order = _order(chart, encounter, ADMIT + 2 * H)
    chart.sign(order, ADMIT + 40 * H)
    analyse_at(encounter, ADMIT + 60 * H)
    assert open_deficiencies(encounter) == []
    assert late_ones(encounter) == {}


def test_the_facility_policy_sets_the_verbal_order_limit(chart, personas):
    CompletionPolicy.objects.create(
        facility=personas.facility,
        effective_from=dt.date(2020, 1, 1),
        verbal_order_hours=24,
        reminder_days=[3],
        created_at=ADMIT,
    )
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT + H)
    _order(chart, encounter, ADMIT + 2 * H)
    analyse_at(encounter, ADMIT + 27 * H)
    (unsigned,) = open_deficiencies(encounter)
    assert unsigned.due_at == ADMIT + 26 * H


def test_a_written_order_is_an_ordinary_document(chart):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT + H)
    _order(chart, encounter, ADMIT + 2 * H, "written")
    analyse_at(encounter, ADMIT + 27 * H)
    (unsigned,) = open_deficiencies(encounter)
    assert unsigned.rule.code == "authentication"


@pytest.mark.parametrize(
    "code, mode, words",
    [
        (PROGRESS, "verbal", "Only provider orders have an order mode"),
        (ORDERS, "shouted", "Choose written, verbal or telephone"),
    ],
)
def test_an_order_mode_is_checked(chart, code, mode, words):
    encounter = chart.admit()
    with pytest.raises(ValidationError) as excinfo:
        chart.write(encounter, code, service_at=ADMIT + H, order_mode=mode)
    assert words in str(excinfo.value.message_dict["order_mode"])
    assert not encounter.documents.exists()


# --- which rules apply -------------------------------------------------------------------------


def test_rules_apply_by_class_facility_and_admission_date(personas):
    on = dt.date(2025, 6, 2)
    inpatient = {
        r.code
        for r in rules_in_force(facility_id=personas.facility.pk, encounter_class="IMP", on=on)
    }
    emergency = {
        r.code
        for r in rules_in_force(facility_id=personas.facility.pk, encounter_class="EMER", on=on)
    }
    assert "discharge-summary" in inpatient
    assert emergency == {"operative-report", "authentication", "verbal-orders"}
    assert (
        rules_in_force(
            facility_id=personas.facility.pk, encounter_class="IMP", on=dt.date(1999, 1, 1)
        )
        == []
    )


def test_a_facility_version_of_a_rule_overrides_the_default_there_only(personas):
    default = CompletionRule.objects.get(code="discharge-summary")
    CompletionRule.objects.create(
        code="discharge-summary",
        kind=RuleKind.DISCHARGE_SUMMARY,
        name="Discharge summary within 7 days",
        encounter_classes=["IMP", "OBSENC"],
        facility=personas.facility,
        document_type=default.document_type,
        parameters={"hours_after_discharge": 168},
        effective_from=dt.date(2024, 1, 1),
        created_at=ADMIT,
    )
    other = make_facility("nrth", "North Campus")
    on = dt.date(2025, 6, 2)
    here = {
        r.code: r
        for r in rules_in_force(facility_id=personas.facility.pk, encounter_class="IMP", on=on)
    }
    there = {r.code: r for r in rules_in_force(facility_id=other.pk, encounter_class="IMP", on=on)}
    assert here["discharge-summary"].facility_id == personas.facility.pk
    assert there["discharge-summary"] == default
    observation = {
        r.code
        for r in rules_in_force(facility_id=personas.facility.pk, encounter_class="OBSENC", on=on)
    }
    assert "discharge-summary" in observation


@pytest.mark.parametrize(
    "kind, parameters, words",
    [
        (RuleKind.HISTORY_PHYSICAL, {"hours_afterr": 24}, "Unknown parameter 'hours_afterr'"),
        (RuleKind.HISTORY_PHYSICAL, {"hours_after": "a day"}, "must be a whole number"),
        (RuleKind.HISTORY_PHYSICAL, {"days_before": 400}, "between 0 and 365"),
        (RuleKind.OPERATIVE_REPORT, {"postop_note_replaces_report": "maybe"}, "true or false"),
        (RuleKind.REQUIRED_DOCUMENT, {"anchor": "transfer"}, "one of admission, discharge"),
        (RuleKind.AUTHENTICATION, {"incomplete_markers": "<b>"}, "not a valid entry"),
        (RuleKind.HP_BEFORE_PROCEDURE, {"anaesthesia_extension": "somewhere"}, "must be a URL"),
    ],
)
def test_bad_parameters_are_refused_naming_them(kind, parameters, words):
    with pytest.raises(ValidationError) as excinfo:
        validate_parameters(kind, parameters)
    assert words in " ".join(excinfo.value.message_dict["parameters"])


def test_every_kind_has_its_parameters_with_valid_defaults():
    for kind in RuleKind.values:
        defaults = {name: spec.default for name, spec in PARAMETERS[kind].items()}
        assert validate_parameters(kind, {}) == defaults
