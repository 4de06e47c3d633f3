"""Release of information in the demo department: a step the demo loader runs after
coding. It gives the ROI specialist (``roi``) requests in every state, through the real
actions, so clocks, letters, packets, disclosures and the audit trail are all there:

- **logged**: a patient's own request, received today;
- **pended**: an attorney's request whose authorization is not signed (a pend letter);
- **in process**: an insurer-for-payment request with its documents proposed;
- **quality check**: a provider's continuing-care request waiting for a second person;
- **released**: a patient's request released as a packet with a download link (and so a
  disclosure event), checked by the HIM administrator;
- **denied**: a research request without an authorization, denied with a letter;
- **closed**: an insurer's request withdrawn when the claim settled;
- an **overdue** request received 40 days ago;
- an **accounting of disclosures** entry by hand (a public health report).
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from documents.models import Document
from documents.workflow import AUTHENTICATED
from roi import accounting, denials, intake, processing, release
from roi.authorizations import CHECKLIST
from roi.models import RoiRequest


def _patients(hospital) -> list:
    """Patients of the hospital with a signed document, most documented first."""
    from django.db.models import Count

    rows = (
        Document.objects.filter(
            status__in=AUTHENTICATED, patient__restriction="", is_sensitive=False
        )
        .filter(patient__identifiers__facility=hospital)
        .values("patient")
        .annotate(n=Count("pk"))
        .order_by("-n", "patient")
    )
    from patients.models import Patient

    ids = [row["patient"] for row in rows[:12]]
    found = {p.pk: p for p in Patient.objects.filter(pk__in=ids)}
    return [found[i] for i in ids if i in found]


def _log(user, patient, **fields):
    values = {
        "requester_type": "patient",
        "requester_name": patient.display_name,
        "received_on": accounting.today(),  # the hospital's date, as intake checks it
        "identity_verified": "Photo identification seen at the ROI window",
        "scope": {"all": True},
    }
    values.update(fields)
    return intake.do_log_request(user, patient.public_id, intake.RequestInput(**values))


def _authorize(user, request, *, signed=True, kind="hipaa"):
    checklist = {e.key: True for e in CHECKLIST}
    checklist["signature"] = signed
    today = accounting.today()
    return intake.do_record_authorization(
        user,
        request.public_id,
        intake.AuthorizationInput(
            kind=kind,
            checklist=checklist,
            signed_on=today - dt.timedelta(days=3) if signed else None,
            expires_on=today + dt.timedelta(days=180),
            recipient=request.requester_name,
            purpose=request.purpose or "as stated in the request",
        ),
    )


def load_roi(generator) -> dict:
    """Write the demo's ROI requests; returns how many of each state were made."""
    users = get_user_model().objects
    specialist = users.get(username="roi")
    admin = generator.cast.administrator
    hospital = generator.facilities[0]
    patients = _patients(hospital)
    made: dict[str, int] = {}
    if len(patients) < 4:
        return made
    today = accounting.today()

    def count(state):
        made[state] = made.get(state, 0) + 1

    _log(specialist, patients[0])
    count("logged")

    attorney = _log(
        specialist,
        patients[1],
        requester_type="attorney",
        requester_name="Harlan Brightwater, Esq.",
        requester_organization="Brightwater & Vale LLP",
        requester_address="400 Court Street, Springfield MA 01103",
        identity_verified="",
        purpose="Personal injury claim",
        format="paper",
        delivery="mail",
    )
    _authorize(specialist, attorney, signed=False)
    intake.do_check(specialist, attorney.public_id)
    count("pended")

    payer = _log(
        specialist,
        patients[2],
        requester_type="payer",
        requester_name="Claims review unit",
        requester_organization="Evergreen Health Plan",
        purpose="Payment of a claim",
        scope={"date_from": (today - dt.timedelta(days=365)).isoformat()},
        delivery="secure_email",
        requester_email="claims@evergreen.example",
    )
    intake.do_check(specialist, payer.public_id)
    processing.do_propose(specialist, payer.public_id)
    count("in_process")

    provider = _log(
        specialist,
        patients[3],
        requester_type="provider",
        requester_name="Dr. Ines Okafor",
        requester_organization="Riverside Family Practice",
        identity_verified="Provider verified by NPI",
        purpose="Continuing care",
        urgency="urgent",
    )
    intake.do_check(specialist, provider.public_id)
    processing.do_propose(specialist, provider.public_id)
    processing.do_submit_for_check(specialist, provider.public_id)
    count("qc")

    own = _log(specialist, patients[0], received_on=today - dt.timedelta(days=6))
    intake.do_check(specialist, own.public_id)
    processing.do_propose(specialist, own.public_id)
    processing.do_submit_for_check(specialist, own.public_id)
    processing.do_quality_check(admin, own.public_id, passed=True, notes="Scope and pages checked")
    try:
        release.do_release(specialist, own.public_id)
        count("released")
    except ValidationError:
        count("could_not_release")

    research = _log(
        specialist,
        patients[2],
        requester_type="research",
        requester_name="Study coordinator",
        requester_organization="Valley University",
        purpose="Retrospective study",
        received_on=today - dt.timedelta(days=3),
    )
    denials.do_deny(
        specialist,
        research.public_id,
        basis="invalid_authorization",
        explanation="No authorization of the patient and no IRB waiver on file.",
    )
    count("denied")

    withdrawn = _log(
        specialist,
        patients[3],
        requester_type="payer",
        requester_name="Claims review unit",
        requester_organization="Evergreen Health Plan",
        received_on=today - dt.timedelta(days=12),
    )
    intake.do_close(specialist, withdrawn.public_id, "withdrawn", "claim settled")
    count("closed")

    late = _log(
        specialist,
        patients[1],
        requester_type="representative",
        requester_name="Rosa Delgado (daughter)",
        received_on=today - dt.timedelta(days=40),
    )
    intake.do_check(specialist, late.public_id)
    count("overdue")

    try:
        accounting.do_record_disclosure(
            patients[3].public_id,
            acting_user=specialist,
            **_public_health_report(today),
        )
        count("disclosure_by_hand")
    except (TypeError, ValidationError):
        count("could_not_record_disclosure")
    made["requests"] = RoiRequest.objects.count()
    return made


def _public_health_report(today: dt.date) -> dict:
    return {
        "disclosed_on": today - dt.timedelta(days=20),
        "recipient_name": "State Department of Public Health",
        "recipient_address": "250 Washington Street, Boston MA 02108",
        "description": "Reportable condition case report",
        "purpose": "Public health reporting required by law",
        "basis": "public_health",
    }
