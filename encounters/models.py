"""Encounters: inpatient admissions (with transfers between units), observation stays,
emergency and outpatient visits. Corrections and cancellations are new versions
(:class:`EncounterVersion`), never silent edits."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class EncounterClass(models.TextChoices):
    """HL7 v3 ActCode encounter classes, as FHIR Encounter.class uses them."""

    INPATIENT = "IMP", "Inpatient"
    OBSERVATION = "OBSENC", "Observation"
    EMERGENCY = "EMER", "Emergency"
    OUTPATIENT = "AMB", "Outpatient"


class EncounterStatus(models.TextChoices):
    """FHIR Encounter.status."""

    PLANNED = "planned", "Planned"
    IN_PROGRESS = "in-progress", "In progress"
    FINISHED = "finished", "Discharged / finished"
    CANCELLED = "cancelled", "Cancelled"
    ENTERED_IN_ERROR = "entered-in-error", "Entered in error"


# An encounter that did not happen (cancelled) or was recorded in error: left out of
# every queue, count and rate.
VOID_ENCOUNTER = (EncounterStatus.CANCELLED, EncounterStatus.ENTERED_IN_ERROR)


class AdmitSource(models.TextChoices):
    """UB-04 point of origin (abridged)."""

    BLANK = "", "Not recorded"
    NON_HEALTHCARE = "1", "Non-health-care point of origin"
    CLINIC = "2", "Clinic or physician's office"
    TRANSFER_HOSPITAL = "4", "Transfer from a hospital"
    TRANSFER_SNF = "5", "Transfer from a skilled nursing facility"
    TRANSFER_OTHER = "6", "Transfer from another health-care facility"
    EMERGENCY = "7", "Emergency room"
    COURT = "8", "Court or law enforcement"
    NEWBORN = "5a", "Born inside this hospital"


class Disposition(models.TextChoices):
    """UB-04 patient discharge status (abridged)."""

    BLANK = "", "Not recorded"
    HOME = "01", "Home or self-care"
    SHORT_TERM_HOSPITAL = "02", "Short-term general hospital"
    SNF = "03", "Skilled nursing facility"
    HOME_HEALTH = "06", "Home under a home-health organisation"
    AMA = "07", "Left against medical advice"
    EXPIRED = "20", "Expired"
    HOSPICE_HOME = "50", "Hospice at home"
    HOSPICE_FACILITY = "51", "Hospice at a medical facility"
    REHAB = "62", "Inpatient rehabilitation facility"
    PSYCH = "65", "Psychiatric hospital or unit"


class Encounter(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="encounters"
    )
    facility = models.ForeignKey("accounts.Facility", on_delete=models.PROTECT, related_name="+")
    visit_number = models.CharField(max_length=32, help_text="Account / visit number.")
    encounter_class = models.CharField(max_length=8, choices=EncounterClass.choices)
    status = models.CharField(max_length=20, choices=EncounterStatus.choices)
    service = models.CharField(
        max_length=60, blank=True, help_text="Hospital service, e.g. medicine, surgery."
    )
    admit_source = models.CharField(max_length=3, choices=AdmitSource.choices, blank=True)
    started_at = models.DateTimeField(help_text="Admission or arrival.")
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Discharge or departure.")
    disposition = models.CharField(max_length=3, choices=Disposition.choices, blank=True)
    attending = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    unit = models.CharField(max_length=40, blank=True)
    bed = models.CharField(max_length=20, blank=True)
    reason = models.CharField(
        max_length=200, blank=True, help_text="Chief complaint / reason for visit."
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "encounters_encounter"
        constraints = [
            models.UniqueConstraint(
                fields=["facility", "visit_number"], name="unique_visit_number"
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "-started_at"], name="encounter_patient_start"),
            models.Index(fields=["facility", "ended_at"], name="encounter_discharge"),
            models.Index(fields=["attending", "status"], name="encounter_attending"),
        ]

    def __str__(self) -> str:
        return f"encounter {self.visit_number}"

    @property
    def is_inpatient(self) -> bool:
        return self.encounter_class == EncounterClass.INPATIENT


class EncounterLocation(models.Model):
    """Where the patient was, and when: the admission unit, then each transfer."""

    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, related_name="locations")
    unit = models.CharField(max_length=40)
    bed = models.CharField(max_length=20, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "encounters_location"
        ordering = ["started_at"]
        indexes = [models.Index(fields=["unit", "started_at"], name="location_unit_start")]

    def __str__(self) -> str:
        return f"location of {self.encounter_id}"


class EncounterVersion(models.Model):
    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    snapshot = models.JSONField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField()
    reason = models.CharField(max_length=300)

    class Meta:
        db_table = "encounters_version"
        constraints = [
            models.UniqueConstraint(fields=["encounter", "number"], name="unique_encounter_version")
        ]
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"version {self.number} of {self.encounter_id}"


class VisitNumberCounter(models.Model):
    """The next visit/account number a facility assigns. Writers lock the row, so two
    registrations never take the same number; the counter only ever increases."""

    facility = models.OneToOneField(
        "accounts.Facility", on_delete=models.PROTECT, related_name="+", primary_key=True
    )
    next_number = models.PositiveBigIntegerField(default=1)

    class Meta:
        db_table = "encounters_visitcounter"

    def __str__(self) -> str:
        return f"visit counter of facility {self.facility_id}"
