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
from django.http import Http404

from accounts.access import AccessDenied, require_permission
from accounts.models import Facility
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
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


def _address_row(
    patient: Patient, address: AddressData, *, use: str = "", period_end=None
) -> PatientAddress:
    return PatientAddress(
        patient=patient,
        use=use or address.use,
        line1=address.line1.strip(),
        line2=address.line2.strip(),
        city=address.city.strip(),
        state=address.state.strip().upper(),
        postal_code=address.postal_code.strip(),
        country=address.country,
        line1_norm=matching.normalize_address_line(address.line1),
        period_end=period_end,
    )


def _normalized_telecom(system: str, value: str) -> str:
    return (
        matching.normalize_phone(value) if system == TelecomSystem.PHONE else value.strip().lower()
    )


def _telecom_row(patient: Patient, telecom: TelecomData) -> PatientTelecom:
    return PatientTelecom(
        patient=patient,
        system=telecom.system,
        use=telecom.use,
        value=telecom.value.strip(),
        normalized=_normalized_telecom(telecom.system, telecom.value),
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


def _write_children(patient: Patient, data: PatientData, now) -> dict[str, list]:
    """Write a new patient's names, identifiers, addresses, telecoms and contacts;
    returns the rows written, by the snapshot's names for them (see patient_snapshot)."""
    return {
        "names": PatientName.objects.bulk_create(
            [_name_row(patient, data.name), *[_name_row(patient, n) for n in data.other_names]]
        ),
        "identifiers": PatientIdentifier.objects.bulk_create(
            [_identifier_row(patient, i, now) for i in data.identifiers]
        ),
        "addresses": PatientAddress.objects.bulk_create(
            [_address_row(patient, a) for a in data.addresses]
        ),
        "telecoms": PatientTelecom.objects.bulk_create(
            [_telecom_row(patient, t) for t in data.telecoms]
        ),
        "contacts": PatientContact.objects.bulk_create(
            [_contact_row(patient, c) for c in data.contacts]
        ),
    }


def _children(patient: Patient, written: dict[str, list] | None, name: str, *related: str):
    """The patient's rows of one kind in the order they were written: those just
    written when given (every one with its key), else read from the database."""
    rows = (written or {}).get(name)
    if rows is not None and all(row.pk is not None for row in rows):
        return sorted(rows, key=lambda row: row.pk)
    return getattr(patient, name).select_related(*related).order_by("pk")


def patient_snapshot(patient: Patient, written: dict[str, list] | None = None) -> dict:
    """The patient's demographics as a version stores them (national ids masked).
    ``written``: the rows a registration has just written (``_write_children`` and
    the MRN), which are then not read back."""
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
            for n in _children(patient, written, "names")
        ],
        "identifiers": [
            {
                "kind": i.kind,
                "issuer": i.issuer,
                "value": i.masked,
                "active": i.active,
                "facility": i.facility.code if i.facility_id else None,
            }
            for i in _children(patient, written, "identifiers", "facility")
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
            for a in _children(patient, written, "addresses")
        ],
        "telecoms": [
            {"system": t.system, "use": t.use, "value": t.value, "active": t.active}
            for t in _children(patient, written, "telecoms")
        ],
        "contacts": [
            {
                "kind": c.kind,
                "name": c.name,
                "relationship": c.relationship,
                "authority": c.authority,
                "active": c.active,
            }
            for c in _children(patient, written, "contacts")
        ],
    }


def _write_version(
    patient: Patient, *, acting_user, reason: str, now, written: dict[str, list] | None = None
) -> PatientVersion:
    return PatientVersion.objects.create(
        patient=patient,
        number=patient.version,
        snapshot=patient_snapshot(patient, written),
        changed_by=acting_user,
        changed_at=now,
        reason=reason,
    )


def add_mrn(patient: Patient, facility: Facility, now) -> PatientIdentifier:
    """Give the patient the facility's next MRN."""
    return PatientIdentifier.objects.create(
        patient=patient,
        kind=IdentifierKind.MRN,
        facility=facility,
        value=next_mrn(facility),
        created_at=now,
    )


