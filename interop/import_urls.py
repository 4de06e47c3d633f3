"""The import-errors screen, mounted at /interop/imports/."""

from django.urls import path

from interop import import_views

app_name = "imports"

urlpatterns = [
    path("", import_views.error_list, name="errors"),
    path("<uuid:public_id>/", import_views.unit_detail, name="unit"),
    path("<uuid:public_id>/replay/", import_views.unit_replay, name="replay"),
    path("<uuid:public_id>/dismiss/", import_views.unit_dismiss, name="dismiss"),
]
