"""Every change to accounts, roles and log-in state, each audited in its transaction."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.access import require_permission
from accounts.permissions import AccountsPermission
from accounts.roles import Role, role_codes
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from recordroom import clock

User = get_user_model()


def _user_ref(user) -> dict:
    return {"object_type": "accounts.user", "object_id": str(user.public_id)}


# --- log-in -----------------------------------------------------------------------------


def is_locked(user) -> bool:
    return bool(user.locked_until and user.locked_until > clock.now())


@transaction.atomic
def do_record_failed_login(username: str, user=None) -> bool:
    """Count a failed log-in; lock the account at the threshold. Returns True when this
    failure locked it."""
    if user is None:
        record_event(
            None,
            Action.LOGIN_FAILED,
            outcome=Outcome.DENIED,
            purpose=Purpose.SECURITY,
            username=username,
            reason="unknown user name",
        )
        return False
    user = User.objects.select_for_update().get(pk=user.pk)
    user.failed_login_count += 1
    locked_now = user.failed_login_count >= settings.LOCKOUT_THRESHOLD and not is_locked(user)
    if locked_now:
        user.locked_until = clock.now() + timedelta(minutes=settings.LOCKOUT_MINUTES)
    user.save(update_fields=["failed_login_count", "locked_until"])
    record_event(
        None,
        Action.LOGIN_FAILED,
        outcome=Outcome.DENIED,
        purpose=Purpose.SECURITY,
        username=user.username,
        reason="account locked" if is_locked(user) and not locked_now else "wrong password",
        detail={"failed_count": user.failed_login_count},
        **_user_ref(user),
    )
    if locked_now:
        record_event(
            None,
            Action.LOCKOUT,
            outcome=Outcome.DENIED,
            purpose=Purpose.SECURITY,
            username=user.username,
            reason=f"{user.failed_login_count} failed log-ins",
            detail={"locked_minutes": settings.LOCKOUT_MINUTES},
            **_user_ref(user),
        )
    return locked_now


@transaction.atomic
def do_record_login(user, *, mfa: bool) -> None:
    User.objects.filter(pk=user.pk).update(failed_login_count=0, locked_until=None)
    record_event(
        user, Action.LOGIN, purpose=Purpose.SECURITY, detail={"mfa": mfa}, **_user_ref(user)
    )


def do_record_logout(user, *, reason: str = "signed out") -> None:
    record_event(user, Action.LOGOUT, purpose=Purpose.SECURITY, reason=reason, **_user_ref(user))


def do_record_mfa_failure(user) -> None:
    record_event(
        None,
        Action.MFA,
        outcome=Outcome.DENIED,
        purpose=Purpose.SECURITY,
        username=user.username,
        reason="wrong one-time code",
        **_user_ref(user),
    )


# --- multi-factor -------------------------------------------------------------------------


def pending_totp_device(user) -> TOTPDevice:
    """The unconfirmed TOTP device a user is enrolling, made on first call."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)
    return device


@transaction.atomic
def do_confirm_totp_device(user, device: TOTPDevice) -> None:
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    record_event(
        user,
        Action.MFA,
        purpose=Purpose.SECURITY,
        reason="authenticator enrolled",
        **_user_ref(user),
    )


# --- user administration ------------------------------------------------------------------


def _set_groups(user, roles: list[str]) -> tuple[list[str], list[str]]:
    before = role_codes(user) if user.pk else set()
    wanted = {Role(r).value for r in roles}
    user.groups.set(Group.objects.filter(name__in=wanted))
    user._role_codes = wanted
    return sorted(wanted - before), sorted(before - wanted)


def _create_user(
    *,
    username,
    first_name,
    last_name,
    email,
    roles,
    password,
    acting_user,
    reason,
    username_note="",
):
    user = User(
        username=username,
        first_name=first_name,
        last_name=last_name,
        email=email,
        is_system_account=Role.INTEGRATION.value in roles,
    )
    validate_password(password, user)
    user.set_password(password)
    user.password_changed_at = clock.now()
    user.full_clean()
    user.save()
    added, _ = _set_groups(user, roles)
    record_event(
        acting_user,
        Action.ACCOUNT_CHANGE,
        purpose=Purpose.SYSTEM,
        reason=reason,
        username=username_note,
        detail={"roles": added},
        **_user_ref(user),
    )
    if added:
        record_event(
            acting_user,
            Action.PERMISSION_CHANGE,
            purpose=Purpose.SYSTEM,
            username=username_note,
            detail={"roles_added": added, "roles_removed": []},
            **_user_ref(user),
        )
    return user


