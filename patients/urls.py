from django.urls import path

from patients import chart_views, restriction_views, views

app_name = "patients"
urlpatterns = [
    # The master patient index: search and registration (patients/views.py).
    path("", views.search_view, name="search"),
    path("register/", views.register_view, name="register"),
    path("<uuid:public_id>/demographics/", views.demographics_view, name="demographics"),
    path(
        "<uuid:public_id>/demographics/edit/",
        views.edit_demographics_view,
        name="edit_demographics",
    ),
    path("<uuid:public_id>/demographics/versions/", views.versions_view, name="versions"),
    path(
        "<uuid:public_id>/identifiers/<int:identifier_id>/reveal/",
        views.reveal_identifier_view,
        name="reveal_identifier",
    ),
    # The chart (patients/chart_views.py).
    path("<uuid:public_id>/", chart_views.chart_view, name="chart"),
    # Restrictions and break-the-glass (patients/restriction_views.py).
    path("<uuid:public_id>/restricted/", restriction_views.restricted_view, name="restricted"),
    path(
        "<uuid:public_id>/break-the-glass/",
        restriction_views.break_the_glass_view,
        name="break_the_glass",
    ),
    path("<uuid:public_id>/restriction/", restriction_views.restriction_view, name="restriction"),
    path("break-the-glass/", restriction_views.review_queue_view, name="btg_queue"),
    path("break-the-glass/<uuid:grant_id>/", restriction_views.review_view, name="btg_review"),
]
