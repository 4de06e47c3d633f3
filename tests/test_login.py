"""Log-in, lock-out and refusals at the door (HIPAA 164.312(d), 164.308(a)(5)(ii)(C))."""

import pytest
import time_machine
from django.test import override_settings

from accounts.actions import do_unlock_user
from audit.models import Action, Outcome

pytestmark = pytest.mark.django_db


def _post_login(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_it_signs_in_and_audits_the_login(client, personas, audit_rows):
    response = _post_login(client, "tina.tech", "correct-horse-battery-staple-7")
    assert response.status_code == 302
    assert response["Location"] == "/"
    (event,) = audit_rows(action=Action.LOGIN)
    assert event.actor == personas.technician
    assert event.outcome == Outcome.ALLOWED
    assert event.actor_roles == "him_technician"
    assert event.client_ip == "127.0.0.1"


def test_the_username_is_not_case_sensitive(client, personas):
    assert _post_login(client, "TINA.TECH", "correct-horse-battery-staple-7").status_code == 302


def test_a_wrong_password_is_refused_with_a_generic_message(client, personas, audit_rows):
    response = _post_login(client, "tina.tech", "wrong-password-123")
    assert response.status_code == 400
    assert b"Wrong user name or password." in response.content
    (event,) = audit_rows(action=Action.LOGIN_FAILED)
    assert event.outcome == Outcome.DENIED
    assert event.actor_username == "tina.tech"
    assert event.object_id == str(personas.technician.public_id)
    assert "_auth_user_id" not in client.session


def test_an_unknown_user_gets_the_same_message_and_is_audited(client, personas, audit_rows):
    response = _post_login(client, "nobody.here", "whatever-password")
    assert b"Wrong user name or password." in response.content
    (event,) = audit_rows(action=Action.LOGIN_FAILED)
    assert event.actor is None and event.actor_username == "nobody.here"


def test_an_empty_form_is_refused(client, db):
    response = client.post("/accounts/login/", {})
    assert response.status_code == 400
    assert b"This field is required" in response.content


@override_settings(LOCKOUT_THRESHOLD=3, LOCKOUT_MINUTES=15)
def test_repeated_failures_lock_the_account(client, personas, audit_rows):
    for _ in range(3):
        _post_login(client, "tina.tech", "wrong-password-123")
    assert len(audit_rows(action=Action.LOCKOUT)) == 1
    response = _post_login(client, "tina.tech", "correct-horse-battery-staple-7")
    assert response.status_code == 400
    assert b"locked" in response.content
    personas.technician.refresh_from_db()
    assert personas.technician.locked_until is not None


@override_settings(LOCKOUT_THRESHOLD=2, LOCKOUT_MINUTES=15)
def test_the_lock_expires(client, personas):
    with time_machine.travel("2026-03-01 10:00Z", tick=False):
        _post_login(client, "tina.tech", "wrong-password-123")
        _post_login(client, "tina.tech", "wrong-password-123")
        assert _post_login(client, "tina.tech", "correct-horse-battery-staple-7").status_code == 400
    with time_machine.travel("2026-03-01 10:16Z", tick=False):
        assert _post_login(client, "tina.tech", "correct-horse-battery-staple-7").status_code == 302


@override_settings(LOCKOUT_THRESHOLD=2)
def test_an_administrator_unlocks_and_it_is_audited(client, personas, audit_rows):
    _post_login(client, "tina.tech", "wrong-password-123")
    _post_login(client, "tina.tech", "wrong-password-123")
    personas.technician.refresh_from_db()
    do_unlock_user(personas.technician, acting_user=personas.administrator)
    (event,) = audit_rows(action=Action.ACCOUNT_CHANGE, reason="account unlocked")
    assert event.actor == personas.administrator
    assert _post_login(client, "tina.tech", "correct-horse-battery-staple-7").status_code == 302


def test_a_success_resets_the_failure_count(client, personas):
    _post_login(client, "tina.tech", "wrong-password-123")
    _post_login(client, "tina.tech", "correct-horse-battery-staple-7")
    personas.technician.refresh_from_db()
    assert personas.technician.failed_login_count == 0


def test_a_user_without_a_role_is_refused_and_audited(client, personas, audit_rows):
    response = _post_login(client, "nora.norole", "correct-horse-battery-staple-7")
    assert response.status_code == 400
    assert b"no role" in response.content
    (event,) = audit_rows(action=Action.LOGIN, outcome=Outcome.DENIED)
    assert event.actor_username == "nora.norole"
    assert "_auth_user_id" not in client.session


def test_a_system_account_cannot_use_the_web_pages(client, personas, audit_rows):
    response = _post_login(client, "engine", "correct-horse-battery-staple-7")
    assert response.status_code == 400
    assert b"System accounts" in response.content
    assert audit_rows(action=Action.LOGIN, outcome=Outcome.DENIED)


def test_an_inactive_user_is_refused(client, personas):
    personas.coder.is_active = False
    personas.coder.save()
    assert _post_login(client, "cora.coder", "correct-horse-battery-staple-7").status_code == 400


def test_next_is_followed_only_within_the_site(client, personas):
    response = client.post(
        "/accounts/login/?next=https://evil.example/",
        {"username": "tina.tech", "password": "correct-horse-battery-staple-7"},
    )
    assert response["Location"] == "/"
    client.logout()
    response = client.post(
        "/accounts/login/?next=/accounts/security/",
        {"username": "tina.tech", "password": "correct-horse-battery-staple-7"},
    )
    assert response["Location"] == "/accounts/security/"


def test_logout_needs_post_and_is_audited(client, personas, login, audit_rows):
    login(personas.technician)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    (event,) = audit_rows(action=Action.LOGOUT)
    assert event.actor == personas.technician
    assert client.get("/").status_code == 302


def test_every_page_requires_login(client, db):
    for path in ["/", "/audit/", "/accounts/users/", "/accounts/security/", "/audit/export.csv"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "hostile",
    [
        "' OR '1'='1' --",
        "<script>alert(1)</script>",
        "admin'; DROP TABLE accounts_user; --",
        "\x00\x01",
        "😀" * 200,
    ],
)
def test_hostile_user_names_are_refused_cleanly(client, personas, hostile, audit_rows):
    users_before = personas.technician.__class__.objects.count()
    response = _post_login(client, hostile, "anything-at-all")
    assert response.status_code == 400
    assert b"<script>alert(1)</script>" not in response.content
    assert personas.technician.__class__.objects.count() == users_before
