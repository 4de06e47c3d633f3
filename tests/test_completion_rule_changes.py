"""Changing completion rules and the policy: new version rows with who, when and why,
audited, permission-checked, validated, and followed by a re-analysis of the open
records they affect — open deficiencies follow the new version, are voided when the
rule no longer applies, and complete records are not reopened."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from accounts.access import AccessDenied
from audit.models import Outcome
from completion.models import (
    CompletionPolicy,
    CompletionRule,
    DeficiencyStatus,
    RecordStatus,
    RuleKind,
)
from completion.rule_actions import (
    RuleConflict,
    do_add_rule,
    do_change_policy,
    do_change_rule,
    do_retire_rule,
)
from tests.test_completion_analysis import (
    ADMIT,
    DISCHARGE,
    HP,
    Chart,
    at,
    by_rule,
    committer,
    open_deficiencies,
    record_of,
)

pytestmark = pytest.mark.django_db
CHANGE_DAY = dt.date(2025, 5, 1)
AFTER = DISCHARGE + dt.timedelta(days=2)


@pytest.fixture
def chart(personas, django_capture_on_commit_callbacks):
    return Chart(personas, committer(django_capture_on_commit_callbacks))


@pytest.fixture
def run(chart):
    """Call a rule action at AFTER, with its re-analysis run on commit."""

    def call(fn, *args, **kwargs):
        with at(AFTER):
            return chart.run(fn, *args, **kwargs)

    return call


def rule(code) -> CompletionRule:
    return CompletionRule.objects.get(code=code, superseded_by__isnull=True)


def stay_missing_its_summary(chart):
    encounter = chart.admit()
    chart.signed(encounter, HP, service_at=ADMIT + dt.timedelta(hours=1))
    chart.diagnosis(encounter)
    chart.discharge(encounter)
    return encounter


# --- changing a rule ---------------------------------------------------------------------------


def test_a_change_is_a_new_version_and_open_deficiencies_follow_it(
    chart, run, personas, audit_rows
):
    encounter = stay_missing_its_summary(chart)
    (missing,) = open_deficiencies(encounter)
    old = rule("discharge-summary")
    new = run(
        do_change_rule,
        old,
        changes={"parameters": {"hours_after_discharge": 72}},
        effective_from=CHANGE_DAY,
        reason="Bylaws now allow 72 hours",
        acting_user=personas.administrator,
    )
    old.refresh_from_db()
    assert old.effective_to == CHANGE_DAY - dt.timedelta(days=1)
    assert old.active and old.parameters["hours_after_discharge"] == 48
    assert (new.supersedes, new.effective_from, new.created_by) == (
        old,
        CHANGE_DAY,
        personas.administrator,
    )
    assert new.change_reason == "Bylaws now allow 72 hours"
    assert new.parameters["hours_after_discharge"] == 72
    assert (new.code, new.kind, new.document_type) == (old.code, old.kind, old.document_type)

    missing.refresh_from_db()
    assert missing.status == DeficiencyStatus.OPEN  # the same deficiency, kept
    assert missing.rule == new
    assert missing.due_at == DISCHARGE + dt.timedelta(hours=72)
    assert missing.events.last().event == "updated"

    (event,) = audit_rows(object_type="completion_rule")
    assert event.actor == personas.administrator
    assert event.reason == "Bylaws now allow 72 hours"
    assert event.detail["fields"] == ["parameters"]
    assert event.detail["supersedes"] == str(old.public_id)


def test_a_rule_that_no_longer_covers_the_class_voids_its_deficiencies(chart, run, personas):
    encounter = stay_missing_its_summary(chart)
    (missing,) = open_deficiencies(encounter)
    run(
        do_change_rule,
        rule("discharge-summary"),
        changes={"encounter_classes": ["OBSENC"]},
        effective_from=CHANGE_DAY,
        reason="Inpatients get a transfer summary instead",
        acting_user=personas.administrator,
    )
    missing.refresh_from_db()
    assert missing.status == DeficiencyStatus.VOID
    assert missing.close_reason == "rule discharge-summary no longer applies to this encounter"
    assert record_of(encounter).status == RecordStatus.COMPLETE


def test_encounters_admitted_before_the_change_keep_the_old_version(chart, run, personas):
    encounter = stay_missing_its_summary(chart)
    run(
        do_change_rule,
        rule("discharge-summary"),
        changes={"encounter_classes": ["OBSENC"]},
        effective_from=ADMIT.date() + dt.timedelta(days=1),
        reason="From tomorrow: observation only",
        acting_user=personas.administrator,
    )
    (missing,) = open_deficiencies(encounter)
    assert missing.rule.code == "discharge-summary"


def test_a_change_on_the_versions_first_day_replaces_it(run, personas):
    first = run(
        do_add_rule,
        code="consent-form",
        kind=RuleKind.REQUIRED_DOCUMENT,
        name="Consent form for every surgery stay",
        encounter_classes=["IMP"],
        document_type="59284-0",
        parameters={"anchor": "admission", "hours": 24},
        effective_from=CHANGE_DAY,
        reason="Consent audit finding",
        acting_user=personas.administrator,
    )
    second = run(
        do_change_rule,
        first,
        changes={"name": "Signed consent form"},
        effective_from=CHANGE_DAY,
        reason="Typo in the name",
        acting_user=personas.administrator,
    )
    first.refresh_from_db()
    assert (first.active, first.effective_to) == (False, CHANGE_DAY)
    assert second.active and second.supersedes == first


@pytest.mark.parametrize(
    "changes, effective_from, key, words",
    [
        ({"parameters": {"hours_after_discharge": 48}}, CHANGE_DAY, "__all__", "Nothing to change"),
        ({"kind": "authentication"}, CHANGE_DAY, "__all__", "cannot be changed: kind"),
        ({"parameters": {"hours": 3}}, CHANGE_DAY, "parameters", "Unknown parameter 'hours'"),
        ({"encounter_classes": []}, CHANGE_DAY, "encounter_classes", "at least one"),
        (
            {"encounter_classes": ["ICU"]},
            CHANGE_DAY,
            "encounter_classes",
            "Unknown encounter class",
        ),
        ({"document_type": None}, CHANGE_DAY, "document_type", "needs the document type"),
        ({"name": "<b>x</b>"}, CHANGE_DAY, "name", "markup"),
        ({"name": "Summary"}, "2025-05-01", "effective_from", "as a date"),
        ({"name": "Summary"}, dt.date(1999, 1, 1), "effective_from", "before the version"),
    ],
)
def test_a_bad_change_is_refused_and_writes_nothing(
    run, personas, changes, effective_from, key, words
):
    before = CompletionRule.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        run(
            do_change_rule,
            rule("discharge-summary"),
            changes=changes,
            effective_from=effective_from,
            reason="Testing the refusal",
            acting_user=personas.administrator,
        )
    assert words in " ".join(excinfo.value.message_dict[key])
    assert CompletionRule.objects.count() == before
    assert rule("discharge-summary").effective_to is None


def test_a_replaced_version_cannot_be_changed_again(run, personas):
    old = rule("discharge-summary")
    run(
        do_change_rule,
        old,
        changes={"name": "Discharge summary (bylaws)"},
        effective_from=CHANGE_DAY,
        reason="Clearer name",
        acting_user=personas.administrator,
    )
    with pytest.raises(RuleConflict, match="already replaced"):
        run(
            do_change_rule,
            old,
            changes={"name": "Another"},
            effective_from=CHANGE_DAY + dt.timedelta(days=1),
            reason="Stale form",
            acting_user=personas.administrator,
        )


def test_only_rule_managers_change_rules_and_the_refusal_is_audited(run, personas, audit_rows):
    with pytest.raises(AccessDenied):
        run(
            do_change_rule,
            rule("discharge-summary"),
            changes={"name": "Mine now"},
            effective_from=CHANGE_DAY,
            reason="I would like that",
            acting_user=personas.clinician,
        )
    (event,) = audit_rows(object_type="completion_rule")
    assert event.outcome == Outcome.DENIED
    assert event.actor == personas.clinician
    with pytest.raises(AccessDenied):
        run(
            do_change_policy,
            effective_from=CHANGE_DAY,
            completion_days=10,
            reason="Faster",
            acting_user=personas.technician,
        )


# --- retiring and adding -----------------------------------------------------------------------


def test_retiring_a_rule_voids_its_open_deficiencies(chart, run, personas):
    encounter = stay_missing_its_summary(chart)
    (missing,) = open_deficiencies(encounter)
    current = rule("discharge-summary")
    retired = run(
        do_retire_rule,
        current,
        last_day=CHANGE_DAY,
        reason="Replaced by the transfer summary rule",
        acting_user=personas.administrator,
    )
    current.refresh_from_db()
    assert current.effective_to == CHANGE_DAY
    assert (retired.active, retired.effective_from) == (False, CHANGE_DAY + dt.timedelta(days=1))
    assert retired.supersedes == current
    missing.refresh_from_db()
    assert missing.status == DeficiencyStatus.VOID
    assert [e.event for e in missing.events.all()][-1] == "void"
    with pytest.raises(RuleConflict, match="already retired"):
        run(
            do_retire_rule,
            retired,
            last_day=CHANGE_DAY,
            reason="Twice",
            acting_user=personas.administrator,
        )


def test_a_new_rule_applies_to_open_records_but_does_not_reopen_complete_ones(chart, run, personas):
    complete = chart.complete_stay()
    other = Chart(chart.p, chart.run)
    still_open = stay_missing_its_summary(other)
    new = run(
        do_add_rule,
        code="consent-form",
        kind=RuleKind.REQUIRED_DOCUMENT,
        name="Consent form within 24 hours of admission",
        encounter_classes=["IMP"],
        document_type="59284-0",
        parameters={"anchor": "admission", "hours": 24},
        effective_from=CHANGE_DAY,
        reason="Consent audit finding",
        acting_user=personas.administrator,
        facility=personas.facility,
    )
    assert new.facility == personas.facility
    assert set(by_rule(still_open)) == {"discharge-summary", "consent-form"}
    assert by_rule(still_open)["consent-form"].due_at == ADMIT + dt.timedelta(hours=24)
    assert record_of(complete).status == RecordStatus.COMPLETE
    assert open_deficiencies(complete) == []


@pytest.mark.parametrize(
    "values, key, words",
    [
        ({"code": "Bad Code!"}, "code", "lower-case letters"),
        ({"code": "hp-timely", "kind": RuleKind.AUTHENTICATION}, "code", "another kind"),
        ({"code": "authentication", "kind": RuleKind.AUTHENTICATION}, "code", "already exists"),
        ({"kind": "magic"}, "kind", "Choose what the rule checks"),
        ({"document_type": "00000-0"}, "document_type", "No document type"),
        ({"reason": ""}, "reason", "The reason is required"),
        ({"effective_from": None}, "effective_from", "as a date"),
    ],
)
def test_a_bad_new_rule_is_refused(run, personas, values, key, words):
    fields = {
        "code": "consent-form",
        "kind": RuleKind.REQUIRED_DOCUMENT,
        "name": "Consent form",
        "encounter_classes": ["IMP"],
        "document_type": "59284-0",
        "effective_from": CHANGE_DAY,
        "reason": "Consent audit finding",
        **values,
    }
    before = CompletionRule.objects.count()
    with pytest.raises(ValidationError) as excinfo:
        run(do_add_rule, acting_user=personas.administrator, **fields)
    assert words in " ".join(excinfo.value.message_dict[key])
    assert CompletionRule.objects.count() == before


# --- the policy --------------------------------------------------------------------------------


def test_a_policy_change_moves_the_delinquency_date_of_open_records(chart, run, personas):
    encounter = stay_missing_its_summary(chart)
    policy = run(
        do_change_policy,
        facility=personas.facility,
        effective_from=CHANGE_DAY,
        completion_days=21,
        reminder_days=[5, 1],
        reason="Medical staff bylaws amended",
        acting_user=personas.administrator,
    )
    assert (policy.completion_days, policy.verbal_order_hours, policy.reminder_days) == (
        21,
        48,
        [5, 1],
    )
    assert policy.created_by == personas.administrator
    (missing,) = open_deficiencies(encounter)
    assert missing.delinquent_at == DISCHARGE + dt.timedelta(days=21)
    assert record_of(encounter).due_at == DISCHARGE + dt.timedelta(days=21)
    assert CompletionPolicy.objects.count() == 2  # the default is kept


@pytest.mark.parametrize(
    "values, key, words",
    [
        ({"completion_days": 0}, "completion_days", "between 1 and 365"),
        ({"completion_days": "soon"}, "completion_days", "whole number"),
        ({"verbal_order_hours": 1000}, "verbal_order_hours", "between 1 and 720"),
        ({"reminder_days": [40]}, "reminder_days", "fewer than the days"),
        ({"reminder_days": ["x"]}, "reminder_days", "whole numbers"),
        ({"delinquency_alert_percent": "-5"}, "delinquency_alert_percent", "above 0"),
        ({"reason": "no"}, "reason", "at least 5"),
    ],
)
def test_a_bad_policy_is_refused(run, personas, values, key, words):
    fields = {"effective_from": CHANGE_DAY, "reason": "Bylaws amended", **values}
    with pytest.raises(ValidationError) as excinfo:
        run(do_change_policy, acting_user=personas.administrator, **fields)
    assert words in " ".join(excinfo.value.message_dict[key])
    assert CompletionPolicy.objects.count() == 1
