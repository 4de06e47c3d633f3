"""Every change to the master patient index: registration, demographic corrections,
restrictions and break-the-glass. Each writes a new version and its audit event in one
transaction; permission checks come first, outside it (see accounts.access)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.access import require_permission
from accounts.models import Facility
from audit.actions import record_event
from audit.models import Action, Purpose
from patients import matching
from patients.models import (
    ENCRYPTED_KINDS,
    AccessGrant,
    IdentifierKind,
    NameUse,
    Patient,
    PatientAddress,
    PatientContact,
    PatientIdentifier,
    PatientName,
    PatientTelecom,
    PatientVersion,
    Restriction,
    Sex,
    TelecomSystem,
)
from patients.mrn import next_mrn
from patients.permissions import PatientsPermission
from recordroom import clock, crypto

# Letters of any alphabet, joined by single spaces, hyphens, apostrophes or periods.
_NAME = re.compile(r"^[^\W\d_]+(?:(?:[ '’\-]|\. ?)[^\W\d_]+)*\.?$")
_SSN = re.compile(r"^(?!000|666|9\d\d)\d{3}-?(?!00)\d{2}-?(?!0000)\d{4}$")
_POSTAL = re.compile(r"^\d{5}(?:-\d{4})?$")
_STATE = re.compile(r"^[A-Z]{2}$")


@dataclass
class NameData:
    family: str
    given: str = ""
    middle: str = ""
    suffix: str = ""
    use: str = NameUse.OFFICIAL


@dataclass
class IdentifierData:
    kind: str
    value: str
    issuer: str = ""
    facility: Facility | None = None


@dataclass
class AddressData:
    line1: str
    city: str
    state: str
    postal_code: str
    line2: str = ""
    use: str = "home"
    country: str = "US"


@dataclass
class TelecomData:
    system: str
    value: str
    use: str = "home"


@dataclass
class ContactData:
    kind: str
    name: str
    relationship: str = ""
    phone: str = ""
    email: str = ""
    authority: str = ""
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None


@dataclass
class PatientData:
    """What a registration or correction says about a person."""

    name: NameData
    birth_date: dt.date
    sex_at_birth: str
    gender_identity: str = ""
    preferred_language: str = ""
    race: str = ""
    ethnicity: str = ""
    other_names: list[NameData] = field(default_factory=list)
    identifiers: list[IdentifierData] = field(default_factory=list)
    addresses: list[AddressData] = field(default_factory=list)
    telecoms: list[TelecomData] = field(default_factory=list)
    contacts: list[ContactData] = field(default_factory=list)
    deceased_at: dt.datetime | None = None


# --- validation --------------------------------------------------------------------------


def _check_name_part(errors: dict, key: str, value: str, *, required: bool) -> None:
    value = value.strip()
    if not value:
        if required:
            errors.setdefault(key, []).append("Required.")
        return
    if len(value) > 100:
        errors.setdefault(key, []).append("At most 100 characters.")
    elif not _NAME.match(value):
        errors.setdefault(key, []).append(
            "Use letters, spaces, hyphens, apostrophes and periods only (no digits, markup or symbols)."
        )


def validate_patient_data(data: PatientData, *, today: dt.date | None = None) -> None:
    """Raise ValidationError (keyed by field) for anything impossible or malformed."""
    today = today or clock.now().date()
    errors: dict[str, list[str]] = {}
    for prefix, name in [
        ("name", data.name),
        *[(f"other_names.{i}", n) for i, n in enumerate(data.other_names)],
    ]:
        _check_name_part(errors, f"{prefix}.family", name.family, required=True)
        _check_name_part(errors, f"{prefix}.given", name.given, required=prefix == "name")
        _check_name_part(errors, f"{prefix}.middle", name.middle, required=False)
        if name.suffix and not re.fullmatch(r"[A-Za-z.]{1,10}", name.suffix.strip()):
            errors.setdefault(f"{prefix}.suffix", []).append("A suffix such as Jr, Sr, II, III.")
    if data.birth_date > today:
        errors.setdefault("birth_date", []).append("The date of birth is in the future.")
    elif data.birth_date < dt.date(1880, 1, 1):
        errors.setdefault("birth_date", []).append("The date of birth is before 1880.")
    if data.sex_at_birth not in Sex.values:
        errors.setdefault("sex_at_birth", []).append("Choose female, male or unknown.")
    if data.deceased_at and data.deceased_at.date() < data.birth_date:
        errors.setdefault("deceased_at", []).append(
            "The date of death is before the date of birth."
        )
    for i, ident in enumerate(data.identifiers):
        if ident.kind not in IdentifierKind.values:
            errors.setdefault(f"identifiers.{i}", []).append("Unknown identifier type.")
        elif ident.kind == IdentifierKind.SSN and not _SSN.match(ident.value.strip()):
            errors.setdefault(f"identifiers.{i}", []).append(
                "A Social Security number is 9 digits (e.g. 123-45-6789) and cannot start with 000, 666 or 9."
            )
        elif ident.kind == IdentifierKind.MRN:
            errors.setdefault(f"identifiers.{i}", []).append(
                "MRNs are assigned by RecordRoom, not entered."
            )
        elif not re.fullmatch(r"[A-Za-z0-9\-]{1,40}", ident.value.strip()):
            errors.setdefault(f"identifiers.{i}", []).append(
                "Letters, digits and hyphens only, at most 40."
            )
    for i, address in enumerate(data.addresses):
        if not _STATE.match(address.state.strip().upper()):
            errors.setdefault(f"addresses.{i}.state", []).append(
                "A two-letter state code, e.g. MA."
            )
        if not _POSTAL.match(address.postal_code.strip()):
            errors.setdefault(f"addresses.{i}.postal_code", []).append(
                "A ZIP code: 5 digits, or ZIP+4."
            )
        if "<" in address.line1 + address.line2 + address.city:
            errors.setdefault(f"addresses.{i}.line1", []).append("No markup in addresses.")
    for i, telecom in enumerate(data.telecoms):
        if (
            telecom.system == TelecomSystem.PHONE
            and len(matching.normalize_phone(telecom.value)) != 10
        ):
            errors.setdefault(f"telecoms.{i}", []).append("A phone number has 10 digits.")
        if telecom.system == TelecomSystem.EMAIL and not re.fullmatch(
            r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", telecom.value.strip()
        ):
            errors.setdefault(f"telecoms.{i}", []).append("Not an e-mail address.")
    for i, contact in enumerate(data.contacts):
        _check_name_part(
            errors, f"contacts.{i}.name", contact.name.replace(",", " "), required=True
        )
    if errors:
        raise ValidationError(errors)


# --- writing ----------------------------------------------------------------------------


def _name_row(patient: Patient, name: NameData) -> PatientName:
    return PatientName(
        patient=patient,
        use=name.use,
        family=name.family.strip(),
        given=name.given.strip(),
        middle=name.middle.strip(),
        suffix=name.suffix.strip(),
        family_norm=matching.normalize_name(name.family),
        given_norm=matching.normalize_name(name.given),
        family_phonetic=matching.phonetic(name.family),
        given_phonetic=matching.phonetic(name.given),
    )


def _identifier_row(patient: Patient, ident: IdentifierData, now) -> PatientIdentifier:
    value = matching.normalize_identifier(ident.value)
    row = PatientIdentifier(
        patient=patient,
        kind=ident.kind,
        issuer=ident.issuer.strip(),
        facility=ident.facility,
        created_at=now,
    )
    if ident.kind in ENCRYPTED_KINDS:
        row.value_encrypted = crypto.encrypt(value)
        row.value_hash = crypto.blind_index(ident.kind, value)
        row.last4 = value[-4:]
    else:
        row.value = value
        row.value_hash = ""
    return row


def _write_children(patient: Patient, data: PatientData, now) -> None:
    PatientName.objects.bulk_create(
        [_name_row(patient, data.name), *[_name_row(patient, n) for n in data.other_names]]
    )
    PatientIdentifier.objects.bulk_create(
        [_identifier_row(patient, i, now) for i in data.identifiers]
    )
    PatientAddress.objects.bulk_create(
        [
            PatientAddress(
                patient=patient,
                use=a.use,
                line1=a.line1.strip(),
                line2=a.line2.strip(),
                city=a.city.strip(),
                state=a.state.strip().upper(),
                postal_code=a.postal_code.strip(),
                country=a.country,
                line1_norm=matching.normalize_address_line(a.line1),
            )
            for a in data.addresses
        ]
    )
    PatientTelecom.objects.bulk_create(
        [
            PatientTelecom(
                patient=patient,
                system=t.system,
                use=t.use,
                value=t.value.strip(),
                normalized=matching.normalize_phone(t.value)
                if t.system == TelecomSystem.PHONE
                else t.value.strip().lower(),
            )
            for t in data.telecoms
        ]
    )
    PatientContact.objects.bulk_create(
        [
            PatientContact(
                patient=patient,
                kind=c.kind,
                name=c.name.strip(),
                relationship=c.relationship,
                phone=c.phone,
                email=c.email,
                authority=c.authority,
                valid_from=c.valid_from,
                valid_until=c.valid_until,
            )
            for c in data.contacts
        ]
    )


def patient_snapshot(patient: Patient) -> dict:
    """The patient's demographics as a version stores them (national ids masked)."""
    return {
        "name": {
            "family": patient.family_name,
            "given": patient.given_name,
            "middle": patient.middle_name,
            "suffix": patient.suffix,
        },
        "birth_date": patient.birth_date.isoformat(),
        "sex_at_birth": patient.sex_at_birth,
        "gender_identity": patient.gender_identity,
        "preferred_language": patient.preferred_language,
        "race": patient.race,
        "ethnicity": patient.ethnicity,
        "deceased_at": patient.deceased_at.isoformat() if patient.deceased_at else None,
        "restriction": patient.restriction,
        "names": [
            {
                "use": n.use,
                "family": n.family,
                "given": n.given,
                "middle": n.middle,
                "suffix": n.suffix,
            }
            for n in patient.names.order_by("pk")
        ],
        "identifiers": [
            {
                "kind": i.kind,
                "issuer": i.issuer,
                "value": i.masked,
                "active": i.active,
                "facility": i.facility.code if i.facility_id else None,
            }
            for i in patient.identifiers.select_related("facility").order_by("pk")
        ],
        "addresses": [
            {
                "use": a.use,
                "line1": a.line1,
                "line2": a.line2,
                "city": a.city,
                "state": a.state,
                "postal_code": a.postal_code,
            }
            for a in patient.addresses.order_by("pk")
        ],
        "telecoms": [
            {"system": t.system, "use": t.use, "value": t.value, "active": t.active}
            for t in patient.telecoms.order_by("pk")
        ],
        "contacts": [
            {
                "kind": c.kind,
                "name": c.name,
                "relationship": c.relationship,
                "authority": c.authority,
                "active": c.active,
            }
            for c in patient.contacts.order_by("pk")
        ],
    }


