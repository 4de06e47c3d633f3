"""The abstract screen of an encounter (coding/abstract_views.py)."""

from django.urls import path

from coding import abstract_views as v

E = "encounters/<uuid:encounter_id>/"
urlpatterns = [
    path(E, v.abstract_view, name="abstract"),
    path(E + "history/", v.history_view, name="abstract_history"),
    path(E + "open/", v.open_view, name="abstract_open"),
    path(E + "header/", v.header_view, name="abstract_header"),
    path(E + "diagnoses/", v.add_diagnosis_view, name="abstract_add_dx"),
    path(E + "diagnoses/<int:sequence>/", v.change_diagnosis_view, name="abstract_change_dx"),
    path(
        E + "diagnoses/<int:sequence>/remove/", v.remove_diagnosis_view, name="abstract_remove_dx"
    ),
    path(E + "diagnoses/<int:sequence>/move/", v.move_diagnosis_view, name="abstract_move_dx"),
    path(E + "procedures/", v.add_procedure_view, name="abstract_add_px"),
    path(E + "procedures/<int:sequence>/", v.change_procedure_view, name="abstract_change_px"),
    path(
        E + "procedures/<int:sequence>/remove/",
        v.remove_procedure_view,
        name="abstract_remove_px",
    ),
    path(E + "procedures/<int:sequence>/move/", v.move_procedure_view, name="abstract_move_px"),
    path(E + "finalise/", v.finalise_view, name="abstract_finalise"),
    path(E + "reopen/", v.reopen_view, name="abstract_reopen"),
]