def _write_new_patient(
    data: PatientData, *, facility: Facility, acting_user, now, reason: str, public_id=None
) -> Patient:
    """The rows of a new person (the patient, names, identifiers, addresses, telecoms,
    contacts, the facility's MRN) and version 1, written from what was written rather
    than read back. Registration and the FHIR import both write a patient so; the
    caller checks permission, holds the transaction and audits."""
    patient = Patient.objects.create(
        **({"public_id": public_id} if public_id is not None else {}),
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
    written = _write_children(patient, data, now)
    written["identifiers"].append(add_mrn(patient, facility, now))
    _write_version(patient, acting_user=acting_user, reason=reason, now=now, written=written)
    return patient


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
        patient = _write_new_patient(
            data, facility=facility, acting_user=acting_user, now=now, reason=reason
        )
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
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why the restriction changes."})
    if len(reason) > 300:
        raise ValidationError({"reason": "At most 300 characters."})
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


def do_break_the_glass(patient: Patient, *, reason: str, acting_user, document=None) -> AccessGrant:
    """Emergency access past a restriction: stated reason, time-limited, reviewed later.

    The restriction is the patient's (VIP, employee, confidential) or, with ``document``,
    a sensitive document's category (psychotherapy, Part 2, HIV/STI …) on any patient."""
    require_permission(
        acting_user,
        PatientsPermission.BREAK_THE_GLASS,
        action=Action.BREAK_THE_GLASS,
        patient_id=patient.public_id,
        object_type="patient",
        object_id=str(patient.public_id),
    )
    from patients.access import in_users_facilities

    if not in_users_facilities(acting_user, patient):
        record_event(
            acting_user,
            Action.BREAK_THE_GLASS,
            outcome=Outcome.DENIED,
            purpose=Purpose.EMERGENCY,
            object_type="patient",
            object_id=str(patient.public_id),
            reason="no such patient at the user's facilities",
        )
        raise Http404("No such patient")
    if document is not None and (document.patient_id != patient.pk or not document.is_sensitive):
        raise ValidationError("That document is not a sensitive document of this patient.")
    if document is None and not patient.is_restricted:
        raise ValidationError("This record is not restricted; open it directly.")
    reason = reason.strip()
    if len(reason) < 10:
        raise ValidationError({"reason": "State the emergency reason (at least 10 characters)."})
    if len(reason) > 1000:
        raise ValidationError({"reason": "At most 1,000 characters."})
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
            detail={
                "minutes": settings.BREAK_THE_GLASS_MINUTES,
                **({"document": str(document.public_id)} if document is not None else {}),
            },
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
    if grant.user_id == acting_user.pk:
        record_event(
            acting_user,
            Action.UPDATE,
            outcome=Outcome.DENIED,
            purpose=Purpose.COMPLIANCE,
            patient_id=grant.patient.public_id,
            object_type="access_grant",
            object_id=str(grant.public_id),
            reason="a user may not review their own break-the-glass access",
        )
        raise AccessDenied("own break-the-glass access")
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


# --- demographic corrections --------------------------------------------------------------
# A correction writes the new state and keeps the old: a changed legal name or address
# becomes a previous one (use=old), phones, identifiers and contacts that no longer
# apply are deactivated, never deleted, and every change is a new PatientVersion with
# who, when and why. Personal representatives' proof of authority (a court order, a
# power of attorney) is stored with its SHA-256 so a later substitution shows.

import hashlib  # noqa: E402
import uuid  # noqa: E402

from patients.models import AddressUse  # noqa: E402

AUTHORITY_DOCUMENT_MAX_BYTES = 10 * 1024 * 1024
# File signatures of the formats a records department accepts for a legal document.
_AUTHORITY_DOCUMENT_TYPES = [
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"II*\x00", "tif"),
    (b"MM\x00*", "tif"),
]


def _document_extension(upload) -> str | None:
    head = upload.read(8)
    upload.seek(0)
    for signature, extension in _AUTHORITY_DOCUMENT_TYPES:
        if head.startswith(signature):
            return extension
    return None


