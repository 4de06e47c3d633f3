"""The log-in sequence: password, lock-out, role check, then the second factor.

Between the password step and the second factor the user is *not* logged in: the
session holds only a pending marker that expires after a few minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth import login as auth_login
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import actions
from accounts.roles import requires_mfa, role_codes
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from recordroom import clock

PENDING_KEY = "recordroom_mfa_pending"
PENDING_SECONDS = 300

GENERIC_FAILURE = "Wrong user name or password."


@dataclass
class LoginStep:
    done: bool = False
    needs_mfa: bool = False
    error: str = ""


def _find_user(username: str):
    return get_user_model().objects.filter(username__iexact=username).first()


def begin_login(request, username: str, password: str) -> LoginStep:
    user = _find_user(username)
    if user is None:
        actions.do_record_failed_login(username)
        return LoginStep(error=GENERIC_FAILURE)
    if actions.is_locked(user):
        actions.do_record_failed_login(username, user)
        return LoginStep(
            error="This account is locked after repeated failed log-ins. Try again later "
            "or ask an HIM administrator to unlock it."
        )
    authenticated = authenticate(request, username=user.username, password=password)
    if authenticated is None:
        locked = actions.do_record_failed_login(username, user)
        if locked:
            return LoginStep(
                error="Too many failed log-ins: this account is now locked. "
                "Ask an HIM administrator to unlock it."
            )
        return LoginStep(error=GENERIC_FAILURE)
    user = authenticated
    refusal = _refusal(user)
    if refusal:
        record_event(
            None,
            Action.LOGIN,
            outcome=Outcome.DENIED,
            purpose=Purpose.SECURITY,
            username=user.username,
            reason=refusal,
            object_type="accounts.user",
            object_id=str(user.public_id),
        )
        return LoginStep(error=refusal)
    if requires_mfa(user) or has_confirmed_device(user):
        request.session.cycle_key()
        request.session[PENDING_KEY] = {"user": user.pk, "at": clock.now().timestamp()}
        return LoginStep(needs_mfa=True)
    auth_login(request, user)
    actions.do_record_login(user, mfa=False)
    return LoginStep(done=True)


def _refusal(user) -> str:
    if user.is_system_account:
        return "System accounts call the APIs and cannot sign in to the web pages."
    if not role_codes(user):
        return "Your account has no role yet. Ask an HIM administrator to assign one."
    return ""


def has_confirmed_device(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def confirmed_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def pending_user(request):
    pending = request.session.get(PENDING_KEY)
    if not pending:
        return None
    if clock.now().timestamp() - pending["at"] > PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return None
    user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
    if user is None or actions.is_locked(user):
        return None
    return user


def verify_second_factor(request, user, device: TOTPDevice, token: str) -> str:
    """Check a one-time code; on success finish the log-in. Returns an error or ''."""
    if not device.verify_token(token.strip().replace(" ", "")):
        actions.do_record_mfa_failure(user)
        if actions.do_record_failed_login(user.username, user):
            request.session.pop(PENDING_KEY, None)
            return "Too many failed attempts: this account is now locked."
        return "That code is not right. Codes change every 30 seconds; try the current one."
    if not device.confirmed:
        actions.do_confirm_totp_device(user, device)
    request.session.pop(PENDING_KEY, None)
    auth_login(request, user)
    otp_login(request, device)
    actions.do_record_login(user, mfa=True)
    return ""
