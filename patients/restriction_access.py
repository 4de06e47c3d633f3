"""Reads for the restriction screens: the restriction notice, break-the-glass, the
privacy officer's review queue and the restriction page.

Like ``patients.access``, every function takes the acting user, checks the permission
(refusals audited by ``require_permission``), answers "not at your facilities" with the
same audited 404 as "no such record", and audits what it shows. The notice shows only
what a user without a relationship may learn: the record's public id and the kind of
restriction, never a name or a date of birth.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.fields.json import KT
from django.http import Http404

from accounts.access import AccessDenied, has_permission, require_permission
from audit.actions import record_event
from audit.models import Action, AuditEvent, Outcome, Purpose
from patients.access import (
    access_patient,
    default_purpose,
    facility_ids,
    in_users_facilities,
    may_open_restricted,
)
from patients.models import (
    AccessGrant,
    IdentifierKind,
    Patient,
    PatientIdentifier,
    PatientVersion,
    Restriction,
)
from patients.permissions import PatientsPermission
from recordroom import clock

# What each restriction means, in words a user without a relationship may read.
EXPLANATIONS = {
    Restriction.VIP: (
        "The patient is a person of public interest. Their record is open only to the "
        "people caring for them and to staff whose job needs it."
    ),
    Restriction.EMPLOYEE: (
        "The patient works for this organisation. Colleagues may open the record only "
        "when they are caring for the patient or their job needs it."
    ),
    Restriction.CONFIDENTIAL: (
        "The patient asked for, or the law requires, extra confidentiality. The record "
        "is open only to the people caring for the patient and to staff whose job needs it."
    ),
}

REVIEWED = (AccessGrant.Review.APPROPRIATE, AccessGrant.Review.INAPPROPRIATE)
# A review page lists at most this many audit events of the grant's window.
ACCESS_LIMIT = 500


def _key(public_id) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(public_id))
    except ValueError:
        return None


def _not_found(user, action: str, purpose: str, object_type: str, object_id, reason: str):
    record_event(
        user,
        action,
        outcome=Outcome.DENIED,
        purpose=purpose,
        object_type=object_type,
        object_id=str(object_id)[:64],
        reason=reason,
    )
    return Http404("Not found")


def _patient_at_users_facilities(user, public_id, *, action: str, purpose: str) -> Patient:
    key = _key(public_id)
    patient = Patient.objects.filter(public_id=key).first() if key else None
    if patient is None or not in_users_facilities(user, patient):
        raise _not_found(
            user, action, purpose, "patient", public_id, "no such patient at the user's facilities"
        )
    return patient


def needs_break_the_glass(user, patient: Patient) -> bool:
    """Restricted, and the user has no relationship or live grant that opens it."""
    return patient.is_restricted and not may_open_restricted(user, patient)


# --- the restriction notice and break-the-glass -----------------------------------------


@dataclass(frozen=True)
class RestrictionNotice:
    public_id: uuid.UUID
    restriction: str
    label: str
    explanation: str
    may_open: bool
    may_break_the_glass: bool
    minutes: int


def _notice(user, patient: Patient) -> RestrictionNotice:
    restriction = Restriction(patient.restriction)
    return RestrictionNotice(
        public_id=patient.public_id,
        restriction=restriction.value,
        label=restriction.label,
        explanation=EXPLANATIONS.get(restriction, ""),
        may_open=not needs_break_the_glass(user, patient),
        may_break_the_glass=has_permission(user, PatientsPermission.BREAK_THE_GLASS),
        minutes=settings.BREAK_THE_GLASS_MINUTES,
    )


def restriction_notice(user, public_id) -> RestrictionNotice:
    """What the restriction notice may show, and whether the user may open the record
    anyway (then the notice is not needed). Showing it is audited."""
    purpose = default_purpose(user)
    require_permission(
        user,
        PatientsPermission.READ_DEMOGRAPHICS,
        action=Action.VIEW,
        purpose=purpose,
        object_type="patient",
        object_id=str(public_id)[:64],
    )
    patient = _patient_at_users_facilities(user, public_id, action=Action.VIEW, purpose=purpose)
    notice = _notice(user, patient)
    record_event(
        user,
        Action.VIEW,
        purpose=purpose,
        patient_id=patient.public_id,
        object_type="patient.restriction_notice",
        object_id=str(patient.public_id),
        detail={"restriction": notice.restriction, "may_open": notice.may_open},
    )
    return notice


def notice_for(user, patient: Patient) -> RestrictionNotice:
    """The notice again for a patient already fetched (a break-the-glass form with
    errors); not audited a second time."""
    return _notice(user, patient)


def patient_for_break_the_glass(user, public_id) -> Patient:
    """The patient a break-the-glass request names, for ``do_break_the_glass``: the user
    must hold the permission, and the patient must be at one of their facilities. The
    action itself audits the grant."""
    require_permission(
        user,
        PatientsPermission.BREAK_THE_GLASS,
        action=Action.BREAK_THE_GLASS,
        purpose=Purpose.EMERGENCY,
        object_type="patient",
        object_id=str(public_id)[:64],
    )
    return _patient_at_users_facilities(
        user, public_id, action=Action.BREAK_THE_GLASS, purpose=Purpose.EMERGENCY
    )


# --- the review queue -------------------------------------------------------------------


def _grants_at_users_facilities(user) -> QuerySet[AccessGrant]:
    patients_here = PatientIdentifier.objects.filter(
        kind=IdentifierKind.MRN, facility_id__in=facility_ids(user)
    ).values("patient_id")
    mrn = (
        PatientIdentifier.objects.filter(
            patient_id=OuterRef("patient_id"),
            kind=IdentifierKind.MRN,
            facility_id__in=facility_ids(user),
        )
        .order_by("-active", "pk")
        .values("value")[:1]
    )
    return (
        AccessGrant.objects.filter(
            kind=AccessGrant.Kind.BREAK_THE_GLASS, patient_id__in=Subquery(patients_here)
        )
        .annotate(mrn=Subquery(mrn))
        .select_related("user", "patient", "reviewed_by")
    )


@dataclass
class QueuePage:
    grants: list[AccessGrant]
    count: int
    number: int
    pages: int
    reviewed: bool
    now: dt.datetime = field(default_factory=clock.now)

    def __bool__(self) -> bool:
        return bool(self.grants)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def break_the_glass_queue(
    user, *, reviewed: bool = False, page: int | str = 1, per_page: int = 25
) -> QueuePage:
    """Break-the-glass accesses at the user's facilities: waiting for review (oldest
    first), or already reviewed (latest review first). Listing them is audited."""
    require_permission(
        user,
        PatientsPermission.REVIEW_BREAK_THE_GLASS,
        action=Action.SEARCH,
        purpose=Purpose.COMPLIANCE,
        object_type="access_grant",
    )
    grants = _grants_at_users_facilities(user)
    if reviewed:
        grants = grants.filter(review_status__in=REVIEWED).order_by("-reviewed_at", "-pk")
    else:
        grants = grants.filter(review_status=AccessGrant.Review.PENDING).order_by(
            "granted_at", "pk"
        )
    paginator = Paginator(grants, per_page)
    current = paginator.get_page(page)
    rows = list(current.object_list)
    record_event(
        user,
        Action.SEARCH,
        purpose=Purpose.COMPLIANCE,
        object_type="access_grant",
        detail={
            "queue": "reviewed" if reviewed else "pending",
            "page": current.number,
            "grants": [str(grant.public_id) for grant in rows],
        },
    )
    return QueuePage(
        grants=rows,
        count=paginator.count,
        number=current.number,
        pages=paginator.num_pages,
        reviewed=reviewed,
    )


def pending_break_the_glass(user, *, limit: int = 5) -> QueuePage:
    """The oldest accesses waiting for review (the privacy officer's home panel)."""
    return break_the_glass_queue(user, reviewed=False, per_page=limit)


# --- one grant under review -------------------------------------------------------------


def accesses_during(grant: AccessGrant) -> QuerySet[AuditEvent]:
    """What the grant's holder did with the patient's record while the grant ran:
    their audit events about that patient from the grant to its expiry, oldest first."""
    events = AuditEvent.objects.filter(
        actor_id=grant.user_id,
        patient_id=grant.patient.public_id,
        occurred_at__gte=grant.granted_at,
    )
    if grant.expires_at is not None:
        events = events.filter(occurred_at__lte=grant.expires_at)
    return events.order_by("seq")


@dataclass
class GrantReview:
    grant: AccessGrant
    accesses: list[AuditEvent]
    accesses_capped: bool
    own: bool
    active: bool
    earlier_grants: int


def _grant_at_users_facilities(user, grant_id, *, action: str) -> AccessGrant:
    key = _key(grant_id)
    grant = _grants_at_users_facilities(user).filter(public_id=key).first() if key else None
    if grant is None:
        raise _not_found(
            user,
            action,
            Purpose.COMPLIANCE,
            "access_grant",
            grant_id,
            "no such break-the-glass access at the user's facilities",
        )
    return grant


def grant_for_review(user, grant_id) -> GrantReview:
    """One break-the-glass access with everything its holder did during it; audited."""
    require_permission(
        user,
        PatientsPermission.REVIEW_BREAK_THE_GLASS,
        action=Action.VIEW,
        purpose=Purpose.COMPLIANCE,
        object_type="access_grant",
        object_id=str(grant_id)[:64],
    )
    grant = _grant_at_users_facilities(user, grant_id, action=Action.VIEW)
    accesses = list(accesses_during(grant)[: ACCESS_LIMIT + 1])
    now = clock.now()
    earlier = AccessGrant.objects.filter(
        user_id=grant.user_id,
        kind=AccessGrant.Kind.BREAK_THE_GLASS,
        granted_at__lt=grant.granted_at,
        granted_at__gte=grant.granted_at - dt.timedelta(days=90),
    ).count()
    record_event(
        user,
        Action.VIEW,
        purpose=Purpose.COMPLIANCE,
        patient_id=grant.patient.public_id,
        object_type="access_grant",
        object_id=str(grant.public_id),
    )
    return GrantReview(
        grant=grant,
        accesses=accesses[:ACCESS_LIMIT],
        accesses_capped=len(accesses) > ACCESS_LIMIT,
        own=grant.user_id == user.pk,
        active=grant.expires_at is None or grant.expires_at > now,
        earlier_grants=earlier,
    )


def grant_for_decision(user, grant_id) -> AccessGrant:
    """The grant a reviewer is about to mark, for ``do_review_break_the_glass``. Nobody
    reviews their own break-the-glass: that refusal is audited like any other."""
    require_permission(
        user,
        PatientsPermission.REVIEW_BREAK_THE_GLASS,
        action=Action.UPDATE,
        purpose=Purpose.COMPLIANCE,
        object_type="access_grant",
        object_id=str(grant_id)[:64],
    )
    grant = _grant_at_users_facilities(user, grant_id, action=Action.UPDATE)
    if grant.user_id == user.pk:
        record_event(
            user,
            Action.UPDATE,
            outcome=Outcome.DENIED,
            purpose=Purpose.COMPLIANCE,
            patient_id=grant.patient.public_id,
            object_type="access_grant",
            object_id=str(grant.public_id),
            reason="a user may not review their own break-the-glass access",
        )
        raise AccessDenied("own break-the-glass access")
    return grant


# --- the restriction page ---------------------------------------------------------------


@dataclass(frozen=True)
class RestrictionChange:
    version: int
    restriction: str
    label: str
    changed_at: dt.datetime
    changed_by: str
    reason: str


@dataclass
class RestrictionPage:
    patient: Patient
    mrn: str
    history: list[RestrictionChange]
    grants: list[AccessGrant]


def restriction_history(patient: Patient) -> list[RestrictionChange]:
    """Each version at which the restriction changed, newest first (from the version
    snapshots, so the history is as append-only as the versions)."""
    versions = (
        PatientVersion.objects.filter(patient=patient)
        .order_by("number")
        .annotate(restriction=KT("snapshot__restriction"))
        .values("number", "restriction", "changed_at", "changed_by__username", "reason")
    )
    changes: list[RestrictionChange] = []
    previous = ""
    for version in versions:
        current = version["restriction"] or ""
        if current != previous:
            changes.append(
                RestrictionChange(
                    version=version["number"],
                    restriction=current,
                    label=Restriction(current).label if current in Restriction.values else current,
                    changed_at=version["changed_at"],
                    changed_by=version["changed_by__username"] or "",
                    reason=version["reason"],
                )
            )
        previous = current
    changes.reverse()
    return changes


def patient_for_restriction(user, public_id) -> RestrictionPage:
    """The restriction page of a patient, for those who keep the restricted list: the
    current restriction, its history and the latest break-the-glass accesses. Opening it
    is audited as a view for security administration."""
    require_permission(
        user,
        PatientsPermission.MANAGE_RESTRICTIONS,
        action=Action.VIEW,
        purpose=Purpose.SECURITY,
        object_type="patient",
        object_id=str(public_id)[:64],
    )
    patient = access_patient(user, public_id, purpose=Purpose.SECURITY)
    mrn = (
        PatientIdentifier.objects.filter(
            patient=patient, kind=IdentifierKind.MRN, facility_id__in=facility_ids(user)
        )
        .order_by("-active", "pk")
        .values_list("value", flat=True)
        .first()
    )
    grants = list(
        AccessGrant.objects.filter(patient=patient)
        .select_related("user", "reviewed_by")
        .order_by("-granted_at")[:20]
    )
    return RestrictionPage(
        patient=patient, mrn=mrn or "", history=restriction_history(patient), grants=grants
    )
