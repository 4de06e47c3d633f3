from django.urls import include, path

app_name = "roi"
urlpatterns = [
    # Intake, validation, the queue and dashboard (roi/intake_urls.py); processing,
    # quality check, packets, delivery, fees and denials (roi/release_urls.py); the
    # accounting of disclosures and amendments.
    path("", include("roi.intake_urls")),
    path("", include("roi.release_urls")),
    path("", include("roi.accounting_urls")),
    path("", include("roi.amendment_urls")),
]
