"""Project-wide middleware: the request context that the audit trail reads, and the
security headers every response carries."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from django.conf import settings

from recordroom.logging_filters import redact_path


@dataclass(frozen=True)
class RequestContext:
    client_ip: str | None
    user_agent: str
    path: str


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "recordroom_request", default=None
)


def current_request_context() -> RequestContext | None:
    """Where the current action comes from (client address, browser, path), or None
    outside a web request (a command, a task)."""
    return _current.get()


def client_ip(request) -> str | None:
    # Behind a proxy that sets X-Forwarded-For, set RECORDROOM_TRUST_X_FORWARDED_FOR;
    # otherwise the header is client-controlled and is ignored.
    if getattr(settings, "TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current.set(
            RequestContext(
                client_ip=client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
                path=redact_path(request.path)[:300],
            )
        )
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)


class SecurityHeadersMiddleware:
    """Content-Security-Policy on every page, and no caching of anything a signed-in
    user sees (pages may carry patient data)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        if not request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
