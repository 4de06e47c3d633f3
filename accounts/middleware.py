"""Session and sign-in guards, in order: idle log-off, login required, second factor
required, role required."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import JsonResponse
from django.shortcuts import redirect, render

from accounts.roles import requires_mfa, role_codes
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from recordroom import clock

LAST_SEEN_KEY = "recordroom_last_seen"

# Paths that answer without a signed-in session: public assets, the health check, and
# the APIs, which refuse on their own (401) rather than redirect to the log-in page.
OPEN_PREFIXES = ("/static/", "/api/", "/fhir/", "/favicon.ico", "/healthz")
# Paths with no session at all (bearer tokens, assets): the session guards skip them.
# The workflow API under /api/ uses the session, so idle log-off and the role check
# apply to it as to the pages.
SESSIONLESS_PREFIXES = ("/static/", "/fhir/", "/favicon.ico", "/healthz")


# The FHIR base URL itself (transaction and batch bundles are posted to it).
FHIR_BASE = "/fhir"


def _is_open(path: str) -> bool:
    return path == FHIR_BASE or path.startswith(OPEN_PREFIXES)


def _is_sessionless(path: str) -> bool:
    return path == FHIR_BASE or path.startswith(SESSIONLESS_PREFIXES)


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


class SessionGuardMiddleware:
    """Automatic log-off after inactivity (164.312(a)(2)(iii)), and an audit row for a
    session cookie that names no live session (expired, or tampered with)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _is_sessionless(request.path):
            return self.get_response(request)
        now = clock.now().timestamp()
        user = request.user
        if user.is_authenticated:
            last_seen = request.session.get(LAST_SEEN_KEY, now)
            if now - last_seen > settings.SESSION_IDLE_MINUTES * 60:
                from accounts.actions import do_record_logout

                do_record_logout(user, reason="automatic log-off after inactivity")
                logout(request)
                if _is_api(request.path):
                    return self.get_response(request)  # now anonymous: the API answers 401
                messages.info(
                    request,
                    f"You were signed out after {settings.SESSION_IDLE_MINUTES} minutes "
                    "without activity.",
                )
                return redirect(settings.LOGIN_URL)
            request.session[LAST_SEEN_KEY] = now
        elif request.COOKIES.get(settings.SESSION_COOKIE_NAME) and (
            request.session.session_key is None
        ):
            record_event(
                None,
                Action.SECURITY,
                outcome=Outcome.DENIED,
                purpose=Purpose.SECURITY,
                reason="session cookie names no live session (expired or altered)",
            )
        return self.get_response(request)


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Deny by default; the API and FHIR endpoints authenticate with their own schemes."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if _is_open(request.path):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class MfaRequiredMiddleware:
    """A signed-in user whose role requires a second factor, or who enrolled one, must
    have passed it in this session; otherwise the session is ended."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and not _is_sessionless(request.path)
            and not user.is_verified()
            and (requires_mfa(user) or _has_device(user))
        ):
            record_event(
                user,
                Action.SECURITY,
                outcome=Outcome.DENIED,
                purpose=Purpose.SECURITY,
                reason="session without the required second factor",
            )
            logout(request)
            if _is_api(request.path):
                return self.get_response(request)  # now anonymous: the API answers 401
            return redirect(settings.LOGIN_URL)
        return self.get_response(request)


def _has_device(user) -> bool:
    from accounts.auth import has_confirmed_device

    cached = getattr(user, "_has_totp", None)
    if cached is None:
        cached = user._has_totp = has_confirmed_device(user)
    return cached


class RoleRequiredMiddleware:
    """A signed-in account with no role, or a system account, sees no page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and not _is_sessionless(request.path)
            and (user.is_system_account or not role_codes(user))
            and request.path != "/accounts/logout/"
        ):
            record_event(
                user,
                Action.VIEW,
                outcome=Outcome.DENIED,
                purpose=Purpose.SECURITY,
                reason="account has no role" if not user.is_system_account else "system account",
            )
            if _is_api(request.path):
                return JsonResponse({"detail": "This account has no role here."}, status=403)
            return render(request, "accounts/no_role.html", status=403)
        return self.get_response(request)
