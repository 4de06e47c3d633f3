"""Writing the role → permission mapping of accounts/roles.py into the database."""

from __future__ import annotations

from django.apps import apps as global_apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from accounts.roles import PERMISSION_ENUMS, ROLE_PERMISSIONS


def _content_type_for_app(app_label: str) -> ContentType:
    # Permissions hang on the app's first model: Django keys a permission to a content
    # type, and "app_label.codename" is what has_perm checks.
    model = next(iter(global_apps.get_app_config(app_label).get_models()))
    return ContentType.objects.get_for_model(model)


@transaction.atomic
def sync_roles() -> dict[str, int]:
    permissions: dict[str, Permission] = {}
    for enum in PERMISSION_ENUMS:
        for member in enum:
            app_label, codename = member.value.split(".", 1)
            perm, _ = Permission.objects.update_or_create(
                content_type=_content_type_for_app(app_label),
                codename=codename,
                defaults={"name": str(member.label)[:255]},
            )
            permissions[member.value] = perm
    for role, granted in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        group.permissions.set([permissions[p] for p in granted])
    return {"roles": len(ROLE_PERMISSIONS), "permissions": len(permissions)}


def sync_roles_after_migrate(sender, using="default", **kwargs):
    sync_roles()
