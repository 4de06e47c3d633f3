"""SMART Backend Services: a system client registered with its public keys (a JWKS)
gets tokens with ``client_credentials`` by presenting a JWT assertion it signs (RS384 or
ES384; RFC 7523 ``private_key_jwt``). Every way an assertion is wrong is refused with
``invalid_client`` naming what is wrong, and audited; the assertion is single-use; such
a client has no secret and its client_id alone authenticates nothing."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import Outcome
from interop.clients import ClientData, do_register_client, do_set_jwks, jwks_problems
from interop.models import AccessToken, ClientKind

pytestmark = pytest.mark.django_db

TOKEN_URL = "http://testserver/oauth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private, kid: str, alg: str = "RS384") -> dict:
    algorithm = jwt.algorithms.RSAAlgorithm if alg.startswith("RS") else jwt.algorithms.ECAlgorithm
    return {**algorithm.to_jwk(private.public_key(), as_dict=True), "kid": kid, "alg": alg}


def assertion(private, client_id: str, *, kid="k1", alg="RS384", **claims) -> str:
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, private, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def key():
    return rsa_key()


@pytest.fixture
def registered(personas, key):
    client, secret = do_register_client(
        ClientData(
            name="Data warehouse",
            kind=ClientKind.SYSTEM,
            scopes="system/*.read",
            account=personas.integration.username,
            jwks={"keys": [public_jwk(key, "k1")]},
        ),
        acting_user=personas.administrator,
    )
    assert secret == "" and not client.secret_hash
    return client


def ask(client, signed: str, **extra):
    data = {
        "grant_type": "client_credentials",
        "scope": "system/*.read",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
        **extra,
    }
    return client.post("/oauth/token", {k: v for k, v in data.items() if v is not None})


def test_a_signed_assertion_gets_a_token_once(client, registered, key, personas):
    signed = assertion(key, registered.client_id)
    response = ask(client, signed)
    assert response.status_code == 200, response.content
    token = response.json()
    assert token["token_type"] == "Bearer" and token["scope"] == "system/*.read"
    row = AccessToken.objects.get()
    assert row.client == registered and row.user == personas.integration
    # The FHIR API takes it.
    answer = client.get("/fhir/Patient", HTTP_AUTHORIZATION=f"Bearer {token['access_token']}")
    assert answer.status_code == 200
    # The same assertion again: replay.
    again = ask(client, signed)
    assert again.status_code == 401 and "already used" in again.json()["error_description"]


def test_an_ec_key_works_too(client, personas):
    private = ec.generate_private_key(ec.SECP384R1())
    registered, _ = do_register_client(
        ClientData(
            name="EC client",
            kind=ClientKind.SYSTEM,
            scopes="system/*.read",
            account=personas.integration.username,
            jwks={"keys": [public_jwk(private, "ec1", "ES384")]},
        ),
        acting_user=personas.administrator,
    )
    response = ask(client, assertion(private, registered.client_id, kid="ec1", alg="ES384"))
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"aud": "https://elsewhere.invalid/token"}, "aud must be"),
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"exp": int(time.time()) + 3600}, "more than five minutes ahead"),
        ({"jti": None}, "has no jti"),
        ({"sub": "someone-else"}, "sub must be the client_id"),
        ({"kid": "unknown"}, "kid names no registered key"),
        ({"alg": "RS256"}, "alg must be one of"),
        ({"key": "other"}, "signature does not verify"),
    ],
)
def test_a_wrong_assertion_is_refused_and_audited(client, registered, key, audit_rows, change, why):
    kid = change.pop("kid", "k1")
    alg = change.pop("alg", "RS384")
    signer = rsa_key() if change.pop("key", None) else key
    signed = assertion(signer, registered.client_id, kid=kid, alg=alg, **change)
    response = ask(client, signed)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert why in response.json()["error_description"]
    refused = audit_rows(outcome=Outcome.DENIED)[-1]
    assert why in refused.reason and signed not in json.dumps(refused.detail)
    assert not AccessToken.objects.exists()


def test_not_a_jwt_and_an_unknown_client(client, key):
    assert "not a JWT" in ask(client, "not-a-jwt").json()["error_description"]
    stranger = ask(client, assertion(key, "rr-unknown"))
    assert stranger.status_code == 401 and "unknown client" in stranger.json()["error_description"]


def test_the_client_id_alone_authenticates_nothing(client, registered):
    response = client.post(
        "/oauth/token",
        {"grant_type": "client_credentials", "client_id": registered.client_id},
    )
    assert response.status_code == 401
    assert "signed client_assertion" in response.json()["error_description"]


def test_keys_are_checked_when_registered_and_can_be_rotated(personas, registered, key):
    assert jwks_problems({"keys": []})
    private_parts = {**public_jwk(key, "k1"), "d": "AAAA"}
    assert "private key material" in jwks_problems({"keys": [private_parts]})[0]
    assert "no kid" in jwks_problems({"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]})[0]
    with pytest.raises(ValidationError, match="system clients"):
        do_register_client(
            ClientData(
                name="App",
                kind=ClientKind.USER_APP,
                scopes="user/*.read",
                redirect_uris=["https://app.example.invalid/cb"],
                jwks={"keys": [public_jwk(key, "k1")]},
            ),
            acting_user=personas.administrator,
        )
    new = rsa_key()
    do_set_jwks(
        registered,
        {"keys": [public_jwk(new, "k2")]},
        acting_user=personas.administrator,
        reason="yearly rotation",
    )
    registered.refresh_from_db()
    assert [k["kid"] for k in registered.jwks["keys"]] == ["k2"]


def test_the_command_registers_and_rotates_keys(personas, key, tmp_path, capsys):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk(key, "cli1")]}))
    call_command(
        "fhir_client",
        "create",
        "--name",
        "Warehouse",
        "--account",
        personas.integration.username,
        "--scopes",
        "system/*.read",
        "--jwks",
        str(path),
    )
    out = capsys.readouterr().out
    assert "client_id=" in out and "client_secret" not in out
    client_id = out.split("client_id=")[1].split()[0]
    path.write_text(json.dumps({"keys": [public_jwk(rsa_key(), "cli2")]}))
    call_command("fhir_client", "set-jwks", client_id, str(path), "--reason", "rotation")
    assert "cli2" in capsys.readouterr().out
    path.write_text("{not json")
    with pytest.raises(CommandError, match="is not JSON"):
        call_command("fhir_client", "set-jwks", client_id, str(path), "--reason", "again")


def test_discovery_advertises_private_key_jwt(client):
    config = client.get("/fhir/.well-known/smart-configuration").json()
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert config["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert "client-confidential-asymmetric" in config["capabilities"]
