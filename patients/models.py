"""The master patient index (MPI): one enterprise person, one MRN per facility, other
identifiers, demographics, contacts and personal representatives.

Demographics change only through ``patients.actions``: each change writes a new
:class:`PatientVersion` with who, when and why, and the ``Patient`` row holds the
current state for search. National identifiers (SSN, driver's licence) are stored
encrypted (AES-GCM, ``recordroom.crypto``) with a keyed hash for exact look-up and the
last four characters for masked display.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Restriction(models.TextChoices):
    NONE = "", "None"
    VIP = "vip", "VIP"
    EMPLOYEE = "employee", "Employee"
    CONFIDENTIAL = "confidential", "Confidential"


class Sex(models.TextChoices):
    """Sex assigned at birth, as US Core's birth sex (F, M, UNK)."""

    FEMALE = "F", "Female"
    MALE = "M", "Male"
    UNKNOWN = "UNK", "Unknown"


class GenderIdentity(models.TextChoices):
    BLANK = "", "Not recorded"
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    NON_BINARY = "non-binary", "Non-binary"
    TRANSGENDER_FEMALE = "transgender-female", "Transgender female"
    TRANSGENDER_MALE = "transgender-male", "Transgender male"
    OTHER = "other", "Other"
    ASKED_DECLINED = "asked-declined", "Asked but declined"


class Race(models.TextChoices):
    """OMB race categories (US Core race extension)."""

    BLANK = "", "Not recorded"
    AMERICAN_INDIAN = "1002-5", "American Indian or Alaska Native"
    ASIAN = "2028-9", "Asian"
    BLACK = "2054-5", "Black or African American"
    PACIFIC_ISLANDER = "2076-8", "Native Hawaiian or Other Pacific Islander"
    WHITE = "2106-3", "White"
    OTHER = "2131-1", "Other race"
    DECLINED = "ASKU", "Asked but declined"


class Ethnicity(models.TextChoices):
    BLANK = "", "Not recorded"
    HISPANIC = "2135-2", "Hispanic or Latino"
    NOT_HISPANIC = "2186-5", "Not Hispanic or Latino"
    DECLINED = "ASKU", "Asked but declined"


