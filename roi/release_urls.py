"""URLs of processing, release, delivery, fees and denials (roi/release_views.py)."""

from django.urls import path

from roi import release_views as views

R = "requests/<uuid:public_id>/"
urlpatterns = [
    path(f"{R}processing/", views.processing_view, name="processing"),
    path(f"{R}processing/propose/", views.propose_view, name="propose"),
    path(f"{R}processing/items/<uuid:document_id>/", views.decide_item_view, name="decide_item"),
    path(f"{R}processing/submit/", views.submit_view, name="submit_for_check"),
    path(f"{R}processing/check/", views.check_view, name="quality_check"),
    path(f"{R}release/", views.release_view, name="release"),
    path(f"{R}deny/", views.deny_view, name="deny"),
    path(
        f"{R}denials/<int:denial_id>/review-requested/",
        views.review_requested_view,
        name="denial_review_requested",
    ),
    path(f"{R}denials/<int:denial_id>/review/", views.review_view, name="denial_review"),
    path("denial-reviews/", views.reviews_waiting_view, name="denial_reviews"),
    path(f"{R}letters/<uuid:letter_id>/", views.letter_view, name="letter"),
    path(f"{R}packets/<uuid:packet_id>/", views.packet_view, name="packet"),
    path(f"{R}packets/<uuid:packet_id>/link/", views.new_link_view, name="packet_link"),
    path(
        f"{R}packets/<uuid:packet_id>/<str:step>/",
        views.paper_view,
        name="packet_paper",
    ),
    path(f"{R}invoice/", views.invoice_view, name="invoice"),
    path("download/<str:token>/", views.download_view, name="download"),
]
