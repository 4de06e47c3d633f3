from django.db import models


class AuditPermission(models.TextChoices):
    VIEW_TRAIL = "audit.view_trail", "Search and read the audit trail"
    EXPORT_TRAIL = "audit.export_trail", "Export the audit trail to CSV"
    VERIFY_TRAIL = "audit.verify_trail", "Verify the audit trail's hash chain"
