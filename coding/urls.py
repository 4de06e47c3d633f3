from django.urls import path

from recordroom.views import not_found_view  # replaced by the coding views as they land

app_name = "coding"
urlpatterns = [
    path("queue/", not_found_view, name="queue"),
    path("lookup/", not_found_view, name="lookup"),
    path("dnfb/", not_found_view, name="dnfb"),
]
