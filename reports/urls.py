from django.urls import path

from reports import views

app_name = "reports"
urlpatterns = [
    # The dashboard of the user's role; filters in the query string.
    path("dashboard/", views.dashboard_view, name="dashboard"),
    # One table to CSV or Excel, or the dashboard to PDF (same filters).
    path("export/", views.export_view, name="export"),
    # Bed counts per unit with effective dates.
    path("beds/", views.beds_view, name="beds"),
]
