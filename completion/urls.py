from django.urls import include, path

from completion import views

app_name = "completion"
urlpatterns = [
    # The clinician's work queue and bulk signing of verbal and telephone orders.
    path("mine/", views.queue_view, name="queue"),
    path("mine/sign/", views.bulk_sign_view, name="bulk_sign"),
    # The analysts' deficiency list (filters in the query string) and one deficiency.
    path("deficiencies/", views.deficiencies_view, name="deficiencies"),
    path("deficiencies/<uuid:public_id>/", views.deficiency_view, name="deficiency"),
    path("deficiencies/<uuid:public_id>/reassign/", views.reassign_view, name="reassign"),
    path("deficiencies/<uuid:public_id>/waive/", views.waive_view, name="waive"),
    # One encounter's record: its completion status, and adding a deficiency to it.
    path("encounters/<uuid:public_id>/", views.record_view, name="record"),
    path("encounters/<uuid:public_id>/add/", views.add_view, name="add"),
    # The HIM analyst's figures.
    path("dashboard/", views.dashboard_view, name="dashboard"),
    path("delinquency/", views.delinquency_view, name="delinquency"),
    path("export.csv", views.export_csv_view, name="export_csv"),
    # Rules, policy and inbox (completion/admin_urls.py); quality audits.
    path("", include("completion.admin_urls")),
    path("quality/", include("completion.quality_urls")),
]
