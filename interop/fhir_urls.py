"""The FHIR R4 endpoint at /fhir/. Bulk data and SMART discovery first (their paths
would otherwise match the generic ``<type>/<id>`` patterns), then the REST API."""

from django.urls import include, path

urlpatterns = [
    path("", include("interop.bulk_urls")),
    path("", include("interop.api_urls")),
]
