"""TOTP multi-factor log-in: required for administrators and privacy officers."""

import base64
import re

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import Action, Outcome
from recordroom.testing import PASSWORD

pytestmark = pytest.mark.django_db


def _code(device):
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():06d}"


def _password_step(client, user):
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return response


def test_an_administrator_must_enrol_before_signing_in(client, personas):
    response = _password_step(client, personas.administrator)
    assert response["Location"].startswith("/accounts/mfa/")
    assert "_auth_user_id" not in client.session, "not signed in before the second factor"
    page = client.get("/accounts/mfa/")
    assert b"Set up your authenticator" in page.content
    assert b"data:image/svg+xml" in page.content
    assert client.get("/").status_code == 302


def test_enrolment_with_the_right_code_signs_in(client, personas, audit_rows):
    _password_step(client, personas.privacy_officer)
    page = client.get("/accounts/mfa/").content.decode()
    secret = re.search(r"data-secret>([A-Z2-7=]+)<", page).group(1)
    device = TOTPDevice.objects.get(user=personas.privacy_officer)
    assert base64.b32decode(secret) == device.bin_key
    response = client.post("/accounts/mfa/", {"token": _code(device)})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    device.refresh_from_db()
    assert device.confirmed
    assert audit_rows(action=Action.MFA, reason="authenticator enrolled")
    (login,) = audit_rows(action=Action.LOGIN)
    assert login.detail == {"mfa": True}


def test_a_wrong_code_is_refused_and_audited(client, personas, audit_rows):
    _password_step(client, personas.administrator)
    client.get("/accounts/mfa/")
    response = client.post("/accounts/mfa/", {"token": "000000"})
    assert response.status_code == 400
    assert b"not right" in response.content
    assert audit_rows(action=Action.MFA, outcome=Outcome.DENIED)
    assert "_auth_user_id" not in client.session


def test_a_malformed_code_is_refused(client, personas):
    _password_step(client, personas.administrator)
    response = client.post("/accounts/mfa/", {"token": "12ab<script>"})
    assert response.status_code == 400
    assert b"six digits" in response.content


def test_an_enrolled_user_is_asked_for_the_code_next_time(client, personas):
    device = TOTPDevice.objects.create(user=personas.administrator, name="app", confirmed=True)
    _password_step(client, personas.administrator)
    page = client.get("/accounts/mfa/")
    assert b"Enter your code" in page.content
    assert client.post("/accounts/mfa/", {"token": _code(device)}).status_code == 302
    assert client.get("/").status_code == 200


def test_mfa_is_optional_for_other_roles_but_enforced_once_enrolled(client, personas):
    TOTPDevice.objects.create(user=personas.coder, name="app", confirmed=True)
    response = _password_step(client, personas.coder)
    assert response["Location"].startswith("/accounts/mfa/")


def test_the_mfa_step_without_a_password_step_goes_back_to_login(client, db):
    response = client.get("/accounts/mfa/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"


def test_a_session_that_skipped_the_second_factor_is_ended(client, personas, audit_rows):
    """Defence in depth: even a session made without the MFA step is refused."""
    client.force_login(personas.administrator)
    response = client.get("/")
    assert response.status_code == 302
    assert audit_rows(action=Action.SECURITY, outcome=Outcome.DENIED)
    assert "_auth_user_id" not in client.session


def test_too_many_wrong_codes_lock_the_account(client, personas, settings):
    settings.LOCKOUT_THRESHOLD = 3
    _password_step(client, personas.administrator)
    client.get("/accounts/mfa/")
    for _ in range(3):
        client.post("/accounts/mfa/", {"token": "000000"})
    personas.administrator.refresh_from_db()
    assert personas.administrator.locked_until is not None


def test_an_administrator_resets_an_authenticator(client, personas, audit_rows):
    from accounts.actions import do_reset_mfa

    TOTPDevice.objects.create(user=personas.coder, name="app", confirmed=True)
    do_reset_mfa(personas.coder, acting_user=personas.administrator)
    assert not TOTPDevice.objects.filter(user=personas.coder).exists()
    assert audit_rows(action=Action.MFA, reason="authenticator reset")