def check_authority_documents(documents: dict, contacts: list[ContactData]) -> None:
    """Refuse documents that are too large, not a PDF or image, or not tied to a
    personal representative's authority. ``documents`` maps a contact's index in
    ``contacts`` to its uploaded file."""
    errors: dict[str, list[str]] = {}
    for index, upload in documents.items():
        key = f"contacts.{index}.authority_document"
        if index >= len(contacts) or index < 0:
            errors.setdefault(key, []).append("There is no contact for this document.")
            continue
        if not contacts[index].authority:
            errors.setdefault(key, []).append(
                "A document proves a legal authority: choose the authority it proves."
            )
        if upload.size > AUTHORITY_DOCUMENT_MAX_BYTES:
            errors.setdefault(key, []).append("The document is larger than 10 MB.")
        elif _document_extension(upload) is None:
            errors.setdefault(key, []).append("The document must be a PDF, PNG, JPEG or TIFF file.")
    if errors:
        raise ValidationError(errors)


def _store_authority_document(contact: PatientContact, upload, stored: list) -> None:
    """Write the file under a random name (an uploaded file name may hold a patient's
    name) and record its SHA-256."""
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    extension = _document_extension(upload)
    contact.authority_document.save(f"{uuid.uuid4().hex}.{extension}", upload, save=False)
    stored.append((contact.authority_document.storage, contact.authority_document.name))
    contact.authority_document_sha256 = digest.hexdigest()


def _remove_stored(stored: list) -> None:
    for storage, name in stored:
        storage.delete(name)


def _contact_row(patient: Patient, contact: ContactData) -> PatientContact:
    return PatientContact(
        patient=patient,
        kind=contact.kind,
        name=contact.name.strip(),
        relationship=contact.relationship.strip(),
        phone=contact.phone.strip(),
        email=contact.email.strip(),
        authority=contact.authority,
        valid_from=contact.valid_from,
        valid_until=contact.valid_until,
    )


def do_register_patient_with_documents(
    data: PatientData,
    *,
    facility: Facility,
    acting_user,
    authority_documents: dict | None = None,
    reason: str = "registered",
) -> Patient:
    """Register a patient (``do_register_patient``) and store the documents that prove
    their personal representatives' authority, all or nothing."""
    require_permission(
        acting_user, PatientsPermission.REGISTER, action=Action.CREATE, object_type="patient"
    )
    documents = authority_documents or {}
    validate_patient_data(data)
    check_authority_documents(documents, data.contacts)
    stored: list = []
    try:
        with transaction.atomic():
            patient = do_register_patient(
                data, facility=facility, acting_user=acting_user, reason=reason
            )
            if documents:
                contacts = list(patient.contacts.order_by("pk"))
                for index, upload in sorted(documents.items()):
                    contact = contacts[index]
                    _store_authority_document(contact, upload, stored)
                    contact.save(update_fields=["authority_document", "authority_document_sha256"])
            return patient
    except BaseException:
        _remove_stored(stored)
        raise


def _name_key(use: str, family: str, given: str, middle: str, suffix: str) -> tuple:
    return (use, family.strip(), given.strip(), middle.strip(), suffix.strip())


def _update_names(patient: Patient, data: PatientData, today: dt.date, changes: list) -> None:
    current = list(patient.names.filter(period_end__isnull=True).order_by("pk"))
    official = [n for n in current if n.use == NameUse.OFFICIAL]
    others = {
        _name_key(n.use, n.family, n.given, n.middle, n.suffix): n
        for n in current
        if n.use != NameUse.OFFICIAL
    }
    wanted_official = _name_key(
        NameUse.OFFICIAL, data.name.family, data.name.given, data.name.middle, data.name.suffix
    )
    if [_name_key(n.use, n.family, n.given, n.middle, n.suffix) for n in official] != [
        wanted_official
    ]:
        # The legal name changed (or was corrected): the old one stays, as a previous name.
        for name in official:
            name.use, name.period_end = NameUse.OLD, today
            name.save(update_fields=["use", "period_end"])
        _name_row(patient, data.name).save(force_insert=True)
        changes.append("name")
    wanted = {_name_key(n.use, n.family, n.given, n.middle, n.suffix): n for n in data.other_names}
    for key, name in others.items():
        if key not in wanted:
            name.period_end = today
            name.save(update_fields=["period_end"])
            changes.append("other_names")
    new = [_name_row(patient, n) for key, n in wanted.items() if key not in others]
    if new:
        PatientName.objects.bulk_create(new)
        changes.append("other_names")


def _address_key(a) -> tuple:
    return (
        matching.normalize_address_line(a.line1),
        matching.normalize_address_line(a.line2),
        a.city.strip().lower(),
        a.state.strip().upper(),
        a.postal_code.strip(),
    )


