"""URLs of this part (placeholder views are replaced as the part lands)."""

from django.urls import path

from recordroom.views import not_found_view

urlpatterns = [
    path("queue/", not_found_view, name="queue"),
]
