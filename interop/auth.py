"""Who is calling the FHIR API: OAuth 2.0 bearer tokens (RFC 6750) with SMART scopes.

``authenticate(request)`` turns ``Authorization: Bearer <token>`` into a
:class:`FhirPrincipal`: the user the token acts for (the system account of a system
client, or the person who authorised a user-facing app), the client, the token's scopes
and, for ``patient/`` scopes, the patient in context. A token never sees more than its
user may see in the web pages: the scopes narrow what the API answers, and every read
still goes through the domain's access functions with ``principal.user``.

Refusals are audited before they are raised, with the client id but never the token.
A missing token answers 401 with ``WWW-Authenticate: Bearer realm="RecordRoom"``; an
unknown, expired or revoked one adds ``error="invalid_token"`` (RFC 6750 section 3.1);
a scope that does not cover the interaction answers 403 ``insufficient_scope``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from interop.outcome import FORBIDDEN, LOGIN, FhirError, Issue
from interop.scopes import READ, WRITE, SmartScope, grants, parse_scopes_lenient
from recordroom import clock

REALM = "RecordRoom"


def token_hash(token: str) -> str:
    """How a bearer token (or an authorization code) is stored: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class FhirAuthError(FhirError):
    """A FHIR refusal that carries HTTP headers (``WWW-Authenticate``). Views turn it
    into an OperationOutcome response with ``status`` and these headers."""

    def __init__(self, status: int, issues, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, issues)
        self.headers: dict[str, str] = dict(headers or {})


def _challenge(error: str = "", description: str = "", scope: str = "") -> str:
    parts = [f'Bearer realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return ", ".join(parts)


@dataclass
class FhirPrincipal:
    """The caller of one FHIR request."""

    user: object
    client: object
    scopes: list[SmartScope]
    patient: object | None = None
    token: object | None = None
    words: list[str] = field(default_factory=list)

    @property
    def client_id(self) -> str:
        return getattr(self.client, "client_id", "")

    @property
    def scope_text(self) -> str:
        return " ".join(s.text for s in self.scopes)

    @property
    def contexts(self) -> set[str]:
        return {s.context for s in self.scopes}

    def may(self, resource_type: str, mode: str = READ) -> bool:
        """Whether the token's scopes allow ``mode`` ("read" or "write") on the type.
        The user's own permissions are checked again by the access functions."""
        if mode not in (READ, WRITE):
            raise ValueError(f"unknown mode {mode!r}")
        return grants(self.scopes, resource_type, mode)

    def patient_compartment(self, resource_type: str, mode: str = READ):
        """The patient the answer must stay within, when only ``patient/`` scopes
        grant this access; None when a ``user/`` or ``system/`` scope grants it."""
        wider = [s for s in self.scopes if s.context != "patient"]
        if grants(wider, resource_type, mode):
            return None
        return self.patient

    def same_principal(self, *, user_id, client_id: str) -> bool:
        """Whether a resource made for (user, client) belongs to this caller: bulk
        export files are fetched only by the token's own client and user."""
        return self.user.pk == user_id and self.client_id == client_id

    def require(self, resource_type: str, mode: str = READ) -> None:
        """Raise 403 ``insufficient_scope`` (audited) unless the scopes allow it."""
        if self.may(resource_type, mode):
            return
        record_event(
            self.user,
            Action.UPDATE if mode == WRITE else Action.VIEW,
            outcome=Outcome.DENIED,
            purpose=Purpose.SECURITY,
            object_type="fhir",
            object_id=resource_type[:64],
            reason=f"token scope does not allow {mode} of {resource_type}",
            detail={"client_id": self.client_id, "scope": self.scope_text[:500]},
        )
        raise FhirAuthError(
            403,
            Issue(
                "error",
                FORBIDDEN,
                f"insufficient_scope: the token's scopes do not allow {mode} of {resource_type}",
            ),
            headers={
                "WWW-Authenticate": _challenge(
                    "insufficient_scope", scope=_needed(resource_type, mode)
                )
            },
        )


def _needed(resource_type: str, mode: str) -> str:
    suffix = "rs" if mode == READ else "cud"
    return f"user/{resource_type}.{suffix} system/{resource_type}.{suffix}"


def _refuse(reason: str, *, user=None, client=None, error: str = "invalid_token") -> FhirAuthError:
    record_event(
        user,
        Action.LOGIN_FAILED,
        outcome=Outcome.DENIED,
        purpose=Purpose.SECURITY,
        object_type="fhir_token",
        reason=reason,
        detail={"client_id": client.client_id} if client is not None else {},
    )
    return FhirAuthError(
        401,
        Issue("error", LOGIN, reason),
        headers={"WWW-Authenticate": _challenge(error, reason if error else "")},
    )


def bearer_from(request) -> str:
    """The token of an ``Authorization: Bearer`` header, or ""."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return ""
    return token.strip()


def lookup_token(token: str):
    """The AccessToken row for a presented token (any state), or None."""
    from interop.models import AccessToken

    if not token or len(token) > 512:
        return None
    return (
        AccessToken.objects.select_related("client", "user", "patient")
        .filter(token_sha256=token_hash(token))
        .first()
    )


def authenticate(request) -> FhirPrincipal:
    """The caller of a FHIR request, or :class:`FhirAuthError` 401 (audited)."""
    cached = getattr(request, "fhir_principal", None)
    if cached is not None:
        return cached
    presented = bearer_from(request)
    if not presented:
        raise _refuse("no bearer token", error="")
    row = lookup_token(presented)
    if row is None:
        raise _refuse("unknown bearer token")
    client, user = row.client, row.user
    now = clock.now()
    if row.revoked_at is not None:
        raise _refuse("bearer token revoked", user=user, client=client)
    if row.expires_at <= now:
        raise _refuse("bearer token expired", user=user, client=client)
    if not client.active:
        raise _refuse("API client revoked", user=user, client=client)
    if not user.is_active:
        raise _refuse("account disabled", user=user, client=client)
    if client.kind == "system" and client.account_id != user.pk:
        raise _refuse("token does not act for its client's account", user=user, client=client)
    principal = FhirPrincipal(
        user=user,
        client=client,
        scopes=parse_scopes_lenient(row.scope),
        patient=row.patient,
        token=row,
        words=[w for w in row.scope.split() if "/" not in w or w == "launch/patient"],
    )
    request.fhir_principal = principal
    return principal


def require(request_or_principal, resource_type: str, mode: str = READ) -> FhirPrincipal:
    """Authenticate (if given a request) and check the scope for one interaction."""
    principal = (
        request_or_principal
        if isinstance(request_or_principal, FhirPrincipal)
        else authenticate(request_or_principal)
    )
    principal.require(resource_type, mode)
    return principal