def _update_addresses(patient: Patient, data: PatientData, today: dt.date, changes: list) -> None:
    rows = list(patient.addresses.order_by("pk"))
    current = [a for a in rows if a.use != AddressUse.OLD and a.period_end is None]
    previous_keys = {_address_key(a) for a in rows if a.use == AddressUse.OLD}
    wanted = [(a.use, _address_key(a), a) for a in data.addresses]
    wanted_current = {(use, key) for use, key, _ in wanted if use != AddressUse.OLD}
    current_keys = {(a.use, _address_key(a)) for a in current}
    for address in current:
        if (address.use, _address_key(address)) not in wanted_current:
            previous_keys.add(_address_key(address))
            address.use, address.period_end = AddressUse.OLD, today
            address.save(update_fields=["use", "period_end"])
            changes.append("addresses")
    for use, key, address in wanted:
        if use == AddressUse.OLD and key in previous_keys:
            continue
        if use != AddressUse.OLD and (use, key) in current_keys:
            continue
        _address_row(
            patient, address, use=use, period_end=today if use == AddressUse.OLD else None
        ).save(force_insert=True)
        if use == AddressUse.OLD:
            previous_keys.add(key)
        changes.append("addresses")


def _telecom_key(system: str, use: str, value: str) -> tuple:
    return (system, use, _normalized_telecom(system, value))


def _update_telecoms(patient: Patient, data: PatientData, changes: list) -> None:
    active = list(patient.telecoms.filter(active=True).order_by("pk"))
    wanted = {_telecom_key(t.system, t.use, t.value): t for t in data.telecoms}
    have = {_telecom_key(t.system, t.use, t.value) for t in active}
    for telecom in active:
        if _telecom_key(telecom.system, telecom.use, telecom.value) not in wanted:
            telecom.active = False
            telecom.save(update_fields=["active"])
            changes.append("telecoms")
    for key, telecom in wanted.items():
        if key in have:
            continue
        _telecom_row(patient, telecom).save(force_insert=True)
        changes.append("telecoms")


def _identifier_key(kind: str, issuer: str, value: str) -> tuple:
    value = matching.normalize_identifier(value)
    if kind in ENCRYPTED_KINDS:
        value = crypto.blind_index(kind, value)
    return (kind, issuer.strip(), value)


def _update_identifiers(patient: Patient, data: PatientData, keep_ids, now, changes: list) -> None:
    active = list(
        patient.identifiers.filter(active=True).exclude(kind=IdentifierKind.MRN).order_by("pk")
    )
    wanted = {_identifier_key(i.kind, i.issuer, i.value): i for i in data.identifiers}
    new_ssn = any(i.kind == IdentifierKind.SSN for i in data.identifiers)
    have = set()
    for row in active:
        key = (row.kind, row.issuer, row.value_hash if row.is_encrypted else row.value)
        matched = key in wanted
        kept = keep_ids is not None and row.pk in keep_ids
        if matched or (kept and not (row.kind == IdentifierKind.SSN and new_ssn)):
            have.add(key)
            continue
        # A patient has one SSN: a new one replaces the one on file.
        row.active = False
        row.save(update_fields=["active"])
        changes.append("identifiers")
    new = [_identifier_row(patient, i, now) for key, i in wanted.items() if key not in have]
    if new:
        PatientIdentifier.objects.bulk_create(new)
        changes.append("identifiers")


def _contact_key(c) -> tuple:
    return (
        c.kind,
        c.name.strip(),
        c.relationship.strip(),
        c.phone.strip(),
        c.email.strip().lower(),
        c.authority,
        c.valid_from,
        c.valid_until,
    )


