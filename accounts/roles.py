"""Roles of the department and what each may do: the one place they are mapped.

Each app declares its permissions as an enum (``<app>/permissions.py``); this module maps
roles to them. ``recordroom sync-roles`` (also run after every ``migrate``) writes the
mapping into Django's groups and permissions, where ``user.has_perm`` reads it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.permissions import AccountsPermission
from audit.permissions import AuditPermission
from clinical.permissions import ClinicalPermission
from coding.permissions import CodingPermission
from completion.permissions import CompletionPermission
from documents.permissions import DocumentsPermission
from encounters.permissions import EncountersPermission
from interop.permissions import InteropPermission
from patients.permissions import PatientsPermission
from reports.permissions import ReportsPermission
from roi.permissions import RoiPermission


class Role(models.TextChoices):
    HIM_TECHNICIAN = "him_technician", "HIM technician"
    HIM_ADMINISTRATOR = "him_administrator", "HIM administrator"
    CODER = "coder", "Coder"
    ROI_SPECIALIST = "roi_specialist", "Release-of-information specialist"
    CLINICIAN = "clinician", "Clinician"
    DENIAL_REVIEWER = (
        "denial_reviewer",
        "Designated reviewing official (licensed health care professional)",
    )
    PRIVACY_OFFICER = "privacy_officer", "Privacy officer"
    PATIENT = "patient", "Patient"
    INTEGRATION = "integration", "Integration (system account)"


# Every permission enum in the project, so sync-roles knows them all.
PERMISSION_ENUMS: list[type[models.TextChoices]] = [
    AccountsPermission,
    AuditPermission,
    PatientsPermission,
    EncountersPermission,
    DocumentsPermission,
    ClinicalPermission,
    CompletionPermission,
    InteropPermission,
    CodingPermission,
    RoiPermission,
    ReportsPermission,
]

P = PatientsPermission
D = DocumentsPermission
C = CompletionPermission
I = InteropPermission  # noqa: E741
K = CodingPermission
R = RoiPermission
S = ReportsPermission
_READ_RECORD = {P.READ_DEMOGRAPHICS, P.READ_CLINICAL, P.BREAK_THE_GLASS}

ROLE_PERMISSIONS: dict[Role, set[str]] = {
    Role.HIM_TECHNICIAN: {
        *_READ_RECORD,
        P.REGISTER,
        P.UPDATE_DEMOGRAPHICS,
        EncountersPermission.MANAGE,
        D.FILE,
        ClinicalPermission.RECORD,
        C.VIEW_DEFICIENCIES,
        C.MANAGE_DEFICIENCIES,
        C.REVIEW_QUALITY,
        K.LOOK_UP_CODES,
        S.VIEW_HOSPITAL_STATISTICS,
        S.VIEW_DEPARTMENT_STATISTICS,
    },
    Role.HIM_ADMINISTRATOR: {
        AccountsPermission.MANAGE_USERS,
        AccountsPermission.VIEW_USERS,
        AuditPermission.VERIFY_TRAIL,
        *_READ_RECORD,
        P.REGISTER,
        P.UPDATE_DEMOGRAPHICS,
        P.VIEW_NATIONAL_ID,
        P.MANAGE_RESTRICTIONS,
        EncountersPermission.MANAGE,
        D.FILE,
        D.MARK_IN_ERROR,
        D.VIEW_ENTERED_IN_ERROR,
        ClinicalPermission.MARK_IN_ERROR,
        C.VIEW_DEFICIENCIES,
        C.MANAGE_DEFICIENCIES,
        C.MANAGE_RULES,
        C.MANAGE_QUALITY_AUDITS,
        C.REVIEW_QUALITY,
        I.IMPORT,
        I.MANAGE_IMPORT_ERRORS,
        I.BULK_EXPORT,
        I.MANAGE_CLIENTS,
        K.LOOK_UP_CODES,
        K.REVIEW,
        K.VIEW_REPORTS,
        K.MANAGE_CODE_SETS,
        # Not the denial review: that is a designated licensed health care
        # professional's (45 CFR 164.524(a)(4)), Role.DENIAL_REVIEWER.
        *(p for p in RoiPermission if p != R.REVIEW_DENIALS),
        *ReportsPermission,
    },
    Role.CODER: {
        *_READ_RECORD,
        C.VIEW_DEFICIENCIES,
        K.LOOK_UP_CODES,
        K.CODE,
        K.VIEW_REPORTS,
        S.VIEW_DEPARTMENT_STATISTICS,
    },
    Role.ROI_SPECIALIST: {
        *_READ_RECORD,
        P.VIEW_NATIONAL_ID,
        # An accepted amendment (45 CFR 164.526) is filed into the legal record.
        D.FILE,
        R.LOG_REQUESTS,
        R.PROCESS,
        R.QUALITY_CHECK,
        R.VIEW_DASHBOARD,
        R.VIEW_DISCLOSURES,
        R.RECORD_DISCLOSURE,
        R.MANAGE_AMENDMENTS,
        S.VIEW_DEPARTMENT_STATISTICS,
    },
    Role.CLINICIAN: {
        *_READ_RECORD,
        D.AUTHOR,
        D.READ_SENSITIVE,
        ClinicalPermission.RECORD,
        C.COMPLETE_OWN,
        K.LOOK_UP_CODES,
        K.ANSWER_QUERIES,
    },
    # Given, besides their own role, to the licensed health care professionals the
    # organization designates to review denials of access (45 CFR 164.524(a)(4)); they
    # read the records at issue.
    Role.DENIAL_REVIEWER: {*_READ_RECORD, R.REVIEW_DENIALS},
    Role.PRIVACY_OFFICER: {
        AccountsPermission.VIEW_USERS,
        AuditPermission.VIEW_TRAIL,
        AuditPermission.EXPORT_TRAIL,
        AuditPermission.VERIFY_TRAIL,
        P.READ_DEMOGRAPHICS,
        P.MANAGE_RESTRICTIONS,
        P.REVIEW_BREAK_THE_GLASS,
        P.BREAK_THE_GLASS,
        R.VIEW_DISCLOSURES,
        R.RECORD_DISCLOSURE,
        R.VIEW_DASHBOARD,
        S.VIEW_DEPARTMENT_STATISTICS,
    },
    Role.PATIENT: set(),
    # A system account feeding the record: what an import writes (patients, encounters,
    # filed documents, clinical data) and the population-level reads of bulk export.
    Role.INTEGRATION: {
        P.READ_DEMOGRAPHICS,
        P.READ_CLINICAL,
        P.REGISTER,
        P.UPDATE_DEMOGRAPHICS,
        EncountersPermission.MANAGE,
        D.FILE,
        ClinicalPermission.RECORD,
        I.IMPORT,
        I.BULK_EXPORT,
    },
}

# Roles that sign in to the web pages (the integration account only calls the APIs).
INTERACTIVE_ROLES = [role for role in Role if role != Role.INTEGRATION]


def mfa_required_roles() -> set[str]:
    return set(settings.MFA_REQUIRED_ROLES)


def role_codes(user) -> set[str]:
    """The role codes of a user, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_role_codes", None)
    if cached is None:
        valid = set(Role.values)
        cached = {name for name in user.groups.values_list("name", flat=True) if name in valid}
        user._role_codes = cached
    return cached


def roles_of(user) -> list[Role]:
    return [Role(code) for code in sorted(role_codes(user))]


def requires_mfa(user) -> bool:
    return bool(role_codes(user) & mfa_required_roles())
