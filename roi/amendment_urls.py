"""URLs of amendment requests (roi/amendment_views.py)."""

from django.urls import path

from roi import amendment_views as views

urlpatterns = [
    path("amendments/", views.amendments_view, name="amendments"),
    path(
        "amendments/patient/<uuid:patient_id>/log/",
        views.log_amendment_view,
        name="amendment_log",
    ),
    path("amendments/<uuid:public_id>/", views.amendment_view, name="amendment"),
    path(
        "amendments/<uuid:public_id>/extend/",
        views.extend_amendment_view,
        name="amendment_extend",
    ),
    path(
        "amendments/<uuid:public_id>/accept/",
        views.accept_amendment_view,
        name="amendment_accept",
    ),
    path("amendments/<uuid:public_id>/deny/", views.deny_amendment_view, name="amendment_deny"),
    path(
        "amendments/<uuid:public_id>/send-with-disclosures/",
        views.send_with_disclosures_view,
        name="amendment_send_with_disclosures",
    ),
    path(
        "amendments/<uuid:public_id>/statement/",
        views.statement_view,
        name="amendment_statement",
    ),
]
