from django.db import models


class ClinicalPermission(models.TextChoices):
    RECORD = (
        "clinical.record",
        "Record clinical data (problems, medications, allergies, results, immunizations)",
    )
    MARK_IN_ERROR = "clinical.mark_in_error", "Mark clinical data entered in error"
