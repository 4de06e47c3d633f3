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
    facility: object
    other_facility: object
    technician: object
    administrator: object
    coder: object
    roi_specialist: object
    clinician: object
    other_clinician: object
    privacy_officer: object
    patient: object
    integration: object
    no_role: object
    outsider: object


def make_facility(code: str = "rrgh", name: str = "RecordRoom General Hospital", **fields):
    from accounts.models import Facility

    return Facility.objects.create(
        code=code, name=name, mrn_prefix=fields.pop("mrn_prefix", code[:2].upper()), **fields
    )


def create_personas() -> Personas:
    """Everyone works at the main facility except the outsider (another facility).
    ``clinician`` is the one who will treat the test patients; ``other_clinician`` does not."""
    facility = make_facility()
    other = make_facility("othr", "Other Valley Clinic")
    people = {
        "technician": make_user("tina.tech", Role.HIM_TECHNICIAN),
        "administrator": make_user("adam.admin", Role.HIM_ADMINISTRATOR),
        "coder": make_user("cora.coder", Role.CODER),
        "roi_specialist": make_user("rosa.roi", Role.ROI_SPECIALIST),
        "clinician": make_user("dr.carl", Role.CLINICIAN),
        "other_clinician": make_user("dr.olga", Role.CLINICIAN),
        "privacy_officer": make_user("paula.privacy", Role.PRIVACY_OFFICER),
        "patient": make_user("pete.patient", Role.PATIENT),
        "integration": make_user("engine", Role.INTEGRATION),
        "no_role": make_user("nora.norole"),
    }
    for user in people.values():
        user.facilities.add(facility)
    outsider = make_user("oscar.outsider", Role.HIM_TECHNICIAN)
    outsider.facilities.add(other)
    return Personas(facility=facility, other_facility=other, outsider=outsider, **people)


def patient_data(**overrides):
    """A synthetic person's registration data; override any field."""
    import datetime as dt

    from patients.actions import AddressData, IdentifierData, NameData, PatientData, TelecomData

    name = overrides.pop("name", None) or NameData(
        family=overrides.pop("family", "Quillfeather"),
        given=overrides.pop("given", "Marigold"),
        middle=overrides.pop("middle", "June"),
    )
    return PatientData(
        name=name,
        birth_date=overrides.pop("birth_date", dt.date(1968, 4, 12)),
        sex_at_birth=overrides.pop("sex_at_birth", "F"),
        identifiers=overrides.pop("identifiers", [IdentifierData(kind="SS", value="123-45-6789")]),
        addresses=overrides.pop(
            "addresses",
            [
                AddressData(
                    line1="12 Lantern Way", city="Springfield", state="MA", postal_code="01103"
                )
            ],
        ),
        telecoms=overrides.pop(
            "telecoms", [TelecomData(system="phone", value="(413) 555-0142", use="mobile")]
        ),
        **overrides,
    )


def register_patient(personas: Personas, **overrides):
    """Register a synthetic patient at the main facility through the real action."""
    from patients.actions import do_register_patient

    facility = overrides.pop("facility", personas.facility)
    return do_register_patient(
        patient_data(**overrides), facility=facility, acting_user=personas.technician
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


def shared_data_dir() -> Path:
    """The team's shared synthetic data (Synthea bundles, FHIR examples, HL7 samples):
    ``RECORDROOM_SHARED_DATA`` when set, else ``../shared/data`` beside the checkout,
    else ``/work/shared/data`` (a clean clone elsewhere on the same machine)."""
    configured = os.environ.get("RECORDROOM_SHARED_DATA")
    candidates = [Path(configured)] if configured else []
    candidates += [
        Path(__file__).resolve().parents[2] / "shared" / "data",
        Path("/work/shared/data"),
    ]
    for candidate in candidates:
        if (candidate / "synthea-r4").is_dir():
            return candidate
    return candidates[0]
