"""Fixtures shared by the unit, API and browser tests."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from recordroom.testing import PASSWORD, create_personas

ROOT = Path(__file__).resolve().parent


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


def _fresh_database_url() -> str | None:
    """A new, empty PostgreSQL database beside the test cluster, or None on SQLite."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return None
    import psycopg

    name = f"rr_sub_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def isolated_env(tmp_path):
    """Environment for a `recordroom` subprocess with a database of its own (a temporary
    SQLite file, or a new PostgreSQL database when the suite runs on PostgreSQL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        RECORDROOM_DATA_DIR=str(tmp_path / "var"),
        RECORDROOM_HTTPS="false",
        RECORDROOM_STATIC_FROM_APPS="true",
        PYTHONUNBUFFERED="1",
    )
    url = _fresh_database_url()
    if url:
        env["DATABASE_URL"] = url
    else:
        env.pop("DATABASE_URL", None)
    return env


def run_recordroom(env, *args, check=True, timeout=180):
    return subprocess.run(
        [str(Path(sys.executable).with_name("recordroom")), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )
