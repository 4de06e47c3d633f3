"""Quality-audit screens, included by completion/urls.py under "quality/" in the
"completion" namespace. Every name starts with "quality_"."""

from django.urls import path

from completion import quality_views as views

urlpatterns = [
    path("", views.audits_view, name="quality_audits"),
    path("new/", views.new_audit_view, name="quality_new"),
    path("checklists/", views.checklists_view, name="quality_checklists"),
    path("checklists/new/", views.checklist_new_view, name="quality_checklist_new"),
    path(
        "checklists/<uuid:public_id>/retire/",
        views.checklist_retire_view,
        name="quality_checklist_retire",
    ),
    path("corrections/", views.corrections_view, name="quality_corrections"),
    path(
        "corrections/<uuid:public_id>/resolve/",
        views.correction_resolve_view,
        name="quality_correction_resolve",
    ),
    path("<uuid:public_id>/", views.audit_view, name="quality_audit"),
    path("<uuid:public_id>/assign/", views.assign_view, name="quality_assign"),
    path("<uuid:public_id>/close/", views.close_view, name="quality_close"),
    path("<uuid:public_id>/export.csv", views.export_csv_view, name="quality_export_csv"),
    path(
        "<uuid:public_id>/records/<uuid:encounter_id>/",
        views.score_view,
        name="quality_score",
    ),
]
