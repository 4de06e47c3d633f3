from django.db import models


class CompletionPermission(models.TextChoices):
    VIEW_DEFICIENCIES = (
        "completion.view_deficiencies",
        "See deficiencies, record status and delinquency of every record",
    )
    MANAGE_DEFICIENCIES = (
        "completion.manage_deficiencies",
        "Add, reassign and waive deficiencies; run the analysis",
    )
    MANAGE_RULES = "completion.manage_rules", "Edit chart completion rules"
    COMPLETE_OWN = (
        "completion.complete_own",
        "See and complete one's own deficiencies (clinicians)",
    )
    MANAGE_QUALITY_AUDITS = (
        "completion.manage_quality_audits",
        "Define review checklists and draw quality-audit samples",
    )
    REVIEW_QUALITY = "completion.review_quality", "Score records in a quality audit"
