"""API client administration, at /interop/clients/."""

from django.urls import path

from interop import client_views

app_name = "clients"

urlpatterns = [
    path("", client_views.client_list_view, name="list"),
    path("new/", client_views.client_create_view, name="create"),
    path("<uuid:public_id>/", client_views.client_detail_view, name="detail"),
    path("<uuid:public_id>/revoke/", client_views.client_revoke_view, name="revoke"),
]
