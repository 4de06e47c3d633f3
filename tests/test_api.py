"""The workflow API: authentication, role checks and audit."""

import pytest

from audit.models import Action, Outcome
from recordroom.testing import sign_in

pytestmark = pytest.mark.django_db


def test_it_requires_authentication(client):
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/audit/events").status_code == 401


def test_me_names_the_user_and_roles(client, personas):
    client.force_login(personas.coder)
    body = client.get("/api/me").json()
    assert body["username"] == "cora.coder"
    assert body["roles"] == ["coder"]
    assert body["id"] == str(personas.coder.public_id)


def test_the_privacy_officer_searches_the_trail(client, personas, audit_rows):
    sign_in(client, personas.privacy_officer)
    response = client.get("/api/audit/events", {"action": "search", "limit": 5})
    assert response.status_code == 200
    assert set(response.json()) == {"count", "count_capped", "older_than", "events"}
    assert audit_rows(action=Action.SEARCH)


def test_it_denies_other_roles_and_audits(client, personas, audit_rows):
    client.force_login(personas.coder)
    response = client.get("/api/audit/events")
    assert response.status_code == 403
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.actor == personas.coder


def test_bad_parameters_get_a_clear_error(client, personas):
    sign_in(client, personas.privacy_officer)
    response = client.get("/api/audit/events", {"date_from": "yesterday", "limit": 5})
    assert response.status_code == 422
    assert "date_from" in response.content.decode()
    assert client.get("/api/audit/events", {"limit": 10_000}).status_code == 422


def test_the_openapi_document_is_served_locally(client, db):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert "/api/audit/events" in response.json()["paths"]


def test_an_idle_session_is_signed_out_of_the_api_too(client, personas, settings, audit_rows):
    import time_machine

    settings.SESSION_IDLE_MINUTES = 15
    with time_machine.travel("2026-05-01 09:00Z", tick=False):
        sign_in(client, personas.privacy_officer)
        assert client.get("/api/audit/events", {"limit": 1}).status_code == 200
    with time_machine.travel("2026-05-01 12:00Z", tick=False):
        assert client.get("/api/audit/events", {"limit": 1}).status_code == 401
    (event,) = audit_rows(action=Action.LOGOUT)
    assert "inactivity" in event.reason


def test_an_account_without_a_role_or_a_system_account_gets_no_api(client, personas):
    client.force_login(personas.no_role)
    assert client.get("/api/me").status_code == 403
    client.force_login(personas.integration)
    assert client.get("/api/me").status_code == 403


def test_a_session_that_skipped_the_second_factor_gets_no_api(client, personas):
    client.force_login(personas.privacy_officer)
    assert client.get("/api/audit/events").status_code == 401
