"""FHIR R4 interchange: the resource store, where each imported resource came from, the
import units (and the quarantine of rejected ones), and bulk export jobs.

Where RecordRoom models a resource, the domain app owns it: Patient (patients),
Encounter (encounters), DocumentReference (documents), and the clinical resources
Condition, Procedure, Observation, MedicationRequest, MedicationStatement,
AllergyIntolerance, Immunization (``clinical.ClinicalEntry``, which keeps the whole
resource). :class:`FhirResource` keeps

* every other resource type whole (Practitioner, Organization, Location,
  DiagnosticReport, CarePlan, Coverage, Claim, ExplanationOfBenefit, Provenance, …), and
* the resource *as received* for Patient, Encounter and DocumentReference (``fhir_id`` is
  then the domain object's ``public_id``), so that nothing the sender wrote is lost even
  where RecordRoom does not model it.

Every change of a stored resource is a :class:`FhirResourceVersion`; the main row holds
the current version.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class FhirResource(models.Model):
    resource_type = models.CharField(max_length=40)
    fhir_id = models.CharField(
        max_length=64, help_text="RecordRoom's logical id (the domain object's public_id)."
    )
    version_id = models.PositiveIntegerField(default=1)
    last_updated = models.DateTimeField()
    content = models.JSONField(help_text="The whole resource, with RecordRoom's id.")
    content_sha256 = models.CharField(
        max_length=64, help_text="Hash of the canonical content as received (idempotence)."
    )
    patient = models.ForeignKey(
        "patients.Patient",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="fhir_resources",
    )
    encounter = models.ForeignKey(
        "encounters.Encounter",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="fhir_resources",
    )
    # Search columns, filled from the content when it is stored.
    date = models.DateTimeField(null=True, blank=True, help_text="The resource's main date.")
    status = models.CharField(max_length=40, blank=True)
    code = models.CharField(max_length=64, blank=True)
    source = models.CharField(
        max_length=200, blank=True, help_text="Where it came from (system, file, client)."
    )
    deleted = models.BooleanField(default=False)

    class Meta:
        db_table = "interop_resource"
        constraints = [
            models.UniqueConstraint(
                fields=["resource_type", "fhir_id"], name="unique_fhir_resource_id"
            )
        ]
        indexes = [
            models.Index(fields=["patient", "resource_type"], name="fhir_patient_type"),
            models.Index(fields=["resource_type", "last_updated"], name="fhir_type_updated"),
            # FHIR search by code (DiagnosticReport?code=…): the code's resources, latest first.
            models.Index(
                fields=["resource_type", "code", "last_updated"], name="fhir_type_code_updated"
            ),
            models.Index(fields=["encounter"], name="fhir_encounter"),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.fhir_id}"


class FhirResourceVersion(models.Model):
    resource = models.ForeignKey(FhirResource, on_delete=models.PROTECT, related_name="versions")
    version_id = models.PositiveIntegerField()
    content = models.JSONField()
    recorded_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "interop_resource_version"
        constraints = [
            models.UniqueConstraint(
                fields=["resource", "version_id"], name="unique_fhir_resource_version"
            )
        ]
        ordering = ["-version_id"]

    def __str__(self) -> str:
        return f"version {self.version_id} of {self.resource_id}"


class SourceKey(models.Model):
    """Which RecordRoom resource an id in a sender's system became: how references
    resolve across bundles and why re-importing the same data changes nothing."""

    namespace = models.CharField(
        max_length=200, help_text="The sender's system (meta.source, or the import's source)."
    )
    resource_type = models.CharField(max_length=40)
    source_id = models.CharField(max_length=200)
    fhir_id = models.CharField(max_length=64, help_text="RecordRoom's logical id.")
    content_sha256 = models.CharField(max_length=64, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        db_table = "interop_source_key"
        constraints = [
            models.UniqueConstraint(
                fields=["namespace", "resource_type", "source_id"], name="unique_source_key"
            )
        ]
        indexes = [models.Index(fields=["resource_type", "fhir_id"], name="source_key_target")]

    def __str__(self) -> str:
        return f"{self.resource_type} source key {self.pk}"


class UnitStatus(models.TextChoices):
    ACCEPTED = "accepted", "Imported"
    REJECTED = "rejected", "Rejected (quarantined)"
    REPLAYED = "replayed", "Replayed after a fix"
    DISMISSED = "dismissed", "Dismissed by an administrator"


class ImportUnit(models.Model):
    """One unit of an import (a bundle, an NDJSON line, a lone resource file). Accepted
    units keep their counts; rejected ones keep the raw input and the OperationOutcome
    so an administrator can fix the cause and replay them."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    received_at = models.DateTimeField()
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    channel = models.CharField(max_length=20, help_text="command, api, replay")
    source = models.CharField(max_length=300, blank=True, help_text="File name or client.")
    namespace = models.CharField(
        max_length=200,
        blank=True,
        help_text="The import's source namespace (--source, the API client): ids without "
        "meta.source resolve in it, and a replay reuses it.",
    )
    position = models.CharField(
        max_length=40, blank=True, help_text="Where in the source: line number, entry."
    )
    raw = models.BinaryField(blank=True, help_text="The unit as received (rejected units).")
    raw_sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=12, choices=UnitStatus.choices)
    outcome = models.JSONField(default=dict, blank=True, help_text="OperationOutcome.")
    reason = models.CharField(max_length=300, blank=True, help_text="First issue, in short.")
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replays"
    )

    class Meta:
        db_table = "interop_import_unit"
        indexes = [
            models.Index(fields=["status", "-received_at"], name="import_unit_status"),
            # A refused unit received again is found by its bytes' hash, not by a scan.
            models.Index(fields=["status", "raw_sha256"], name="import_unit_status_sha"),
        ]

    def __str__(self) -> str:
        return f"import unit {self.public_id}"


class ExportStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ExportJob(models.Model):
    """A FHIR Bulk Data export (system-level, Patient-level)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, help_text="system or patient")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    client_id = models.CharField(max_length=100, blank=True)
    request_url = models.CharField(max_length=2000)
    types = models.JSONField(default=list, blank=True)
    since = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=ExportStatus.choices)
    requested_at = models.DateTimeField()
    transaction_time = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    progress = models.CharField(max_length=100, blank=True)
    error = models.CharField(max_length=300, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "interop_export_job"

    def __str__(self) -> str:
        return f"export {self.public_id}"


class ExportFile(models.Model):
    job = models.ForeignKey(ExportJob, on_delete=models.PROTECT, related_name="files")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    resource_type = models.CharField(max_length=40)
    path = models.CharField(max_length=500, help_text="Storage name of the NDJSON file.")
    count = models.PositiveIntegerField(default=0)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        db_table = "interop_export_file"

    def __str__(self) -> str:
        return f"{self.resource_type} file of {self.job_id}"


class ClientKind(models.TextChoices):
    SYSTEM = "system", "System (client credentials)"
    USER_APP = "user_app", "User-facing app (authorization code)"


class ApiClient(models.Model):
    """An OAuth 2.0 client of the FHIR API. A system client acts as its system account
    (``account``); a user-facing app acts as the user who authorised it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    client_id = models.CharField(max_length=64, unique=True)
    secret_hash = models.CharField(max_length=200, blank=True, help_text="Argon2 hash.")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=ClientKind.choices)
    account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The system account a system client acts as.",
    )
    redirect_uris = models.JSONField(default=list, blank=True)
    allowed_scopes = models.CharField(max_length=500, help_text="Space-separated SMART scopes.")
    jwks = models.JSONField(
        default=dict,
        blank=True,
        help_text="The public keys (a JWKS) a system client signs its SMART Backend Services "
        "assertions with; empty: the client authenticates with its secret.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        db_table = "interop_api_client"

    def __str__(self) -> str:
        return f"API client {self.client_id}"


class UsedAssertion(models.Model):
    """The ``jti`` of each client assertion (SMART Backend Services) accepted, kept until
    it expires, so the same signed assertion is never accepted twice."""

    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="+")
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "interop_used_assertion"
        constraints = [
            models.UniqueConstraint(fields=["client", "jti"], name="unique_client_assertion")
        ]

    def __str__(self) -> str:
        return f"assertion of client {self.client_id}"


class AuthorizationCode(models.Model):
    code_sha256 = models.CharField(max_length=64, unique=True)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    scope = models.CharField(max_length=500)
    redirect_uri = models.CharField(max_length=500)
    code_challenge = models.CharField(max_length=128, blank=True)
    patient = models.ForeignKey(
        "patients.Patient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "interop_authorization_code"

    def __str__(self) -> str:
        return f"authorization code {self.pk}"


class AccessToken(models.Model):
    """A bearer token. Only its SHA-256 is stored; the token is shown once."""

    token_sha256 = models.CharField(max_length=64, unique=True)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="tokens")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    scope = models.CharField(max_length=500)
    patient = models.ForeignKey(
        "patients.Patient",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The patient in context (patient/ scopes).",
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "interop_access_token"
        indexes = [models.Index(fields=["expires_at"], name="access_token_expiry")]

    def __str__(self) -> str:
        return f"access token {self.pk}"