def _write_version(patient: Patient, *, acting_user, reason: str, now) -> PatientVersion:
    return PatientVersion.objects.create(
        patient=patient,
        number=patient.version,
        snapshot=patient_snapshot(patient),
        changed_by=acting_user,
        changed_at=now,
        reason=reason,
    )


def do_register_patient(
    data: PatientData,
    *,
    facility: Facility,
    acting_user,
    reason: str = "registered",
    source_system: bool = False,
) -> Patient:
    """Register a new person in the MPI and assign the facility's next MRN.

    The registration screen shows likely matches first (patients.search.find_candidates);
    this action does not repeat that check, so an interface can register too.
    """
    require_permission(
        acting_user, PatientsPermission.REGISTER, action=Action.CREATE, object_type="patient"
    )
    validate_patient_data(data)
    with transaction.atomic():
        now = clock.now()
        patient = Patient.objects.create(
            family_name=data.name.family.strip(),
            given_name=data.name.given.strip(),
            middle_name=data.name.middle.strip(),
            suffix=data.name.suffix.strip(),
            birth_date=data.birth_date,
            sex_at_birth=data.sex_at_birth,
            gender_identity=data.gender_identity,
            preferred_language=data.preferred_language,
            race=data.race,
            ethnicity=data.ethnicity,
            deceased_at=data.deceased_at,
            created_at=now,
            updated_at=now,
        )
        _write_children(patient, data, now)
        PatientIdentifier.objects.create(
            patient=patient,
            kind=IdentifierKind.MRN,
            facility=facility,
            value=next_mrn(facility),
            created_at=now,
        )
        _write_version(patient, acting_user=acting_user, reason=reason, now=now)
        record_event(
            acting_user,
            Action.CREATE,
            purpose=Purpose.OPERATIONS,
            patient_id=patient.public_id,
            object_type="patient",
            object_id=str(patient.public_id),
            detail={"facility": facility.code},
        )
        return patient


