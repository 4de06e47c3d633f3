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
