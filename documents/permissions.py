from django.db import models


class DocumentsPermission(models.TextChoices):
    AUTHOR = "documents.author", "Write and sign one's own clinical documents"
    FILE = "documents.file", "File scanned and outside documents to a record"
    MARK_IN_ERROR = "documents.mark_in_error", "Mark a document entered in error"
    READ_SENSITIVE = "documents.read_sensitive", "Read sensitive documents of patients one treats"
    VIEW_ENTERED_IN_ERROR = (
        "documents.view_entered_in_error",
        "See documents marked entered in error, and superseded versions",
    )
