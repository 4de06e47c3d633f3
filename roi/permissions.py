from django.db import models


class RoiPermission(models.TextChoices):
    LOG_REQUESTS = "roi.log_requests", "Log release-of-information requests and attach documents"
    PROCESS = (
        "roi.process",
        "Validate, process, release and deny release-of-information requests",
    )
    QUALITY_CHECK = "roi.quality_check", "Quality-check a release packet before it goes out"
    VIEW_DASHBOARD = "roi.view_dashboard", "See the ROI queue figures and turnaround"
    MANAGE_POLICY = "roi.manage_policy", "Edit ROI deadlines, fee schedules and letters"
    VIEW_DISCLOSURES = (
        "roi.view_disclosures",
        "See the accounting of disclosures and answer a patient's request for it",
    )
    RECORD_DISCLOSURE = "roi.record_disclosure", "Enter an accountable disclosure by hand"
    MANAGE_AMENDMENTS = "roi.manage_amendments", "Log and decide requests to amend a record"
    REVIEW_DENIALS = (
        "roi.review_denials",
        "Review a denial of access as the designated reviewing official, a licensed health "
        "care professional (45 CFR 164.524(a)(4))",
    )
