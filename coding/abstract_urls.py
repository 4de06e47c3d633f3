"""URLs of this part (placeholder views are replaced as the part lands)."""

urlpatterns = []
