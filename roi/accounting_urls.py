"""URLs of the accounting of disclosures (roi/accounting_views.py)."""

from django.urls import path

from roi import accounting_views as views

urlpatterns = [
    path("disclosures/", views.disclosures_view, name="disclosures"),
    path(
        "disclosures/patient/<uuid:patient_id>/",
        views.patient_disclosures_view,
        name="disclosures_patient",
    ),
    path(
        "disclosures/patient/<uuid:patient_id>/record/",
        views.record_disclosure_view,
        name="disclosure_record",
    ),
    path(
        "disclosures/patient/<uuid:patient_id>/accounting/",
        views.log_accounting_request_view,
        name="accounting_log",
    ),
    path(
        "disclosures/patient/<uuid:patient_id>/suspend/<uuid:public_id>/",
        views.suspend_disclosure_view,
        name="disclosure_suspend",
    ),
    path("accounting/<uuid:public_id>/", views.accounting_request_view, name="accounting_request"),
    path(
        "accounting/<uuid:public_id>/extend/",
        views.extend_accounting_request_view,
        name="accounting_extend",
    ),
    path(
        "accounting/<uuid:public_id>/answer/",
        views.answer_accounting_request_view,
        name="accounting_answer",
    ),
]
