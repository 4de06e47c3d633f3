"""Test personas, defined once. Every name is invented."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.roles import Role

PASSWORD = "correct-horse-battery-staple-7"  # noqa: S105 - test personas only


def make_user(username: str, *roles: Role | str, password: str = PASSWORD, **fields):
    user = get_user_model().objects.create_user(
        username=username,
        password=password,
        first_name=fields.pop("first_name", username.title()),
        last_name=fields.pop("last_name", "Testperson"),
        email=fields.pop("email", f"{username}@example.invalid"),
        is_system_account=Role.INTEGRATION.value in [str(r) for r in roles],
        **fields,
    )
    user.groups.set(Group.objects.filter(name__in=[str(r) for r in roles]))
    return user


@dataclass
class Personas:
    technician: object
    administrator: object
    coder: object
    roi_specialist: object
    clinician: object
    privacy_officer: object
    patient: object
    integration: object
    no_role: object


def create_personas() -> Personas:
    return Personas(
        technician=make_user("tina.tech", Role.HIM_TECHNICIAN),
        administrator=make_user("adam.admin", Role.HIM_ADMINISTRATOR),
        coder=make_user("cora.coder", Role.CODER),
        roi_specialist=make_user("rosa.roi", Role.ROI_SPECIALIST),
        clinician=make_user("dr.carl", Role.CLINICIAN),
        privacy_officer=make_user("paula.privacy", Role.PRIVACY_OFFICER),
        patient=make_user("pete.patient", Role.PATIENT),
        integration=make_user("engine", Role.INTEGRATION),
        no_role=make_user("nora.norole"),
    )


def sign_in(client, user, *, sudo: bool = False):
    """Sign a persona in as if it had passed the password and second-factor steps (and,
    with ``sudo``, confirmed its password for sensitive actions)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.sudo import SUDO_KEY
    from recordroom import clock

    client.force_login(user)
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, confirmed=True, defaults={"name": "authenticator app"}
    )
    session = client.session
    session["otp_device_id"] = device.persistent_id
    if sudo:
        session[SUDO_KEY] = clock.now().timestamp() + 3600
    session.save()
    return client


# --- subprocesses with a database of their own ----------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def fresh_database_url() -> str | None:
    """A new, empty PostgreSQL database beside the test cluster, or None on SQLite."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return None
    import psycopg

    name = f"rr_sub_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a `recordroom` subprocess with a database of its own (a temporary
    SQLite file, or a new PostgreSQL database when the suite runs on PostgreSQL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        RECORDROOM_DATA_DIR=str(tmp_path / "var"),
        RECORDROOM_HTTPS="false",
        RECORDROOM_STATIC_FROM_APPS="true",
        PYTHONUNBUFFERED="1",
    )
    url = fresh_database_url()
    if url:
        env["DATABASE_URL"] = url
    else:
        env.pop("DATABASE_URL", None)
    return env


def run_recordroom(env, *args, check=True, timeout=180):
    return subprocess.run(  # noqa: S603 - our own console script
        [str(Path(sys.executable).with_name("recordroom")), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )
