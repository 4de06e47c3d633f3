"""Statistics and dashboards: what the formulas need beyond the encounters themselves —
bed counts per unit with effective dates, and the readmission rule (versioned policy)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class BedCapacity(models.Model):
    """The number of staffed beds (or newborn bassinets) of a unit from
    ``effective_from`` to ``effective_to`` (inclusive; empty: still in force). Bed
    occupancy sums bed-days over these rows when the count changes inside a period."""

    facility = models.ForeignKey("accounts.Facility", on_delete=models.PROTECT, related_name="+")
    unit = models.CharField(max_length=40)
    beds = models.PositiveIntegerField()
    newborn = models.BooleanField(default=False, help_text="Bassinets in a newborn nursery.")
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    change_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "reports_bed_capacity"
        ordering = ["facility", "unit", "-effective_from"]

    def __str__(self) -> str:
        return f"beds {self.unit} from {self.effective_from}"


class ReadmissionRule(models.Model):
    """The 30-day readmission rule in force from ``effective_from``: the window, and
    what makes a readmission planned (excluded) — admission types, principal diagnosis
    or procedure code prefixes (e.g. chemotherapy, rehabilitation, transplant)."""

    effective_from = models.DateField()
    window_days = models.PositiveSmallIntegerField(default=30)
    planned_admit_sources = models.JSONField(default=list, blank=True)
    planned_diagnosis_prefixes = models.JSONField(default=list, blank=True)
    planned_procedure_prefixes = models.JSONField(default=list, blank=True)
    exclude_dispositions = models.JSONField(
        default=list, blank=True, help_text="Index stays not counted (e.g. died, left AMA)."
    )
    first_only = models.BooleanField(default=True, help_text="Count the first readmission only.")
    parameters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    change_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "reports_readmission_rule"
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return f"readmission rule from {self.effective_from}"


class StatisticsPolicy(models.Model):
    """The definitions the hospital statistics use, in force from ``effective_from``:
    who is a newborn, what is a death, an operation, a consultation, and the hours and
    days of the net and post-operative death rates (AHIMA). Versioned policy (data):
    a change is a new row, never an edit; the row in force on a period's last day
    applies to the period."""

    effective_from = models.DateField()
    newborn_admit_sources = models.JSONField(
        default=list, blank=True, help_text="Admit sources of a baby born in this hospital."
    )
    death_dispositions = models.JSONField(
        default=list, blank=True, help_text="Discharge dispositions that are a death."
    )
    net_death_hours = models.PositiveSmallIntegerField(
        default=48, help_text="Deaths sooner than this after admission leave the net rate."
    )
    postoperative_days = models.PositiveSmallIntegerField(
        default=10, help_text="A death this many days or fewer after surgery is post-operative."
    )
    surgical_categories = models.JSONField(
        default=list, blank=True, help_text="Procedure category codes that are surgery."
    )
    surgical_codes = models.JSONField(
        default=list,
        blank=True,
        help_text="Procedure codes that are surgery whatever the category.",
    )
    consultation_document_codes = models.JSONField(
        default=list, blank=True, help_text="LOINC document types that record a consultation."
    )
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    change_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        db_table = "reports_statistics_policy"
        ordering = ["-effective_from"]
        verbose_name_plural = "statistics policies"

    def __str__(self) -> str:
        return f"statistics policy from {self.effective_from}"
