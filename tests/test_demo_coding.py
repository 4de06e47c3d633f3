"""Coding in the demo department: a backlog in every state (not started, claimed, in
progress, on hold with open queries to the demo clinician, an answered and a withdrawn
query, final with an MS-DRG, rebilled) and a review sample — through the real actions,
so the queue, DNFB, queries and productivity pages all have something to show."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from coding import dnfb, productivity, queries, queue
from coding.models import (
    Abstract,
    AbstractStatus,
    AbstractVersion,
    CodingReview,
    PhysicianQuery,
    QueryStatus,
)
from documents.models import DocumentStatus
from recordroom import clock
from recordroom.demo_data.coding import load_coding
from recordroom.demo_data.population import Generator, load_population

pytestmark = pytest.mark.django_db


def _user(username):
    return get_user_model().objects.get(username=username)


@pytest.fixture
def demo():
    call_command("demo", "--patients", "0", "--quiet-logins")
    # load_population runs the coding step itself (its result is returned by load_coding
    # only), so the population is written with the step stubbed out and the step is
    # then run here, where its summary can be checked.
    with mock.patch("recordroom.demo_data.coding.load_coding", lambda generator: {}):
        load_population(8, seed=5)
    made = load_coding(Generator(seed=5, today=timezone.localdate(clock.now())))
    return {"made": made, "coder": _user("coder"), "clinician": _user("clinician")}


def test_the_backlog_has_every_state_and_the_pages_show_it(demo):
    made = demo["made"]
    assert made["final"] >= 1 and made["rebilled"] == 1 and "could_not_finalise" not in made
    statuses = set(Abstract.objects.values_list("status", flat=True))
    assert statuses == {
        AbstractStatus.NOT_STARTED,
        AbstractStatus.IN_PROGRESS,
        AbstractStatus.ON_HOLD,
        AbstractStatus.FINAL,
        AbstractStatus.REBILLED,
    }
    # Final abstracts were grouped by part B's grouper.
    for abstract in Abstract.objects.filter(status=AbstractStatus.FINAL):
        assert abstract.drg and abstract.finalised_by == demo["coder"]
        assert AbstractVersion.objects.filter(abstract=abstract).exists()
    rebilled = Abstract.objects.get(status=AbstractStatus.REBILLED)
    assert rebilled.versions.filter(reason__startswith="reopened").exists()
    coder = demo["coder"]
    page = queue.work_queue(coder)
    assert page.count >= 5
    assert made["claimed_not_started"] == 1
    assert any(r.mine and r.status == AbstractStatus.NOT_STARTED for r in page.rows)
    report = dnfb.dnfb_report(coder)
    by_reason = {r: n for r, _label, n in report.by_reason}
    assert by_reason[dnfb.OPEN_QUERY] == 2 and by_reason[dnfb.IN_PROGRESS] >= 2
    assert by_reason[dnfb.NOT_STARTED] + by_reason[dnfb.INCOMPLETE] >= 1
    figures = productivity.productivity(coder)
    assert figures.total == made["final"] + 2 * made["rebilled"]  # a rebill counts again


def test_the_demo_clinician_has_open_queries_and_one_answered_in_the_record(demo):
    clinician = demo["clinician"]
    rows = queries.queries_for_clinician(clinician)
    assert len(rows) == 2
    assert all(r.query.abstract.status == AbstractStatus.ON_HOLD for r in rows)
    answered = PhysicianQuery.objects.get(status=QueryStatus.ANSWERED)
    assert answered.clinician == clinician
    assert answered.answer_document.status == DocumentStatus.FINAL
    assert answered.abstract.status == AbstractStatus.IN_PROGRESS
    assert PhysicianQuery.objects.filter(status=QueryStatus.WITHDRAWN).count() == 1


def test_a_review_sample_with_one_review_recorded(demo):
    reviews = CodingReview.objects.all()
    assert reviews.count() == demo["made"]["reviews"] >= 1
    (recorded,) = reviews.filter(reviewed_at__isnull=False)
    assert recorded.reviewer == _user("admin") and recorded.codes_changed == 1
    (row,) = productivity.accuracy(demo["coder"])
    assert row.reviewed == 1 and row.code_accuracy is not None
