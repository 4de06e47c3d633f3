from django.urls import path

from audit import views

app_name = "audit"
urlpatterns = [
    path("", views.trail_view, name="trail"),
    path("export.csv", views.trail_export_view, name="export"),
]
