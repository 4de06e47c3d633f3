from django.urls import include, path, re_path

from interop import api_views as fhir_views
from recordroom import views
from recordroom.api import api

urlpatterns = [
    path("", views.home_view, name="home"),
    path("healthz", views.healthz_view, name="healthz"),
    path("accounts/", include("accounts.urls")),
    path("audit/", include("audit.urls")),
    path("patients/", include("patients.urls")),
    path("encounters/", include("encounters.urls")),
    path("documents/", include("documents.urls")),
    path("completion/", include("completion.urls")),
    path("interop/", include("interop.urls")),
    path("coding/", include("coding.urls")),
    path("roi/", include("roi.urls")),
    path("reports/", include("reports.urls")),
    # FHIR clients post transaction and batch bundles to the base URL, with no slash.
    re_path(r"^fhir$", fhir_views.bundle_view, name="fhir_base"),
    path("fhir/", include("interop.fhir_urls")),
    path("oauth/", include("interop.oauth_urls")),
    path("api/", api.urls),
]

handler400 = "recordroom.views.bad_request_view"
handler403 = "recordroom.views.permission_denied_view"
handler404 = "recordroom.views.not_found_view"
handler500 = "recordroom.views.server_error_view"
