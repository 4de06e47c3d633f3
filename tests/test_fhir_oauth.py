"""OAuth 2.0 for the FHIR API: client credentials, authorization code with PKCE, the
consent page, and every way a grant is refused (each refusal audited)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.contrib.auth.hashers import make_password

from audit.models import Action, Outcome
from interop.auth import token_hash
from interop.models import AccessToken, AuthorizationCode, ClientKind
from interop.testing import auth_header, make_client
from recordroom import clock
from recordroom.testing import register_patient, sign_in

pytestmark = pytest.mark.django_db

SECRET = "s3cret-for-tests-only-0123456789"  # noqa: S105 - test client
REDIRECT = "https://app.example.invalid/cb"


def basic(client_id: str, secret: str) -> dict:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {raw}"}


@pytest.fixture
def system_client(personas):
    return make_client(
        personas.integration, kind=ClientKind.SYSTEM, scopes="system/*.read", secret=SECRET
    )


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def authorize_params(app, challenge, **overrides):
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": "user/*.read openid fhirUser",
        "state": "xyz-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "aud": "http://testserver/fhir",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def get_code(client, user, app, challenge, **overrides):
    sign_in(client, user)
    params = authorize_params(app, challenge, **overrides)
    response = client.post("/oauth/authorize", {**params, "decision": "approve"})
    assert response.status_code == 302, response.content[:500]
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["state"] == ["xyz-state"]
    return query["code"][0]


def exchange(client, app, code, verifier, **overrides):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": app.client_id,
    }
    data.update(overrides)
    return client.post("/oauth/token", {k: v for k, v in data.items() if v is not None})


# --- client credentials ----------------------------------------------------------------


def test_client_credentials_with_http_basic(client, personas, system_client, audit_rows):
    response = client.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "scope": "system/*.read"},
        **basic(system_client.client_id, SECRET),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "system/*.read"
    assert response["Cache-Control"] == "no-store"
    row = AccessToken.objects.get()
    assert row.token_sha256 == token_hash(body["access_token"])
    assert body["access_token"] not in row.token_sha256
    assert row.user == personas.integration
    issued = audit_rows(action=Action.LOGIN, object_type="api_client")
    assert issued and body["access_token"] not in str(issued[0].detail)
    # The token works on the FHIR endpoints.
    smart = client.get(
        "/fhir/$export-poll-status/00000000-0000-0000-0000-000000000000",
        **auth_header(body["access_token"]),
    )
    assert smart.status_code == 404


def test_client_credentials_with_client_secret_post(client, system_client):
    response = client.post(
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_id": system_client.client_id,
            "client_secret": SECRET,
        },
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "system/*.read"


def test_token_lifetime_is_a_setting(client, system_client, settings):
    settings.FHIR_TOKEN_SECONDS = 600
    response = client.post(
        "/oauth/token",
        {"grant_type": "client_credentials"},
        **basic(system_client.client_id, SECRET),
    )
    assert response.json()["expires_in"] == 600


@pytest.mark.parametrize(
    ("data", "auth", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, ("nope", SECRET), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, ("CLIENT", "wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, None, 401, "invalid_client"),
        ({"grant_type": "password"}, ("CLIENT", SECRET), 400, "unsupported_grant_type"),
        ({}, ("CLIENT", SECRET), 400, "invalid_request"),
        (
            {"grant_type": "client_credentials", "scope": "system/*.write"},
            ("CLIENT", SECRET),
            400,
            "invalid_scope",
        ),
        (
            {"grant_type": "client_credentials", "scope": "user/*.read"},
            ("CLIENT", SECRET),
            400,
            "invalid_scope",
        ),
        (
            {"grant_type": "client_credentials", "scope": "system/*.banana"},
            ("CLIENT", SECRET),
            400,
            "invalid_scope",
        ),
    ],
)
def test_bad_token_requests_are_refused_and_audited(
    client, system_client, audit_rows, data, auth, status, error
):
    headers = {}
    if auth:
        client_id = system_client.client_id if auth[0] == "CLIENT" else auth[0]
        headers = basic(client_id, auth[1])
    response = client.post("/oauth/token", data, **headers)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    if status == 401 and auth:
        assert response["WWW-Authenticate"].startswith("Basic")
    assert not AccessToken.objects.exists()
    denied = audit_rows(outcome=Outcome.DENIED, action=Action.LOGIN_FAILED)
    assert denied
    assert SECRET not in str([(r.reason, r.detail) for r in denied])


def test_it_refuses_get_on_the_token_endpoint(client):
    assert client.get("/oauth/token").status_code == 405


def test_a_revoked_client_gets_no_token(client, system_client, audit_rows):
    system_client.active = False
    system_client.save()
    response = client.post(
        "/oauth/token",
        {"grant_type": "client_credentials"},
        **basic(system_client.client_id, SECRET),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert audit_rows(outcome=Outcome.DENIED)[0].detail["client_id"] == system_client.client_id


def test_a_user_app_cannot_use_client_credentials(client, personas):
    app = make_client(None, kind=ClientKind.USER_APP, secret=SECRET)
    response = client.post(
        "/oauth/token", {"grant_type": "client_credentials"}, **basic(app.client_id, SECRET)
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_a_disabled_system_account_gets_no_token(client, personas, system_client):
    personas.integration.is_active = False
    personas.integration.save()
    response = client.post(
        "/oauth/token",
        {"grant_type": "client_credentials"},
        **basic(system_client.client_id, SECRET),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


# --- authorization code ---------------------------------------------------------------


@pytest.fixture
def app(personas):
    """A public user-facing app (no secret)."""
    return make_client(
        None,
        kind=ClientKind.USER_APP,
        scopes="user/*.read user/*.write patient/*.read launch/patient openid fhirUser",
    )


def test_the_consent_page_lists_the_app_and_the_scopes(client, personas, app):
    _, challenge = pkce()
    sign_in(client, personas.coder)
    response = client.get("/oauth/authorize", authorize_params(app, challenge))
    assert response.status_code == 200
    page = response.content.decode()
    assert app.name in page
    assert "user/*.read" in page
    # The form may send the user back to the app's origin.
    assert "form-action 'self' https://app.example.invalid" in response["Content-Security-Policy"]


def test_the_consent_page_requires_login(client, app):
    _, challenge = pkce()
    response = client.get("/oauth/authorize", authorize_params(app, challenge))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_authorization_code_flow_with_pkce(client, personas, app, audit_rows):
    verifier, challenge = pkce()
    code = get_code(client, personas.coder, app, challenge)
    client.logout()
    response = exchange(client, app, code, verifier)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["scope"] == "openid fhirUser user/*.read"
    row = AccessToken.objects.get(token_sha256=token_hash(body["access_token"]))
    assert row.user == personas.coder
    assert audit_rows(action=Action.PERMISSION_CHANGE, outcome=Outcome.ALLOWED)
    # Single use.
    again = exchange(client, app, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    row.refresh_from_db()
    assert row.revoked_at is not None  # a replayed code revokes what it gave


def test_the_scopes_are_narrowed_to_the_users_role(client, personas, app):
    verifier, challenge = pkce()
    # A coder reads but writes nothing: user/*.write is dropped.
    code = get_code(client, personas.coder, app, challenge, scope="user/*.read user/*.write")
    body = exchange(client, app, code, verifier).json()
    assert body["scope"] == "user/*.read"


def test_a_patient_account_gets_no_patient_scopes(client, personas, app):
    verifier, challenge = pkce()
    sign_in(client, personas.patient)
    params = authorize_params(app, challenge, scope="patient/*.read launch/patient")
    page = client.get("/oauth/authorize", params)
    assert page.status_code == 200
    assert "not linked to a patient record" in page.content.decode()
    response = client.post("/oauth/authorize", {**params, "decision": "approve"})
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["error"] == ["invalid_scope"]
    assert not AuthorizationCode.objects.exists()


def test_staff_launch_an_app_on_one_patient(client, personas, app):
    patient = register_patient(personas)
    mrn = patient.identifiers.get(kind="MR").value
    verifier, challenge = pkce()
    sign_in(client, personas.coder)
    params = authorize_params(app, challenge, scope="patient/*.read launch/patient")
    # Without a patient the page asks for one.
    response = client.post("/oauth/authorize", {**params, "decision": "approve"})
    assert response.status_code == 400
    assert "choose the patient" in response.content.decode().lower()
    response = client.post("/oauth/authorize", {**params, "decision": "approve", "mrn": mrn})
    assert response.status_code == 302
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    body = exchange(client, app, code, verifier).json()
    assert body["patient"] == str(patient.public_id)
    assert body["scope"] == "launch/patient patient/*.read"


def test_staff_cannot_launch_on_a_patient_of_another_facility(client, personas, app, audit_rows):
    patient = register_patient(personas, facility=personas.other_facility)
    mrn = patient.identifiers.get(kind="MR").value
    _, challenge = pkce()
    sign_in(client, personas.coder)
    params = authorize_params(app, challenge, scope="patient/*.read launch/patient")
    response = client.post("/oauth/authorize", {**params, "decision": "approve", "mrn": mrn})
    assert response.status_code == 400
    assert not AuthorizationCode.objects.exists()
    denied = audit_rows(outcome=Outcome.DENIED, object_type="patient")
    assert denied and all(mrn not in (row.object_id + row.reason) for row in denied)


def test_denying_consent_returns_access_denied(client, personas, app, audit_rows):
    _, challenge = pkce()
    sign_in(client, personas.coder)
    params = authorize_params(app, challenge)
    response = client.post("/oauth/authorize", {**params, "decision": "deny"})
    query = parse_qs(urlsplit(response["Location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["xyz-state"]
    assert audit_rows(outcome=Outcome.DENIED, action=Action.PERMISSION_CHANGE)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "user/*.nonsense"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
        ({"aud": "https://other.example.invalid/fhir"}, "invalid_request"),
    ],
)
def test_bad_authorization_requests_go_back_to_the_app(client, personas, app, overrides, error):
    _, challenge = pkce()
    sign_in(client, personas.coder)
    response = client.get("/oauth/authorize", authorize_params(app, challenge, **overrides))
    assert response.status_code == 302
    assert response["Location"].startswith(REDIRECT)
    assert parse_qs(urlsplit(response["Location"]).query)["error"] == [error]


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "https://evil.example.invalid/cb"},
        {"client_id": "no-such-client"},
    ],
)
def test_an_unverified_redirect_is_never_followed(client, personas, app, overrides):
    _, challenge = pkce()
    sign_in(client, personas.coder)
    response = client.get("/oauth/authorize", authorize_params(app, challenge, **overrides))
    assert response.status_code == 400
    assert "cannot be authorised" in response.content.decode()


def test_a_wrong_verifier_is_refused(client, personas, app, audit_rows):
    _, challenge = pkce()
    code = get_code(client, personas.coder, app, challenge)
    other_verifier, _ = pkce()
    response = exchange(client, app, code, other_verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "code_verifier" in response.json()["error_description"]
    missing = exchange(client, app, code, None)
    assert missing.json()["error"] == "invalid_request"
    assert not AccessToken.objects.exists()
    assert audit_rows(outcome=Outcome.DENIED, action=Action.LOGIN_FAILED)


def test_a_wrong_redirect_uri_is_refused(client, personas, app):
    verifier, challenge = pkce()
    code = get_code(client, personas.coder, app, challenge)
    response = exchange(client, app, code, verifier, redirect_uri="https://app.example.invalid/x")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_an_expired_code_is_refused(client, personas, app):
    verifier, challenge = pkce()
    code = get_code(client, personas.coder, app, challenge)
    with time_machine.travel(clock.now() + dt.timedelta(minutes=11), tick=False):
        response = exchange(client, app, code, verifier)
    assert response.status_code == 400
    assert "expired" in response.json()["error_description"]


def test_a_code_for_another_client_is_refused(client, personas, app):
    verifier, challenge = pkce()
    code = get_code(client, personas.coder, app, challenge)
    other = make_client(None, kind=ClientKind.USER_APP)
    response = exchange(client, other, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_a_confidential_app_must_send_its_secret(client, personas):
    app = make_client(None, kind=ClientKind.USER_APP, secret=SECRET)
    verifier, challenge = pkce()
    code = get_code(client, personas.coder, app, challenge)
    response = exchange(client, app, code, verifier)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    response = exchange(client, app, code, verifier, client_secret=SECRET)
    assert response.status_code == 200


def test_a_system_client_cannot_send_users_to_consent(client, personas, system_client):
    _, challenge = pkce()
    sign_in(client, personas.coder)
    params = authorize_params(system_client, challenge)
    response = client.get("/oauth/authorize", params)
    assert response.status_code == 400


def test_secrets_are_hashed(system_client):
    assert SECRET not in system_client.secret_hash
    assert system_client.secret_hash != make_password(SECRET)
