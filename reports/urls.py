from django.urls import path

from recordroom.views import not_found_view  # replaced by the reports views as they land

app_name = "reports"
urlpatterns = [
    path("dashboard/", not_found_view, name="dashboard"),
]
