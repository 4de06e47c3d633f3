"""Sudo mode: sensitive actions (user administration, exports, and later release,
break-the-glass and merge) ask for the password again unless it was confirmed in the
last few minutes (RECORDROOM_SUDO_MINUTES)."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme

from recordroom import clock

SUDO_KEY = "recordroom_sudo_until"


def in_sudo_mode(request) -> bool:
    return request.session.get(SUDO_KEY, 0) > clock.now().timestamp()


def grant_sudo(request) -> None:
    request.session[SUDO_KEY] = clock.now().timestamp() + settings.SUDO_MINUTES * 60


def sudo_required(permission: str, *, action: str = "view"):
    """Refuse (audited) users without ``permission``; ask the others for their password
    unless they confirmed it lately."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            from accounts.access import require_permission

            require_permission(
                request.user,
                permission,
                action=action,
                object_type="page",
                object_id=request.path[:64],
            )
            if in_sudo_mode(request):
                return view(request, *args, **kwargs)
            return redirect(
                f"/accounts/confirm-password/?{urlencode({'next': _return_to(request)})}"
            )

        return wrapper

    return decorator


def _return_to(request) -> str:
    if request.method == "GET":
        return request.get_full_path()
    # A form posted without sudo: come back to the page that showed the form.
    referer = request.headers.get("Referer", "")
    if referer and url_has_allowed_host_and_scheme(referer, {request.get_host()}):
        return referer
    return "/"
