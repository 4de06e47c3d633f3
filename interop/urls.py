"""The interoperability pages at /interop/: the import errors screen (quarantine) and
the administration of API clients."""

from django.urls import include, path

urlpatterns = [
    path("imports/", include("interop.import_urls")),
    path("clients/", include("interop.client_urls")),
]
