"""URLs of the code look-up (``coding:lookup``, ``coding:lookup_results``)."""

from django.urls import path

from coding import lookup_views

urlpatterns = [
    path("lookup/", lookup_views.lookup_view, name="lookup"),
    path("lookup/results/", lookup_views.lookup_results_view, name="lookup_results"),
]
