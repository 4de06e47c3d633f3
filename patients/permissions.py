from django.db import models


class PatientsPermission(models.TextChoices):
    READ_DEMOGRAPHICS = "patients.read_demographics", "See patients' identity and demographics"
    READ_CLINICAL = (
        "patients.read_clinical",
        "See the clinical record (documents, encounters, clinical data)",
    )
    REGISTER = "patients.register", "Register new patients"
    UPDATE_DEMOGRAPHICS = "patients.update_demographics", "Correct demographics and identifiers"
    VIEW_NATIONAL_ID = (
        "patients.view_national_id",
        "See SSN and other national identifiers unmasked",
    )
    MANAGE_RESTRICTIONS = (
        "patients.manage_restrictions",
        "Flag patients VIP, employee or confidential; grant access",
    )
    BREAK_THE_GLASS = (
        "patients.break_the_glass",
        "Open a restricted record in an emergency, with a reason",
    )
    REVIEW_BREAK_THE_GLASS = "patients.review_break_the_glass", "Review break-the-glass accesses"
