"""Rules, policy and inbox, included at the root of /completion/ (namespace
``completion``)."""

from django.urls import path

from completion import admin_views

urlpatterns = [
    path("rules/", admin_views.rules_view, name="rules"),
    path("rules/new/", admin_views.rule_add_view, name="rule_add"),
    path("rules/<uuid:public_id>/", admin_views.rule_view, name="rule"),
    path("rules/<uuid:public_id>/edit/", admin_views.rule_edit_view, name="rule_edit"),
    path("rules/<uuid:public_id>/retire/", admin_views.rule_retire_view, name="rule_retire"),
    path("policy/", admin_views.policy_view, name="policy"),
    path("inbox/", admin_views.inbox_view, name="inbox"),
    path("inbox/read/", admin_views.inbox_read_view, name="inbox_read"),
]
