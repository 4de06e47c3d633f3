"""SMART scopes and bearer-token authentication: v1 and v2 syntax, what a token may do,
and every way a token is refused (401 or 403, audited, never logging the token)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import RequestFactory
from hypothesis import given
from hypothesis import strategies as st

from audit.models import Action, Outcome
from interop.auth import FhirAuthError, FhirPrincipal, authenticate
from interop.models import ClientKind
from interop.scopes import (
    ScopeSyntaxError,
    SmartScope,
    parse_scope,
    parse_scopes,
    parse_scopes_lenient,
    within,
)
from interop.testing import auth_header, bearer_token, make_client
from recordroom import clock
from recordroom.testing import register_patient

# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "read", "write"),
    [
        ("patient/Observation.read", True, False),
        ("user/*.write", False, True),
        ("system/*.*", True, True),
        ("patient/*.rs", True, False),
        ("user/Patient.r", True, False),
        ("user/Patient.s", True, False),
        ("user/Patient.cud", False, True),
        ("system/*.cruds", True, True),
        ("user/Encounter.c", False, True),
    ],
)
def test_v1_and_v2_scopes_parse(text, read, write):
    scope = parse_scope(text)
    assert (scope.read, scope.write) == (read, write)
    assert scope.text == text


@pytest.mark.parametrize(
    "text",
    [
        "user/*.sr",  # v2 letters out of order
        "user/*.x",
        "admin/*.read",
        "patient/Observation.rs?category=laboratory",  # granular scopes are not supported
        "patient/observation.read",
        "user/*",
        "",
        "launch",
    ],
)
def test_unknown_scopes_are_refused(text):
    with pytest.raises(ScopeSyntaxError):
        parse_scope(text)


def test_non_resource_scopes_are_words():
    scopes, words = parse_scopes("openid fhirUser launch/patient patient/*.rs openid")
    assert words == ["openid", "fhirUser", "launch/patient"]
    assert [s.text for s in scopes] == ["patient/*.rs"]


def test_lenient_parsing_skips_what_it_does_not_know():
    assert [s.text for s in parse_scopes_lenient("bogus user/*.read x/y.z")] == ["user/*.read"]


def test_within_narrows_modes_and_keeps_context():
    allowed = parse_scopes("user/*.read system/Patient.*")[0]
    assert within(parse_scope("user/Observation.*"), allowed).text == "user/Observation.read"
    assert within(parse_scope("user/Observation.write"), allowed) is None
    assert within(parse_scope("patient/Observation.read"), allowed) is None
    assert within(parse_scope("system/Patient.rs"), allowed).text == "system/Patient.rs"
    assert within(parse_scope("system/*.read"), allowed) is None


@given(
    context=st.sampled_from(["patient", "user", "system"]),
    rtype=st.sampled_from(["*", "Patient", "Observation"]),
    letters=st.lists(st.sampled_from("cruds"), min_size=1, max_size=5, unique=True),
)
def test_v2_permissions_mean_read_and_write(context, rtype, letters):
    perm = "".join(sorted(letters, key="cruds".index))
    scope = parse_scope(f"{context}/{rtype}.{perm}")
    assert scope.read == bool(set(perm) & {"r", "s"})
    assert scope.write == bool(set(perm) & {"c", "u", "d"})


# --- the principal --------------------------------------------------------------------------


def principal(scope: str, patient=None) -> FhirPrincipal:
    return FhirPrincipal(user=None, client=None, scopes=parse_scopes(scope)[0], patient=patient)


def test_may_reads_the_scopes():
    p = principal("user/Patient.read user/Observation.cruds")
    assert p.may("Patient", "read")
    assert not p.may("Patient", "write")
    assert p.may("Observation", "write")
    assert not p.may("Condition", "read")
    assert principal("system/*.read").may("Condition", "read")


def test_patient_compartment_applies_only_to_patient_scopes():
    marker = object()
    p = principal("patient/*.read user/Patient.read", patient=marker)
    assert p.patient_compartment("Observation") is marker
    assert p.patient_compartment("Patient") is None


# --- authenticating a request ---------------------------------------------------------------


def request_with(token: str | None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return RequestFactory().get("/fhir/Patient", **headers)


@pytest.mark.django_db
def test_a_live_token_authenticates(personas):
    patient = register_patient(personas)
    token = bearer_token(personas.coder, "patient/*.read", patient=patient)
    found = authenticate(request_with(token))
    assert found.user == personas.coder
    assert found.patient == patient
    assert found.may("Observation")
    assert found.client.kind == ClientKind.USER_APP


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "no bearer token"),
        ("unknown", "unknown bearer token"),
        ("expired", "bearer token expired"),
        ("revoked", "bearer token revoked"),
        ("client", "API client revoked"),
        ("user", "account disabled"),
    ],
)
def test_bad_tokens_answer_401_and_are_audited(personas, audit_rows, case, reason):
    from interop.auth import token_hash
    from interop.models import AccessToken

    token = bearer_token(personas.integration, "system/*.read")
    row = AccessToken.objects.get(token_sha256=token_hash(token))
    when = clock.now()
    if case == "missing":
        token = None
    elif case == "unknown":
        token = token[:-2] + "xx"
    elif case == "expired":
        when = row.expires_at + dt.timedelta(seconds=1)
    elif case == "revoked":
        row.revoked_at = clock.now()
        row.save()
    elif case == "client":
        row.client.active = False
        row.client.save()
    elif case == "user":
        personas.integration.is_active = False
        personas.integration.save()
    with time_machine.travel(when, tick=False), pytest.raises(FhirAuthError) as caught:
        authenticate(request_with(token))
    error = caught.value
    assert error.status == 401
    challenge = error.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="RecordRoom"')
    if case == "missing":
        assert "error=" not in challenge  # RFC 6750 3.1: no error code without credentials
    else:
        assert 'error="invalid_token"' in challenge
    assert error.outcome["issue"][0]["code"] == "login"
    denied = audit_rows(outcome=Outcome.DENIED, action=Action.LOGIN_FAILED)
    assert [r.reason for r in denied] == [reason]
    if token:
        assert token not in str(denied[0].detail) and token not in denied[0].reason
    if case not in ("missing", "unknown"):
        assert denied[0].detail["client_id"] == row.client.client_id


@pytest.mark.django_db
def test_a_system_token_must_act_for_its_clients_account(personas):
    client = make_client(personas.integration, kind=ClientKind.SYSTEM)
    token = bearer_token(personas.technician, "system/*.read", client=client)
    with pytest.raises(FhirAuthError) as caught:
        authenticate(request_with(token))
    assert caught.value.status == 401


@pytest.mark.django_db
def test_require_refuses_the_wrong_scope_with_403(personas, audit_rows):
    token = bearer_token(personas.coder, "user/Patient.read")
    found = authenticate(request_with(token))
    found.require("Patient", "read")
    with pytest.raises(FhirAuthError) as caught:
        found.require("Observation", "read")
    assert caught.value.status == 403
    assert caught.value.outcome["issue"][0]["code"] == "forbidden"
    assert 'error="insufficient_scope"' in caught.value.headers["WWW-Authenticate"]
    with pytest.raises(FhirAuthError):
        found.require("Patient", "write")
    denied = audit_rows(outcome=Outcome.DENIED)
    assert [r.reason for r in denied] == [
        "token scope does not allow read of Observation",
        "token scope does not allow write of Patient",
    ]
    assert denied[1].action == Action.UPDATE


@pytest.mark.django_db
def test_a_token_over_http_is_checked_on_the_fhir_endpoints(client, personas):
    token = bearer_token(personas.integration, "system/*.read")
    ok = client.get(
        "/fhir/$export-poll-status/00000000-0000-0000-0000-000000000000", **auth_header(token)
    )
    assert ok.status_code == 404  # authenticated: the job simply does not exist
    refused = client.get(
        "/fhir/$export-poll-status/00000000-0000-0000-0000-000000000000",
        **auth_header(token + "x"),
    )
    assert refused.status_code == 401
    assert refused["Content-Type"] == "application/fhir+json"


def test_scope_dataclass_covers():
    wide = SmartScope("user", "*", True, True, "user/*.*")
    assert wide.covers(parse_scope("user/Patient.rs"))
    assert not wide.covers(parse_scope("patient/Patient.rs"))
