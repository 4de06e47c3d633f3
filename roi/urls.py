from django.urls import path

from recordroom.views import not_found_view  # replaced by the roi views as they land

app_name = "roi"
urlpatterns = [
    path("queue/", not_found_view, name="queue"),
    path("disclosures/", not_found_view, name="disclosures"),
    path("amendments/", not_found_view, name="amendments"),
]
