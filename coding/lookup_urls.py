"""URLs of this part (placeholder views are replaced as the part lands)."""

from django.urls import path

from recordroom.views import not_found_view

urlpatterns = [
    path("lookup/", not_found_view, name="lookup"),
]
