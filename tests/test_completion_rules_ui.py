"""Administrators edit the completion rules and policy in the UI: each change a new
version with an effective date and a reason; parameters as typed fields per rule kind."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from audit.models import Action, Outcome
from completion.models import CompletionPolicy, CompletionRule
from recordroom.testing import make_user, sign_in

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2025, 6, 17, 12, 0, tzinfo=ZoneInfo("America/New_York"))
TODAY = dt.date(2025, 6, 17)


@pytest.fixture(autouse=True)
def _clock(settings):
    settings.TIME_ZONE = "America/New_York"
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def admin(client, personas):
    return sign_in(client, personas.administrator)


def hp_rule() -> CompletionRule:
    return CompletionRule.objects.get(code="hp-timely", facility=None, supersedes=None)


def edit_data(**overrides) -> dict:
    data = {
        "name": "History and physical on time",
        "description": "Bylaws article 7.",
        "citation": "42 CFR 482.24(c)(4)(i)",
        "encounter_classes": ["IMP", "OBSENC"],
        "facility": "",
        "document_type": "34117-2",
        "param_days_before": "30",
        "param_hours_after": "12",
        "effective_from": "2025-07-01",
        "reason": "Medical executive committee shortened the limit",
    }
    data.update(overrides)
    return data


# --- the list and a rule ----------------------------------------------------------------------


def test_the_rules_page_requires_login(client, db):
    response = client.get("/completion/rules/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(
    "path",
    ["/completion/rules/", "/completion/rules/new/", "/completion/policy/"],
)
def test_a_clinician_is_refused_and_it_is_audited(client, personas, audit_rows, path):
    sign_in(client, personas.clinician)
    assert client.get(path).status_code == 403
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.clinician
    assert denied.reason == "lacks permission completion.manage_rules"


def test_a_technician_cannot_see_or_change_a_rule(client, personas, audit_rows):
    rule = hp_rule()
    sign_in(client, personas.technician)
    assert client.get(f"/completion/rules/{rule.public_id}/").status_code == 403
    response = client.post(f"/completion/rules/{rule.public_id}/edit/", edit_data())
    assert response.status_code == 403
    assert len(audit_rows(outcome=Outcome.DENIED)) == 2
    assert CompletionRule.objects.filter(code="hp-timely").count() == 1


def test_the_list_shows_the_rules_in_force(admin):
    page = admin.get("/completion/rules/").content.decode()
    assert "History and physical within 30 days" in page
    assert "hp-timely" in page and "discharge-summary" in page
    assert "in force" in page


def test_a_rule_shows_its_parameters_and_history(admin):
    rule = hp_rule()
    page = admin.get(f"/completion/rules/{rule.public_id}/").content.decode()
    assert "Oldest H&amp;P accepted, in days before admission." in page
    assert 'data-param="hours_after">24<' in page
    assert "US hospital defaults" in page


def test_an_unknown_rule_is_not_found(admin):
    assert admin.get("/completion/rules/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_another_facilitys_version_is_not_found(admin, personas):
    rule = hp_rule()
    theirs = CompletionRule.objects.create(
        code=rule.code,
        kind=rule.kind,
        name="Their H&P rule",
        encounter_classes=["IMP"],
        facility=personas.other_facility,
        document_type=rule.document_type,
        parameters=rule.parameters,
        effective_from=TODAY,
        created_at=NOW,
    )
    assert admin.get(f"/completion/rules/{theirs.public_id}/").status_code == 404
    assert "Their H&amp;P rule" not in admin.get("/completion/rules/").content.decode()


# --- changing a rule --------------------------------------------------------------------------


def test_the_edit_form_has_typed_parameter_fields(admin):
    page = admin.get(f"/completion/rules/{hp_rule().public_id}/edit/").content.decode()
    assert 'type="number" name="param_hours_after" value="24"' in page
    assert 'name="param_days_before"' in page
    assert 'name="parameters"' not in page
    assert 'type="date" name="effective_from"' in page


def test_an_administrator_changes_a_rule_from_a_date(admin, personas, audit_rows):
    rule = hp_rule()
    response = admin.post(f"/completion/rules/{rule.public_id}/edit/", edit_data())
    assert response.status_code == 302
    new = CompletionRule.objects.get(supersedes=rule)
    assert response["Location"] == f"/completion/rules/{new.public_id}/"
    assert new.parameters["hours_after"] == 12 and new.encounter_classes == ["IMP", "OBSENC"]
    assert new.effective_from == dt.date(2025, 7, 1) and new.created_by == personas.administrator
    assert new.change_reason == "Medical executive committee shortened the limit"
    rule.refresh_from_db()
    assert rule.effective_to == dt.date(2025, 6, 30)
    (event,) = audit_rows(action=Action.UPDATE, object_type="completion_rule")
    assert event.actor == personas.administrator
    listed = admin.get("/completion/rules/").content.decode()
    assert "scheduled" in listed and "2025-07-01" in listed


def test_a_parameter_out_of_range_is_refused_on_its_field(admin):
    rule = hp_rule()
    response = admin.post(
        f"/completion/rules/{rule.public_id}/edit/", edit_data(param_hours_after="99999")
    )
    assert response.status_code == 400
    assert b"less than or equal to 720" in response.content
    assert CompletionRule.objects.filter(code="hp-timely").count() == 1


def test_missing_reason_and_classes_are_named(admin):
    response = admin.post(
        f"/completion/rules/{hp_rule().public_id}/edit/",
        edit_data(reason="", encounter_classes=[]),
    )
    assert response.status_code == 400
    assert b"Choose at least one encounter class." in response.content
    assert b"This field is required." in response.content


def test_markup_in_a_name_is_refused_by_the_action(admin):
    response = admin.post(
        f"/completion/rules/{hp_rule().public_id}/edit/",
        edit_data(name="<script>alert(1)</script>"),
    )
    assert response.status_code == 400
    assert b"cannot contain markup" in response.content
    assert b"<script>alert" not in response.content


def test_a_change_before_the_version_started_is_refused(admin):
    response = admin.post(
        f"/completion/rules/{hp_rule().public_id}/edit/",
        edit_data(effective_from="1990-01-01"),
    )
    assert response.status_code == 400
    assert b"cannot take effect before the version it replaces" in response.content


def test_nothing_changed_is_said(admin):
    rule = hp_rule()
    response = admin.post(
        f"/completion/rules/{rule.public_id}/edit/",
        edit_data(
            name=rule.name,
            description=rule.description,
            citation=rule.citation,
            encounter_classes=rule.encounter_classes,
            param_hours_after="24",
        ),
    )
    assert response.status_code == 400
    assert b"Nothing to change" in response.content


def test_a_facility_gets_its_own_version(admin, personas):
    rule = hp_rule()
    response = admin.post(
        f"/completion/rules/{rule.public_id}/edit/",
        edit_data(facility=str(personas.facility.public_id)),
    )
    assert response.status_code == 302
    own = CompletionRule.objects.get(code="hp-timely", facility=personas.facility)
    assert own.parameters["hours_after"] == 12
    rule.refresh_from_db()
    assert rule.effective_to is None  # the version for all facilities goes on elsewhere


def test_a_replaced_version_sends_the_editor_to_the_current_one(admin):
    rule = hp_rule()
    admin.post(f"/completion/rules/{rule.public_id}/edit/", edit_data())
    response = admin.get(f"/completion/rules/{rule.public_id}/edit/")
    assert response.status_code == 302
    assert response["Location"] == f"/completion/rules/{rule.public_id}/"


# --- adding and retiring ----------------------------------------------------------------------


def test_adding_starts_with_the_kind(admin):
    page = admin.get("/completion/rules/new/").content.decode()
    assert 'name="kind"' in page and "What the rule checks" in page
    form = admin.get("/completion/rules/new/?kind=required_document").content.decode()
    assert 'name="param_anchor"' in form and 'name="param_hours"' in form
    assert 'name="document_type"' in form
    assert admin.get("/completion/rules/new/?kind=nonsense").status_code == 400


def test_an_administrator_adds_a_rule(admin, personas, audit_rows):
    data = {
        "kind": "required_document",
        "code": "consult-note",
        "name": "Consultation note within 48 hours",
        "encounter_classes": ["IMP"],
        "facility": str(personas.facility.public_id),
        "document_type": "11488-4",
        "param_anchor": "admission",
        "param_hours": "48",
        "effective_from": "2025-07-01",
        "reason": "Consultations policy adopted",
    }
    response = admin.post("/completion/rules/new/", data)
    assert response.status_code == 302
    rule = CompletionRule.objects.get(code="consult-note")
    assert rule.facility == personas.facility and rule.document_type.loinc_code == "11488-4"
    assert rule.parameters == {"anchor": "admission", "hours": 48}
    assert audit_rows(action=Action.CREATE, object_type="completion_rule")
    again = admin.post("/completion/rules/new/", data)
    assert again.status_code == 400 and b"already exists" in again.content


def test_a_list_parameter_is_typed_as_text(admin):
    data = {
        "kind": "discharge_summary",
        "code": "ds-or-death-note",
        "name": "Discharge summary or death note",
        "encounter_classes": ["IMP"],
        "facility": "",
        "document_type": "18842-5",
        "param_hours_after_discharge": "72",
        "param_also_accepted_types": "34133-9,\n 11506-3",
        "effective_from": "2025-07-01",
        "reason": "Death notes accepted",
    }
    assert admin.post("/completion/rules/new/", data).status_code == 302
    rule = CompletionRule.objects.get(code="ds-or-death-note")
    assert rule.parameters["also_accepted_types"] == ["34133-9", "11506-3"]


def test_retiring_refuses_get_and_needs_login_and_permission(client, personas, audit_rows):
    rule = hp_rule()
    path = f"/completion/rules/{rule.public_id}/retire/"
    data = {"last_day": "2025-06-30", "reason": "Replaced by the bylaws"}
    response = client.post(path, data)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    sign_in(client, personas.coder)
    assert client.post(path, data).status_code == 403
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.coder
    client.logout()
    sign_in(client, personas.administrator)
    assert client.get(path).status_code == 405
    rule.refresh_from_db()
    assert rule.active and rule.effective_to is None


def test_an_administrator_retires_a_rule(admin, personas):
    rule = hp_rule()
    response = admin.post(
        f"/completion/rules/{rule.public_id}/retire/",
        {"last_day": "2025-06-30", "reason": "Replaced by the bylaws"},
    )
    assert response.status_code == 302
    retired = CompletionRule.objects.get(supersedes=rule)
    assert not retired.active and retired.effective_from == dt.date(2025, 7, 1)
    page = admin.get(f"/completion/rules/{retired.public_id}/").content.decode()
    assert "switched off" in page and "Replaced by the bylaws" in page


def test_retiring_without_a_reason_is_refused(admin):
    rule = hp_rule()
    response = admin.post(f"/completion/rules/{rule.public_id}/retire/", {"last_day": "2025-06-30"})
    assert response.status_code == 400
    assert b"This field is required." in response.content
    assert CompletionRule.objects.filter(code="hp-timely").count() == 1


# --- the policy --------------------------------------------------------------------------------


def test_the_policy_page_shows_every_scope(admin, personas):
    page = admin.get("/completion/policy/").content.decode()
    assert "All facilities" in page and "RecordRoom General Hospital" in page
    assert "Other Valley Clinic" not in page
    assert "as for all facilities" in page
    assert "7, 3, 1" in page


def test_an_administrator_changes_the_policy_for_a_facility(admin, personas, audit_rows):
    data = {
        "facility": str(personas.facility.public_id),
        "completion_days": "21",
        "verbal_order_hours": "24",
        "delinquency_alert_percent": "40",
        "suspension_days": "7",
        "reminder_days": "5, 2",
        "effective_from": "2025-07-01",
        "reason": "State law changed",
    }
    response = admin.post("/completion/policy/", data)
    assert response.status_code == 302
    assert response["Location"] == f"/completion/policy/?facility={personas.facility.public_id}"
    policy = CompletionPolicy.objects.get(facility=personas.facility)
    assert (policy.completion_days, policy.verbal_order_hours, policy.reminder_days) == (
        21,
        24,
        [5, 2],
    )
    assert policy.effective_from == dt.date(2025, 7, 1)
    (event,) = audit_rows(action=Action.UPDATE, object_type="completion_policy")
    assert event.actor == personas.administrator and event.reason == "State law changed"
    page = admin.get(response["Location"]).content.decode()
    assert "2025-07-01 (scheduled)" in page


def test_bad_policy_values_are_named_and_nothing_is_saved(admin):
    base = {
        "facility": "all",
        "completion_days": "30",
        "verbal_order_hours": "48",
        "delinquency_alert_percent": "50",
        "suspension_days": "14",
        "effective_from": "2025-07-01",
        "reason": "Tidy up",
    }
    before = CompletionPolicy.objects.count()
    response = admin.post("/completion/policy/", {**base, "reminder_days": "7, x"})
    assert response.status_code == 400 and b"is not a whole number of days" in response.content
    response = admin.post("/completion/policy/", {**base, "reminder_days": "45"})
    assert response.status_code == 400 and b"fewer than 30 days" in response.content
    response = admin.post(
        "/completion/policy/", {**base, "reminder_days": "", "completion_days": "0"}
    )
    assert response.status_code == 400
    assert CompletionPolicy.objects.count() == before


def test_another_facilitys_policy_is_not_found(admin, personas):
    response = admin.get(f"/completion/policy/?facility={personas.other_facility.public_id}")
    assert response.status_code == 404


def test_an_administrator_of_both_facilities_sees_both(client, personas):
    both = make_user("bea.both", "him_administrator")
    both.facilities.add(personas.facility, personas.other_facility)
    sign_in(client, both)
    page = client.get("/completion/policy/").content.decode()
    assert "Other Valley Clinic" in page
