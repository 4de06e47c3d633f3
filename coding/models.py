"""Coding: code sets by fiscal year, the edits an abstract must pass (data with fiscal
years), encounter abstracts (versioned), physician queries and second-level reviews.

Codes are stored without the dot and in upper case (``E119``); the dotted form is for
display (``coding.codes.dotted``). A code's validity is by fiscal year (1 October to
30 September): ``fiscal_years`` lists the years it is valid in.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class CodeSystem(models.TextChoices):
    ICD10CM = "icd10cm", "ICD-10-CM"
    ICD10PCS = "icd10pcs", "ICD-10-PCS"
    HCPCS = "hcpcs", "HCPCS Level II"
    CPT = "cpt", "CPT"


class CodeSetRelease(models.Model):
    """One load of a code set: which edition, from which source, when and by whom."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    system = models.CharField(max_length=10, choices=CodeSystem.choices)
    edition = models.CharField(max_length=120, help_text='e.g. "FY2026 (April 2026 update)"')
    fiscal_year = models.PositiveSmallIntegerField()
    effective_from = models.DateField()
    source = models.CharField(max_length=200, help_text="Package and version, or file name.")
    sha256 = models.CharField(max_length=64, blank=True)
    code_count = models.PositiveIntegerField(default=0)
    loaded_at = models.DateTimeField()
    loaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        db_table = "coding_release"
        ordering = ["system", "-fiscal_year", "-loaded_at"]

    def __str__(self) -> str:
        return f"{self.get_system_display()} {self.edition}"


class Code(models.Model):
    """A code of one code system. ``notes`` holds what the tabular list says about it:
    ``includes``, ``inclusion_terms``, ``excludes1``, ``excludes2``, ``code_first``,
    ``use_additional``, ``code_also``, ``seventh_characters`` ({character: meaning}),
    each a list of strings (codes found in them are what the edits read)."""

    system = models.CharField(max_length=10, choices=CodeSystem.choices)
    code = models.CharField(max_length=10, help_text="Upper case, no dot.")
    title = models.CharField(max_length=500)
    billable = models.BooleanField(help_text="A leaf code, valid on a claim.")
    parent = models.CharField(max_length=10, blank=True)
    depth = models.PositiveSmallIntegerField(default=0)
    chapter = models.CharField(max_length=10, blank=True)
    block = models.CharField(max_length=10, blank=True)
    notes = models.JSONField(default=dict, blank=True)
    search_text = models.TextField(blank=True, help_text="Normalised words for look-up.")
    fiscal_years = models.JSONField(default=list, help_text="Fiscal years it is valid in.")
    first_fiscal_year = models.PositiveSmallIntegerField(null=True, blank=True)
    last_fiscal_year = models.PositiveSmallIntegerField(null=True, blank=True)
    release = models.ForeignKey(
        CodeSetRelease, null=True, blank=True, on_delete=models.PROTECT, related_name="codes"
    )

    class Meta:
        db_table = "coding_code"
        constraints = [
            models.UniqueConstraint(fields=["system", "code"], name="coding_code_unique")
        ]
        indexes = [
            models.Index(fields=["system", "billable", "code"], name="coding_code_billable"),
            models.Index(fields=["system", "parent"], name="coding_code_parent"),
        ]

    def __str__(self) -> str:
        return f"{self.system} {self.code}"


class CodeWord(models.Model):
    """Look-up index: one row per (normalised word, code), so a word search is an
    index range scan rather than a LIKE over 100,000 titles."""

    word = models.CharField(max_length=40)
    code = models.ForeignKey(Code, on_delete=models.CASCADE, related_name="words")

    class Meta:
        db_table = "coding_code_word"
        indexes = [models.Index(fields=["word"], name="coding_word")]

    def __str__(self) -> str:
        return f"code word {self.pk}"


class EditSeverity(models.TextChoices):
    ERROR = "error", "Error (blocks finalising)"
    WARNING = "warning", "Warning"


