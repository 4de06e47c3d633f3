"""Permission checks: the one helper every access_* and do_* function calls.

A refusal is written to the audit trail *before* the exception is raised, and outside
any transaction of the caller's, so the record of a denied attempt is never rolled back
with it. Actions therefore check first and open their transaction after.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.permissions import AccountsPermission
from accounts.roles import role_codes
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose


class AccessDenied(PermissionDenied):
    """Refused, and the refusal is already in the audit trail."""


def has_permission(user, permission: str) -> bool:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if not role_codes(user):
        return False
    return user.has_perm(str(permission))


def users_holding(*permissions: str, facility_ids) -> list:
    """Active users at these facilities who hold any of ``permissions`` (through their
    roles or directly), by name. One query narrows to the users granted one of them;
    ``has_permission`` then decides for each of those few."""
    from django.db.models import Q

    grants = Q(is_superuser=True)
    for permission in permissions:
        app_label, _, codename = str(permission).partition(".")
        grants |= Q(
            groups__permissions__content_type__app_label=app_label,
            groups__permissions__codename=codename,
        ) | Q(
            user_permissions__content_type__app_label=app_label,
            user_permissions__codename=codename,
        )
    candidates = (
        get_user_model()
        .objects.filter(grants, is_active=True, facilities__in=facility_ids)
        .distinct()
        .order_by("last_name", "first_name", "username")
    )
    return [u for u in candidates if any(has_permission(u, p) for p in permissions)]


def require_permission(
    user,
    permission: str,
    *,
    action: str = Action.VIEW,
    purpose: str = "",
    patient_id=None,
    object_type: str = "",
    object_id: str = "",
) -> None:
    """Raise :class:`AccessDenied` (after auditing it) unless ``user`` holds ``permission``."""
    if has_permission(user, permission):
        return
    record_event(
        user if getattr(user, "is_authenticated", False) else None,
        action,
        outcome=Outcome.DENIED,
        purpose=purpose,
        patient_id=patient_id,
        object_type=object_type,
        object_id=object_id,
        reason=f"lacks permission {permission}",
    )
    raise AccessDenied(f"permission {permission} required")


def access_user(acting_user, public_id, *, write: bool = False):
    """Fetch a user account for the user-administration screens."""
    permission = AccountsPermission.MANAGE_USERS if write else AccountsPermission.VIEW_USERS
    require_permission(
        acting_user,
        permission,
        object_type="accounts.user",
        object_id=str(public_id),
        purpose=Purpose.SYSTEM,
    )
    try:
        return get_user_model().objects.get(public_id=public_id)
    except (get_user_model().DoesNotExist, ValueError, TypeError):
        raise Http404("No such user") from None


def list_users(acting_user):
    require_permission(
        acting_user,
        AccountsPermission.VIEW_USERS,
        object_type="accounts.user",
        purpose=Purpose.SYSTEM,
    )
    return get_user_model().objects.order_by("username").prefetch_related("groups")


def locked_users(acting_user):
    from recordroom import clock

    require_permission(
        acting_user,
        AccountsPermission.MANAGE_USERS,
        object_type="accounts.user",
        purpose=Purpose.SECURITY,
    )
    return list(
        get_user_model().objects.filter(locked_until__gt=clock.now()).order_by("-locked_until")[:20]
    )
