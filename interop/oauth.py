"""OAuth 2.0 for the FHIR API (RFC 6749, PKCE RFC 7636, SMART App Launch 2.0).

Two grants:

* ``client_credentials`` for system clients (SMART Backend Services): the client
  authenticates with a JWT assertion signed by one of its registered keys
  (``private_key_jwt``, RS384/ES384, :func:`authenticate_assertion`), or with its secret
  (HTTP Basic or ``client_secret_post``). The token acts as the client's system account.
* ``authorization_code`` for user-facing apps: a signed-in RecordRoom user approves the
  app on a consent page; the code is single-use, short-lived, bound to one registered
  redirect URI and to a PKCE S256 challenge (required of every app, confidential or
  public, as SMART 2.0 asks).

Tokens and codes are 32 random bytes, shown once and stored only as SHA-256. Scopes a
token receives are the intersection of what was asked, what the client is registered
for and what the user's roles allow; ``patient/`` scopes need a patient chosen at
consent (staff pick one they may open; patient accounts are not linked to their record
yet, so they are not offered ``patient/`` scopes).

Every token issued and every refusal is audited; no token, code, secret or verifier ever
reaches the audit trail.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.db import IntegrityError, transaction

from accounts.access import has_permission
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from interop.auth import token_hash
from interop.models import AccessToken, ApiClient, AuthorizationCode, ClientKind
from interop.scopes import (
    LAUNCH_PATIENT,
    ScopeSyntaxError,
    SmartScope,
    parse_scopes,
    parse_scopes_lenient,
    scope_string,
    within,
)
from recordroom import clock

CODE_SECONDS_MIN, CODE_SECONDS_MAX = 60, 600
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


def token_seconds() -> int:
    return int(getattr(settings, "FHIR_TOKEN_SECONDS", 3600))


def code_seconds() -> int:
    seconds = int(getattr(settings, "FHIR_AUTHORIZATION_CODE_SECONDS", 300))
    return max(CODE_SECONDS_MIN, min(CODE_SECONDS_MAX, seconds))


def new_secret() -> str:
    """A token, code or client secret: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


class OAuthError(Exception):
    """An RFC 6749 error answer: ``error`` code, a description naming what is wrong, the
    HTTP status (400, or 401 for ``invalid_client``)."""

    def __init__(self, error: str, description: str, *, status: int = 400, headers=None):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})

    def as_dict(self) -> dict:
        return {"error": self.error, "error_description": self.description}


def _deny(error: OAuthError, *, user=None, client=None, grant: str = "") -> OAuthError:
    record_event(
        user,
        Action.LOGIN_FAILED,
        outcome=Outcome.DENIED,
        purpose=Purpose.SECURITY,
        object_type="api_client",
        object_id=str(client.public_id) if client is not None else "",
        reason=f"OAuth {error.error}: {error.description}"[:500],
        detail={
            **({"client_id": client.client_id} if client is not None else {}),
            **({"grant_type": grant} if grant else {}),
        },
    )
    return error


# --- tokens -------------------------------------------------------------------------------


@dataclass
class IssuedToken:
    token: str
    row: AccessToken
    scope: str
    expires_in: int
    patient_id: str = ""

    def as_response(self) -> dict:
        body = {
            "access_token": self.token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.patient_id:
            body["patient"] = self.patient_id
        return body


def issue_access_token(
    *, client: ApiClient, user, scope: str, patient=None, grant: str = "", now=None
) -> IssuedToken:
    """Store a new token (its hash) for (client, user) and audit its issue."""
    now = now or clock.now()
    seconds = token_seconds()
    token = new_secret()
    with transaction.atomic():
        row = AccessToken.objects.create(
            token_sha256=token_hash(token),
            client=client,
            user=user,
            scope=scope,
            patient=patient,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=seconds),
        )
        record_event(
            user,
            Action.LOGIN,
            purpose=Purpose.SECURITY,
            patient_id=patient.public_id if patient is not None else None,
            object_type="api_client",
            object_id=str(client.public_id),
            reason="FHIR API access token issued",
            detail={"client_id": client.client_id, "scope": scope[:500], "grant_type": grant},
        )
    return IssuedToken(
        token, row, scope, seconds, str(patient.public_id) if patient is not None else ""
    )


