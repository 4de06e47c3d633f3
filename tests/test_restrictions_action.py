"""Flagging a patient VIP, employee or confidential (patients.actions.do_set_restriction):
a new version with who, when and why, audited as a security change."""

import pytest
from django.core.exceptions import ValidationError

from accounts.access import AccessDenied
from audit.models import Action, Outcome, Purpose
from patients.actions import do_set_restriction
from patients.models import Patient, Restriction
from recordroom.testing import register_patient

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient(personas):
    return register_patient(personas)


def test_it_flags_the_patient_in_a_new_version_and_audits_it(personas, patient, audit_rows):
    do_set_restriction(
        patient,
        Restriction.EMPLOYEE,
        reason="nurse on 4 West",
        acting_user=personas.privacy_officer,
    )
    stored = Patient.objects.get(pk=patient.pk)
    assert stored.restriction == Restriction.EMPLOYEE
    assert stored.version == patient.version == 2
    version = stored.versions.get(number=2)
    assert version.snapshot["restriction"] == "employee"
    assert version.reason == "nurse on 4 West"
    assert version.changed_by == personas.privacy_officer
    assert stored.versions.get(number=1).snapshot["restriction"] == ""
    (event,) = audit_rows(action=Action.UPDATE)
    assert event.purpose == Purpose.SECURITY
    assert event.patient_id == patient.public_id
    assert event.detail == {"restriction": {"from": "", "to": "employee"}}


def test_it_lifts_a_restriction(personas, patient):
    do_set_restriction(
        patient, Restriction.VIP, reason="public figure", acting_user=personas.administrator
    )
    do_set_restriction(
        patient, Restriction.NONE, reason="no longer", acting_user=personas.administrator
    )
    stored = Patient.objects.get(pk=patient.pk)
    assert not stored.is_restricted
    assert [v.snapshot["restriction"] for v in stored.versions.order_by("number")] == [
        "",
        "vip",
        "",
    ]


@pytest.mark.parametrize(
    "restriction, reason, message",
    [("celebrity", "famous", "Unknown restriction"), ("vip", "   ", "Say why")],
)
def test_bad_input_is_refused_and_nothing_is_written(
    personas, patient, audit_rows, restriction, reason, message
):
    with pytest.raises(ValidationError, match=message):
        do_set_restriction(patient, restriction, reason=reason, acting_user=personas.administrator)
    stored = Patient.objects.get(pk=patient.pk)
    assert (stored.restriction, stored.version, stored.versions.count()) == ("", 1, 1)
    assert not audit_rows(action=Action.UPDATE)


@pytest.mark.parametrize("persona", ["technician", "clinician", "patient", "no_role"])
def test_other_roles_are_refused_and_audited(personas, patient, audit_rows, persona):
    user = getattr(personas, persona)
    with pytest.raises(AccessDenied):
        do_set_restriction(patient, Restriction.VIP, reason="famous", acting_user=user)
    assert Patient.objects.get(pk=patient.pk).restriction == ""
    (event,) = audit_rows(actor=user)
    assert event.outcome == Outcome.DENIED
    assert event.reason == "lacks permission patients.manage_restrictions"
    assert event.patient_id == patient.public_id
