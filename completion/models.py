"""Chart completion: the rules a record is analysed against (data, with effective
dates), the deficiencies the analysis finds, each record's completion status, the
completion policy (limits, thresholds, reminder schedule), reminders in the clinician's
inbox, and quality audits (checklists, samples, scores, corrections)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class RuleKind(models.TextChoices):
    """What a rule checks. The parameters each kind reads are in ``completion.rules``."""

    HISTORY_PHYSICAL = "history_physical", "History and physical on time"
    HP_UPDATE = "hp_update", "H&P update when done before admission"
    HP_BEFORE_PROCEDURE = "hp_before_procedure", "H&P before a procedure under anaesthesia"
    OPERATIVE_REPORT = "operative_report", "Operative report for every surgical procedure"
    DISCHARGE_SUMMARY = "discharge_summary", "Discharge summary"
    AUTHENTICATION = "authentication", "Every document authenticated by its author"
    VERBAL_ORDER = "verbal_order", "Verbal and telephone orders authenticated in time"
    FINAL_DIAGNOSIS = "final_diagnosis", "Final diagnosis recorded"
    REQUIRED_DOCUMENT = "required_document", "A document of a given type is present"


class CompletionRule(models.Model):
    """One completion rule. Changing a rule ends this row (``effective_to``) and starts
    a new one that ``supersedes`` it, so past analyses stay explainable."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.SlugField(max_length=60, help_text="Stable name across versions.")
    kind = models.CharField(max_length=24, choices=RuleKind.choices)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    citation = models.CharField(max_length=120, blank=True, help_text="e.g. 42 CFR 482.24(c)")
    encounter_classes = models.JSONField(
        default=list, help_text="EncounterClass values the rule applies to."
    )
    facility = models.ForeignKey(
        "accounts.Facility",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty: every facility.",
    )
    document_type = models.ForeignKey(
        "documents.DocumentType", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    parameters = models.JSONField(default=dict, blank=True)
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True, help_text="Last day it applies.")
    active = models.BooleanField(default=True)
    supersedes = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    change_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "completion_rule"
        ordering = ["code", "-effective_from"]
        indexes = [models.Index(fields=["code", "effective_from"], name="completion_rule_code")]

    def __str__(self) -> str:
        return f"rule {self.code}"


