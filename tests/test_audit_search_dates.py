"""Date filters on the audit search bound seq by the chain head's record of the clock, and
still find every event of the range when the clock has stepped back."""

import datetime as dt

import pytest
import time_machine

from audit.access import TrailFilter, export_trail, search_trail
from audit.actions import record_event
from audit.models import Action, AuditChainHead
from audit.verify import verify_chain

pytestmark = pytest.mark.django_db


def _at(when, username):
    with time_machine.travel(when, tick=False):
        return record_event(None, Action.LOGIN_FAILED, username=username)


def _usernames(personas, **dates):
    page = search_trail(personas.privacy_officer, TrailFilter(**dates))
    return {event.actor_username for event in page.events}


def test_the_head_records_how_far_the_clock_stepped_back():
    _at("2026-02-10 12:00Z", "a")
    _at("2026-02-05 12:00Z", "b")
    _at("2026-02-11 12:00Z", "c")
    head = AuditChainHead.objects.get(pk=1)
    assert head.max_step_back == dt.timedelta(days=5)
    assert head.max_occurred_at.isoformat().startswith("2026-02-11T12:00")


def test_it_finds_events_written_while_the_clock_was_behind(personas):
    _at("2026-01-20 12:00Z", "before")
    _at("2026-02-10 12:00Z", "ahead")
    _at("2026-02-05 12:00Z", "behind")  # written after "ahead", dated five days earlier
    _at("2026-03-01 12:00Z", "after")
    dates = {"date_from": dt.date(2026, 2, 4), "date_to": dt.date(2026, 2, 6)}
    assert _usernames(personas, **dates) == {"behind"}
    assert _usernames(personas, date_from=dt.date(2026, 2, 1)) >= {"ahead", "behind", "after"}
    assert "before" not in _usernames(personas, date_from=dt.date(2026, 2, 1))
    exported = export_trail(personas.privacy_officer, TrailFilter(**dates))
    assert [event.actor_username for event in exported] == ["behind"]


def test_verify_flags_a_head_that_understates_the_step_back():
    _at("2026-02-10 12:00Z", "a")
    _at("2026-02-05 12:00Z", "b")
    AuditChainHead.objects.filter(pk=1).update(max_step_back=dt.timedelta(0))
    result = verify_chain()
    assert not result.ok
    assert "stepped back" in result.problem
