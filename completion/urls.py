app_name = "completion"

urlpatterns: list = []
