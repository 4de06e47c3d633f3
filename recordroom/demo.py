"""The synthetic demo department. Every name here is invented."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from accounts.actions import do_provision_user
from accounts.roles import Role, mfa_required_roles

DEMO_PASSWORD = "recordroom-demo-2026"  # noqa: S105 - a published demo password for synthetic accounts
# The demo's FHIR API client (client credentials, acting as the integration account).
DEMO_CLIENT_ID = "demo-warehouse"
DEMO_CLIENT_SECRET = "recordroom-demo-client-2026"  # noqa: S105 - published, demo only


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    role: Role
    also: tuple[Role, ...] = ()


DEMO_USERS = [
    DemoUser("tech", "Tessa", "Okafor", Role.HIM_TECHNICIAN),
    DemoUser("admin", "Adrian", "Lindqvist", Role.HIM_ADMINISTRATOR),
    DemoUser("coder", "Corinne", "Abara", Role.CODER),
    DemoUser("roi", "Rafael", "Mendoza", Role.ROI_SPECIALIST),
    DemoUser("clinician", "Dr. Claire", "Huang", Role.CLINICIAN, (Role.DENIAL_REVIEWER,)),
    DemoUser("privacy", "Priya", "Natarajan", Role.PRIVACY_OFFICER),
    DemoUser("patient", "Pat", "Example", Role.PATIENT),
    DemoUser("integration", "Interface", "Engine", Role.INTEGRATION),
]


DEMO_FACILITIES = [
    ("rrgh", "RecordRoom General Hospital", "RG", 320),
    ("rrwc", "RecordRoom West Clinic", "WC", 0),
]


def load_demo_facilities():
    from accounts.models import Facility

    facilities = []
    for code, name, prefix, beds in DEMO_FACILITIES:
        facility, _ = Facility.objects.get_or_create(
            code=code, defaults={"name": name, "mrn_prefix": prefix, "bed_count": beds}
        )
        facilities.append(facility)
    return facilities


def load_demo_users() -> list[tuple[DemoUser, bool]]:
    """Create the demo accounts that do not exist yet; returns (user, created)."""
    users = get_user_model().objects
    facilities = load_demo_facilities()
    result = []
    for demo in DEMO_USERS:
        if users.filter(username=demo.username).exists():
            result.append((demo, False))
            continue
        user = do_provision_user(
            username=demo.username,
            first_name=demo.first_name,
            last_name=demo.last_name,
            email=f"{demo.username}@recordroom.invalid",
            roles=[demo.role.value, *(role.value for role in demo.also)],
            password=DEMO_PASSWORD,
            reason="demo account",
        )
        user.facilities.set(facilities)
        result.append((demo, True))
    return result


def load_demo_client() -> bool:
    """The demo's system client of the FHIR API, once; returns whether it was created."""
    from interop.clients import ClientData, do_register_client
    from interop.models import ApiClient

    if ApiClient.objects.filter(client_id=DEMO_CLIENT_ID).exists():
        return False
    do_register_client(
        ClientData(
            name="Demo data warehouse",
            kind="system",
            scopes="system/*.read system/*.write",
            account="integration",
        ),
        acting_user=None,
        client_id=DEMO_CLIENT_ID,
        secret=DEMO_CLIENT_SECRET,
    )
    return True


def login_table() -> str:
    mfa = mfa_required_roles()
    lines = ["", "Demo log-ins (synthetic accounts) — password for all: " + DEMO_PASSWORD]
    for demo in DEMO_USERS:
        note = ""
        if demo.role == Role.INTEGRATION:
            note = "  (API only)"
        elif demo.role.value in mfa:
            note = "  (sets up an authenticator app at first log-in)"
        if demo.also:
            note += "  (also " + ", ".join(role.label for role in demo.also) + ")"
        lines.append(f"  {demo.username:<12} {demo.role.label}{note}")
    lines.append(
        f"FHIR API client (client credentials, docs/fhir.md): {DEMO_CLIENT_ID} / "
        f"{DEMO_CLIENT_SECRET}"
    )
    return "\n".join(lines)
