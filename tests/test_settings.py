"""Settings come from the environment, with safe defaults."""

import os
import stat

import pytest

from recordroom import env
from recordroom.testing import run_recordroom


def test_booleans_are_parsed_strictly(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    assert env.envbool("X_FLAG") is True
    monkeypatch.setenv("X_FLAG", "off")
    assert env.envbool("X_FLAG", True) is False
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ValueError, match="X_FLAG must be a boolean"):
        env.envbool("X_FLAG")


def test_integers_say_what_is_wrong(monkeypatch):
    monkeypatch.setenv("X_NUM", "fifteen")
    with pytest.raises(ValueError, match="X_NUM must be a whole number"):
        env.envint("X_NUM", 1)


def test_secrets_come_from_a_file(monkeypatch, tmp_path):
    path = tmp_path / "key"
    path.write_text("from-a-file\n")
    monkeypatch.delenv("X_SECRET", raising=False)
    monkeypatch.setenv("X_SECRET_FILE", str(path))
    assert env.envsecret("X_SECRET") == "from-a-file"


def test_a_generated_secret_is_private_and_stable(tmp_path):
    path = tmp_path / "var" / "secret_key"
    first = env.secret_from_file(path)
    assert len(first) >= 50
    assert env.secret_from_file(path) == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_passwords_are_hashed_with_argon2_outside_tests():
    from django.conf import settings

    assert settings.PASSWORD_HASHERS[1] == "django.contrib.auth.hashers.Argon2PasswordHasher"


def test_the_deploy_check_is_clean_in_production_mode(isolated_env):
    env_vars = {**isolated_env, "RECORDROOM_HTTPS": "true", "RECORDROOM_DEBUG": "false"}
    env_vars.pop("RECORDROOM_STATIC_FROM_APPS")
    result = run_recordroom(env_vars, "check", "--deploy", "--fail-level", "WARNING")
    assert "no issues" in result.stdout, result.stdout + result.stderr


def test_production_defaults_are_secure(isolated_env):
    code = (
        "from django.conf import settings as s;"
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0,"
        " s.SECURE_SSL_REDIRECT, s.SESSION_IDLE_MINUTES)"
    )
    env_vars = {**isolated_env}
    for name in ("RECORDROOM_HTTPS", "RECORDROOM_DEBUG"):
        env_vars.pop(name, None)
    result = run_recordroom(env_vars, "shell", "-v", "0", "-c", code)
    assert result.stdout.split() == ["False", "True", "True", "True", "True", "15"]
    secret = os.path.join(isolated_env["RECORDROOM_DATA_DIR"], "secret_key")
    assert os.path.exists(secret), "the secret key is generated on first run, outside git"


def test_a_malformed_setting_stops_start_up_with_a_clear_message(isolated_env):
    result = run_recordroom(
        {**isolated_env, "RECORDROOM_LOCKOUT_THRESHOLD": "five"}, "check", check=False
    )
    assert result.returncode != 0
    assert "RECORDROOM_LOCKOUT_THRESHOLD must be a whole number" in result.stderr
