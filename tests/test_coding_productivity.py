"""Coder productivity (encounters finalised per coder per local day) and accuracy from
second-level review sampling (a random sample per coder at the policy's percentage;
accuracy = 1 − changed ÷ reviewed)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.http import Http404

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from coding import productivity
from coding.models import AbstractStatus, AbstractVersion, CodingPolicy, CodingReview
from recordroom.testing import make_user, register_patient, sign_in
from tests.test_coding_queue import NOW, discharged, make_abstract

pytestmark = pytest.mark.django_db

DAY1 = dt.date(2025, 3, 18)
DAY2 = dt.date(2025, 3, 19)


def at(day: dt.date, hour: int) -> dt.datetime:
    # America/New_York (settings.TIME_ZONE) is UTC-4 in March 2025.
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def second_coder(personas):
    user = make_user("carl.coder", "coder", last_name="Second")
    user.facilities.add(personas.facility)
    return user


def final(personas, patient, coder, when, **kwargs):
    encounter = discharged(personas, patient, days_ago=10)
    return make_abstract(
        encounter,
        status=AbstractStatus.FINAL,
        coder=coder,
        finalised_by=coder,
        finalised_at=when,
        **kwargs,
    )


def test_finalised_encounters_are_counted_per_coder_per_local_day(personas, patient, second_coder):
    final(personas, patient, personas.coder, at(DAY1, 15))
    final(personas, patient, personas.coder, at(DAY1, 20))
    final(personas, patient, personas.coder, at(DAY2, 3))  # 23:00 on DAY1, local
    final(personas, patient, second_coder, at(DAY2, 15))
    in_progress = discharged(personas, patient, days_ago=5)
    make_abstract(in_progress, coder=personas.coder)
    with time_machine.travel(NOW, tick=False):
        figures = productivity.productivity(personas.administrator, start=DAY1, end=DAY2)
    assert figures.days == [DAY1, DAY2]
    rows = {r.coder.pk: r.per_day for r in figures.rows}
    assert rows == {personas.coder.pk: [3, 0], second_coder.pk: [0, 1]}
    assert figures.total == 4 and figures.per_day_total == [3, 1]
    assert figures.rows[0].coder == personas.coder and figures.rows[0].average == Decimal("1.5")


def test_a_version_that_stays_final_is_not_counted_twice_but_refinalising_is(personas, patient):
    abstract = final(personas, patient, personas.coder, at(DAY1, 15))
    AbstractVersion.objects.create(
        abstract=abstract,
        number=3,
        status=AbstractStatus.FINAL,
        snapshot={},
        changed_by=personas.coder,
        changed_at=at(DAY1, 16),
        reason="grouping refreshed",
    )
    for number, status in ((4, AbstractStatus.IN_PROGRESS), (5, AbstractStatus.REBILLED)):
        AbstractVersion.objects.create(
            abstract=abstract,
            number=number,
            status=status,
            snapshot={},
            changed_by=personas.coder,
            changed_at=at(DAY2, 15),
            reason="reopened" if number == 4 else "rebilled",
        )
    figures = productivity.productivity(personas.administrator, start=DAY1, end=DAY2)
    assert figures.rows[0].per_day == [1, 1]


def test_other_facilities_are_not_counted(personas):
    other = register_patient(personas, facility=personas.other_facility, family="Away")
    encounter = discharged(personas, other, days_ago=10, facility=personas.other_facility)
    make_abstract(
        encounter,
        status=AbstractStatus.FINAL,
        coder=personas.coder,
        finalised_by=personas.coder,
        finalised_at=at(DAY1, 15),
    )
    assert productivity.productivity(personas.administrator, start=DAY1, end=DAY2).total == 0


@pytest.mark.parametrize(
    ("start", "end"), [(DAY2, DAY1), (dt.date(2024, 1, 1), dt.date(2025, 3, 1))]
)
def test_a_bad_period_is_refused(personas, start, end):
    with pytest.raises(ValidationError):
        productivity.productivity(personas.administrator, start=start, end=end)


def test_productivity_refuses_a_clinician_and_audits_it(personas, audit_rows):
    with pytest.raises(AccessDenied):
        productivity.productivity(personas.clinician)
    assert audit_rows(object_type="coding.productivity")[0].outcome == Outcome.DENIED


# --- the sample and the reviews ------------------------------------------------------------------


def test_sample_size_rounds_up_with_at_least_one():
    assert productivity.sample_size(0, Decimal(5)) == 0
    assert productivity.sample_size(1, Decimal(5)) == 1
    assert productivity.sample_size(20, Decimal(5)) == 1
    assert productivity.sample_size(21, Decimal(5)) == 2
    assert productivity.sample_size(3, Decimal(100)) == 3


def test_the_sample_draws_per_coder_at_the_policys_percentage(
    personas, patient, second_coder, audit_rows
):
    CodingPolicy.objects.create(
        facility=None, effective_from=dt.date(2024, 1, 1), review_sample_percent=50, created_at=NOW
    )
    for hour in range(10, 14):
        final(personas, patient, personas.coder, at(DAY1, hour))
    final(personas, patient, second_coder, at(DAY1, 15))
    with time_machine.travel(NOW, tick=False):
        result = productivity.do_draw_review_sample(
            personas.administrator, start=DAY1, end=DAY2, seed=7
        )
    assert result.percent == Decimal(50)
    by_coder = {}
    for review in result.drawn:
        by_coder[review.coder_id] = by_coder.get(review.coder_id, 0) + 1
    assert by_coder == {personas.coder.pk: 2, second_coder.pk: 1}
    assert all(r.abstract_version == 2 for r in result.drawn)
    row = audit_rows(object_type="coding.review", action=Action.CREATE)[-1]
    assert row.detail["seed"] == 7
    # Drawn abstracts are not drawn again.
    again = productivity.do_draw_review_sample(
        personas.administrator, start=DAY1, end=DAY2, percent_=Decimal(100), seed=7
    )
    assert len(again.drawn) == 2
    assert CodingReview.objects.count() == 5


def test_the_same_seed_draws_the_same_sample(personas, patient):
    for hour in range(10, 20):
        final(personas, patient, personas.coder, at(DAY1, hour))
    first = productivity.do_draw_review_sample(
        personas.administrator, start=DAY1, end=DAY1, percent_=Decimal(30), seed=3
    )
    chosen = sorted(r.abstract_id for r in first.drawn)
    CodingReview.objects.all().delete()
    second = productivity.do_draw_review_sample(
        personas.administrator, start=DAY1, end=DAY1, percent_=Decimal(30), seed=3
    )
    assert sorted(r.abstract_id for r in second.drawn) == chosen and len(chosen) == 3


@pytest.mark.parametrize("bad", [Decimal(0), Decimal(-1), Decimal(101)])
def test_a_bad_percentage_is_refused(personas, bad):
    with pytest.raises(ValidationError):
        productivity.do_draw_review_sample(personas.administrator, percent_=bad)


def test_drawing_refuses_a_coder_and_audits_it(personas, audit_rows):
    with pytest.raises(AccessDenied):
        productivity.do_draw_review_sample(personas.coder)
    assert audit_rows(object_type="coding.review")[0].outcome == Outcome.DENIED


def _review(personas, patient, coder, when=None):
    abstract = final(personas, patient, coder, when or at(DAY1, 15))
    return CodingReview.objects.create(
        abstract=abstract, abstract_version=abstract.version, coder=coder, sampled_at=at(DAY1, 18)
    )


def test_accuracy_is_one_minus_changed_over_reviewed(personas, patient, second_coder):
    a = _review(personas, patient, personas.coder)
    b = _review(personas, patient, personas.coder)
    _review(personas, patient, personas.coder)  # sampled, not reviewed yet
    c = _review(personas, patient, second_coder)
    productivity.do_record_review(
        personas.administrator,
        a.public_id,
        codes_reviewed=8,
        codes_changed=1,
        drg_changed=True,
        findings="Principal diagnosis resequenced.",
    )
    productivity.do_record_review(
        personas.administrator, b.public_id, codes_reviewed=12, codes_changed=0, drg_changed=False
    )
    productivity.do_record_review(
        personas.administrator, c.public_id, codes_reviewed=5, codes_changed=0, drg_changed=False
    )
    rows = {r.coder.pk: r for r in productivity.accuracy(personas.coder, start=DAY1, end=DAY2)}
    mine = rows[personas.coder.pk]
    assert (mine.sampled, mine.reviewed, mine.codes_reviewed, mine.codes_changed) == (3, 2, 20, 1)
    assert mine.code_accuracy == Decimal("95.0") and mine.drg_accuracy == Decimal("50.0")
    assert rows[second_coder.pk].code_accuracy == Decimal("100.0")


def test_accuracy_with_nothing_reviewed_is_blank(personas, patient):
    _review(personas, patient, personas.coder)
    (row,) = productivity.accuracy(personas.administrator, start=DAY1, end=DAY2)
    assert row.code_accuracy is None and row.drg_accuracy is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"codes_reviewed": 0, "codes_changed": 0, "drg_changed": False}, "codes_reviewed"),
        ({"codes_reviewed": 3, "codes_changed": 4, "drg_changed": False}, "codes_changed"),
        ({"codes_reviewed": 3, "codes_changed": -1, "drg_changed": False}, "codes_changed"),
        ({"codes_reviewed": 3, "codes_changed": 1, "drg_changed": False}, "findings"),
        ({"codes_reviewed": 3, "codes_changed": 0, "drg_changed": True}, "findings"),
    ],
)
def test_bad_review_figures_are_refused(personas, patient, kwargs, field):
    review = _review(personas, patient, personas.coder)
    with pytest.raises(ValidationError) as caught:
        productivity.do_record_review(personas.administrator, review.public_id, **kwargs)
    assert field in caught.value.message_dict
    review.refresh_from_db()
    assert review.reviewed_at is None


def test_a_review_is_recorded_once_and_never_by_the_coder(personas, patient):
    own = _review(personas, patient, personas.administrator)
    with pytest.raises(ValidationError, match="own coding"):
        productivity.do_record_review(
            personas.administrator,
            own.public_id,
            codes_reviewed=2,
            codes_changed=0,
            drg_changed=False,
        )
    review = _review(personas, patient, personas.coder)
    productivity.do_record_review(
        personas.administrator,
        review.public_id,
        codes_reviewed=2,
        codes_changed=0,
        drg_changed=False,
    )
    with pytest.raises(ValidationError, match="already recorded"):
        productivity.do_record_review(
            personas.administrator,
            review.public_id,
            codes_reviewed=2,
            codes_changed=0,
            drg_changed=False,
        )


def test_a_review_of_another_facility_is_an_audited_404(personas, audit_rows):
    other = register_patient(personas, facility=personas.other_facility, family="Away")
    encounter = discharged(personas, other, days_ago=10, facility=personas.other_facility)
    abstract = make_abstract(
        encounter, status=AbstractStatus.FINAL, finalised_by=personas.coder, finalised_at=NOW
    )
    review = CodingReview.objects.create(
        abstract=abstract, abstract_version=2, coder=personas.coder, sampled_at=NOW
    )
    with pytest.raises(Http404):
        productivity.access_review(personas.administrator, review.public_id)
    assert audit_rows(object_type="coding.review")[-1].outcome == Outcome.DENIED


# --- the screens --------------------------------------------------------------------------------


def test_the_productivity_page(client, personas, patient):
    final(personas, patient, personas.coder, at(DAY1, 15))
    sign_in(client, personas.coder)
    response = client.get("/coding/productivity/", {"start": "2025-03-18", "end": "2025-03-19"})
    assert response.status_code == 200
    assert personas.coder.display_name in response.content.decode()
    bad = client.get("/coding/productivity/", {"start": "2025-03-19", "end": "2025-03-18"})
    assert bad.status_code == 400 and b"starts after it ends" in bad.content


def test_the_productivity_page_refuses_a_clinician_and_audits_it(client, personas, audit_rows):
    sign_in(client, personas.clinician)
    assert client.get("/coding/productivity/").status_code == 403
    assert audit_rows(object_type="coding.productivity")[0].outcome == Outcome.DENIED


def test_the_productivity_csv(client, personas, patient):
    final(personas, patient, personas.coder, at(DAY1, 15))
    sign_in(client, personas.coder, sudo=True)
    response = client.get("/coding/productivity.csv", {"start": "2025-03-18", "end": "2025-03-19"})
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "coder,2025-03-18,2025-03-19,total"
    assert lines[1].endswith(",1,0,1")


def test_reviews_from_the_pages(client, personas, patient, audit_rows):
    review = _review(personas, patient, personas.coder)
    sign_in(client, personas.administrator)
    assert client.get("/coding/reviews/").status_code == 200
    page = client.get(f"/coding/reviews/{review.public_id}/")
    assert page.status_code == 200 and b"Record the review" in page.content
    bad = client.post(
        f"/coding/reviews/{review.public_id}/", {"codes_reviewed": "2", "codes_changed": "3"}
    )
    assert bad.status_code == 400
    ok = client.post(
        f"/coding/reviews/{review.public_id}/",
        {"codes_reviewed": "2", "codes_changed": "1", "drg_changed": "on", "findings": "Fixed."},
    )
    assert ok.status_code == 302
    review.refresh_from_db()
    assert (
        review.codes_changed == 1
        and review.drg_changed
        and review.reviewer == personas.administrator
    )
    drawn = client.post("/coding/reviews/draw/", {"percent": "100"})
    assert drawn.status_code == 302
    assert client.get("/coding/reviews/draw/").status_code == 405


def test_the_review_pages_refuse_a_coder_and_audit_it(client, personas, patient, audit_rows):
    review = _review(personas, patient, personas.technician)
    sign_in(client, personas.coder)
    assert client.get("/coding/reviews/").status_code == 403
    assert client.get(f"/coding/reviews/{review.public_id}/").status_code == 403
    assert client.post("/coding/reviews/draw/").status_code == 403
    assert len(audit_rows(object_type="coding.review", outcome=Outcome.DENIED)) == 3