# --- client authentication ------------------------------------------------------------


@dataclass
class ClientCredentials:
    client_id: str = ""
    secret: str = ""
    via_basic: bool = False


def credentials_from(request) -> ClientCredentials:
    """client_id and secret from HTTP Basic (RFC 6749 2.3.1) or the form body."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        from urllib.parse import unquote

        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError(
                "invalid_client",
                "the Authorization header is not valid HTTP Basic",
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="RecordRoom"'},
            ) from None
        client_id, _, secret = decoded.partition(":")
        return ClientCredentials(unquote(client_id), unquote(secret), True)
    return ClientCredentials(
        request.POST.get("client_id", ""), request.POST.get("client_secret", ""), False
    )


def authenticate_client(credentials: ClientCredentials, *, grant: str) -> ApiClient:
    """The client named by these credentials; a confidential client must present its
    secret, a public one must not claim one. Refusals are ``invalid_client`` (401)."""
    headers = {"WWW-Authenticate": 'Basic realm="RecordRoom"'} if credentials.via_basic else {}

    def fail(description: str, client=None) -> OAuthError:
        return _deny(
            OAuthError("invalid_client", description, status=401, headers=headers),
            user=client.account if client is not None and client.account_id else None,
            client=client,
            grant=grant,
        )

    if not credentials.client_id:
        raise fail("client_id is missing")
    client = (
        ApiClient.objects.select_related("account")
        .filter(client_id=credentials.client_id[:64])
        .first()
    )
    if client is None:
        raise fail("unknown client")
    if not client.active:
        raise fail("the client has been revoked", client)
    if client.secret_hash:
        if not credentials.secret or not check_password(credentials.secret, client.secret_hash):
            raise fail("wrong client secret", client)
    elif client.kind == ClientKind.SYSTEM:
        # A system client without a secret has registered keys: only its signed
        # assertion authenticates it (never its client_id alone).
        raise fail("this client authenticates with a signed client_assertion", client)
    elif credentials.secret:
        raise fail("this client is public and has no secret", client)
    return client


ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_MAX_SECONDS = 300  # SMART Backend Services: exp no more than five minutes ahead


def authenticate_assertion(request, *, grant: str) -> ApiClient:
    """The system client a SMART Backend Services assertion (RFC 7523, a JWT signed with
    one of the client's registered keys, RS384 or ES384) authenticates: ``iss`` and
    ``sub`` are its client_id, ``aud`` this token endpoint's URL, ``exp`` at most five
    minutes ahead, ``jti`` never seen before. Refusals are ``invalid_client`` (401),
    audited, naming what is wrong (never the assertion)."""
    import jwt

    from interop.clients import ASSERTION_ALGORITHMS
    from interop.models import UsedAssertion

    def fail(description: str, client=None) -> OAuthError:
        return _deny(
            OAuthError("invalid_client", description, status=401),
            user=client.account if client is not None and client.account_id else None,
            client=client,
            grant=grant,
        )

    if request.POST.get("client_assertion_type") != ASSERTION_TYPE:
        raise fail(f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = request.POST.get("client_assertion", "")
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise fail("client_assertion is not a JWT") from None
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise fail("the assertion has no iss (the client_id)")
    client = ApiClient.objects.select_related("account").filter(client_id=issuer[:64]).first()
    if client is None:
        raise fail("unknown client")
    if not client.active:
        raise fail("the client has been revoked", client)
    if client.kind != ClientKind.SYSTEM or not (client.jwks or {}).get("keys"):
        raise fail("the client has no registered public keys", client)
    form_id = request.POST.get("client_id")
    if form_id and form_id != client.client_id:
        raise fail("client_id and the assertion's iss differ", client)
    algorithm = header.get("alg")
    if algorithm not in ASSERTION_ALGORITHMS:
        raise fail(f"the assertion's alg must be one of {', '.join(ASSERTION_ALGORITHMS)}", client)
    kid = header.get("kid")
    key = next(
        (k for k in client.jwks["keys"] if isinstance(k, dict) and k.get("kid") == kid), None
    )
    if key is None:
        raise fail("the assertion's kid names no registered key", client)
    audience = request.build_absolute_uri(request.path)
    try:
        verified = jwt.decode(
            assertion,
            jwt.PyJWK(key, algorithm=algorithm).key,
            algorithms=[algorithm],
            audience=audience,
            issuer=client.client_id,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            leeway=30,
        )
    except jwt.ExpiredSignatureError:
        raise fail("the assertion has expired", client) from None
    except jwt.InvalidAudienceError:
        raise fail(f"the assertion's aud must be {audience}", client) from None
    except jwt.MissingRequiredClaimError as error:
        raise fail(f"the assertion has no {error.claim}", client) from None
    except (jwt.PyJWTError, ValueError, TypeError):
        raise fail("the assertion's signature does not verify", client) from None
    if verified.get("sub") != client.client_id:
        raise fail("the assertion's sub must be the client_id", client)
    now = clock.now()
    expires = dt.datetime.fromtimestamp(int(verified["exp"]), tz=dt.UTC)
    if expires > now + dt.timedelta(seconds=ASSERTION_MAX_SECONDS + 30):
        raise fail("the assertion's exp is more than five minutes ahead", client)
    jti = str(verified["jti"])
    if not jti or len(jti) > 255:
        raise fail("the assertion's jti is empty or longer than 255 characters", client)
    UsedAssertion.objects.filter(expires_at__lt=now - dt.timedelta(minutes=5)).delete()
    try:
        with transaction.atomic():
            UsedAssertion.objects.create(client=client, jti=jti, expires_at=expires)
    except IntegrityError:
        raise fail("the assertion was already used (jti seen before)", client) from None
    return client


# --- scopes ---------------------------------------------------------------------------------


def _parse_requested(text: str) -> tuple[list[SmartScope], list[str]]:
    try:
        return parse_scopes(text)
    except ScopeSyntaxError as error:
        raise OAuthError("invalid_scope", str(error)) from None


def system_scopes(client: ApiClient, requested: str) -> str:
    """The scope of a client-credentials token: what was asked (all of the client's
    scopes when nothing was), every word within the client's registration."""
    allowed = parse_scopes_lenient(client.allowed_scopes)
    if not requested.strip():
        return scope_string(allowed)
    asked, words = _parse_requested(requested)
    if words:
        raise OAuthError("invalid_scope", f"scope {words[0]!r} is not for system clients")
    granted = []
    for scope in asked:
        if scope.context != "system":
            raise OAuthError(
                "invalid_scope", f"scope {scope.text!r}: a system client asks for system/ scopes"
            )
        if within(scope, allowed) != scope:
            raise OAuthError(
                "invalid_scope", f"scope {scope.text!r} is outside the client's registration"
            )
        granted.append(scope)
    if not granted:
        raise OAuthError("invalid_scope", "no resource scope asked")
    return scope_string(granted)


def _user_may(user, *, read: bool, write: bool) -> tuple[bool, bool]:
    from patients.permissions import PatientsPermission

    may_read = read and has_permission(user, PatientsPermission.READ_DEMOGRAPHICS)
    may_write = write and any(has_permission(user, p) for p in _write_permissions())
    return may_read, may_write


def _write_permissions() -> list[str]:
    from clinical.permissions import ClinicalPermission
    from documents.permissions import DocumentsPermission
    from encounters.permissions import EncountersPermission
    from patients.permissions import PatientsPermission

    return [
        PatientsPermission.REGISTER,
        PatientsPermission.UPDATE_DEMOGRAPHICS,
        EncountersPermission.MANAGE,
        DocumentsPermission.FILE,
        ClinicalPermission.RECORD,
    ]


def may_pick_patient(user) -> bool:
    """Staff who read clinical records may launch an app on one patient."""
    from patients.permissions import PatientsPermission

    return has_permission(user, PatientsPermission.READ_CLINICAL)


@dataclass
class ConsentScopes:
    """What a user-facing app may receive: the scopes granted, and those dropped with
    the reason (shown on the consent page)."""

    granted: list[SmartScope] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def needs_patient(self) -> bool:
        return any(s.context == "patient" for s in self.granted)

    def text(self) -> str:
        return scope_string(self.granted, self.words)


def user_app_scopes(client: ApiClient, user, requested: str) -> ConsentScopes:
    """Narrow the scopes an app asked for to its registration and the user's roles."""
    asked, words = _parse_requested(requested)
    allowed = parse_scopes_lenient(client.allowed_scopes)
    allowed_words = set(client.allowed_scopes.split())
    result = ConsentScopes()
    for word in words:
        if word == LAUNCH_PATIENT and not may_pick_patient(user):
            result.dropped.append((word, "your account cannot choose a patient"))
        elif word in allowed_words or word in ("openid", "fhirUser"):
            result.words.append(word)
        else:
            result.dropped.append((word, "not registered for this app"))
    for scope in asked:
        if scope.context == "system":
            result.dropped.append((scope.text, "system scopes are for system clients"))
            continue
        inside = within(scope, allowed)
        if inside is None:
            result.dropped.append((scope.text, "not registered for this app"))
            continue
        if scope.context == "patient" and not may_pick_patient(user):
            result.dropped.append(
                (
                    scope.text,
                    "patient scopes need a chosen patient; your account is not linked "
                    "to a patient record",
                )
            )
            continue
        read, write = _user_may(user, read=inside.read, write=inside.write)
        kept = inside.narrowed(read=read, write=write)
        if kept is None:
            result.dropped.append((scope.text, "your role does not allow it"))
            continue
        if kept != scope:
            result.dropped.append((scope.text, f"narrowed to {kept.text}"))
        result.granted.append(kept)
    if result.needs_patient and LAUNCH_PATIENT not in result.words:
        result.words.append(LAUNCH_PATIENT)
    return result


# --- authorization requests -------------------------------------------------------------


@dataclass
class AuthorizationRequest:
    """A validated GET/POST /oauth/authorize request."""

    client: ApiClient
    redirect_uri: str
    scope: str
    state: str
    code_challenge: str


def validate_redirect(params) -> tuple[ApiClient, str]:
    """The client and redirect URI of an authorization request. Errors here are shown
    to the user, never sent to an unverified redirect URI (RFC 6749 4.1.2.1)."""
    client_id = params.get("client_id", "")
    client = ApiClient.objects.filter(client_id=client_id[:64]).first() if client_id else None
    if client is None:
        raise OAuthError("invalid_client", "unknown client_id")
    if not client.active:
        raise OAuthError("invalid_client", "the client has been revoked")
    if client.kind != ClientKind.USER_APP:
        raise OAuthError("unauthorized_client", "a system client cannot ask users to sign in")
    registered = list(client.redirect_uris or [])
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        if len(registered) != 1:
            raise OAuthError("invalid_request", "redirect_uri is missing")
        redirect_uri = registered[0]
    if redirect_uri not in registered:
        raise OAuthError("invalid_request", "redirect_uri is not registered for this client")
    return client, redirect_uri


def validate_authorization(
    params, client: ApiClient, redirect_uri: str, *, fhir_base: str = ""
) -> AuthorizationRequest:
    """The rest of an authorization request; errors go back to the app's redirect URI.
    ``aud``, when sent (SMART requires it), must name this server's FHIR base URL, so a
    token meant for another server is never asked for here."""
    aud = params.get("aud", "")
    if aud and fhir_base and aud.rstrip("/") != fhir_base.rstrip("/"):
        raise OAuthError("invalid_request", "aud is not this server's FHIR base URL")
    if params.get("response_type", "") != "code":
        raise OAuthError("unsupported_response_type", "response_type must be code")
    challenge = params.get("code_challenge", "")
    method = params.get("code_challenge_method", "")
    if not challenge:
        raise OAuthError("invalid_request", "code_challenge is required (PKCE)")
    if method != "S256":
        raise OAuthError("invalid_request", "code_challenge_method must be S256")
    if not _CHALLENGE.match(challenge):
        raise OAuthError("invalid_request", "code_challenge is not a base64url SHA-256")
    scope = params.get("scope", "")
    if not scope.strip():
        raise OAuthError("invalid_scope", "scope is missing")
    _parse_requested(scope)
    state = params.get("state", "")
    if len(state) > 500:
        raise OAuthError("invalid_request", "state is too long (500 characters at most)")
    return AuthorizationRequest(client, redirect_uri, scope, state, challenge)


def find_patient_for_launch(user, mrn: str):
    """The patient a staff member picks on the consent page, by medical record number
    at one of their facilities, opened through the patient door (audited; restricted
    records need a relationship). Returns the patient or raises OAuthError."""
    from django.http import Http404

    from accounts.access import AccessDenied
    from patients.access import Scope, access_patient, facility_ids
    from patients.models import IdentifierKind, PatientIdentifier

    mrn = mrn.strip()
    if not mrn:
        raise OAuthError("invalid_request", "choose the patient (medical record number)")
    public_id = (
        PatientIdentifier.objects.filter(
            kind=IdentifierKind.MRN, value=mrn[:64], facility_id__in=facility_ids(user)
        )
        .values_list("patient__public_id", flat=True)
        .first()
    )
    refusal = OAuthError(
        "invalid_request", "no patient with that medical record number that you may open"
    )
    if public_id is None:
        # Audited without the typed number: it may be another facility's patient's.
        record_event(
            user,
            Action.VIEW,
            outcome=Outcome.DENIED,
            purpose=Purpose.TREATMENT,
            object_type="patient",
            reason="app launch: no patient with that MRN at the user's facilities",
        )
        raise refusal
    try:
        return access_patient(user, public_id, scope=Scope.CLINICAL)
    except (Http404, AccessDenied):
        raise refusal from None


def do_issue_code(request_: AuthorizationRequest, *, user, patient=None) -> tuple[str, str]:
    """Approve an authorization request: store a code for the consented scopes and
    return (code, scope). Raises OAuthError(invalid_scope) when nothing is left."""
    consent = user_app_scopes(request_.client, user, request_.scope)
    if not consent.granted:
        raise _deny(
            OAuthError("invalid_scope", "none of the scopes asked may be granted"),
            user=user,
            client=request_.client,
            grant="authorization_code",
        )
    if consent.needs_patient and patient is None:
        raise OAuthError("invalid_request", "choose the patient the app may see")
    if not consent.needs_patient:
        patient = None
    code = new_secret()
    now = clock.now()
    scope = consent.text()
    with transaction.atomic():
        AuthorizationCode.objects.create(
            code_sha256=token_hash(code),
            client=request_.client,
            user=user,
            scope=scope,
            redirect_uri=request_.redirect_uri,
            code_challenge=request_.code_challenge,
            patient=patient,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=code_seconds()),
        )
        record_event(
            user,
            Action.PERMISSION_CHANGE,
            purpose=Purpose.SECURITY,
            patient_id=patient.public_id if patient is not None else None,
            object_type="api_client",
            object_id=str(request_.client.public_id),
            reason="user authorised an app (authorization code issued)",
            detail={"client_id": request_.client.client_id, "scope": scope[:500]},
        )
    return code, scope