class Patient(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # The current legal name (also a row in PatientName with use=official).
    family_name = models.CharField(max_length=100)
    given_name = models.CharField(max_length=100)
    middle_name = models.CharField(max_length=100, blank=True)
    suffix = models.CharField(max_length=20, blank=True)
    birth_date = models.DateField(db_index=True)
    sex_at_birth = models.CharField(max_length=3, choices=Sex.choices)
    gender_identity = models.CharField(max_length=24, choices=GenderIdentity.choices, blank=True)
    preferred_language = models.CharField(
        max_length=35, blank=True, help_text="BCP 47, e.g. en, es"
    )
    race = models.CharField(max_length=8, choices=Race.choices, blank=True)
    ethnicity = models.CharField(max_length=8, choices=Ethnicity.choices, blank=True)
    deceased_at = models.DateTimeField(null=True, blank=True)
    restriction = models.CharField(max_length=16, choices=Restriction.choices, blank=True)
    version = models.PositiveIntegerField(default=1)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_from"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "patients_patient"
        indexes = [
            models.Index(fields=["family_name", "given_name"], name="patient_name"),
            # The few restricted patients, found without reading every patient (the
            # visibility filter of searches and exports leaves them out).
            models.Index(
                fields=["restriction"],
                name="patient_restricted",
                condition=~models.Q(restriction=""),
            ),
        ]

    def __str__(self) -> str:
        # Deliberately no name: strings of models end up in logs and error reports.
        return f"patient {self.public_id}"

    @property
    def display_name(self) -> str:
        given = " ".join(p for p in (self.given_name, self.middle_name) if p)
        name = f"{self.family_name.upper()}, {given}"
        return f"{name} {self.suffix}".strip()

    @property
    def is_restricted(self) -> bool:
        return bool(self.restriction)


class NameUse(models.TextChoices):
    OFFICIAL = "official", "Legal name"
    USUAL = "usual", "Usual name"
    MAIDEN = "maiden", "Maiden name"
    OLD = "old", "Previous name"
    NICKNAME = "nickname", "Nickname"
    ANONYMOUS = "anonymous", "Alias"


class PatientName(models.Model):
    """Every name a patient is or was known by; the search index for names."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="names")
    use = models.CharField(max_length=12, choices=NameUse.choices, default=NameUse.OFFICIAL)
    family = models.CharField(max_length=100)
    given = models.CharField(max_length=100, blank=True)
    middle = models.CharField(max_length=100, blank=True)
    suffix = models.CharField(max_length=20, blank=True)
    period_end = models.DateField(null=True, blank=True)
    # Search keys, written by patients.matching.name_keys.
    family_norm = models.CharField(max_length=100, db_index=True)
    given_norm = models.CharField(max_length=100, db_index=True)
    family_phonetic = models.CharField(max_length=12, db_index=True)
    given_phonetic = models.CharField(max_length=12)

    class Meta:
        db_table = "patients_name"
        indexes = [
            models.Index(fields=["family_phonetic", "given_phonetic"], name="name_phonetic"),
            models.Index(fields=["given_norm", "family_norm"], name="name_given_family"),
            models.Index(fields=["family_norm", "given_norm"], name="name_family_given"),
        ]

    def __str__(self) -> str:
        return f"name of {self.patient_id}"


class IdentifierKind(models.TextChoices):
    MRN = "MR", "Medical record number"
    SSN = "SS", "Social Security number"
    DRIVERS_LICENSE = "DL", "Driver's licence"
    MEMBER_ID = "MB", "Payer member id"
    MEDICARE = "MC", "Medicare beneficiary id"
    PASSPORT = "PPN", "Passport number"
    OTHER = "XX", "Other identifier"


# Identifiers kept encrypted at rest, shown masked except to roles allowed to see them.
ENCRYPTED_KINDS = {IdentifierKind.SSN, IdentifierKind.DRIVERS_LICENSE, IdentifierKind.PASSPORT}


class PatientIdentifier(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="identifiers")
    kind = models.CharField(max_length=4, choices=IdentifierKind.choices)
    facility = models.ForeignKey(
        "accounts.Facility", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    issuer = models.CharField(
        max_length=100, blank=True, help_text="State, payer or system that issued it."
    )
    # Plain value for identifiers that are not secret (MRN, member ids); empty for encrypted ones.
    value = models.CharField(max_length=64, blank=True, db_index=True)
    value_encrypted = models.BinaryField(null=True, blank=True)
    value_hash = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="Keyed hash for exact look-up."
    )
    last4 = models.CharField(max_length=4, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "patients_identifier"
        # (patient, kind) and the facility: "an MRN of this patient at one of these
        # facilities" is answered from the index alone.
        indexes = [
            models.Index(fields=["patient", "kind", "facility"], name="identifier_patient_kind_fac")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["facility", "value"],
                condition=models.Q(kind="MR"),
                name="unique_mrn_per_facility",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} identifier of {self.patient_id}"

    @property
    def is_encrypted(self) -> bool:
        return self.kind in ENCRYPTED_KINDS

    @property
    def masked(self) -> str:
        if not self.is_encrypted:
            return self.value
        return ("***-**-" if self.kind == IdentifierKind.SSN else "••••") + self.last4


class AddressUse(models.TextChoices):
    HOME = "home", "Home"
    WORK = "work", "Work"
    TEMP = "temp", "Temporary"
    OLD = "old", "Previous"


class PatientAddress(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="addresses")
    use = models.CharField(max_length=8, choices=AddressUse.choices, default=AddressUse.HOME)
    line1 = models.CharField(max_length=200)
    line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100)
    state = models.CharField(max_length=2)
    postal_code = models.CharField(max_length=10, db_index=True)
    country = models.CharField(max_length=2, default="US")
    line1_norm = models.CharField(max_length=200, blank=True)
    period_end = models.DateField(null=True, blank=True)

    class Meta:
        db_table = "patients_address"

    def __str__(self) -> str:
        return f"address of {self.patient_id}"


class TelecomSystem(models.TextChoices):
    PHONE = "phone", "Phone"
    EMAIL = "email", "E-mail"


class TelecomUse(models.TextChoices):
    HOME = "home", "Home"
    MOBILE = "mobile", "Mobile"
    WORK = "work", "Work"


class PatientTelecom(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="telecoms")
    system = models.CharField(max_length=8, choices=TelecomSystem.choices)
    use = models.CharField(max_length=8, choices=TelecomUse.choices, default=TelecomUse.HOME)
    value = models.CharField(max_length=254)
    normalized = models.CharField(
        max_length=254, db_index=True, help_text="Digits of a phone; lower-case e-mail."
    )
    active = models.BooleanField(default=True)

    class Meta:
        db_table = "patients_telecom"

    def __str__(self) -> str:
        return f"{self.system} of {self.patient_id}"


class ContactKind(models.TextChoices):
    EMERGENCY = "emergency", "Emergency contact"
    REPRESENTATIVE = "representative", "Personal representative"


class LegalAuthority(models.TextChoices):
    """What makes a personal representative one (45 CFR 164.502(g))."""

    NONE = "", "None (contact only)"
    PARENT = "parent", "Parent of a minor"
    GUARDIAN = "guardian", "Court-appointed guardian"
    HEALTHCARE_POA = "healthcare_poa", "Health-care power of attorney"
    EXECUTOR = "executor", "Executor or administrator of the estate"
    NEXT_OF_KIN = "next_of_kin", "Next of kin under state law"


class PatientContact(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="contacts")
    kind = models.CharField(max_length=16, choices=ContactKind.choices)
    name = models.CharField(max_length=200)
    relationship = models.CharField(max_length=60, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    authority = models.CharField(max_length=16, choices=LegalAuthority.choices, blank=True)
    authority_document = models.FileField(upload_to="authority/%Y/", blank=True)
    authority_document_sha256 = models.CharField(max_length=64, blank=True)
    valid_from = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        db_table = "patients_contact"

    def __str__(self) -> str:
        return f"{self.kind} of {self.patient_id}"


class PatientVersion(models.Model):
    """An immutable snapshot of a patient's demographics after each change."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    snapshot = models.JSONField(help_text="Demographics as they stood; national ids masked.")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField()
    reason = models.CharField(max_length=300)

    class Meta:
        db_table = "patients_version"
        constraints = [
            models.UniqueConstraint(fields=["patient", "number"], name="unique_patient_version")
        ]
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"version {self.number} of {self.patient_id}"


class AccessGrant(models.Model):
    """Why a user may open a restricted record.

    ``kind=break_the_glass`` is an emergency access past a restriction: time-limited,
    with a stated reason, and reviewed afterwards by the privacy officer. Other kinds are
    standing relationships an administrator records (a treatment team, a job duty).
    """

    class Kind(models.TextChoices):
        BREAK_THE_GLASS = "break_the_glass", "Break-the-glass"
        TREATMENT = "treatment", "Treatment relationship"
        JOB = "job", "Job duty"

    class Review(models.TextChoices):
        PENDING = "pending", "Waiting for review"
        APPROPRIATE = "appropriate", "Appropriate"
        INAPPROPRIATE = "inappropriate", "Inappropriate"
        NOT_NEEDED = "", "No review needed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="access_grants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_grants"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    reason = models.TextField()
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    review_status = models.CharField(max_length=16, choices=Review.choices, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        db_table = "patients_accessgrant"
        indexes = [
            models.Index(fields=["user", "patient", "expires_at"], name="grant_user_patient"),
            models.Index(fields=["review_status", "granted_at"], name="grant_review"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} grant {self.public_id}"
