"""Release of information: requests and their clocks, authorizations checked against
164.508(c), what is released (scope items), packets and letters, fees, the quality
check, the accounting of disclosures (164.528) and amendments (164.526).

Policy (deadlines, quality check, link lifetime, fee schedules) is versioned data with
effective dates (``RoiPolicy``, ``FeeSchedule``), never constants in code.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class RequesterType(models.TextChoices):
    PATIENT = "patient", "Patient"
    REPRESENTATIVE = "representative", "Personal representative"
    PROVIDER = "provider", "Provider (continuing care)"
    PAYER = "payer", "Payer"
    ATTORNEY = "attorney", "Attorney"
    SUBPOENA = "subpoena", "Subpoena"
    COURT_ORDER = "court_order", "Court order"
    LAW_ENFORCEMENT = "law_enforcement", "Law enforcement"
    PUBLIC_HEALTH = "public_health", "Public health"
    RESEARCH = "research", "Research"
    OTHER = "other", "Other"


class RequestStatus(models.TextChoices):
    LOGGED = "logged", "Logged"
    PENDED = "pended", "Pended"
    IN_PROCESS = "in_process", "In process"
    QC = "qc", "Quality check"
    RELEASED = "released", "Released"
    DENIED = "denied", "Denied"
    CLOSED = "closed", "Closed"


class Delivery(models.TextChoices):
    PORTAL = "portal", "Portal download"
    SECURE_EMAIL = "secure_email", "Secure e-mail"
    MAIL = "mail", "Paper mail"
    MEDIA = "media", "Media (CD/USB)"
    PICKUP = "pickup", "Pick-up"


class Format(models.TextChoices):
    ELECTRONIC = "electronic", "Electronic (PDF)"
    PAPER = "paper", "Paper"


class Urgency(models.TextChoices):
    ROUTINE = "routine", "Routine"
    URGENT = "urgent", "Urgent (continuing care)"


class RoiPolicy(models.Model):
    """The ROI policy in force from ``effective_from`` (for a facility, or all when
    empty). ``due_days`` maps RequesterType values to calendar days from receipt."""

    facility = models.ForeignKey(
        "accounts.Facility", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    effective_from = models.DateField()
    due_days = models.JSONField(help_text="{requester_type: calendar days from receipt}")
    extension_days = models.PositiveSmallIntegerField(default=30)
    urgent_same_day = models.BooleanField(default=True)
    quality_check_required = models.BooleanField(default=True)
    download_link_days = models.PositiveSmallIntegerField(default=30)
    accounting_due_days = models.PositiveSmallIntegerField(default=60)
    accounting_extension_days = models.PositiveSmallIntegerField(default=30)
    accounting_years = models.PositiveSmallIntegerField(default=6)
    amendment_due_days = models.PositiveSmallIntegerField(default=60)
    amendment_extension_days = models.PositiveSmallIntegerField(default=30)
    parameters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    change_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "roi_policy"
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return f"roi policy {self.pk}"


class FeeSchedule(models.Model):
    """Fees for a set of requester types from ``effective_from`` (per state where
    ``state`` is set). ``parameters``: per_page, first_pages_free, first_pages_price,
    labour_per_hour, supplies, postage, media, flat_fee_electronic, … as the fee
    calculation in ``roi.fees`` reads them."""

    name = models.CharField(max_length=120)
    state = models.CharField(max_length=2, blank=True)
    requester_types = models.JSONField(help_text="RequesterType values it applies to.")
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)
    parameters = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        db_table = "roi_fee_schedule"
        ordering = ["name", "-effective_from"]

    def __str__(self) -> str:
        return f"fee schedule {self.pk}"


class RoiRequest(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.CharField(max_length=24, unique=True, help_text="REQ-2026-000123")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    facility = models.ForeignKey("accounts.Facility", on_delete=models.PROTECT, related_name="+")
    requester_type = models.CharField(max_length=20, choices=RequesterType.choices)
    requester_name = models.CharField(max_length=200)
    requester_organization = models.CharField(max_length=200, blank=True)
    requester_address = models.TextField(blank=True)
    requester_email = models.CharField(max_length=254, blank=True)
    requester_phone = models.CharField(max_length=40, blank=True)
    identity_verified = models.CharField(
        max_length=200, blank=True, help_text="How identity/authority was verified."
    )
    purpose = models.CharField(max_length=300, blank=True)
    received_on = models.DateField()
    received_at = models.DateTimeField()
    due_on = models.DateField()
    extended_due_on = models.DateField(null=True, blank=True)
    extension_reason = models.CharField(max_length=300, blank=True)
    extension_notice_on = models.DateField(null=True, blank=True)
    urgency = models.CharField(max_length=8, choices=Urgency.choices, default=Urgency.ROUTINE)
    # What is asked for: {"all": bool, "date_from": iso, "date_to": iso,
    # "encounters": [public ids], "document_types": [loinc codes]}
    scope = models.JSONField(default=dict)
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.ELECTRONIC)
    delivery = models.CharField(max_length=14, choices=Delivery.choices, default=Delivery.PORTAL)
    status = models.CharField(
        max_length=12, choices=RequestStatus.choices, default=RequestStatus.LOGGED
    )
    pend_reasons = models.JSONField(default=list, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "roi_request"
        indexes = [
            models.Index(fields=["status", "due_on"], name="roi_request_status_due"),
            models.Index(fields=["patient", "received_on"], name="roi_request_patient"),
        ]

    def __str__(self) -> str:
        return self.number


class RequestEvent(models.Model):
    """The request's history (append-only): status changes and what else happened."""

    request = models.ForeignKey(RoiRequest, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=30)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "roi_request_event"
        ordering = ["request", "at", "id"]

    def __str__(self) -> str:
        return f"request event {self.pk}"