def record_consent_refused(request_: AuthorizationRequest, *, user) -> None:
    record_event(
        user,
        Action.PERMISSION_CHANGE,
        outcome=Outcome.DENIED,
        purpose=Purpose.SECURITY,
        object_type="api_client",
        object_id=str(request_.client.public_id),
        reason="user declined to authorise the app",
        detail={"client_id": request_.client.client_id},
    )


def pkce_matches(verifier: str, challenge: str) -> bool:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(computed, challenge)


# --- the token endpoint ---------------------------------------------------------------------


def token_for_client_credentials(request) -> IssuedToken:
    grant = "client_credentials"
    if request.POST.get("client_assertion") or request.POST.get("client_assertion_type"):
        client = authenticate_assertion(request, grant=grant)
    else:
        client = authenticate_client(credentials_from(request), grant=grant)
    account = client.account
    if client.kind != ClientKind.SYSTEM or account is None:
        raise _deny(
            OAuthError("unauthorized_client", "only system clients may use client_credentials"),
            client=client,
            grant=grant,
        )
    if not account.is_active or not account.is_system_account:
        raise _deny(
            OAuthError("invalid_grant", "the client's system account is disabled"),
            user=account,
            client=client,
            grant=grant,
        )
    try:
        scope = system_scopes(client, request.POST.get("scope", ""))
    except OAuthError as error:
        raise _deny(error, user=account, client=client, grant=grant) from None
    return issue_access_token(client=client, user=account, scope=scope, grant=grant)