def do_provision_user(
    *,
    username: str,
    first_name: str,
    last_name: str,
    email: str,
    roles: list[str],
    password: str,
    reason: str,
) -> User:
    """Create an account from the command line (first administrator, demo users): the
    operator has shell access, so no acting user is checked; the creation is audited."""
    with transaction.atomic():
        return _create_user(
            username=username,
            first_name=first_name,
            last_name=last_name,
            email=email,
            roles=roles,
            password=password,
            acting_user=None,
            reason=reason,
            username_note="(command line)",
        )


def do_create_user(
    *,
    username: str,
    first_name: str,
    last_name: str,
    email: str,
    roles: list[str],
    password: str,
    acting_user,
) -> User:
    require_permission(acting_user, AccountsPermission.MANAGE_USERS, object_type="accounts.user")
    with transaction.atomic():
        return _create_user(
            username=username,
            first_name=first_name,
            last_name=last_name,
            email=email,
            roles=roles,
            password=password,
            acting_user=acting_user,
            reason="user created",
        )


def do_update_user(user, *, first_name, last_name, email, roles, is_active, acting_user) -> None:
    require_permission(acting_user, AccountsPermission.MANAGE_USERS, **_user_ref(user))
    with transaction.atomic():
        if user.pk == acting_user.pk and (not is_active or set(roles) != role_codes(user)):
            raise ValidationError("You cannot change your own roles or deactivate yourself.")
        changed = {
            field: value
            for field, value in {
                "first_name": first_name,
                "last_name": last_name,
                "email": email,
                "is_active": is_active,
            }.items()
            if getattr(user, field) != value
        }
        for field, value in changed.items():
            setattr(user, field, value)
        user.is_system_account = Role.INTEGRATION.value in roles
        user.full_clean()
        user.save()
        added, removed = _set_groups(user, roles)
        if changed:
            record_event(
                acting_user,
                Action.ACCOUNT_CHANGE,
                purpose=Purpose.SYSTEM,
                reason="user updated",
                detail={"fields": sorted(changed)},
                **_user_ref(user),
            )
        if added or removed:
            record_event(
                acting_user,
                Action.PERMISSION_CHANGE,
                purpose=Purpose.SYSTEM,
                detail={"roles_added": added, "roles_removed": removed},
                **_user_ref(user),
            )


def do_unlock_user(user, *, acting_user) -> None:
    require_permission(acting_user, AccountsPermission.MANAGE_USERS, **_user_ref(user))
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(failed_login_count=0, locked_until=None)
        record_event(
            acting_user,
            Action.ACCOUNT_CHANGE,
            purpose=Purpose.SECURITY,
            reason="account unlocked",
            **_user_ref(user),
        )


def do_reset_mfa(user, *, acting_user) -> None:
    require_permission(acting_user, AccountsPermission.MANAGE_USERS, **_user_ref(user))
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        record_event(
            acting_user,
            Action.MFA,
            purpose=Purpose.SECURITY,
            reason="authenticator reset",
            **_user_ref(user),
        )


def do_set_password(user, password: str, *, acting_user) -> None:
    """Set a password: the user's own change, or an administrator's reset."""
    if acting_user.pk != user.pk:
        require_permission(acting_user, AccountsPermission.MANAGE_USERS, **_user_ref(user))
    _set_password(user, password, acting_user=acting_user)


@transaction.atomic
def _set_password(user, password: str, *, acting_user) -> None:
    validate_password(password, user)
    user.set_password(password)
    user.password_changed_at = clock.now()
    user.save(update_fields=["password", "password_changed_at"])
    record_event(
        acting_user,
        Action.ACCOUNT_CHANGE,
        purpose=Purpose.SECURITY,
        reason="password changed" if acting_user.pk == user.pk else "password reset",
        **_user_ref(user),
    )
