"""The navigation as data: each entry shows for the users who hold its permission (or
one of its roles). Later apps add their entries here."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.permissions import AccountsPermission
from accounts.roles import role_codes
from audit.permissions import AuditPermission
from patients.permissions import PatientsPermission


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    permission: str = ""
    roles: frozenset[str] = frozenset()


NAVIGATION = [
    NavItem("Home", "home"),
    NavItem("Patients", "patients:search", permission=PatientsPermission.READ_DEMOGRAPHICS),
    NavItem("Register a patient", "patients:register", permission=PatientsPermission.REGISTER),
    NavItem(
        "Break-the-glass review",
        "patients:btg_queue",
        permission=PatientsPermission.REVIEW_BREAK_THE_GLASS,
    ),
    NavItem("Audit trail", "audit:trail", permission=AuditPermission.VIEW_TRAIL),
    NavItem("Users", "accounts:users", permission=AccountsPermission.VIEW_USERS),
    NavItem("My account", "accounts:security"),
]


def items_for(user) -> list[NavItem]:
    from accounts.access import has_permission

    codes = role_codes(user)
    return [
        item
        for item in NAVIGATION
        if (not item.permission or has_permission(user, item.permission))
        and (not item.roles or item.roles & codes)
    ]
