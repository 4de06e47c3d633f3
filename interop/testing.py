"""Test helpers for the FHIR API: bearer tokens made directly, without the OAuth dance
(tests of the OAuth endpoints themselves are in tests/test_fhir_oauth.py)."""

from __future__ import annotations

import secrets

from interop.auth import token_hash
from interop.models import AccessToken, ApiClient, ClientKind
from recordroom import clock


def make_client(
    user=None,
    *,
    kind: str | None = None,
    scopes: str = "",
    name: str = "Test client",
    redirect_uris=None,
    secret: str = "",
    active: bool = True,
) -> ApiClient:
    """An API client stored directly. A system client acts as ``user`` (a system
    account); a user-facing app has the redirect URI https://app.example.invalid/cb."""
    from django.contrib.auth.hashers import make_password

    if kind is None:
        kind = (
            ClientKind.SYSTEM
            if user is not None and getattr(user, "is_system_account", False)
            else ClientKind.USER_APP
        )
    if not scopes:
        scopes = (
            "system/*.read system/*.write"
            if kind == ClientKind.SYSTEM
            else "user/*.read user/*.write patient/*.read patient/*.write launch/patient openid "
            "fhirUser"
        )
    return ApiClient.objects.create(
        client_id="test-" + secrets.token_hex(8),
        secret_hash=make_password(secret) if secret else "",
        name=name,
        kind=kind,
        account=user if kind == ClientKind.SYSTEM else None,
        redirect_uris=list(redirect_uris or ["https://app.example.invalid/cb"])
        if kind == ClientKind.USER_APP
        else [],
        allowed_scopes=scopes,
        active=active,
        created_at=clock.now(),
    )


def bearer_token(
    user, scope: str = "user/*.read", *, patient=None, client=None, seconds: int = 3600
) -> str:
    """A live bearer token for ``user`` with ``scope`` (and the patient in context for
    patient/ scopes). Creates a client for the user when none is given: a system client
    for a system account, a user-facing app otherwise."""
    import datetime as dt

    if client is None:
        client = make_client(user)
    token = secrets.token_urlsafe(32)
    now = clock.now()
    AccessToken.objects.create(
        token_sha256=token_hash(token),
        client=client,
        user=user,
        scope=scope,
        patient=patient,
        created_at=now,
        expires_at=now + dt.timedelta(seconds=seconds),
    )
    return token


def auth_header(token: str) -> dict[str, str]:
    """Keyword arguments for Django's test client: ``client.get(url, **auth_header(t))``."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
