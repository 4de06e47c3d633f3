"""FHIR Bulk Data export and SMART discovery, included at /fhir/ before the REST API
(``$export`` would otherwise look like a resource type)."""

from django.urls import path

from interop import bulk_views

app_name = "fhir_bulk"

urlpatterns = [
    path(
        ".well-known/smart-configuration",
        bulk_views.smart_configuration_view,
        name="smart_configuration",
    ),
    path("$export", bulk_views.export_view, name="export"),
    path("Patient/$export", bulk_views.patient_export_view, name="patient_export"),
    path(
        "$export-poll-status/<uuid:job_id>",
        bulk_views.export_status_view,
        name="export_status",
    ),
    path("bulk-files/<uuid:file_id>", bulk_views.export_file_view, name="export_file"),
]