def token_for_authorization_code(request) -> IssuedToken:
    grant = "authorization_code"
    client = authenticate_client(credentials_from(request), grant=grant)

    def fail(description: str, user=None, error: str = "invalid_grant") -> OAuthError:
        return _deny(OAuthError(error, description), user=user, client=client, grant=grant)

    if client.kind != ClientKind.USER_APP:
        raise fail("only user-facing apps may use authorization_code", error="unauthorized_client")
    code = request.POST.get("code", "")
    if not code:
        raise fail("code is missing", error="invalid_request")
    verifier = request.POST.get("code_verifier", "")
    redirect_uri = request.POST.get("redirect_uri", "")
    now = clock.now()
    row = (
        AuthorizationCode.objects.select_related("user", "patient")
        .filter(code_sha256=token_hash(code[:512]), client=client)
        .first()
    )
    if row is None:
        raise fail("unknown authorization code")
    user = row.user
    if row.used_at is not None:
        # A code presented twice may have been stolen: revoke what it gave (RFC 6749 4.1.2).
        AccessToken.objects.filter(
            client=client, user=user, created_at=row.used_at, revoked_at__isnull=True
        ).update(revoked_at=now)
        raise fail("the authorization code was already used", user)
    if row.expires_at <= now:
        raise fail("the authorization code has expired", user)
    if redirect_uri != row.redirect_uri:
        raise fail("redirect_uri differs from the one in the authorization request", user)
    if not verifier:
        raise fail("code_verifier is missing (PKCE)", user, error="invalid_request")
    if not _VERIFIER.match(verifier) or not pkce_matches(verifier, row.code_challenge):
        raise fail("code_verifier does not match the code_challenge", user)
    if not user.is_active:
        raise fail("the account that authorised the app is disabled", user)
    # Claim the code atomically: of two racing requests only one gets a token.
    claimed = AuthorizationCode.objects.filter(pk=row.pk, used_at__isnull=True).update(used_at=now)
    if claimed != 1:
        raise fail("the authorization code was already used", user)
    return issue_access_token(
        client=client, user=user, scope=row.scope, patient=row.patient, grant=grant, now=now
    )


GRANTS = {
    "client_credentials": token_for_client_credentials,
    "authorization_code": token_for_authorization_code,
}


def token_endpoint(request) -> IssuedToken:
    grant = request.POST.get("grant_type", "")
    handler = GRANTS.get(grant)
    if handler is None:
        raise _deny(
            OAuthError(
                "unsupported_grant_type" if grant else "invalid_request",
                f"grant_type {grant!r} is not supported (client_credentials, authorization_code)"
                if grant
                else "grant_type is missing",
            ),
            grant=grant[:40],
        )
    return handler(request)
