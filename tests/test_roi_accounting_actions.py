"""The accounting of disclosures (164.528): disclosures entered by hand (accountable by
their basis), suspensions at an agency's request, a patient's request for an
accounting (period, 60-day deadline, one extension, the fee after the first in 12
months) and the report (oldest first, repeated disclosures summarized, suspended ones
left out)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.http import Http404

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from recordroom.testing import register_patient
from roi import accounting
from roi.models import AccountingRequest, DeadlineStatus, Disclosure, Letter, LetterKind, RoiPolicy

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


def record(personas, patient, **overrides):
    values = {
        "acting_user": personas.roi_specialist,
        "disclosed_on": dt.date(2025, 6, 1),
        "recipient_name": "Springfield Department of Public Health",
        "recipient_address": "1 Civic Plaza, Springfield MA 01103",
        "description": "Laboratory result (reportable disease)",
        "purpose": "Reportable disease surveillance",
        "basis": "public_health",
    }
    values.update(overrides)
    return accounting.do_record_disclosure(patient.public_id, **values)


def set_policy(**fields):
    return RoiPolicy.objects.create(
        effective_from=dt.date(2024, 1, 1),
        due_days={"patient": 30},
        created_at=NOW,
        **fields,
    )


# --- bases ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "basis",
    [
        "treatment",
        "payment",
        "operations",
        "to_patient",
        "incidental",
        "authorized",
        "directory",
        "national_security",
        "correctional",
        "limited_data_set",
    ],
)
def test_exempt_bases_are_not_accountable(basis):
    assert accounting.is_accountable(basis) is False


@pytest.mark.parametrize(
    "basis", ["public_health", "law_enforcement", "judicial", "research_waiver"]
)
def test_other_bases_are_accountable(basis):
    assert accounting.is_accountable(basis) is True


def test_an_unknown_basis_is_an_error():
    with pytest.raises(ValueError):
        accounting.is_accountable("gossip")


# --- recording by hand ---------------------------------------------------------------


def test_a_public_health_report_is_recorded_and_audited(personas, patient, audit_rows):
    disclosure = record(personas, patient)
    assert disclosure.accountable is True and disclosure.basis == "public_health"
    assert disclosure.entered_by == personas.roi_specialist and disclosure.entered_at == NOW
    (event,) = audit_rows(object_type="roi.disclosure")
    assert event.action == Action.CREATE and event.outcome == Outcome.ALLOWED
    assert event.patient_id == patient.public_id
    assert event.detail["accountable"] is True


def test_a_disclosure_for_treatment_is_kept_but_not_accountable(personas, patient):
    disclosure = record(personas, patient, basis="treatment", purpose="Continuing care")
    assert disclosure.accountable is False


def test_a_clinician_may_not_record_a_disclosure_and_the_refusal_is_audited(
    personas, patient, audit_rows
):
    with pytest.raises(AccessDenied):
        record(personas, patient, acting_user=personas.clinician)
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.object_type == "roi.disclosure" and "roi.record_disclosure" in event.reason
    assert not Disclosure.objects.exists()


def test_an_outsider_does_not_find_the_patient(personas, patient):
    from accounts.roles import Role
    from recordroom.testing import make_user

    stranger = make_user("sam.stranger", Role.ROI_SPECIALIST)
    stranger.facilities.add(personas.other_facility)
    with pytest.raises(Http404):
        record(personas, patient, acting_user=stranger)
    assert not Disclosure.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("disclosed_on", dt.date(2026, 3, 11), "future"),
        ("disclosed_on", dt.date(1960, 1, 1), "before the patient's date of birth"),
        ("recipient_name", "  ", "recipient is required"),
        ("description", "", "What was disclosed is required"),
        ("purpose", "<script>", "may not contain"),
        ("basis", "gossip", "Choose the basis"),
        ("requester_type", "neighbour", "Unknown requester type"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_is_kept(
    personas, patient, field, value, message
):
    with pytest.raises(ValidationError) as error:
        record(personas, patient, **{field: value})
    assert message in str(error.value)
    assert not Disclosure.objects.exists()


def test_the_local_date_decides_what_is_in_the_future(personas, patient):
    # 02:00 UTC on 11 March is still 10 March in New York.
    with time_machine.travel(dt.datetime(2026, 3, 11, 2, 0, tzinfo=dt.UTC), tick=False):
        assert record(personas, patient, disclosed_on=dt.date(2026, 3, 10)).pk
        with pytest.raises(ValidationError):
            record(personas, patient, disclosed_on=dt.date(2026, 3, 11))


# --- suspension ----------------------------------------------------------------------


def test_an_oral_suspension_lasts_at_most_30_days(personas, patient, audit_rows):
    disclosure = record(personas, patient, basis="law_enforcement", purpose="Investigation")
    with pytest.raises(ValidationError) as error:
        accounting.do_suspend_disclosure(
            disclosure.public_id,
            acting_user=personas.roi_specialist,
            agency="Springfield Police Department",
            until=dt.date(2026, 4, 10),
            oral=True,
        )
    assert "at most 30 days" in str(error.value)
    suspended = accounting.do_suspend_disclosure(
        disclosure.public_id,
        acting_user=personas.roi_specialist,
        agency="Springfield Police Department",
        until=dt.date(2026, 4, 9),
        oral=True,
    )
    assert suspended.suspended_until == dt.date(2026, 4, 9) and suspended.suspension_oral
    assert audit_rows(object_type="roi.disclosure", action=Action.UPDATE)


def test_a_written_suspension_may_be_longer(personas, patient):
    disclosure = record(personas, patient, basis="health_oversight", purpose="Audit")
    suspended = accounting.do_suspend_disclosure(
        disclosure.public_id,
        acting_user=personas.roi_specialist,
        agency="State Medicaid Fraud Control Unit",
        until=dt.date(2026, 12, 31),
        oral=False,
        reason="Written statement on file",
    )
    assert suspended.suspended_until == dt.date(2026, 12, 31)


def test_a_suspension_needs_an_accountable_disclosure_and_a_future_end(personas, patient):
    treatment = record(personas, patient, basis="treatment", purpose="Care")
    with pytest.raises(ValidationError, match="nothing to suspend"):
        accounting.do_suspend_disclosure(
            treatment.public_id,
            acting_user=personas.roi_specialist,
            agency="Police",
            until=dt.date(2026, 3, 20),
            oral=True,
        )
    report = record(personas, patient)
    with pytest.raises(ValidationError, match="already have ended"):
        accounting.do_suspend_disclosure(
            report.public_id,
            acting_user=personas.roi_specialist,
            agency="Police",
            until=dt.date(2026, 3, 9),
            oral=True,
        )


def test_suspending_an_unknown_disclosure_is_a_404_and_audited(personas, audit_rows):
    with pytest.raises(Http404):
        accounting.do_suspend_disclosure(
            uuid.uuid4(),
            acting_user=personas.roi_specialist,
            agency="Police",
            until=dt.date(2026, 3, 20),
            oral=True,
        )
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.disclosure")


def test_a_privacy_officer_may_suspend_but_a_coder_may_not(personas, patient, audit_rows):
    disclosure = record(personas, patient)
    with pytest.raises(AccessDenied):
        accounting.do_suspend_disclosure(
            disclosure.public_id,
            acting_user=personas.coder,
            agency="Police",
            until=dt.date(2026, 3, 20),
            oral=True,
        )
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.disclosure")
    accounting.do_suspend_disclosure(
        disclosure.public_id,
        acting_user=personas.privacy_officer,
        agency="Police",
        until=dt.date(2026, 3, 20),
        oral=True,
    )


# --- a patient's request ---------------------------------------------------------------


def log(personas, patient, **overrides):
    values = {"acting_user": personas.roi_specialist, "received_on": dt.date(2026, 3, 10)}
    values.update(overrides)
    return accounting.do_log_accounting_request(patient.public_id, **values)


def test_a_request_covers_six_years_and_is_due_in_60_days(personas, patient, audit_rows):
    request = log(personas, patient)
    assert (request.period_from, request.period_to) == (dt.date(2020, 3, 10), dt.date(2026, 3, 10))
    assert request.due_on == dt.date(2026, 5, 9)
    assert request.fee == 0 and request.status == DeadlineStatus.OPEN
    (event,) = audit_rows(object_type="roi.accounting_request")
    assert event.action == Action.CREATE and event.detail["due_on"] == "2026-05-09"


def test_a_request_received_on_a_leap_day_covers_from_28_february(personas, patient):
    with time_machine.travel(dt.datetime(2028, 3, 1, 15, 0, tzinfo=dt.UTC), tick=False):
        request = log(personas, patient, received_on=dt.date(2028, 2, 29))
    assert request.period_from == dt.date(2022, 2, 28)
    assert request.due_on == dt.date(2028, 4, 29)


def test_a_deadline_across_the_year_end(personas, patient):
    with time_machine.travel(dt.datetime(2026, 12, 31, 15, 0, tzinfo=dt.UTC), tick=False):
        request = log(personas, patient, received_on=dt.date(2026, 12, 31))
    assert request.due_on == dt.date(2027, 3, 1)


def test_a_shorter_period_may_be_asked(personas, patient):
    request = log(
        personas, patient, period_from=dt.date(2025, 1, 1), period_to=dt.date(2025, 12, 31)
    )
    assert (request.period_from, request.period_to) == (dt.date(2025, 1, 1), dt.date(2025, 12, 31))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"period_from": dt.date(2020, 3, 9)}, "at most 6 years"),
        ({"period_to": dt.date(2026, 3, 11)}, "cannot end after"),
        ({"period_from": dt.date(2025, 5, 1), "period_to": dt.date(2025, 4, 1)}, "starts after"),
        ({"received_on": dt.date(2026, 3, 11)}, "future"),
    ],
)
def test_a_bad_period_is_refused(personas, patient, overrides, message):
    with pytest.raises(ValidationError) as error:
        log(personas, patient, **overrides)
    assert message in str(error.value)
    assert not AccountingRequest.objects.exists()


def test_the_policy_decides_the_days_and_the_years(personas, patient):
    set_policy(accounting_due_days=30, accounting_years=3)
    request = log(personas, patient)
    assert request.due_on == dt.date(2026, 4, 9)
    assert request.period_from == dt.date(2023, 3, 10)


def test_the_second_request_in_12_months_carries_the_fee(personas, patient):
    set_policy(parameters={"accounting_fee": "15.00"})
    first = log(personas, patient, received_on=dt.date(2025, 3, 10))
    second = log(personas, patient, received_on=dt.date(2026, 3, 9))
    assert first.fee == 0 and second.fee == Decimal("15.00")


def test_a_request_a_full_year_later_is_free_again(personas, patient):
    set_policy(parameters={"accounting_fee": "15.00"})
    log(personas, patient, received_on=dt.date(2025, 3, 10))
    assert log(personas, patient, received_on=dt.date(2026, 3, 10)).fee == 0


def test_without_a_configured_fee_every_request_is_free(personas, patient):
    RoiPolicy.objects.update(parameters={})
    log(personas, patient, received_on=dt.date(2026, 1, 10))
    assert log(personas, patient).fee == 0


def test_a_technician_may_not_log_a_request(personas, patient, audit_rows):
    with pytest.raises(AccessDenied):
        log(personas, patient, acting_user=personas.technician)
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.accounting_request")


# --- extension ----------------------------------------------------------------------------


def test_one_extension_with_a_written_notice(personas, patient, audit_rows):
    request = log(personas, patient)
    extended = accounting.do_extend_accounting_request(
        request.public_id, acting_user=personas.roi_specialist, reason="Records at an offsite store"
    )
    assert extended.extended_due_on == dt.date(2026, 6, 8)
    assert extended.status == DeadlineStatus.EXTENDED
    letter = Letter.objects.get(accounting_request=request)
    assert letter.kind == LetterKind.EXTENSION
    assert "offsite store" in letter.body and "2026-06-08" in letter.body
    with pytest.raises(ValidationError, match="only one"):
        accounting.do_extend_accounting_request(
            request.public_id, acting_user=personas.roi_specialist, reason="Again, please"
        )


def test_an_extension_after_the_due_date_is_refused(personas, patient):
    request = log(personas, patient)
    late = dt.datetime(2026, 5, 10, 15, 0, tzinfo=dt.UTC)
    with (
        time_machine.travel(late, tick=False),
        pytest.raises(ValidationError, match="has passed"),
    ):
        accounting.do_extend_accounting_request(
            request.public_id, acting_user=personas.roi_specialist, reason="Too late now"
        )
    request.refresh_from_db()
    assert request.extended_due_on is None


def test_an_extension_needs_a_reason(personas, patient):
    request = log(personas, patient)
    with pytest.raises(ValidationError, match="reason"):
        accounting.do_extend_accounting_request(
            request.public_id, acting_user=personas.roi_specialist, reason=" "
        )


# --- the report -------------------------------------------------------------------------


def test_the_report_lists_accountable_disclosures_of_the_period_oldest_first(personas, patient):
    record(
        personas,
        patient,
        disclosed_on=dt.date(2025, 9, 1),
        recipient_name="County Court",
        basis="judicial",
        purpose="Court order",
        description="Discharge summary",
    )
    record(personas, patient, disclosed_on=dt.date(2025, 2, 1))
    record(personas, patient, basis="treatment", recipient_name="Dr Elsewhere")
    record(personas, patient, disclosed_on=dt.date(2019, 1, 1))  # outside the six years
    request = log(personas, patient)
    answered, letter = accounting.do_answer_accounting_request(
        request.public_id, acting_user=personas.roi_specialist
    )
    assert answered.status == DeadlineStatus.ANSWERED and answered.answered_at == NOW
    assert letter.kind == LetterKind.ACCOUNTING and letter.accounting_request == request
    assert letter.sha256 and letter.file  # the PDF is kept beside the text
    body = letter.body
    assert body.index("2025-02-01") < body.index("2025-09-01")
    assert "County Court" in body and "1 Civic Plaza" in body and "Court order" in body
    assert "Dr Elsewhere" not in body and "2019-01-01" not in body


def test_repeated_disclosures_to_one_recipient_for_one_purpose_are_summarized(personas, patient):
    for month in (1, 2, 3, 4):
        record(personas, patient, disclosed_on=dt.date(2025, month, 15))
    request = log(personas, patient)
    _, letter = accounting.do_answer_accounting_request(
        request.public_id, acting_user=personas.roi_specialist
    )
    assert letter.body.count("Springfield Department of Public Health") == 1
    assert "4 disclosures" in letter.body and "the last on 2025-04-15" in letter.body


def test_without_summary_every_disclosure_is_listed(personas, patient):
    for month in (1, 2):
        record(personas, patient, disclosed_on=dt.date(2025, month, 15))
    entries = accounting.accounting_entries(
        accounting.accountable_disclosures(patient, dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
        summarize=False,
    )
    assert [e.disclosed_on for e in entries] == [dt.date(2025, 1, 15), dt.date(2025, 2, 15)]


def test_a_suspended_disclosure_is_left_out_while_suspended(personas, patient):
    disclosure = record(
        personas,
        patient,
        basis="law_enforcement",
        recipient_name="State Police",
        purpose="Investigation",
    )
    accounting.do_suspend_disclosure(
        disclosure.public_id,
        acting_user=personas.roi_specialist,
        agency="State Police",
        until=dt.date(2026, 3, 31),
        oral=True,
    )
    period = (patient, dt.date(2020, 3, 10), dt.date(2026, 3, 10))
    assert not accounting.accountable_disclosures(*period).exists()
    assert not accounting.accountable_disclosures(*period, on=dt.date(2026, 3, 31)).exists()
    assert accounting.accountable_disclosures(*period, on=dt.date(2026, 4, 1)).exists()
    request = log(personas, patient)
    _, letter = accounting.do_answer_accounting_request(
        request.public_id, acting_user=personas.roi_specialist
    )
    assert "State Police" not in letter.body and "no disclosures" in letter.body


def test_an_answered_request_is_not_answered_twice(personas, patient, audit_rows):
    request = log(personas, patient)
    accounting.do_answer_accounting_request(request.public_id, acting_user=personas.roi_specialist)
    with pytest.raises(ValidationError, match="already answered"):
        accounting.do_answer_accounting_request(
            request.public_id, acting_user=personas.roi_specialist
        )
    assert Letter.objects.filter(accounting_request=request).count() == 1
    (event,) = audit_rows(object_type="roi.accounting_request", action=Action.DISCLOSE)
    assert event.detail["entries"] == 0


def test_the_report_states_the_fee(personas, patient):
    set_policy(parameters={"accounting_fee": "15.00"})
    log(personas, patient, received_on=dt.date(2026, 1, 5))
    request = log(personas, patient)
    _, letter = accounting.do_answer_accounting_request(
        request.public_id, acting_user=personas.roi_specialist
    )
    assert "$15.00" in letter.body


def test_a_coder_may_not_answer(personas, patient, audit_rows):
    request = log(personas, patient)
    with pytest.raises(AccessDenied):
        accounting.do_answer_accounting_request(request.public_id, acting_user=personas.coder)
    assert audit_rows(outcome=Outcome.DENIED, object_type="roi.accounting_request")
    request.refresh_from_db()
    assert request.status == DeadlineStatus.OPEN


def test_a_disclosure_recorded_at_release_is_in_the_report(personas, patient):
    # The release work writes its own rows (no basis; accountable decided there).
    Disclosure.objects.create(
        patient=patient,
        disclosed_on=dt.date(2025, 11, 3),
        recipient_name="Hartley & Vance LLP",
        recipient_address="9 Court Street",
        description="Emergency department note",
        purpose="Litigation (subpoena with satisfactory assurance)",
        requester_type="subpoena",
        accountable=True,
        entered_by=personas.roi_specialist,
        entered_at=NOW,
    )
    request = log(personas, patient)
    _, letter = accounting.do_answer_accounting_request(
        request.public_id, acting_user=personas.roi_specialist
    )
    assert "Hartley & Vance LLP, 9 Court Street" in letter.body
