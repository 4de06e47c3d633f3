"""ROI policy, what tests/test_roi_policy.py leaves out: every seeded default (the due
days of each requester type and the parameters parts E and F read), and each type's
target across month, year and leap-day ends."""

from __future__ import annotations

import datetime as dt

import pytest

from roi import policy
from roi.models import RoiPolicy

pytestmark = pytest.mark.django_db


def test_the_seeded_defaults_are_the_us_federal_ones():
    row = RoiPolicy.objects.get(facility__isnull=True)
    assert row.due_days == {
        "patient": 30,
        "representative": 30,
        "provider": 1,
        "payer": 15,
        "attorney": 15,
        "subpoena": 14,
        "court_order": 14,
        "law_enforcement": 10,
        "public_health": 10,
        "research": 30,
        "other": 30,
    }
    assert row.extension_days == 30 and row.urgent_same_day and row.quality_check_required
    assert row.download_link_days == 30
    assert (row.accounting_due_days, row.accounting_extension_days) == (60, 30)
    assert (row.amendment_due_days, row.amendment_extension_days) == (60, 30)
    assert row.parameters["accounting_fee"] == "25.00"
    assert row.parameters["statement_max_chars"] == 10000
    assert row.parameters["amendment_document_loinc"] == "51852-2"
    assert row.parameters["privacy_contact"].strip()


@pytest.mark.parametrize(
    "received, requester, due",
    [
        # Received 30 January 2028: +30 days lands on the leap day.
        (dt.date(2028, 1, 30), "patient", dt.date(2028, 2, 29)),
        # The same in 2027 (no leap day) lands on 1 March.
        (dt.date(2027, 1, 30), "patient", dt.date(2027, 3, 1)),
        # Received on the leap day itself.
        (dt.date(2028, 2, 29), "patient", dt.date(2028, 3, 30)),
        # Payer 15 days across a month end.
        (dt.date(2026, 4, 20), "payer", dt.date(2026, 5, 5)),
        # Subpoena 14 days across the year end.
        (dt.date(2026, 12, 25), "subpoena", dt.date(2027, 1, 8)),
        # Law enforcement and public health: 10 days.
        (dt.date(2026, 2, 25), "law_enforcement", dt.date(2026, 3, 7)),
        (dt.date(2028, 2, 25), "public_health", dt.date(2028, 3, 6)),
        # An urgent request from a payer is not continuing care: its normal target.
        (dt.date(2026, 3, 31), "payer", dt.date(2026, 4, 15)),
    ],
)
def test_due_dates_at_the_calendars_edges(received, requester, due):
    rules = policy.policy_for(None, received)
    assert policy.due_date(rules, requester, received, "urgent") == due