def mrn_of(patient: Patient, facility: Facility | None = None) -> str:
    identifiers = patient.identifiers.filter(kind=IdentifierKind.MRN, active=True)
    if facility is not None:
        identifiers = identifiers.filter(facility=facility)
    first = identifiers.order_by("pk").first()
    return first.value if first else ""


# --- restrictions and break-the-glass ----------------------------------------------------


def do_set_restriction(patient: Patient, restriction: str, *, reason: str, acting_user) -> None:
    require_permission(
        acting_user,
        PatientsPermission.MANAGE_RESTRICTIONS,
        action=Action.UPDATE,
        patient_id=patient.public_id,
        object_type="patient",
        object_id=str(patient.public_id),
    )
    if restriction not in Restriction.values:
        raise ValidationError({"restriction": "Unknown restriction."})
    if not reason.strip():
        raise ValidationError({"reason": "Say why the restriction changes."})
    with transaction.atomic():
        now = clock.now()
        locked = Patient.objects.select_for_update().get(pk=patient.pk)
        old = locked.restriction
        locked.restriction = restriction
        locked.version += 1
        locked.updated_at = now
        locked.save(update_fields=["restriction", "version", "updated_at"])
        _write_version(locked, acting_user=acting_user, reason=reason, now=now)
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=Purpose.SECURITY,
            patient_id=patient.public_id,
            object_type="patient",
            object_id=str(patient.public_id),
            reason=reason,
            detail={"restriction": {"from": old, "to": restriction}},
        )
        patient.restriction, patient.version = restriction, locked.version


