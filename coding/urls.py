from django.urls import include, path

app_name = "coding"
urlpatterns = [
    # Code look-up (coding/lookup_urls.py), the abstract screen (coding/abstract_urls.py),
    # the work queue, DNFB, queries, reviews and exports (coding/work_urls.py).
    path("", include("coding.lookup_urls")),
    path("", include("coding.abstract_urls")),
    path("", include("coding.work_urls")),
]
