"""The demo's published FHIR API client works end to end, as docs/fhir.md shows it."""

import pytest

from interop.models import ApiClient
from recordroom.demo import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    load_demo_client,
    load_demo_users,
    login_table,
)

pytestmark = pytest.mark.django_db


def test_the_demo_client_gets_a_token_and_reads_patients(client):
    load_demo_users()
    assert load_demo_client() is True
    assert load_demo_client() is False  # once
    stored = ApiClient.objects.get(client_id=DEMO_CLIENT_ID)
    assert DEMO_CLIENT_SECRET not in stored.secret_hash
    assert stored.account.username == "integration"
    assert f"{DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET}" in login_table()

    response = client.post(
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "scope": "system/Patient.read",
        },
    )
    assert response.status_code == 200, response.content
    token = response.json()["access_token"]
    search = client.get("/fhir/Patient", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert search.status_code == 200, search.content
    assert search.json()["resourceType"] == "Bundle"
