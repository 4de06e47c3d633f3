"""Fixtures shared by the unit, API and browser tests."""

from __future__ import annotations

import pytest

from recordroom.testing import PASSWORD, create_personas, run_recordroom, subprocess_env  # noqa: F401


@pytest.fixture
def personas(db):
    return create_personas()


@pytest.fixture
def login(client):
    """Sign a persona in through the real log-in form (second factor aside)."""

    def _login(user, password=PASSWORD):
        response = client.post(
            "/accounts/login/", {"username": user.username, "password": password}
        )
        assert response.status_code == 302, response.content[:500]
        return client

    return _login


@pytest.fixture
def audit_rows():
    """The audit rows written since the fixture was taken, oldest first."""
    from audit.models import AuditEvent

    start = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    def rows(**filters):
        return list(AuditEvent.objects.filter(seq__gt=start, **filters).order_by("seq"))

    return rows


@pytest.fixture
def isolated_env(tmp_path):
    """Environment for a `recordroom` subprocess with a database of its own (a temporary
    SQLite file, or a new PostgreSQL database when the suite runs on PostgreSQL)."""
    return subprocess_env(tmp_path)
