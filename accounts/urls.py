from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("mfa/", views.mfa_view, name="mfa"),
    path("confirm-password/", views.confirm_password_view, name="confirm_password"),
    path("logout/", views.logout_view, name="logout"),
    path("security/", views.security_view, name="security"),
    path("security/enrol-mfa/", views.enrol_mfa_view, name="enrol_mfa"),
    path("users/", views.user_list_view, name="users"),
    path("users/new/", views.user_create_view, name="user_create"),
    path("users/<uuid:public_id>/", views.user_detail_view, name="user"),
    path("users/<uuid:public_id>/unlock/", views.user_unlock_view, name="user_unlock"),
    path("users/<uuid:public_id>/reset-mfa/", views.user_reset_mfa_view, name="user_reset_mfa"),
]
