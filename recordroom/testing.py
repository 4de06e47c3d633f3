"""Test personas, defined once. Every name is invented."""

from __future__ import annotations

from dataclasses import dataclass

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