class AttachmentKind(models.TextChoices):
    REQUEST = "request", "Request letter or form"
    AUTHORIZATION = "authorization", "Authorization"
    IDENTITY = "identity", "Proof of identity"
    AUTHORITY = "authority", "Proof of a representative's authority"
    SUBPOENA = "subpoena", "Subpoena"
    COURT_ORDER = "court_order", "Court order"
    ASSURANCE = "assurance", "Satisfactory assurance"
    OTHER = "other", "Other"


class RequestAttachment(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    request = models.ForeignKey(RoiRequest, on_delete=models.PROTECT, related_name="attachments")
    kind = models.CharField(max_length=16, choices=AttachmentKind.choices)
    file = models.FileField(upload_to="roi/attachments/%Y/%m/")
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField()

    class Meta:
        db_table = "roi_attachment"

    def __str__(self) -> str:
        return f"request attachment {self.pk}"


class Authorization(models.Model):
    """An authorization (or Part 2 consent) as the specialist checked it. ``checklist``
    maps each 164.508(c) element / statement to true/false; ``problems`` lists what
    makes it defective (missing elements, expired, revoked, …)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    request = models.ForeignKey(
        RoiRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="authorizations"
    )
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    attachment = models.ForeignKey(
        RequestAttachment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=20, default="hipaa", help_text="hipaa, psychotherapy, part2")
    information_described = models.TextField(blank=True)
    discloser = models.CharField(max_length=200, blank=True)
    recipient = models.CharField(max_length=200, blank=True)
    purpose = models.CharField(max_length=300, blank=True)
    expires_on = models.DateField(null=True, blank=True)
    expiry_event = models.CharField(max_length=200, blank=True)
    signed_on = models.DateField(null=True, blank=True)
    signed_by_representative = models.BooleanField(default=False)
    representative_authority = models.CharField(max_length=200, blank=True)
    sensitive_categories = models.JSONField(
        default=list, blank=True, help_text="SensitiveCategory values specifically authorized."
    )
    checklist = models.JSONField(default=dict)
    problems = models.JSONField(default=list, blank=True)
    valid = models.BooleanField(default=False)
    revoked_on = models.DateField(null=True, blank=True)
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    checked_at = models.DateTimeField()

    class Meta:
        db_table = "roi_authorization"

    def __str__(self) -> str:
        return f"authorization {self.pk}"


class ReleaseItem(models.Model):
    """A document considered for release: proposed by the system, kept or excluded by
    the specialist with a reason."""

    request = models.ForeignKey(RoiRequest, on_delete=models.PROTECT, related_name="items")
    document = models.ForeignKey("documents.Document", on_delete=models.PROTECT, related_name="+")
    document_version = models.PositiveIntegerField()
    included = models.BooleanField()
    proposed = models.BooleanField(help_text="What the system proposed.")
    reason = models.CharField(max_length=300, blank=True)
    page_count = models.PositiveIntegerField(default=0)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "roi_release_item"
        constraints = [
            models.UniqueConstraint(fields=["request", "document"], name="roi_item_unique")
        ]

    def __str__(self) -> str:
        return f"release item {self.pk}"


class QualityCheck(models.Model):
    request = models.ForeignKey(RoiRequest, on_delete=models.PROTECT, related_name="checks")
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    checked_at = models.DateTimeField()
    passed = models.BooleanField()
    notes = models.TextField(blank=True)

    class Meta:
        db_table = "roi_quality_check"

    def __str__(self) -> str:
        return f"quality check {self.pk}"


class Packet(models.Model):
    """A release packet as sent: the PDF, its checksum, and what became of it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    request = models.ForeignKey(RoiRequest, on_delete=models.PROTECT, related_name="packets")
    file = models.FileField(upload_to="roi/packets/%Y/%m/")
    sha256 = models.CharField(max_length=64)
    pages = models.PositiveIntegerField()
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    download_token_hash = models.CharField(max_length=64, blank=True)
    download_expires_at = models.DateTimeField(null=True, blank=True)
    downloaded_at = models.DateTimeField(null=True, blank=True)
    printed_at = models.DateTimeField(null=True, blank=True)
    mailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "roi_packet"

    def __str__(self) -> str:
        return f"packet {self.pk}"


class LetterKind(models.TextChoices):
    PEND = "pend", "Pend letter (what is missing)"
    EXTENSION = "extension", "Extension notice"
    DENIAL = "denial", "Denial letter"
    COVER = "cover", "Cover letter"
    ACCOUNTING = "accounting", "Accounting of disclosures"
    AMENDMENT_ACCEPTED = "amendment_accepted", "Amendment accepted"
    AMENDMENT_DENIED = "amendment_denied", "Amendment denied"
    AMENDMENT_EXTENSION = "amendment_extension", "Amendment extension notice"
    AMENDMENT_REBUTTAL = "amendment_rebuttal", "Rebuttal to a statement of disagreement"
    DENIAL_REVIEW = "denial_review", "Decision of a denial's review"


class Letter(models.Model):
    """A letter generated and kept (PDF and its text), for a request, an accounting
    request or an amendment."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=20, choices=LetterKind.choices)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    request = models.ForeignKey(
        RoiRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="letters"
    )
    accounting_request = models.ForeignKey(
        "AccountingRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="letters"
    )
    amendment = models.ForeignKey(
        "Amendment", null=True, blank=True, on_delete=models.PROTECT, related_name="letters"
    )
    body = models.TextField()
    file = models.FileField(upload_to="roi/letters/%Y/%m/", blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        db_table = "roi_letter"

    def __str__(self) -> str:
        return f"letter {self.pk}"


class InvoiceLine(models.Model):
    request = models.ForeignKey(RoiRequest, on_delete=models.PROTECT, related_name="invoice")
    fee_schedule = models.ForeignKey(
        FeeSchedule, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    description = models.CharField(max_length=200)
    quantity = models.DecimalField(max_digits=10, decimal_places=2)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "roi_invoice_line"

    def __str__(self) -> str:
        return f"invoice line {self.pk}"


class Denial(models.Model):
    """A denial in whole or part: the basis, whether it is reviewable, and the review."""

    request = models.ForeignKey(RoiRequest, on_delete=models.PROTECT, related_name="denials")
    partial = models.BooleanField(default=False)
    basis = models.CharField(max_length=40)
    explanation = models.TextField(blank=True)
    reviewable = models.BooleanField()
    denied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    determined_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The licensed health care professional whose determination a reviewable "
        "denial rests on (45 CFR 164.524(a)(3)).",
    )
    denied_at = models.DateTimeField()
    review_requested_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    review_outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "roi_denial"

    def __str__(self) -> str:
        return f"denial {self.pk}"


class Disclosure(models.Model):
    """One disclosure: recorded at every release, and by hand (e.g. a public health
    report). ``accountable`` says whether it goes into the 164.528 accounting."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    request = models.ForeignKey(
        RoiRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="disclosures"
    )
    disclosed_on = models.DateField()
    recipient_name = models.CharField(max_length=200)
    recipient_address = models.TextField(blank=True)
    description = models.TextField(help_text="What was disclosed.")
    purpose = models.CharField(max_length=300)
    requester_type = models.CharField(max_length=20, choices=RequesterType.choices, blank=True)
    accountable = models.BooleanField()
    basis = models.CharField(
        max_length=30,
        blank=True,
        help_text="Why it was disclosed (roi.accounting.BASES); decides whether it is accountable.",
    )
    document_ids = models.JSONField(default=list, blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    entered_at = models.DateTimeField()
    suspended_until = models.DateField(
        null=True, blank=True, help_text="Accounting suspended at an agency's request."
    )
    suspension_agency = models.CharField(
        max_length=200, blank=True, help_text="The agency or official who asked for it."
    )
    suspension_oral = models.BooleanField(
        default=False,
        help_text="Asked orally (at most 30 days unless a written statement follows).",
    )
    suspension_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "roi_disclosure"
        indexes = [models.Index(fields=["patient", "disclosed_on"], name="roi_disclosure_patient")]

    def __str__(self) -> str:
        return f"disclosure {self.pk}"


class DeadlineStatus(models.TextChoices):
    OPEN = "open", "Open"
    EXTENDED = "extended", "Extended"
    ANSWERED = "answered", "Answered"


class AccountingRequest(models.Model):
    """A patient's request for an accounting of disclosures (164.528)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    received_on = models.DateField()
    period_from = models.DateField()
    period_to = models.DateField()
    due_on = models.DateField()
    extended_due_on = models.DateField(null=True, blank=True)
    extension_reason = models.CharField(max_length=300, blank=True)
    status = models.CharField(
        max_length=10, choices=DeadlineStatus.choices, default=DeadlineStatus.OPEN
    )
    fee = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    answered_at = models.DateTimeField(null=True, blank=True)
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        db_table = "roi_accounting_request"

    def __str__(self) -> str:
        return f"accounting request {self.pk}"


class AmendmentStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    EXTENDED = "extended", "Extended"
    ACCEPTED = "accepted", "Accepted"
    DENIED = "denied", "Denied"


class Amendment(models.Model):
    """A patient's request to amend the record (164.526)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    documents = models.ManyToManyField(
        "documents.Document", related_name="+", db_table="roi_amendment_document"
    )
    received_on = models.DateField()
    due_on = models.DateField()
    extended_due_on = models.DateField(null=True, blank=True)
    extension_reason = models.CharField(max_length=300, blank=True)
    requested_change = models.TextField()
    requester_reason = models.TextField(blank=True)
    status = models.CharField(
        max_length=10, choices=AmendmentStatus.choices, default=AmendmentStatus.RECEIVED
    )
    denial_basis = models.CharField(max_length=40, blank=True)
    decision_note = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    amendment_document = models.ForeignKey(
        "documents.Document",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The amendment filed in the record when accepted.",
    )
    notify = models.TextField(blank=True, help_text="Who else is to be told.")
    send_with_disclosures = models.BooleanField(
        default=False,
        help_text="Denied without a statement of disagreement: the patient asked for the "
        "request and the denial to go with future disclosures (164.526(d)(5)(ii)).",
    )
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        db_table = "roi_amendment"

    def __str__(self) -> str:
        return f"amendment {self.pk}"


class StatementKind(models.TextChoices):
    DISAGREEMENT = "disagreement", "Statement of disagreement"
    REBUTTAL = "rebuttal", "Rebuttal"


class AmendmentStatement(models.Model):
    """A statement of disagreement or the entity's rebuttal: linked to the record and
    sent with every later disclosure of the affected documents."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    amendment = models.ForeignKey(Amendment, on_delete=models.PROTECT, related_name="statements")
    kind = models.CharField(max_length=14, choices=StatementKind.choices)
    text = models.TextField()
    received_on = models.DateField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()

    class Meta:
        db_table = "roi_amendment_statement"

    def __str__(self) -> str:
        return f"amendment statement {self.pk}"
