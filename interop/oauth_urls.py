"""OAuth 2.0 for the FHIR API, at /oauth/."""

from django.urls import path

from interop import oauth_views

app_name = "oauth"

urlpatterns = [
    path("token", oauth_views.token_view, name="token"),
    path("authorize", oauth_views.authorize_view, name="authorize"),
]
