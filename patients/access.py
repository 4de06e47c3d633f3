"""The door to a patient's record. Every read of patient data starts here.

``access_patient`` checks, in order: the permission for what is asked (demographics,
clinical record, or a change); that the patient belongs to one of the user's
facilities (otherwise the same 404 as a patient that does not exist); and, for a
restricted patient (VIP, employee, confidential), a treatment or job relationship or a
live break-the-glass grant. Refusals are audited before they are raised; an allowed
access is audited as a view with its purpose.
"""

from __future__ import annotations

import uuid
from enum import Enum

from django.http import Http404

from accounts.access import AccessDenied, has_permission, require_permission
from accounts.roles import role_codes
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from patients.models import AccessGrant, IdentifierKind, Patient
from patients.permissions import PatientsPermission
from recordroom import clock


class Scope(Enum):
    DEMOGRAPHICS = PatientsPermission.READ_DEMOGRAPHICS
    CLINICAL = PatientsPermission.READ_CLINICAL
    UPDATE = PatientsPermission.UPDATE_DEMOGRAPHICS


class RestrictedRecord(AccessDenied):
    """The patient is restricted and the user has no relationship: show the notice and
    offer break-the-glass."""

    def __init__(self, patient: Patient):
        super().__init__("restricted record")
        self.patient = patient


def default_purpose(user) -> str:
    codes = role_codes(user)
    if "clinician" in codes:
        return Purpose.TREATMENT
    if "coder" in codes:
        return Purpose.PAYMENT
    if "privacy_officer" in codes:
        return Purpose.COMPLIANCE
    return Purpose.OPERATIONS


def facility_ids(user) -> set[int]:
    cached = getattr(user, "_facility_ids", None)
    if cached is None:
        cached = user._facility_ids = set(user.facilities.values_list("pk", flat=True))
    return cached


def patients_visible_to(user):
    """Patients with a medical record number at one of the user's facilities."""
    from django.db.models import Exists, OuterRef

    from patients.models import PatientIdentifier

    at_facility = PatientIdentifier.objects.filter(
        patient=OuterRef("pk"), kind=IdentifierKind.MRN, facility_id__in=facility_ids(user)
    )
    return Patient.objects.filter(Exists(at_facility), merged_into__isnull=True)


def in_users_facilities(user, patient: Patient) -> bool:
    return patient.identifiers.filter(
        kind=IdentifierKind.MRN, facility_id__in=facility_ids(user)
    ).exists()


def active_grant(user, patient: Patient, *, kinds=None) -> AccessGrant | None:
    now = clock.now()
    grants = (
        AccessGrant.objects.filter(user=user, patient=patient)
        .exclude(expires_at__lte=now)
        .exclude(review_status=AccessGrant.Review.INAPPROPRIATE)
    )
    if kinds:
        grants = grants.filter(kind__in=kinds)
    return grants.order_by("-granted_at").first()


def has_treatment_relationship(user, patient: Patient) -> bool:
    """The user attends one of the patient's current encounters (in progress, planned,
    or ended within RECORDROOM_TREATMENT_RELATIONSHIP_DAYS), or holds a recorded
    treatment relationship.

    Writing a document does not make one: otherwise a throwaway draft would open the
    patient's sensitive documents and restricted record without break-the-glass."""
    import datetime as dt

    from django.conf import settings
    from django.db.models import Q

    from encounters.models import Encounter

    since = clock.now() - dt.timedelta(days=settings.TREATMENT_RELATIONSHIP_DAYS)
    current = Q(status__in=["in-progress", "planned"]) | Q(status="finished", ended_at__gte=since)
    if Encounter.objects.filter(current, patient=patient, attending=user).exists():
        return True
    return active_grant(user, patient, kinds=[AccessGrant.Kind.TREATMENT]) is not None


def may_open_restricted(user, patient: Patient) -> bool:
    """A relationship that lets the user past a restriction."""
    if has_permission(user, PatientsPermission.MANAGE_RESTRICTIONS):
        return True  # the people who keep the restricted list have a standing job duty
    if active_grant(user, patient) is not None:
        return True
    return has_treatment_relationship(user, patient)


def _find(public_id) -> Patient | None:
    try:
        key = uuid.UUID(str(public_id))
    except ValueError:
        return None
    return Patient.objects.filter(public_id=key).first()


def access_patient(
    user, public_id, *, scope: Scope = Scope.DEMOGRAPHICS, purpose: str = ""
) -> Patient:
    purpose = purpose or default_purpose(user)
    action = Action.UPDATE if scope is Scope.UPDATE else Action.VIEW
    require_permission(
        user,
        scope.value,
        action=action,
        purpose=purpose,
        object_type="patient",
        object_id=str(public_id)[:64],
    )
    patient = _find(public_id)
    if patient is None or not in_users_facilities(user, patient):
        record_event(
            user,
            action,
            outcome=Outcome.DENIED,
            purpose=purpose,
            object_type="patient",
            object_id=str(public_id)[:64],
            reason="no such patient at the user's facilities",
        )
        raise Http404("No such patient")
    if patient.is_restricted and not may_open_restricted(user, patient):
        record_event(
            user,
            action,
            outcome=Outcome.DENIED,
            purpose=purpose,
            patient_id=patient.public_id,
            object_type="patient",
            object_id=str(patient.public_id),
            reason=f"restricted record ({patient.restriction}) without a relationship",
        )
        raise RestrictedRecord(patient)
    grant = active_grant(user, patient, kinds=[AccessGrant.Kind.BREAK_THE_GLASS])
    if grant and patient.is_restricted:
        purpose = Purpose.EMERGENCY
    record_event(
        user,
        action,
        purpose=purpose,
        patient_id=patient.public_id,
        object_type="patient",
        object_id=str(patient.public_id),
        detail={
            "scope": scope.name.lower(),
            **({"break_the_glass": str(grant.public_id)} if grant else {}),
        },
    )
    return patient