class CodeEdit(models.Model):
    """One edit an abstract is checked against, as data with fiscal years: which check
    (``kind``, implemented in ``coding.edits``), its parameters, its severity and its
    message. Yearly changes end a row and start a new one."""

    code = models.SlugField(max_length=60, help_text="Stable name across years.")
    kind = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=120, help_text='"MCE" or "RecordRoom".')
    severity = models.CharField(max_length=8, choices=EditSeverity.choices)
    parameters = models.JSONField(default=dict, blank=True)
    message = models.CharField(max_length=300)
    first_fiscal_year = models.PositiveSmallIntegerField()
    last_fiscal_year = models.PositiveSmallIntegerField(null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        db_table = "coding_edit"
        ordering = ["code", "-first_fiscal_year"]

    def __str__(self) -> str:
        return f"edit {self.code}"


class AbstractStatus(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    IN_PROGRESS = "in_progress", "In progress"
    ON_HOLD = "on_hold", "On hold (query)"
    FINAL = "final", "Final"
    REBILLED = "rebilled", "Rebilled"


class POA(models.TextChoices):
    YES = "Y", "Y — present at admission"
    NO = "N", "N — not present at admission"
    UNKNOWN = "U", "U — documentation insufficient"
    UNDETERMINED = "W", "W — clinically undetermined"
    EXEMPT = "1", "1 / blank — exempt from POA reporting"


class Abstract(models.Model):
    """The coded abstract of one encounter: the current codes (rows below) and the
    header; every change is an ``AbstractVersion`` with who, when and why."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    encounter = models.OneToOneField(
        "encounters.Encounter", on_delete=models.PROTECT, related_name="abstract"
    )
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=12, choices=AbstractStatus.choices, default=AbstractStatus.NOT_STARTED
    )
    admit_source = models.CharField(max_length=3, blank=True)
    disposition = models.CharField(max_length=3, blank=True)
    payer = models.CharField(max_length=120, blank=True)
    coder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who has claimed it.",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The grouping of the current codes (coding.grouping), kept for lists and reports.
    drg = models.CharField(max_length=4, blank=True)
    mdc = models.CharField(max_length=4, blank=True)
    drg_weight = models.DecimalField(max_digits=8, decimal_places=4, null=True, blank=True)
    drg_gmlos = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    grouping = models.JSONField(default=dict, blank=True)
    edit_results = models.JSONField(default=list, blank=True)
    version = models.PositiveIntegerField(default=0)
    finalised_at = models.DateTimeField(null=True, blank=True)
    finalised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "coding_abstract"
        indexes = [models.Index(fields=["status", "updated_at"], name="coding_abstract_status")]

    def __str__(self) -> str:
        return f"abstract {self.public_id}"


class AbstractDiagnosis(models.Model):
    """A diagnosis code on the abstract; ``sequence`` 1 is the principal (inpatient) or
    first-listed (outpatient) diagnosis."""

    abstract = models.ForeignKey(Abstract, on_delete=models.CASCADE, related_name="diagnoses")
    sequence = models.PositiveSmallIntegerField()
    code = models.CharField(max_length=10)
    poa = models.CharField(max_length=1, choices=POA.choices, blank=True)

    class Meta:
        db_table = "coding_abstract_dx"
        ordering = ["abstract", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["abstract", "sequence"], name="coding_dx_sequence")
        ]

    def __str__(self) -> str:
        return f"abstract diagnosis {self.pk}"


class AbstractProcedure(models.Model):
    abstract = models.ForeignKey(Abstract, on_delete=models.CASCADE, related_name="procedures")
    sequence = models.PositiveSmallIntegerField()
    system = models.CharField(max_length=10, choices=CodeSystem.choices)
    code = models.CharField(max_length=10)
    modifiers = models.JSONField(default=list, blank=True)
    performed_on = models.DateField(null=True, blank=True)
    performer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        db_table = "coding_abstract_px"
        ordering = ["abstract", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["abstract", "sequence"], name="coding_px_sequence")
        ]

    def __str__(self) -> str:
        return f"abstract procedure {self.pk}"


class AbstractVersion(models.Model):
    """The whole abstract as it was after one change (append-only)."""

    abstract = models.ForeignKey(Abstract, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=AbstractStatus.choices)
    snapshot = models.JSONField(help_text="Header, diagnoses, procedures, grouping.")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField()
    reason = models.CharField(max_length=300)

    class Meta:
        db_table = "coding_abstract_version"
        ordering = ["abstract", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["abstract", "number"], name="coding_abstract_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"abstract version {self.pk}"


class QueryStatus(models.TextChoices):
    OPEN = "open", "Open"
    ANSWERED = "answered", "Answered"
    WITHDRAWN = "withdrawn", "Withdrawn"


class PhysicianQuery(models.Model):
    """A coder's compliant, non-leading question to the responsible clinician. The
    answer is filed as a document in the legal record and releases the hold."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    abstract = models.ForeignKey(Abstract, on_delete=models.PROTECT, related_name="queries")
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    asked_at = models.DateTimeField()
    clinical_indicators = models.TextField(help_text="What in the record prompts the query.")
    question = models.TextField()
    options = models.JSONField(help_text="Answer choices, ending with other / undetermined.")
    status = models.CharField(max_length=10, choices=QueryStatus.choices, default=QueryStatus.OPEN)
    answer = models.CharField(max_length=300, blank=True)
    answer_text = models.TextField(blank=True, help_text="Free text for 'other'.")
    answered_at = models.DateTimeField(null=True, blank=True)
    answer_document = models.ForeignKey(
        "documents.Document", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "coding_query"
        indexes = [models.Index(fields=["clinician", "status"], name="coding_query_clinician")]

    def __str__(self) -> str:
        return f"physician query {self.pk}"


class CodingReview(models.Model):
    """A second-level review of a finalised abstract (accuracy sampling)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    abstract = models.ForeignKey(Abstract, on_delete=models.PROTECT, related_name="reviews")
    abstract_version = models.PositiveIntegerField()
    coder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    sampled_at = models.DateTimeField()
    reviewed_at = models.DateTimeField(null=True, blank=True)
    codes_reviewed = models.PositiveIntegerField(default=0)
    codes_changed = models.PositiveIntegerField(default=0)
    drg_changed = models.BooleanField(default=False)
    findings = models.TextField(blank=True)

    class Meta:
        db_table = "coding_review"

    def __str__(self) -> str:
        return f"coding review {self.pk}"


class CodingPolicy(models.Model):
    """The coding department's policy in force from ``effective_from`` (for a facility,
    or for all when ``facility`` is empty): versioned configuration with US defaults
    seeded by a data migration (``coding.policy``)."""

    facility = models.ForeignKey(
        "accounts.Facility", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    effective_from = models.DateField()
    code_before_complete = models.BooleanField(
        default=False,
        help_text="Discharged encounters enter the coding queue before their record is "
        "complete (otherwise only once chart completion finds it complete).",
    )
    review_sample_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=5,
        help_text="Share of each coder's finalised abstracts drawn for second-level review.",
    )
    query_response_loinc = models.CharField(
        max_length=10,
        default="11506-3",
        help_text="LOINC document type a clinician's answer to a query is filed as.",
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        db_table = "coding_policy"
        ordering = ["-effective_from", "-pk"]
        verbose_name_plural = "coding policies"

    def __str__(self) -> str:
        return f"coding policy from {self.effective_from}"