def do_break_the_glass(patient: Patient, *, reason: str, acting_user) -> AccessGrant:
    """Emergency access past a restriction: stated reason, time-limited, reviewed later."""
    require_permission(
        acting_user,
        PatientsPermission.BREAK_THE_GLASS,
        action=Action.BREAK_THE_GLASS,
        patient_id=patient.public_id,
        object_type="patient",
        object_id=str(patient.public_id),
    )
    reason = reason.strip()
    if len(reason) < 10:
        raise ValidationError({"reason": "State the emergency reason (at least 10 characters)."})
    with transaction.atomic():
        now = clock.now()
        grant = AccessGrant.objects.create(
            patient=patient,
            user=acting_user,
            kind=AccessGrant.Kind.BREAK_THE_GLASS,
            reason=reason,
            granted_at=now,
            expires_at=now + dt.timedelta(minutes=settings.BREAK_THE_GLASS_MINUTES),
            granted_by=acting_user,
            review_status=AccessGrant.Review.PENDING,
        )
        record_event(
            acting_user,
            Action.BREAK_THE_GLASS,
            purpose=Purpose.EMERGENCY,
            patient_id=patient.public_id,
            object_type="access_grant",
            object_id=str(grant.public_id),
            reason=reason,
            detail={"minutes": settings.BREAK_THE_GLASS_MINUTES},
        )
        return grant


def do_review_break_the_glass(grant: AccessGrant, *, status: str, note: str, acting_user) -> None:
    require_permission(
        acting_user,
        PatientsPermission.REVIEW_BREAK_THE_GLASS,
        action=Action.UPDATE,
        patient_id=grant.patient.public_id,
        object_type="access_grant",
        object_id=str(grant.public_id),
    )
    if status not in (AccessGrant.Review.APPROPRIATE, AccessGrant.Review.INAPPROPRIATE):
        raise ValidationError({"status": "Choose appropriate or inappropriate."})
    if status == AccessGrant.Review.INAPPROPRIATE and not note.strip():
        raise ValidationError({"note": "Say what was inappropriate."})
    if grant.review_status != AccessGrant.Review.PENDING:
        raise ValidationError("This access has already been reviewed.")
    with transaction.atomic():
        now = clock.now()
        updated = AccessGrant.objects.filter(
            pk=grant.pk, review_status=AccessGrant.Review.PENDING
        ).update(
            review_status=status, review_note=note.strip(), reviewed_by=acting_user, reviewed_at=now
        )
        if not updated:
            raise ValidationError("This access has already been reviewed.")
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=Purpose.COMPLIANCE,
            patient_id=grant.patient.public_id,
            object_type="access_grant",
            object_id=str(grant.public_id),
            reason=f"break-the-glass reviewed: {status}",
            detail={"status": status},
        )