class CompletionPolicy(models.Model):
    """The completion policy in force from ``effective_from`` (for a facility, or for
    all when ``facility`` is empty): versioned configuration, US defaults."""

    facility = models.ForeignKey(
        "accounts.Facility", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    effective_from = models.DateField()
    completion_days = models.PositiveIntegerField(
        default=30, help_text="Days after discharge a record must be complete (bylaws)."
    )
    verbal_order_hours = models.PositiveIntegerField(
        default=48, help_text="State limit for authenticating verbal and telephone orders."
    )
    delinquency_alert_percent = models.DecimalField(
        max_digits=6, decimal_places=2, default=50, help_text="Former Joint Commission threshold."
    )
    suspension_days = models.PositiveIntegerField(
        default=14, help_text="Days delinquent before a clinician is listed for suspension."
    )
    reminder_days = models.JSONField(
        default=list, help_text="Days before delinquency when reminders go out, e.g. [7, 3, 1]."
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        db_table = "completion_policy"
        ordering = ["-effective_from", "-pk"]

    def __str__(self) -> str:
        return f"completion policy from {self.effective_from}"


class DeficiencyKind(models.TextChoices):
    MISSING = "missing", "Missing"
    UNSIGNED = "unsigned", "Unsigned"
    INCOMPLETE = "incomplete", "Incomplete"
    LATE = "late", "Late"


class DeficiencyStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"
    WAIVED = "waived", "Waived"
    VOID = "void", "No longer applies"


class Deficiency(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    encounter = models.ForeignKey(
        "encounters.Encounter", on_delete=models.PROTECT, related_name="deficiencies"
    )
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    rule = models.ForeignKey(
        CompletionRule, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=DeficiencyKind.choices)
    document = models.ForeignKey(
        "documents.Document", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    document_type = models.ForeignKey(
        "documents.DocumentType", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    key = models.CharField(
        max_length=200,
        help_text="What the gap is about (rule code, kind, document or procedure): the "
        "analysis never opens two open deficiencies with the same key.",
    )
    description = models.CharField(max_length=300)
    responsible = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=DeficiencyStatus.choices, default=DeficiencyStatus.OPEN
    )
    due_at = models.DateTimeField(help_text="When it became (or becomes) due.")
    delinquent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the record becomes delinquent if still open."
    )
    opened_at = models.DateTimeField()
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty when the analysis opened it.",
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    close_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "completion_deficiency"
        verbose_name_plural = "deficiencies"
        constraints = [
            models.UniqueConstraint(
                fields=["encounter", "key"],
                condition=models.Q(status="open"),
                name="one_open_deficiency_per_key",
            )
        ]
        indexes = [
            models.Index(fields=["responsible", "status", "due_at"], name="deficiency_queue"),
            models.Index(fields=["encounter", "status"], name="deficiency_encounter"),
            models.Index(fields=["status", "delinquent_at"], name="deficiency_delinquent"),
        ]

    def __str__(self) -> str:
        return f"deficiency {self.public_id}"


class DeficiencyEvent(models.Model):
    """The history of a deficiency: opened, reassigned, waived, completed, reopened."""

    deficiency = models.ForeignKey(Deficiency, on_delete=models.PROTECT, related_name="events")
    event = models.CharField(max_length=20)
    at = models.DateTimeField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    from_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "completion_deficiency_event"
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.event} of {self.deficiency_id}"


class RecordStatus(models.TextChoices):
    NOT_ANALYSED = "not_analysed", "Not analysed"
    INCOMPLETE = "incomplete", "Incomplete"
    COMPLETE = "complete", "Complete"


class RecordCompletion(models.Model):
    """Where an encounter's record stands. Delinquent = incomplete past ``due_at``."""

    encounter = models.OneToOneField(
        "encounters.Encounter", on_delete=models.PROTECT, related_name="completion"
    )
    status = models.CharField(
        max_length=14, choices=RecordStatus.choices, default=RecordStatus.NOT_ANALYSED
    )
    discharged_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(
        null=True, blank=True, help_text="Discharge + the policy's completion days."
    )
    analysed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    open_count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "completion_record"
        indexes = [models.Index(fields=["status", "due_at"], name="record_completion_due")]

    def __str__(self) -> str:
        return f"completion of {self.encounter_id}"


class InboxMessage(models.Model):
    """A message in a user's in-app inbox (reminders). No patient names: links by id."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="inbox_messages"
    )
    kind = models.CharField(max_length=30)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=300, blank=True)
    dedupe_key = models.CharField(
        max_length=200, unique=True, help_text="A reminder is sent once per key."
    )
    created_at = models.DateTimeField()
    emailed_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "completion_inbox_message"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["recipient", "read_at"], name="inbox_unread")]

    def __str__(self) -> str:
        return f"message {self.pk}"


class ReviewChecklist(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        db_table = "completion_checklist"

    def __str__(self) -> str:
        return self.name


class ChecklistItem(models.Model):
    checklist = models.ForeignKey(ReviewChecklist, on_delete=models.PROTECT, related_name="items")
    position = models.PositiveIntegerField()
    text = models.CharField(max_length=300)
    weight = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "completion_checklist_item"
        ordering = ["position"]

    def __str__(self) -> str:
        return f"item {self.position} of {self.checklist_id}"


class QualityAuditStatus(models.TextChoices):
    OPEN = "open", "In review"
    CLOSED = "closed", "Closed"


class QualityAudit(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    checklist = models.ForeignKey(ReviewChecklist, on_delete=models.PROTECT, related_name="+")
    criteria = models.JSONField(
        default=dict, help_text="How the sample was drawn (period, service, size, method, seed)."
    )
    status = models.CharField(
        max_length=8, choices=QualityAuditStatus.choices, default=QualityAuditStatus.OPEN
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "completion_quality_audit"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"quality audit {self.public_id}"


class AuditedRecord(models.Model):
    audit = models.ForeignKey(QualityAudit, on_delete=models.PROTECT, related_name="records")
    encounter = models.ForeignKey(
        "encounters.Encounter", on_delete=models.PROTECT, related_name="+"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    score = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, help_text="Percent of items met."
    )

    class Meta:
        db_table = "completion_audited_record"
        constraints = [
            models.UniqueConstraint(fields=["audit", "encounter"], name="unique_audited_record")
        ]

    def __str__(self) -> str:
        return f"audited record {self.pk}"


class ItemResult(models.TextChoices):
    MET = "met", "Met"
    NOT_MET = "not_met", "Not met"
    NOT_APPLICABLE = "na", "Not applicable"


class ItemScore(models.Model):
    record = models.ForeignKey(AuditedRecord, on_delete=models.PROTECT, related_name="scores")
    item = models.ForeignKey(ChecklistItem, on_delete=models.PROTECT, related_name="+")
    result = models.CharField(max_length=8, choices=ItemResult.choices)
    comment = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "completion_item_score"
        constraints = [models.UniqueConstraint(fields=["record", "item"], name="unique_item_score")]

    def __str__(self) -> str:
        return f"score of item {self.item_id}"


class CorrectionStatus(models.TextChoices):
    OPEN = "open", "Open"
    CORRECTED = "corrected", "Corrected"
    CLOSED = "closed", "Closed without correction"


class Correction(models.Model):
    """A discrepancy found in a quality audit, tracked until it is corrected."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    record = models.ForeignKey(AuditedRecord, on_delete=models.PROTECT, related_name="corrections")
    item = models.ForeignKey(ChecklistItem, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=300)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=CorrectionStatus.choices, default=CorrectionStatus.OPEN
    )
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolution = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "completion_correction"

    def __str__(self) -> str:
        return f"correction {self.public_id}"
