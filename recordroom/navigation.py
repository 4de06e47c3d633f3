"""The navigation as data: each entry shows for the users who hold its permission (or
one of its roles). Later apps add their entries here."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.permissions import AccountsPermission
from accounts.roles import Role, role_codes
from audit.permissions import AuditPermission
from coding.permissions import CodingPermission
from completion.permissions import CompletionPermission
from interop.permissions import InteropPermission
from patients.permissions import PatientsPermission
from reports.permissions import ReportsPermission
from roi.permissions import RoiPermission


@dataclass(frozen=True)
class NavItem:
    """Shown to users holding ``permission`` (when set) and one of ``roles`` (when set),
    and also to every user with one of the roles in ``also_roles``."""

    label: str
    url_name: str
    permission: str = ""
    roles: frozenset[str] = frozenset()
    also_roles: frozenset[str] = frozenset()


NAVIGATION = [
    NavItem("Home", "home"),
    NavItem("Patients", "patients:search", permission=PatientsPermission.READ_DEMOGRAPHICS),
    NavItem("Register a patient", "patients:register", permission=PatientsPermission.REGISTER),
    NavItem(
        "Break-the-glass review",
        "patients:btg_queue",
        permission=PatientsPermission.REVIEW_BREAK_THE_GLASS,
    ),
    NavItem("My deficiencies", "completion:queue", permission=CompletionPermission.COMPLETE_OWN),
    NavItem(
        "Chart completion",
        "completion:dashboard",
        permission=CompletionPermission.VIEW_DEFICIENCIES,
    ),
    NavItem("Completion rules", "completion:rules", permission=CompletionPermission.MANAGE_RULES),
    NavItem(
        "Quality audits",
        "completion:quality_audits",
        permission=CompletionPermission.REVIEW_QUALITY,
    ),
    # Clinicians get reminders; HIM administrators the notices about deficiencies that
    # nobody who can sign in holds (completion.reminders).
    NavItem(
        "Inbox",
        "completion:inbox",
        permission=CompletionPermission.COMPLETE_OWN,
        also_roles=frozenset({Role.HIM_ADMINISTRATOR.value}),
    ),
    NavItem("Coding work queue", "coding:queue", permission=CodingPermission.CODE),
    NavItem("Physician queries", "coding:queries", permission=CodingPermission.CODE),
    NavItem("DNFB", "coding:dnfb", permission=CodingPermission.VIEW_REPORTS),
    NavItem("Coder productivity", "coding:productivity", permission=CodingPermission.VIEW_REPORTS),
    NavItem("Coding reviews", "coding:reviews", permission=CodingPermission.REVIEW),
    NavItem("Code look-up", "coding:lookup", permission=CodingPermission.LOOK_UP_CODES),
    NavItem("ROI requests", "roi:queue", permission=RoiPermission.LOG_REQUESTS),
    NavItem("ROI dashboard", "roi:dashboard", permission=RoiPermission.VIEW_DASHBOARD),
    NavItem(
        "Accounting of disclosures", "roi:disclosures", permission=RoiPermission.VIEW_DISCLOSURES
    ),
    NavItem("Amendments", "roi:amendments", permission=RoiPermission.MANAGE_AMENDMENTS),
    NavItem("Denial reviews", "roi:denial_reviews", permission=RoiPermission.REVIEW_DENIALS),
    NavItem(
        "Statistics",
        "reports:dashboard",
        permission=ReportsPermission.VIEW_DEPARTMENT_STATISTICS,
    ),
    NavItem("Import errors", "imports:errors", permission=InteropPermission.MANAGE_IMPORT_ERRORS),
    NavItem("API clients", "clients:list", permission=InteropPermission.MANAGE_CLIENTS),
    NavItem("Audit trail", "audit:trail", permission=AuditPermission.VIEW_TRAIL),
    NavItem("Users", "accounts:users", permission=AccountsPermission.VIEW_USERS),
    NavItem("My account", "accounts:security"),
]


def items_for(user) -> list[NavItem]:
    from accounts.access import has_permission

    codes = role_codes(user)

    def shown(item: NavItem) -> bool:
        if item.also_roles & codes:
            return True
        return (not item.permission or has_permission(user, item.permission)) and (
            not item.roles or bool(item.roles & codes)
        )

    return [item for item in NAVIGATION if shown(item)]
