"""Clinical data per patient and encounter, FHIR-shaped: problems and diagnoses
(Condition), procedures, medications, allergies, results and vital signs
(Observation), immunizations. The whole FHIR resource is kept as received or written
(``resource``); the columns beside it are what RecordRoom searches and shows."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class ResourceType(models.TextChoices):
    CONDITION = "Condition", "Problem / diagnosis"
    PROCEDURE = "Procedure", "Procedure"
    MEDICATION_STATEMENT = "MedicationStatement", "Medication"
    MEDICATION_REQUEST = "MedicationRequest", "Medication order"
    ALLERGY = "AllergyIntolerance", "Allergy / intolerance"
    OBSERVATION = "Observation", "Result / vital sign"
    IMMUNIZATION = "Immunization", "Immunization"


# The source of the encounter-diagnosis Conditions that project a final coded abstract
# (clinical.actions.project_coded_diagnoses): billing codes, not a clinician's entry.
CODED_SOURCE = "RecordRoom coding: final abstract"


class ClinicalEntry(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="clinical_entries"
    )
    encounter = models.ForeignKey(
        "encounters.Encounter",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="clinical_entries",
    )
    resource_type = models.CharField(max_length=24, choices=ResourceType.choices)
    category = models.CharField(
        max_length=40, blank=True, help_text="e.g. problem-list-item, vital-signs, laboratory"
    )
    code_system = models.CharField(max_length=120, blank=True)
    code = models.CharField(max_length=40, blank=True)
    display = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=30, blank=True, help_text="Clinical or workflow status.")
    effective_at = models.DateTimeField(null=True, blank=True)
    value_quantity = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    value_unit = models.CharField(max_length=30, blank=True)
    value_text = models.CharField(max_length=300, blank=True)
    reference_low = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    reference_high = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    interpretation = models.CharField(max_length=8, blank=True, help_text="H, L, N, A …")
    resource = models.JSONField(help_text="The FHIR R4 resource, whole.")
    source = models.CharField(
        max_length=120, blank=True, help_text="Where it came from (system, bundle)."
    )
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    entered_in_error = models.BooleanField(default=False)

    class Meta:
        db_table = "clinical_entry"
        verbose_name_plural = "clinical entries"
        indexes = [
            models.Index(
                fields=["patient", "resource_type", "-effective_at"], name="clinical_patient_type"
            ),
            models.Index(fields=["encounter", "resource_type"], name="clinical_encounter_type"),
            # FHIR search by code (Observation?code=…): the code's entries, newest first.
            models.Index(
                fields=["resource_type", "code", "effective_at"], name="clinical_type_code_date"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type} {self.public_id}"


class ClinicalEntryVersion(models.Model):
    """Each state of a clinical entry's resource: the first as recorded, then every
    update and the entered-in-error mark. The entry row holds the current state."""

    entry = models.ForeignKey(ClinicalEntry, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    resource = models.JSONField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField()
    reason = models.CharField(max_length=300)

    class Meta:
        db_table = "clinical_entry_version"
        constraints = [
            models.UniqueConstraint(
                fields=["entry", "number"], name="unique_clinical_entry_version"
            )
        ]
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"version {self.number} of {self.entry_id}"
