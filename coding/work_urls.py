"""URLs of the coding work: the queue, DNFB, productivity and accuracy, second-level
reviews, physician queries and exports."""

from django.urls import path

from coding import work_views as views

urlpatterns = [
    path("queue/", views.queue_view, name="queue"),
    path("queue/<uuid:public_id>/claim/", views.claim_view, name="queue_claim"),
    path("queue/<uuid:public_id>/release/", views.release_view, name="queue_release"),
    path("dnfb/", views.dnfb_view, name="dnfb"),
    path("dnfb.csv", views.dnfb_csv_view, name="dnfb_csv"),
    path("productivity/", views.productivity_view, name="productivity"),
    path("productivity.csv", views.productivity_csv_view, name="productivity_csv"),
    path("reviews/", views.reviews_view, name="reviews"),
    path("reviews/draw/", views.review_draw_view, name="review_draw"),
    path("reviews/<uuid:public_id>/", views.review_view, name="review"),
    path("queries/", views.queries_view, name="queries"),
    path("queries/new/<uuid:encounter_id>/", views.query_new_view, name="query_new"),
    path("queries/<uuid:public_id>/", views.query_view, name="query"),
    path("queries/<uuid:public_id>/answer/", views.query_answer_view, name="query_answer"),
    path("queries/<uuid:public_id>/withdraw/", views.query_withdraw_view, name="query_withdraw"),
    path("exports/", views.exports_view, name="exports"),
    path("exports/abstracts.csv", views.export_csv_view, name="export_csv"),
    path("exports/<uuid:encounter_id>/claim.json", views.export_claim_view, name="export_claim"),
]
