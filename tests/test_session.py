"""Sessions: automatic log-off, tampered cookies, forged forms."""

import pytest
import time_machine
from django.test import Client

from audit.models import Action, Outcome

pytestmark = pytest.mark.django_db


def test_idle_sessions_are_signed_out_and_audited(client, personas, login, audit_rows, settings):
    settings.SESSION_IDLE_MINUTES = 15
    with time_machine.travel("2026-05-01 09:00Z", tick=False):
        login(personas.technician)
        assert client.get("/").status_code == 200
    with time_machine.travel("2026-05-01 09:14Z", tick=False):
        assert client.get("/").status_code == 200, "activity within the limit keeps the session"
    with time_machine.travel("2026-05-01 09:30Z", tick=False):
        response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    (event,) = audit_rows(action=Action.LOGOUT)
    assert "inactivity" in event.reason
    assert client.get("/").status_code == 302


def test_a_tampered_session_cookie_is_refused_and_audited(client, personas, login, audit_rows):
    login(personas.technician)
    client.cookies["sessionid"] = client.cookies["sessionid"].value[:-4] + "abcd"
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert audit_rows(action=Action.SECURITY, outcome=Outcome.DENIED)


def test_a_forged_form_is_refused_and_audited(personas, audit_rows):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "tina.tech", "password": "x"})
    assert response.status_code == 403
    assert b"Form expired or forged" in response.content
    (event,) = audit_rows(action=Action.SECURITY)
    assert "forgery" in event.reason
    assert not audit_rows(action=Action.LOGIN_FAILED), "the forged form never reached the log-in"


def test_pages_are_not_cached_and_carry_the_security_headers(client, personas, login):
    login(personas.technician)
    response = client.get("/")
    assert response["Cache-Control"] == "no-store"
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_session_key_changes_at_log_in(client, personas):
    client.get("/accounts/login/")
    client.session.save()
    before = client.session.session_key
    client.post(
        "/accounts/login/", {"username": "tina.tech", "password": "correct-horse-battery-staple-7"}
    )
    assert client.session.session_key != before
