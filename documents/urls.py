from django.urls import path

from documents import views

app_name = "documents"
urlpatterns = [
    # The legal document record (documents/views.py).
    path("new/<uuid:patient_id>/", views.new_document_view, name="new"),
    path("<uuid:public_id>/", views.document_view, name="detail"),
    path("<uuid:public_id>/edit/", views.edit_draft_view, name="edit"),
    path("<uuid:public_id>/sign/", views.sign_view, name="sign"),
    path("<uuid:public_id>/amend/", views.amend_view, name="amend"),
    path("<uuid:public_id>/addendum/", views.addendum_view, name="addendum"),
    path(
        "<uuid:public_id>/entered-in-error/", views.entered_in_error_view, name="entered_in_error"
    ),
    path("<uuid:public_id>/history/", views.history_view, name="history"),
    path("<uuid:public_id>/diff/<int:a>/<int:b>/", views.diff_view, name="diff"),
    path(
        "<uuid:public_id>/versions/<int:number>/attachment/",
        views.attachment_view,
        name="attachment",
    ),
    # Emergency access to a sensitive document the user may not read (a patient-wide
    # break-the-glass grant, as patients.actions.do_break_the_glass gives).
    path("<uuid:public_id>/break-the-glass/", views.break_the_glass_view, name="break_the_glass"),
]
