from django.db import models


class CodingPermission(models.TextChoices):
    LOOK_UP_CODES = "coding.look_up_codes", "Look up diagnosis and procedure codes"
    CODE = "coding.code", "Abstract and code encounters; claim work; ask physician queries"
    REVIEW = "coding.review", "Second-level review of finalised abstracts (accuracy)"
    VIEW_REPORTS = "coding.view_reports", "See the DNFB report, coding backlog and productivity"
    MANAGE_CODE_SETS = (
        "coding.manage_code_sets",
        "Load code sets (ICD-10-CM/PCS, HCPCS, a licensed CPT file) and edit coding edits",
    )
    ANSWER_QUERIES = "coding.answer_queries", "Answer coders' queries about one's documentation"
