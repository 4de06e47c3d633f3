"""The ROI clock: the seeded US defaults, versioned policy rows, and due dates at the
calendar's edges — month ends, leap days, year ends, daylight saving and the hospital's
time zone (a request received at 23:30 local on the last day of a month)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError

from roi import intake, policy
from roi.models import RoiPolicy
from tests.test_roi_processing_support import patient_fixture  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
NEW_YORK = ZoneInfo("America/New_York")


def _default():
    return RoiPolicy.objects.get(facility__isnull=True)


def _log(personas, patient, received_on, **fields):
    values = {
        "requester_type": "patient",
        "requester_name": "Marigold Quillfeather",
        "received_on": received_on,
        "identity_verified": "Photo ID seen at the window",
        "scope": {"all": True},
    }
    values.update(fields)
    return intake.do_log_request(
        personas.roi_specialist, patient.public_id, intake.RequestInput(**values)
    )


def test_the_us_defaults_are_seeded_as_data():
    rules = _default()
    assert rules.due_days["patient"] == 30 and rules.due_days["representative"] == 30
    assert rules.due_days["provider"] == 1
    assert all(10 <= rules.due_days[t] <= 15 for t in ("payer", "attorney", "law_enforcement"))
    assert rules.extension_days == 30 and rules.urgent_same_day
    assert rules.quality_check_required and rules.download_link_days == 30
    assert (rules.accounting_due_days, rules.accounting_extension_days) == (60, 30)
    assert (rules.amendment_due_days, rules.amendment_extension_days) == (60, 30)
    assert "164.524" in rules.change_reason


@pytest.mark.parametrize(
    "received, requester, due",
    [
        (dt.date(2028, 1, 30), "patient", dt.date(2028, 2, 29)),  # lands on the leap day
        (dt.date(2027, 1, 30), "patient", dt.date(2027, 3, 1)),  # no leap day
        (dt.date(2028, 2, 29), "patient", dt.date(2028, 3, 30)),  # received on it
        (dt.date(2026, 8, 31), "patient", dt.date(2026, 9, 30)),
        (dt.date(2026, 12, 31), "representative", dt.date(2027, 1, 30)),
        (dt.date(2026, 2, 28), "law_enforcement", dt.date(2026, 3, 10)),
    ],
)
def test_due_dates_are_calendar_days_across_month_ends(received, requester, due):
    assert policy.due_date(_default(), requester, received) == due


def test_urgent_is_the_same_day_only_for_continuing_care_and_only_when_the_policy_says():
    rules = _default()
    day = dt.date(2026, 3, 31)
    assert policy.due_date(rules, "provider", day, "urgent") == day
    assert policy.due_date(rules, "patient", day, "urgent") == dt.date(2026, 4, 30)
    rules.urgent_same_day = False
    assert policy.due_date(rules, "provider", day, "urgent") == dt.date(2026, 4, 1)


def test_a_type_the_policy_does_not_name_gets_thirty_days():
    rules = RoiPolicy(effective_from=dt.date(2026, 1, 1), due_days={"patient": 30})
    assert policy.due_days(rules, "research") == policy.FALLBACK_DAYS == 30


def test_the_newest_row_in_force_wins_and_a_facility_row_only_at_its_facility(personas):
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    RoiPolicy.objects.create(
        effective_from=dt.date(2026, 6, 1), due_days={"attorney": 20}, created_at=at
    )
    RoiPolicy.objects.create(
        facility=personas.facility,
        effective_from=dt.date(2026, 7, 1),
        due_days={"attorney": 5},
        extension_days=14,
        created_at=at,
    )
    assert policy.due_days(policy.policy_for(None, dt.date(2026, 5, 31)), "attorney") == 15
    assert policy.due_days(policy.policy_for(None, dt.date(2026, 6, 1)), "attorney") == 20
    here = policy.policy_for(personas.facility, dt.date(2026, 7, 1))
    assert policy.due_days(here, "attorney") == 5 and here.extension_days == 14
    there = policy.policy_for(personas.other_facility, dt.date(2026, 7, 1))
    assert policy.due_days(there, "attorney") == 20
    # Before its effective date the facility uses the newest general row.
    assert (
        policy.due_days(policy.policy_for(personas.facility, dt.date(2026, 6, 30)), "attorney")
        == 20
    )


def test_without_any_row_the_model_defaults_apply():
    RoiPolicy.objects.all().delete()
    rules = policy.policy_for(None, dt.date(2026, 1, 1))
    assert policy.due_date(rules, "patient", dt.date(2026, 1, 1)) == dt.date(2026, 1, 31)
    assert rules.extension_days == 30


def test_a_request_received_at_2330_local_on_the_last_day_of_a_month(personas, patient, settings):
    """23:30 in New York on 31 March is 03:30 UTC on 1 April: receipt on 31 March is
    today, receipt on 1 April is still in the future, and the due date counts from the
    local date."""
    settings.TIME_ZONE = "America/New_York"
    with time_machine.travel(dt.datetime(2026, 3, 31, 23, 30, tzinfo=NEW_YORK), tick=False):
        request = _log(personas, patient, dt.date(2026, 3, 31))
        assert request.due_on == dt.date(2026, 4, 30)
        assert request.number.startswith("REQ-2026-")
        with pytest.raises(ValidationError, match="future"):
            _log(personas, patient, dt.date(2026, 4, 1))


def test_the_request_number_follows_the_year_of_receipt_at_new_year(personas, patient, settings):
    settings.TIME_ZONE = "America/New_York"
    with time_machine.travel(dt.datetime(2026, 12, 31, 23, 45, tzinfo=NEW_YORK), tick=False):
        request = _log(personas, patient, dt.date(2026, 12, 31))
    assert request.number == "REQ-2026-000001" and request.due_on == dt.date(2027, 1, 30)
    with time_machine.travel(dt.datetime(2027, 1, 1, 0, 15, tzinfo=NEW_YORK), tick=False):
        assert _log(personas, patient, dt.date(2027, 1, 1)).number == "REQ-2027-000001"


def test_received_on_a_leap_day_late_in_the_evening_in_honolulu(personas, patient, settings):
    settings.TIME_ZONE = "Pacific/Honolulu"
    moment = dt.datetime(2028, 2, 29, 23, 30, tzinfo=ZoneInfo("Pacific/Honolulu"))
    assert moment.astimezone(dt.UTC).date() == dt.date(2028, 3, 1)
    with time_machine.travel(moment, tick=False):
        request = _log(personas, patient, dt.date(2028, 2, 29))
    assert request.received_on == dt.date(2028, 2, 29) and request.due_on == dt.date(2028, 3, 30)


def test_the_extension_may_be_sent_until_the_end_of_the_local_due_date(personas, patient, settings):
    settings.TIME_ZONE = "America/New_York"
    with time_machine.travel(dt.datetime(2026, 3, 31, 12, 0, tzinfo=NEW_YORK), tick=False):
        first = _log(personas, patient, dt.date(2026, 3, 31))
        second = _log(personas, patient, dt.date(2026, 3, 31))
    # 23:00 local on 30 April (03:00 UTC on 1 May): still inside the first period.
    with time_machine.travel(dt.datetime(2026, 4, 30, 23, 0, tzinfo=NEW_YORK), tick=False):
        extended = intake.do_extend(personas.roi_specialist, first.public_id, "archive")
    assert extended.extension_notice_on == dt.date(2026, 4, 30)
    assert extended.extended_due_on == dt.date(2026, 5, 30)
    # 00:30 local on 1 May: too late.
    late = dt.datetime(2026, 5, 1, 0, 30, tzinfo=NEW_YORK)
    with (
        time_machine.travel(late, tick=False),
        pytest.raises(ValidationError, match="before the first due date"),
    ):
        intake.do_extend(personas.roi_specialist, second.public_id, "archive")
    second.refresh_from_db()
    assert second.extended_due_on is None and not second.letters.exists()


def test_days_left_count_calendar_days_across_daylight_saving(settings):
    settings.TIME_ZONE = "America/New_York"
    # 8 March 2026 is 23 hours long in New York: 24 hours after 23:30 on 7 March it is
    # already 9 March locally; days left are counted on local dates.
    before = dt.datetime(2026, 3, 7, 23, 30, tzinfo=NEW_YORK).astimezone(dt.UTC)
    assert policy.local_date(before + dt.timedelta(hours=24)) == dt.date(2026, 3, 9)
    assert policy.days_left(dt.date(2026, 3, 9), policy.local_date(before)) == 2
    assert policy.days_left(dt.date(2026, 3, 1), dt.date(2026, 3, 3)) == -2
