"""URLs of this part (placeholder views are replaced as the part lands)."""

from django.urls import path

from recordroom.views import not_found_view

urlpatterns = [
    path("amendments/", not_found_view, name="amendments"),
]
