"""URLs of ROI intake (roi/views.py): the queue, logging, the request page and its
intake steps."""

from django.urls import path

from roi import views

R = "requests/<uuid:public_id>/"
urlpatterns = [
    path("queue/", views.queue_view, name="queue"),
    path("dashboard/", views.dashboard_view, name="dashboard"),
    path("requests/new/", views.new_view, name="new"),
    path("requests/new/<uuid:patient_id>/", views.new_for_patient_view, name="new_for_patient"),
    path(R, views.request_view, name="request"),
    path(f"{R}attach/", views.attach_view, name="attach"),
    path(f"{R}authorization/", views.authorization_view, name="authorization"),
    path(f"{R}identity/", views.identity_view, name="identity"),
    path(f"{R}revoke/", views.revoke_view, name="revoke"),
    path(f"{R}check/", views.check_view, name="check"),
    path(f"{R}extend/", views.extend_view, name="extend"),
    path(f"{R}close/", views.close_view, name="close"),
    path(f"{R}assign/", views.assign_view, name="assign"),
]