def _update_contacts(
    patient: Patient, data: PatientData, documents: dict, stored: list, changes: list
) -> None:
    active = list(patient.contacts.filter(active=True).order_by("pk"))
    by_key = {_contact_key(c): c for c in active}
    wanted_keys = [_contact_key(c) for c in data.contacts]
    retired = []
    for contact in active:
        key = _contact_key(contact)
        index = wanted_keys.index(key) if key in wanted_keys else None
        if index is None or index in documents:
            contact.active = False
            contact.save(update_fields=["active"])
            retired.append(contact)
            changes.append("contacts")
    retired_keys = {_contact_key(c) for c in retired}
    for index, contact in enumerate(data.contacts):
        key = wanted_keys[index]
        if key in by_key and key not in retired_keys:
            continue
        row = _contact_row(patient, contact)
        if index in documents:
            _store_authority_document(row, documents[index], stored)
        else:
            # A corrected phone or e-mail does not lose the proof of authority on file.
            for old in retired:
                if (old.kind, old.name, old.authority) == (
                    row.kind,
                    row.name,
                    row.authority,
                ) and old.authority_document:
                    row.authority_document = old.authority_document.name
                    row.authority_document_sha256 = old.authority_document_sha256
                    break
        row.save(force_insert=True)
        changes.append("contacts")


def do_update_demographics(
    patient: Patient,
    data: PatientData,
    *,
    reason: str,
    acting_user,
    expected_version: int | None = None,
    keep_identifier_ids=None,
    authority_documents: dict | None = None,
) -> Patient:
    """Correct a patient's demographics: ``data`` is the whole new state.

    Identifiers other than MRNs that are not in ``data`` are deactivated, except those
    whose ids are in ``keep_identifier_ids`` (the screen cannot retype an SSN it only
    shows masked); a new SSN replaces the one on file. ``expected_version`` refuses the
    change when someone else corrected the patient since the form was opened.
    """
    require_permission(
        acting_user,
        PatientsPermission.UPDATE_DEMOGRAPHICS,
        action=Action.UPDATE,
        patient_id=patient.public_id,
        object_type="patient",
        object_id=str(patient.public_id),
    )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(
            {"reason": "Say why the demographics change (for example: name change, ID seen)."}
        )
    if len(reason) > 300:
        raise ValidationError({"reason": "At most 300 characters."})
    validate_patient_data(data)
    if sum(1 for i in data.identifiers if i.kind == IdentifierKind.SSN) > 1:
        raise ValidationError({"identifiers": "A patient has one Social Security number."})
    documents = authority_documents or {}
    check_authority_documents(documents, data.contacts)
    keep_ids = set(keep_identifier_ids) if keep_identifier_ids is not None else None
    stored: list = []
    try:
        with transaction.atomic():
            now = clock.now()
            locked = Patient.objects.select_for_update().get(pk=patient.pk)
            if locked.merged_into_id:
                raise ValidationError(
                    "This record was merged into another; correct the surviving record."
                )
            if expected_version is not None and locked.version != expected_version:
                raise ValidationError(
                    "Someone else changed this patient's demographics after you opened the "
                    "form. Open it again to see their change, then make yours."
                )
            changes: list[str] = []
            scalars = {
                "family_name": data.name.family.strip(),
                "given_name": data.name.given.strip(),
                "middle_name": data.name.middle.strip(),
                "suffix": data.name.suffix.strip(),
                "birth_date": data.birth_date,
                "sex_at_birth": data.sex_at_birth,
                "gender_identity": data.gender_identity,
                "preferred_language": data.preferred_language.strip(),
                "race": data.race,
                "ethnicity": data.ethnicity,
                "deceased_at": data.deceased_at,
            }
            for name, value in scalars.items():
                if getattr(locked, name) != value:
                    setattr(locked, name, value)
                    if name not in ("family_name", "given_name", "middle_name", "suffix"):
                        changes.append(name)
            _update_names(locked, data, now.date(), changes)
            _update_addresses(locked, data, now.date(), changes)
            _update_telecoms(locked, data, changes)
            _update_identifiers(locked, data, keep_ids, now, changes)
            _update_contacts(locked, data, documents, stored, changes)
            if not changes:
                raise ValidationError("Nothing changed: the form matches what is on file.")
            locked.version += 1
            locked.updated_at = now
            locked.save()
            _write_version(locked, acting_user=acting_user, reason=reason, now=now)
            record_event(
                acting_user,
                Action.UPDATE,
                purpose=Purpose.OPERATIONS,
                patient_id=locked.public_id,
                object_type="patient",
                object_id=str(locked.public_id),
                reason=reason,
                detail={"changed": sorted(set(changes)), "version": locked.version},
            )
            return locked
    except BaseException:
        _remove_stored(stored)
        raise