# --- demographics screens -----------------------------------------------------------------


class Demographics:
    """A patient's identity and contacts as the demographics screen shows them, read in
    a fixed number of queries (the template never goes back to the database)."""

    def __init__(self, user, patient: Patient):
        from patients.models import AddressUse, NameUse

        self.patient = patient
        names = list(patient.names.order_by("pk"))
        self.official_name = next(
            (n for n in names if n.use == NameUse.OFFICIAL and n.period_end is None), None
        )
        self.other_names = [
            n
            for n in names
            if n is not self.official_name and n.use != NameUse.OLD and n.period_end is None
        ]
        self.previous_names = [
            n
            for n in names
            if n is not self.official_name and (n.use == NameUse.OLD or n.period_end)
        ]
        addresses = list(patient.addresses.order_by("pk"))
        self.addresses = [a for a in addresses if a.use != AddressUse.OLD and not a.period_end]
        self.previous_addresses = [a for a in addresses if a not in self.addresses]
        telecoms = list(patient.telecoms.order_by("pk"))
        self.telecoms = [t for t in telecoms if t.active]
        self.former_telecoms = [t for t in telecoms if not t.active]
        identifiers = list(patient.identifiers.select_related("facility").order_by("pk"))
        self.mrns = [i for i in identifiers if i.kind == IdentifierKind.MRN]
        self.identifiers = [i for i in identifiers if i.kind != IdentifierKind.MRN and i.active]
        self.former_identifiers = [
            i for i in identifiers if i.kind != IdentifierKind.MRN and not i.active
        ]
        contacts = list(patient.contacts.order_by("pk"))
        self.contacts = [c for c in contacts if c.active]
        self.former_contacts = [c for c in contacts if not c.active]
        self.may_edit = has_permission(user, PatientsPermission.UPDATE_DEMOGRAPHICS)
        self.may_reveal = has_permission(user, PatientsPermission.VIEW_NATIONAL_ID)
        today = clock.now().date()
        born = patient.birth_date
        self.age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def access_demographics(user, public_id, *, for_update: bool = False) -> Demographics:
    """The demographics screen (and, with ``for_update``, the correction form, which
    needs the permission to correct as well as to read)."""
    if for_update:
        require_permission(
            user,
            PatientsPermission.UPDATE_DEMOGRAPHICS,
            action=Action.UPDATE,
            purpose=default_purpose(user),
            object_type="patient",
            object_id=str(public_id)[:64],
        )
    patient = access_patient(user, public_id, scope=Scope.DEMOGRAPHICS)
    return Demographics(user, patient)


def access_patient_versions(user, public_id) -> tuple[Patient, list]:
    """Every version of a patient's demographics, newest first, with who changed them."""
    patient = access_patient(user, public_id, scope=Scope.DEMOGRAPHICS)
    versions = list(patient.versions.select_related("changed_by").order_by("-number"))
    return patient, versions


def access_identifier_unmasked(user, public_id, identifier_id) -> tuple[Patient, object, str]:
    """Decrypt one national identifier (SSN, driver's licence, passport) for a role
    allowed to see it. Each unmasking is its own audit event, apart from the view of the
    patient, so the privacy officer can list them."""
    from patients.models import PatientIdentifier
    from recordroom import crypto

    purpose = default_purpose(user)
    require_permission(
        user,
        PatientsPermission.VIEW_NATIONAL_ID,
        action=Action.VIEW,
        purpose=purpose,
        object_type="patient_identifier",
        object_id=str(identifier_id)[:64],
    )
    patient = access_patient(user, public_id, scope=Scope.DEMOGRAPHICS, purpose=purpose)
    identifier = PatientIdentifier.objects.filter(pk=identifier_id, patient=patient).first()
    if identifier is None or not identifier.is_encrypted or not identifier.value_encrypted:
        record_event(
            user,
            Action.VIEW,
            outcome=Outcome.DENIED,
            purpose=purpose,
            patient_id=patient.public_id,
            object_type="patient_identifier",
            object_id=str(identifier_id)[:64],
            reason="no such encrypted identifier for this patient",
        )
        raise Http404("No such identifier")
    value = crypto.decrypt(identifier.value_encrypted)
    record_event(
        user,
        Action.VIEW,
        purpose=purpose,
        patient_id=patient.public_id,
        object_type="patient_identifier",
        object_id=str(identifier.pk),
        detail={"kind": identifier.kind, "unmasked": True},
    )
    return patient, identifier, value
