"""Chart completion on the home page and in the navigation: a clinician's records to
complete, the department's incomplete and delinquent records and this month's rate."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.access import AccessDenied
from audit.models import Outcome
from completion.models import (
    Deficiency,
    DeficiencyKind,
    DeficiencyStatus,
    InboxMessage,
    RecordCompletion,
    RecordStatus,
)
from completion.summary import clinician_summary, delinquency_rate, him_summary, month_bounds
from encounters.models import Encounter, EncounterStatus
from recordroom.testing import register_patient, sign_in

pytestmark = pytest.mark.django_db
LOCAL = ZoneInfo("America/New_York")
NOW = dt.datetime(2025, 6, 17, 12, 0, tzinfo=LOCAL)


@pytest.fixture(autouse=True)
def _clock(settings):
    settings.TIME_ZONE = "America/New_York"
    with time_machine.travel(NOW, tick=False):
        yield


def encounter(personas, patient, *, ended, facility=None, status=None, klass="IMP"):
    started = ended - dt.timedelta(days=3)
    return Encounter.objects.create(
        patient=patient,
        facility=facility or personas.facility,
        visit_number=uuid.uuid4().hex[:12].upper(),
        encounter_class=klass,
        status=status or EncounterStatus.FINISHED,
        started_at=started,
        ended_at=ended,
        attending=personas.clinician,
        created_at=started,
        updated_at=ended,
    )


def record(enc, *, status=RecordStatus.INCOMPLETE, due=None):
    return RecordCompletion.objects.create(
        encounter=enc,
        status=status,
        discharged_at=enc.ended_at,
        due_at=due or enc.ended_at + dt.timedelta(days=30),
        analysed_at=enc.ended_at,
        open_count=1 if status == RecordStatus.INCOMPLETE else 0,
    )


def deficiency(enc, user, delinquent_at, status=DeficiencyStatus.OPEN):
    return Deficiency.objects.create(
        encounter=enc,
        patient=enc.patient,
        kind=DeficiencyKind.UNSIGNED,
        key=uuid.uuid4().hex,
        description="Progress note not signed by its author",
        responsible=user,
        status=status,
        due_at=delinquent_at - dt.timedelta(days=29),
        delinquent_at=delinquent_at,
        opened_at=delinquent_at - dt.timedelta(days=30),
    )


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def clinician_work(personas, patient):
    old = encounter(personas, patient, ended=NOW - dt.timedelta(days=40))
    recent = encounter(personas, patient, ended=NOW - dt.timedelta(days=25))
    fresh = encounter(personas, patient, ended=NOW - dt.timedelta(days=2))
    deficiency(old, personas.clinician, NOW - dt.timedelta(days=10))  # delinquent
    deficiency(old, personas.clinician, NOW - dt.timedelta(days=10))  # same record
    deficiency(recent, personas.clinician, NOW + dt.timedelta(days=5))  # due soon
    deficiency(fresh, personas.clinician, NOW + dt.timedelta(days=28))
    deficiency(fresh, personas.clinician, NOW + dt.timedelta(days=3), DeficiencyStatus.COMPLETED)
    deficiency(fresh, personas.other_clinician, NOW + dt.timedelta(days=1))
    InboxMessage.objects.create(
        recipient=personas.clinician,
        kind="completion_reminder",
        subject="Chart completion: 1 deficiency to complete",
        dedupe_key="k1",
        created_at=NOW,
    )
    InboxMessage.objects.create(
        recipient=personas.clinician,
        kind="completion_reminder",
        subject="read",
        dedupe_key="k2",
        created_at=NOW,
        read_at=NOW,
    )


def test_a_clinicians_counts(personas, clinician_work):
    summary = clinician_summary(personas.clinician)
    assert (summary.open, summary.due_soon, summary.delinquent_records, summary.unread) == (
        4,
        1,
        1,
        1,
    )
    other = clinician_summary(personas.other_clinician)
    assert (other.open, other.due_soon, other.delinquent_records, other.unread) == (1, 1, 0, 0)


def test_the_clinician_summary_needs_the_permission_and_refusals_are_audited(personas, audit_rows):
    with pytest.raises(AccessDenied):
        clinician_summary(personas.coder)
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.coder and denied.object_type == "completion.summary"


def test_the_clinician_home_page_shows_the_counts_and_no_patient(client, personas, clinician_work):
    sign_in(client, personas.clinician)
    page = client.get("/").content.decode()
    assert "Records to complete" in page
    counts = dict(re.findall(r'data-count="([a-z-]+)"[^>]*>(\d+)<', page))
    assert counts == {"open": "4", "due-soon": "1", "delinquent": "1", "unread": "1"}
    assert 'href="/completion/mine/"' in page and 'href="/completion/inbox/"' in page
    assert "Quillfeather" not in page and "Marigold" not in page


def test_a_clinician_with_nothing_to_do_sees_zeroes(client, personas):
    sign_in(client, personas.other_clinician)
    page = client.get("/").content.decode()
    assert "Nothing to complete." in page
    assert 'data-count="open">0<' in page


# --- the department -----------------------------------------------------------------------


@pytest.fixture
def department(personas, patient):
    start, _ = month_bounds(NOW.date())
    # Discharges this month: 4 at the facility (one an outpatient visit), 1 cancelled.
    this_month = [
        encounter(personas, patient, ended=start + dt.timedelta(days=d)) for d in (1, 3, 5)
    ]
    encounter(personas, patient, ended=start + dt.timedelta(days=2), klass="AMB")
    void = encounter(
        personas, patient, ended=start + dt.timedelta(days=4), status=EncounterStatus.CANCELLED
    )
    record(void, due=NOW - dt.timedelta(days=1))  # counts for nothing
    # Records: 2 delinquent (discharged in April and May), 1 incomplete not yet due,
    # 1 complete.
    record(encounter(personas, patient, ended=NOW - dt.timedelta(days=60)))
    record(encounter(personas, patient, ended=NOW - dt.timedelta(days=45)))
    record(this_month[0])
    record(this_month[1], status=RecordStatus.COMPLETE)
    # Another facility's record is not the department's business here.
    other = encounter(
        personas,
        register_patient(personas, facility=personas.other_facility),
        ended=NOW - dt.timedelta(days=50),
        facility=personas.other_facility,
    )
    record(other)


def test_the_rate_is_delinquent_records_over_average_monthly_discharges():
    assert delinquency_rate(2, 4) == Decimal("50.0")
    assert delinquency_rate(1, 3) == Decimal("33.3")
    assert delinquency_rate(3, 9, months=3) == Decimal("100.0")
    assert delinquency_rate(5, 0) is None


def test_month_bounds_are_local_midnights():
    start, end = month_bounds(dt.date(2025, 3, 20))
    assert start == dt.datetime(2025, 3, 1, tzinfo=LOCAL) and start.utcoffset().days == -1
    assert end == dt.datetime(2025, 4, 1, tzinfo=LOCAL)
    assert month_bounds(dt.date(2025, 12, 5))[1] == dt.datetime(2026, 1, 1, tzinfo=LOCAL)


def test_the_him_counts_and_rate(personas, department):
    (row,) = him_summary(personas.administrator)
    assert row.facility_name == "RecordRoom General Hospital"
    assert (row.incomplete, row.delinquent, row.discharges) == (3, 2, 4)
    assert row.rate == Decimal("50.0")
    assert row.alert_percent == Decimal("50") and not row.over_threshold


def test_the_rate_over_the_policy_threshold_is_flagged(client, personas, department):
    from completion.rule_actions import do_change_policy

    do_change_policy(
        facility=personas.facility,
        effective_from=dt.date(2025, 1, 1),
        delinquency_alert_percent=Decimal("40"),
        reason="Stricter medical staff target",
        acting_user=personas.administrator,
    )
    (row,) = him_summary(personas.administrator)
    assert row.over_threshold
    sign_in(client, personas.administrator)
    page = client.get("/").content.decode()
    assert "over the 40 % threshold" in page
    assert 'data-count="delinquent">2<' in page


def test_the_him_panel_needs_the_permission(personas):
    with pytest.raises(AccessDenied):
        him_summary(personas.clinician)


def test_a_technician_sees_the_panel_and_the_outsider_only_their_facility(
    client, personas, department
):
    sign_in(client, personas.technician)
    page = client.get("/").content.decode()
    assert "Chart completion" in page and "RecordRoom General Hospital" in page
    (row,) = him_summary(personas.outsider)
    assert row.facility_name == "Other Valley Clinic"
    assert (row.incomplete, row.delinquent, row.rate) == (1, 1, None)


def test_the_him_panel_with_no_discharge_says_so(client, personas):
    sign_in(client, personas.administrator)
    assert "no discharges yet" in client.get("/").content.decode()


def test_the_home_page_counts_in_a_few_queries(
    client, personas, department, django_assert_max_num_queries
):
    sign_in(client, personas.administrator)
    client.get("/")
    with django_assert_max_num_queries(40):
        client.get("/")


# --- navigation ---------------------------------------------------------------------------


def _nav(client, user):
    sign_in(client, user)
    return {item["name"]: item["label"] for item in client.get("/").context["nav_items"]}


def test_navigation_entries_follow_the_permissions(client, personas):
    clinician = _nav(client, personas.clinician)
    assert clinician["completion:queue"] == "My deficiencies"
    assert clinician["completion:inbox"] == "Inbox"
    assert "completion:dashboard" not in clinician and "completion:rules" not in clinician
    client.logout()
    admin = _nav(client, personas.administrator)
    assert admin["completion:dashboard"] == "Chart completion"
    assert admin["completion:rules"] == "Completion rules"
    assert "completion:inbox" in admin and "completion:queue" not in admin
    client.logout()
    coder = _nav(client, personas.coder)
    assert "completion:dashboard" in coder and "completion:rules" not in coder
    assert "completion:inbox" not in coder
