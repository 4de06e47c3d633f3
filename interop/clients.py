"""Registering and revoking the OAuth clients of the FHIR API.

A *system* client (SMART Backend Services) acts as one system account and gets tokens
with ``client_credentials``; it authenticates with a secret, or — registered with its
public keys (a JWKS) — with an assertion it signs (RS384/ES384), and then has no secret. A *user-facing app* sends people
through the consent page and gets tokens with ``authorization_code`` + PKCE; it is
confidential (has a secret) or public (runs in a browser or on a phone and cannot keep
one). The secret is shown once and stored as a password hash. Revoking a client
revokes every token it holds; nothing is deleted, so the audit trail keeps its meaning.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404

from accounts.access import require_permission
from audit.actions import record_event
from audit.models import Action, Purpose
from interop.models import AccessToken, ApiClient, ClientKind
from interop.oauth import new_secret
from interop.permissions import InteropPermission
from interop.scopes import NON_RESOURCE_SCOPES, ScopeSyntaxError, parse_scopes, scope_string
from recordroom import clock

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


@dataclass
class ClientData:
    name: str
    kind: str
    scopes: str
    account: str = ""  # username of the system account (system clients)
    redirect_uris: list[str] = field(default_factory=list)
    public: bool = False  # a user-facing app without a secret
    # A system client's public keys (a JWKS document): it then authenticates with signed
    # assertions (SMART Backend Services) and has no secret.
    jwks: dict | None = None


ASSERTION_ALGORITHMS = ("RS384", "ES384")  # what SMART Backend Services requires
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")


def jwks_problems(jwks) -> list[str]:
    """What is wrong with a JWKS document of public keys (empty list: usable)."""
    import jwt

    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        return ['A JWKS is a JSON object {"keys": [...]} with at least one key.']
    problems = []
    kids = set()
    for n, key in enumerate(jwks["keys"], start=1):
        if not isinstance(key, dict):
            problems.append(f"Key {n} is not a JSON object.")
            continue
        kid = key.get("kid")
        if not isinstance(kid, str) or not kid:
            problems.append(f"Key {n} has no kid (the assertion names its key by kid).")
        elif kid in kids:
            problems.append(f"Two keys have the kid {kid[:40]!r}.")
        kids.add(kid)
        if any(member in key for member in _PRIVATE_MEMBERS):
            problems.append(f"Key {n} holds private key material: register the public key only.")
            continue
        if key.get("kty") not in ("RSA", "EC"):
            problems.append(f"Key {n}: kty must be RSA or EC.")
            continue
        alg = key.get("alg")
        if alg is not None and alg not in ASSERTION_ALGORITHMS:
            problems.append(f"Key {n}: alg {str(alg)[:10]} is not RS384 or ES384.")
            continue
        try:
            jwt.PyJWK(key, algorithm=alg or ("RS384" if key["kty"] == "RSA" else "ES384"))
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as error:
            problems.append(f"Key {n} is not a usable public key ({str(error)[:80]}).")
    return problems


def _require_manage(acting_user, *, action=Action.VIEW, object_id="") -> None:
    if acting_user is None:  # the command line: the operator has shell access
        return
    require_permission(
        acting_user,
        InteropPermission.MANAGE_CLIENTS,
        action=action,
        purpose=Purpose.SECURITY,
        object_type="api_client",
        object_id=object_id,
    )


def list_clients(acting_user) -> list[ApiClient]:
    _require_manage(acting_user)
    return list(ApiClient.objects.select_related("account").order_by("-active", "name", "pk"))


def access_client(acting_user, public_id) -> ApiClient:
    _require_manage(acting_user, object_id=str(public_id)[:64])
    try:
        return ApiClient.objects.select_related("account", "created_by").get(public_id=public_id)
    except (ApiClient.DoesNotExist, ValueError, ValidationError):
        raise Http404("No such API client") from None


def active_token_count(client: ApiClient) -> int:
    return AccessToken.objects.filter(
        client=client, revoked_at__isnull=True, expires_at__gt=clock.now()
    ).count()


def system_account_choices() -> list[tuple[str, str]]:
    """Active system accounts a system client may act as (usernames)."""
    accounts = get_user_model().objects.filter(is_system_account=True, is_active=True)
    return [(u.username, u.username) for u in accounts.order_by("username")]


def _redirect_errors(uris: list[str]) -> list[str]:
    errors = []
    for uri in uris:
        parts = urlsplit(uri)
        if parts.fragment or "#" in uri:
            errors.append(f"{uri}: a redirect URI has no #fragment")
        elif parts.scheme == "https" and parts.netloc:
            continue
        elif parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
            continue  # a native app on this machine (RFC 8252 section 7.3)
        else:
            errors.append(f"{uri}: use https:// (http:// only on 127.0.0.1 or localhost)")
        if len(uri) > 500:
            errors.append(f"{uri[:40]}…: longer than 500 characters")
    return errors


def validate(data: ClientData):
    """The account and normalised scope string for ``data``, or ValidationError with
    one message per field."""
    errors: dict[str, list[str]] = {}
    name = data.name.strip()
    if not name:
        errors.setdefault("name", []).append("Give the client a name people will recognise.")
    elif len(name) > 120:
        errors.setdefault("name", []).append("The name is longer than 120 characters.")
    if data.kind not in ClientKind.values:
        errors.setdefault("kind", []).append("Choose system or user-facing app.")
    try:
        scopes, words = parse_scopes(data.scopes)
    except ScopeSyntaxError as error:
        errors.setdefault("scopes", []).append(f"{str(error).capitalize()}.")
        scopes, words = [], []
    account = None
    if data.kind == ClientKind.SYSTEM:
        account = (
            get_user_model()
            .objects.filter(username=data.account, is_system_account=True, is_active=True)
            .first()
        )
        if account is None:
            errors.setdefault("account", []).append("Choose an active system account.")
        wrong = [s.text for s in scopes if s.context != "system"] + list(words)
        if wrong:
            errors.setdefault("scopes", []).append(
                f"A system client has system/ scopes only (not {', '.join(wrong)})."
            )
        if data.redirect_uris:
            errors.setdefault("redirect_uris", []).append("A system client has no redirect URI.")
        if data.public:
            errors.setdefault("public", []).append(
                "A system client has a secret or registered public keys (JWKS)."
            )
        if data.jwks is not None:
            problems = jwks_problems(data.jwks)
            if problems:
                errors.setdefault("jwks", []).extend(problems)
    elif data.kind == ClientKind.USER_APP:
        if data.jwks:
            errors.setdefault("jwks", []).append("Public keys are for system clients.")
        wrong = [s.text for s in scopes if s.context == "system"]
        if wrong:
            errors.setdefault("scopes", []).append(
                f"A user-facing app has user/ and patient/ scopes (not {', '.join(wrong)})."
            )
        unknown = [w for w in words if w not in NON_RESOURCE_SCOPES]
        if unknown:
            errors.setdefault("scopes", []).append(f"Unknown scope {unknown[0]}.")
        if not data.redirect_uris:
            errors.setdefault("redirect_uris", []).append("Give at least one redirect URI.")
        errors_uris = _redirect_errors(data.redirect_uris)
        if errors_uris:
            errors.setdefault("redirect_uris", []).extend(errors_uris)
    if not scopes and "scopes" not in errors:
        errors.setdefault("scopes", []).append("Give at least one resource scope.")
    text = scope_string(scopes, words)
    if len(text) > 500:
        errors.setdefault("scopes", []).append("The scopes are longer than 500 characters.")
    if errors:
        raise ValidationError(errors)
    return account, text


def do_register_client(
    data: ClientData, *, acting_user, client_id: str = "", secret: str = ""
) -> tuple[ApiClient, str]:
    """Register a client; returns it and its secret ("" for a public app), which is
    shown once and never stored. ``client_id`` and ``secret`` are for the demo's
    published client only; otherwise both are random."""
    _require_manage(acting_user, action=Action.CREATE)
    account, scopes = validate(data)
    secret = "" if data.public or data.jwks else (secret or new_secret())
    with transaction.atomic():
        client = ApiClient.objects.create(
            client_id=client_id or "rr-" + secrets.token_hex(12),
            secret_hash=make_password(secret) if secret else "",
            name=data.name.strip(),
            kind=data.kind,
            account=account,
            redirect_uris=list(dict.fromkeys(data.redirect_uris)),
            allowed_scopes=scopes,
            jwks=data.jwks or {},
            active=True,
            created_at=clock.now(),
            created_by=acting_user,
        )
        record_event(
            acting_user,
            Action.CREATE,
            purpose=Purpose.SECURITY,
            object_type="api_client",
            object_id=str(client.public_id),
            reason="API client registered" + (" (command line)" if acting_user is None else ""),
            detail={
                "client_id": client.client_id,
                "kind": client.kind,
                "account": account.username if account else "",
                "scope": scopes,
                "public": not secret,
                "keys": [k.get("kid") for k in (data.jwks or {}).get("keys", [])],
            },
        )
    return client, secret


def do_set_jwks(client: ApiClient, jwks, *, acting_user, reason: str) -> ApiClient:
    """Replace a system client's public keys (key rotation); audited with the key ids."""
    _require_manage(acting_user, action=Action.UPDATE, object_id=str(client.public_id))
    if client.kind != ClientKind.SYSTEM:
        raise ValidationError({"jwks": ["Public keys are for system clients."]})
    problems = jwks_problems(jwks)
    if problems:
        raise ValidationError({"jwks": problems})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why the keys change."]})
    with transaction.atomic():
        ApiClient.objects.filter(pk=client.pk).update(jwks=jwks)
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=Purpose.SECURITY,
            object_type="api_client",
            object_id=str(client.public_id),
            reason=reason[:300],
            detail={
                "client_id": client.client_id,
                "keys": [k.get("kid") for k in jwks.get("keys", [])],
            },
        )
    client.jwks = jwks
    return client


def do_revoke_client(client: ApiClient, *, reason: str, acting_user) -> int:
    """Deactivate a client and revoke its live tokens; returns how many were revoked."""
    _require_manage(acting_user, action=Action.UPDATE, object_id=str(client.public_id))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why the client is revoked."]})
    if len(reason) > 300:
        raise ValidationError({"reason": ["The reason is longer than 300 characters."]})
    if not client.active:
        raise ValidationError({"reason": ["This client is already revoked."]})
    now = clock.now()
    with transaction.atomic():
        ApiClient.objects.filter(pk=client.pk).update(active=False)
        revoked = AccessToken.objects.filter(client=client, revoked_at__isnull=True).update(
            revoked_at=now
        )
        record_event(
            acting_user,
            Action.UPDATE,
            purpose=Purpose.SECURITY,
            object_type="api_client",
            object_id=str(client.public_id),
            reason=reason,
            detail={"client_id": client.client_id, "revoked": True, "tokens_revoked": revoked},
        )
    client.active = False
    return revoked


def find_client_for_command(client_id: str) -> ApiClient:
    client = ApiClient.objects.filter(client_id=client_id).first()
    if client is None:
        raise Http404("No such API client")
    return client
