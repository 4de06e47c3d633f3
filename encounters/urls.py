from django.urls import path

from encounters import views

app_name = "encounters"
urlpatterns = [
    # Encounter screens (encounters/views.py): register a visit or admission for a
    # patient, see one encounter with its versions, transfer, discharge, correct, cancel.
    path("new/<uuid:patient_id>/", views.new_encounter_view, name="new"),
    path("<uuid:public_id>/", views.encounter_view, name="detail"),
    path("<uuid:public_id>/transfer/", views.transfer_view, name="transfer"),
    path("<uuid:public_id>/discharge/", views.discharge_view, name="discharge"),
    # A planned encounter begins; a discharge that did not happen is cancelled (HL7 A13).
    path("<uuid:public_id>/start/", views.start_view, name="start"),
    path(
        "<uuid:public_id>/cancel-discharge/", views.cancel_discharge_view, name="cancel_discharge"
    ),
    path("<uuid:public_id>/correct/", views.correct_view, name="correct"),
    path("<uuid:public_id>/cancel/", views.cancel_view, name="cancel"),
]
