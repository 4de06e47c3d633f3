"""The legal document record.

"If it was not written down, it did not happen": a document is never overwritten or
deleted. Its content lives in numbered :class:`DocumentVersion` rows; signing freezes a
version and keeps the SHA-256 of what was signed; an amendment or correction is a new
version with who, when and why; entered-in-error hides the document from ordinary views
but keeps it. Every status change is a :class:`DocumentStatusChange` row.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class DocumentType(models.Model):
    """A kind of document, by its LOINC document code. Data, seeded by migration."""

    loinc_code = models.CharField(max_length=10, unique=True)
    display = models.CharField(max_length=120)
    short_name = models.CharField(max_length=40)
    category = models.CharField(
        max_length=40, blank=True, help_text="e.g. clinical-note, order, administrative"
    )
    active = models.BooleanField(default=True)

    class Meta:
        db_table = "documents_type"
        ordering = ["display"]

    def __str__(self) -> str:
        return f"{self.display} ({self.loinc_code})"


class SensitiveCategory(models.TextChoices):
    """Categories that need specific permission and are excluded from releases otherwise."""

    PSYCHOTHERAPY = "psychotherapy", "Psychotherapy notes"
    SUBSTANCE_USE = "sud_part2", "Substance use disorder (42 CFR Part 2)"
    HIV_STI = "hiv_sti", "HIV / sexually transmitted infection"
    GENETIC = "genetic", "Genetic information"
    REPRODUCTIVE = "reproductive", "Reproductive health"
    BEHAVIORAL = "behavioral", "Behavioural health"


class DocumentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    FINAL = "final", "Final (signed)"
    AMENDED = "amended", "Amended"
    CORRECTED = "corrected", "Corrected"
    ENTERED_IN_ERROR = "entered-in-error", "Entered in error"


class DocumentSource(models.TextChoices):
    AUTHORED = "authored", "Written in RecordRoom"
    SCANNED = "scanned", "Scanned paper"
    IMPORTED = "imported", "Imported (interface)"


class OrderMode(models.TextChoices):
    """How an order was given: verbal and telephone orders must be authenticated by the
    ordering clinician within the state's limit (completion policy)."""

    NOT_AN_ORDER = "", "Not an order"
    WRITTEN = "written", "Written / entered by the prescriber"
    VERBAL = "verbal", "Verbal order"
    TELEPHONE = "telephone", "Telephone order"


class Document(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="documents"
    )
    encounter = models.ForeignKey(
        "encounters.Encounter",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="documents",
    )
    doc_type = models.ForeignKey(DocumentType, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=200)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    service_at = models.DateTimeField(help_text="When the care it records happened.")
    entered_at = models.DateTimeField(help_text="When it was written into the record.")
    late_entry = models.BooleanField(default=False)
    status = models.CharField(
        max_length=20, choices=DocumentStatus.choices, default=DocumentStatus.DRAFT
    )
    source = models.CharField(
        max_length=10, choices=DocumentSource.choices, default=DocumentSource.AUTHORED
    )
    order_mode = models.CharField(
        max_length=10, choices=OrderMode.choices, blank=True, default=OrderMode.NOT_AN_ORDER
    )
    addendum_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="addenda"
    )
    sensitivity = models.JSONField(default=list, blank=True, help_text="SensitiveCategory values.")
    is_sensitive = models.BooleanField(default=False)
    current_version = models.ForeignKey(
        "DocumentVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "documents_document"
        indexes = [
            models.Index(fields=["patient", "-service_at"], name="document_patient_service"),
            models.Index(fields=["encounter", "doc_type"], name="document_encounter_type"),
            models.Index(fields=["author", "status"], name="document_author_status"),
        ]

    def __str__(self) -> str:
        return f"document {self.public_id}"


class VersionKind(models.TextChoices):
    ORIGINAL = "original", "Original"
    REVISION = "revision", "Draft revision"
    AMENDMENT = "amendment", "Amendment"
    CORRECTION = "correction", "Correction"


class DocumentVersion(models.Model):
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(
        max_length=12, choices=VersionKind.choices, default=VersionKind.ORIGINAL
    )
    body = models.TextField(blank=True)
    attachment = models.FileField(upload_to="documents/%Y/%m/", blank=True)
    attachment_name = models.CharField(max_length=200, blank=True)
    attachment_content_type = models.CharField(max_length=100, blank=True)
    attachment_size = models.PositiveBigIntegerField(null=True, blank=True)
    attachment_sha256 = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=300, blank=True, help_text="Why this version was made.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    content_sha256 = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of what was signed."
    )

    class Meta:
        db_table = "documents_version"
        constraints = [
            models.UniqueConstraint(fields=["document", "number"], name="unique_document_version")
        ]
        ordering = ["number"]

    def __str__(self) -> str:
        return f"version {self.number} of {self.document_id}"


class DocumentStatusChange(models.Model):
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="status_changes")
    from_status = models.CharField(max_length=20, choices=DocumentStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=DocumentStatus.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField()
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "documents_statuschange"
        ordering = ["changed_at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status}→{self.to_status} of {self.document_id}"
