"""Administration of the FHIR API's OAuth clients: the pages, the action's validation,
revocation, and the `recordroom fhir-client` command."""

from __future__ import annotations

import base64
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import Action, Outcome
from interop.models import AccessToken, ApiClient, ClientKind
from interop.testing import auth_header, bearer_token, make_client
from recordroom.testing import sign_in

pytestmark = pytest.mark.django_db


def register(client, **data):
    values = {
        "name": "Research data warehouse",
        "kind": "system",
        "account": "engine",
        "scopes": "system/*.read",
        "redirect_uris": "",
    }
    values.update(data)
    return client.post("/interop/clients/new/", values)


def test_it_requires_login(client):
    for url in ("/interop/clients/", "/interop/clients/new/"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


def test_it_denies_a_role_without_the_permission(client, personas, audit_rows):
    sign_in(client, personas.technician, sudo=True)
    assert client.get("/interop/clients/").status_code == 403
    assert register(client).status_code == 403
    assert not ApiClient.objects.exists()
    denied = audit_rows(outcome=Outcome.DENIED)
    assert len(denied) == 2
    assert all("interop.manage_clients" in row.reason for row in denied)


def test_registering_asks_for_the_password_again(client, personas):
    sign_in(client, personas.administrator)
    response = client.get("/interop/clients/new/")
    assert response.status_code == 302
    assert "/accounts/confirm-password/" in response["Location"]


def test_a_system_client_is_registered_and_its_secret_shown_once(client, personas, audit_rows):
    sign_in(client, personas.administrator, sudo=True)
    assert client.get("/interop/clients/new/").status_code == 200
    response = register(client)
    assert response.status_code == 200, response.content[:800]
    created = ApiClient.objects.get()
    secret = response.context["secret"]
    assert secret and secret in response.content.decode()
    assert secret not in created.secret_hash
    assert created.account == personas.integration
    assert created.allowed_scopes == "system/*.read"
    assert created.created_by == personas.administrator
    row = audit_rows(action=Action.CREATE, object_type="api_client")[0]
    assert row.detail["client_id"] == created.client_id
    assert secret not in str(row.detail)
    # The secret works at the token endpoint.
    raw = base64.b64encode(f"{created.client_id}:{secret}".encode()).decode()
    token = client.post(
        "/oauth/token", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {raw}"
    )
    assert token.status_code == 200
    # The list and the detail page show it, never the secret.
    listing = client.get("/interop/clients/")
    assert created.client_id in listing.content.decode()
    detail = client.get(f"/interop/clients/{created.public_id}/")
    assert detail.status_code == 200
    assert secret not in detail.content.decode()


def test_a_public_app_has_no_secret(client, personas):
    sign_in(client, personas.administrator, sudo=True)
    response = register(
        client,
        name="Chart viewer",
        kind="user_app",
        account="",
        scopes="user/*.rs patient/*.rs launch/patient openid fhirUser",
        redirect_uris="https://viewer.example.invalid/cb\nhttp://127.0.0.1:9000/cb",
        public="on",
    )
    assert response.status_code == 200, response.content[:800]
    created = ApiClient.objects.get()
    assert created.kind == ClientKind.USER_APP
    assert created.secret_hash == ""
    assert created.redirect_uris == [
        "https://viewer.example.invalid/cb",
        "http://127.0.0.1:9000/cb",
    ]
    assert "PKCE" in response.content.decode()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": ""}, "name", "required"),
        ({"account": "adam.admin"}, "account", "not one of the available choices"),
        ({"account": ""}, "account", "system account"),
        ({"scopes": "user/*.read"}, "scopes", "system/ scopes only"),
        ({"scopes": "system/*.bogus"}, "scopes", "Unknown permissions"),
        ({"redirect_uris": "https://x.example.invalid/cb"}, "redirect_uris", "no redirect"),
        (
            {"kind": "user_app", "account": "", "scopes": "user/*.read", "redirect_uris": ""},
            "redirect_uris",
            "at least one",
        ),
        (
            {
                "kind": "user_app",
                "account": "",
                "scopes": "user/*.read",
                "redirect_uris": "http://app.example.invalid/cb",
            },
            "redirect_uris",
            "https://",
        ),
        (
            {
                "kind": "user_app",
                "account": "",
                "scopes": "system/*.read",
                "redirect_uris": "https://app.example.invalid/cb",
            },
            "scopes",
            "user/ and patient/",
        ),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(client, personas, data, field, message):
    sign_in(client, personas.administrator, sudo=True)
    response = register(client, **data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message.lower() in " ".join(errors[field]).lower()
    assert not ApiClient.objects.exists()


def test_revoking_a_client_revokes_its_tokens(client, personas, audit_rows):
    api_client = make_client(personas.integration, kind=ClientKind.SYSTEM)
    token = bearer_token(personas.integration, "system/*.read", client=api_client)
    probe = "/fhir/$export-poll-status/00000000-0000-0000-0000-000000000000"
    assert client.get(probe, **auth_header(token)).status_code == 404
    sign_in(client, personas.administrator, sudo=True)
    url = f"/interop/clients/{api_client.public_id}/revoke/"
    assert client.get(url).status_code == 405
    refused = client.post(url, {"reason": ""})
    assert refused.status_code == 400
    response = client.post(url, {"reason": "Vendor contract ended"})
    assert response.status_code == 302
    api_client.refresh_from_db()
    assert not api_client.active
    assert AccessToken.objects.get().revoked_at is not None
    row = audit_rows(action=Action.UPDATE, object_type="api_client")[0]
    assert row.reason == "Vendor contract ended"
    assert row.detail["tokens_revoked"] == 1
    client.logout()
    assert client.get(probe, **auth_header(token)).status_code == 401
    # Revoking twice says so.
    sign_in(client, personas.administrator, sudo=True)
    again = client.post(url, {"reason": "again"})
    assert again.status_code == 400


def test_revoke_denies_a_role_without_the_permission(client, personas, audit_rows):
    api_client = make_client(personas.integration, kind=ClientKind.SYSTEM)
    sign_in(client, personas.privacy_officer, sudo=True)
    response = client.post(
        f"/interop/clients/{api_client.public_id}/revoke/", {"reason": "because"}
    )
    assert response.status_code == 403
    assert audit_rows(outcome=Outcome.DENIED)
    api_client.refresh_from_db()
    assert api_client.active


def test_an_unknown_client_is_404(client, personas):
    sign_in(client, personas.administrator, sudo=True)
    assert client.get("/interop/clients/00000000-0000-0000-0000-000000000000/").status_code == 404


# --- the command ---------------------------------------------------------------------------


def test_the_command_registers_lists_and_revokes(personas, audit_rows):
    out = io.StringIO()
    call_command(
        "fhir_client",
        "create",
        "--name",
        "Warehouse",
        "--kind",
        "system",
        "--account",
        "engine",
        "--scopes",
        "system/*.read",
        stdout=out,
        stderr=io.StringIO(),
    )
    lines = dict(line.split("=", 1) for line in out.getvalue().splitlines())
    created = ApiClient.objects.get(client_id=lines["client_id"])
    assert lines["client_secret"] not in created.secret_hash
    assert audit_rows(action=Action.CREATE, object_type="api_client")[0].reason.endswith(
        "(command line)"
    )
    listing = io.StringIO()
    call_command("fhir_client", "list", stdout=listing)
    assert created.client_id in listing.getvalue()
    revoked = io.StringIO()
    call_command("fhir_client", "revoke", created.client_id, "--reason", "rotated", stdout=revoked)
    assert "Revoked" in revoked.getvalue()
    created.refresh_from_db()
    assert not created.active


def test_the_command_explains_bad_input(personas):
    with pytest.raises(CommandError, match="account"):
        call_command(
            "fhir_client",
            "create",
            "--name",
            "X",
            "--account",
            "nobody",
            "--scopes",
            "system/*.read",
        )
    with pytest.raises(CommandError, match="No client"):
        call_command("fhir_client", "revoke", "rr-missing", "--reason", "x")
    assert not ApiClient.objects.exists()
