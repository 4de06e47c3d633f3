"""Fees by the schedule in force: the patient's own copy (flat $6.50 electronic option,
otherwise cost-based, no search fee), third parties per page with a first-pages rule,
providers for continuing care free; invoice lines written at release."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from roi import fees, processing, release
from roi.models import FeeSchedule, InvoiceLine
from tests.test_roi_processing_support import (  # noqa: F401 - fixtures
    NOW,
    authorize,
    checker_fixture,
    file_document,
    make_request,
    media_fixture,
    patient_fixture,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen(media):
    with time_machine.travel(NOW, tick=False):
        yield


def amounts(lines):
    return [(line.description, line.amount) for line in lines]


def test_the_default_schedules_are_seeded(db):
    names = set(FeeSchedule.objects.values_list("name", flat=True))
    assert "Patient's own copy (cost-based)" in names
    patient_own = FeeSchedule.objects.get(name="Patient's own copy (cost-based)")
    assert Decimal(patient_own.parameters["flat_fee_electronic"]) == Decimal("6.50")
    assert fees.validate_parameters(patient_own.parameters) == []


def test_the_patients_electronic_copy_costs_the_flat_fee(personas, patient):
    request = make_request(personas, patient)
    lines = fees.calculate(request, fees.schedule_for(request), pages=400)
    assert amounts(lines) == [("Electronic copy (flat fee)", Decimal("6.50"))]


def test_the_patients_paper_copy_is_cost_based_without_a_search_fee(personas, patient):
    request = make_request(personas, patient, format="paper", delivery="mail")
    lines = fees.calculate(request, fees.schedule_for(request), pages=150)
    assert amounts(lines) == [
        ("Labour for copying (hours)", Decimal("12.50")),  # 0.5 h at $25
        ("Paper and toner (pages)", Decimal("7.50")),
        ("Postage", Decimal("1.50")),
    ]
    assert not any("search" in line.description.lower() for line in lines)


def test_a_third_party_pays_per_page_with_the_first_pages_rule(personas, patient):
    request = make_request(
        personas, patient, requester_type="attorney", format="paper", delivery="mail"
    )
    lines = fees.calculate(request, fees.schedule_for(request), pages=40)
    assert amounts(lines) == [
        ("Pages 1-25", Decimal("25.00")),
        ("Pages 26-40", Decimal("7.50")),
        ("Postage", Decimal("1.50")),
    ]


def test_fewer_pages_than_the_first_pages(personas, patient):
    request = make_request(personas, patient, requester_type="payer")
    assert amounts(fees.calculate(request, fees.schedule_for(request), pages=3)) == [
        ("Pages 1-3", Decimal("3.00"))
    ]


def test_a_provider_for_continuing_care_pays_nothing(personas, patient):
    request = make_request(personas, patient, requester_type="provider", delivery="mail")
    assert fees.calculate(request, fees.schedule_for(request), pages=500) == []


def test_a_state_schedule_wins_and_dates_decide(personas, patient):
    FeeSchedule.objects.create(
        name="Massachusetts third party",
        state="MA",
        requester_types=["attorney"],
        effective_from=dt.date(2026, 1, 1),
        parameters={
            "method": "per_page",
            "first_pages": 100,
            "first_pages_price": "0.80",
            "per_page": "0.40",
        },
        created_at=NOW,
    )
    request = make_request(personas, patient, requester_type="attorney")
    assert fees.schedule_for(request, state="MA").state == "MA"
    assert fees.schedule_for(request).state == ""
    old = make_request(
        personas, patient, requester_type="attorney", received_on=dt.date(2025, 12, 31)
    )
    assert fees.schedule_for(old, state="MA").state == ""


def test_bad_schedule_parameters_are_named(db):
    assert fees.validate_parameters({"method": "cost", "flat_fee_electronic": "9.00"}) == [
        "The flat fee for an electronic copy is at most $6.50."
    ]
    assert "The method must be none, cost or per_page." in fees.validate_parameters({"method": "x"})
    assert "per_page cannot be negative." in fees.validate_parameters(
        {"method": "per_page", "per_page": "-1"}
    )


def test_the_release_writes_the_invoice_once(personas, patient, checker):
    file_document(personas, patient, title="Note")
    request = make_request(
        personas, patient, requester_type="attorney", requester_name="Lee Counsel"
    )
    authorize(personas, request)
    processing.do_propose(personas.roi_specialist, request.public_id)
    processing.do_submit_for_check(personas.roi_specialist, request.public_id)
    processing.do_quality_check(checker, request.public_id, passed=True)
    packet = release.do_release(personas.roi_specialist, request.public_id).packet
    lines = list(InvoiceLine.objects.filter(request=request))
    assert amounts(lines) == [(f"Pages 1-{packet.pages}", Decimal(packet.pages))]
    release.do_release(
        personas.roi_specialist, request.public_id, rerelease_reason="Lost in the mail"
    )
    assert InvoiceLine.objects.filter(request=request).count() == 1
