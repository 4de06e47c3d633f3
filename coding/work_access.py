"""The doors of the coding work: who may read the queue, the DNFB report, productivity,
reviews and queries, and the audit rows those reads leave.

Who sees what:

- ``coding.code`` (coders): the work queue, claiming and releasing, asking queries;
- ``coding.view_reports`` (coders, HIM administrators): DNFB and productivity;
- ``coding.review`` (HIM administrators): second-level review samples and accuracy;
- ``coding.answer_queries`` (clinicians): the queries addressed to them.

A refusal is audited before it is raised (``accounts.access.require_permission``),
outside any transaction of the caller's. A page that names patients is audited once with
the public ids of the patients it shows; a figures page without patients is audited
without them. Encounters of another facility answer the same 404 as missing ones.

The coding policy (``CodingPolicy``: code before the record is complete, the review
sample's percentage, the document type of a query's answer) is data with effective
dates; :func:`policy_for` picks the one in force.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from accounts.access import has_permission, require_permission
from accounts.models import Facility
from audit.actions import record_event
from audit.models import Action, Outcome
from coding.models import CodingPolicy
from coding.permissions import CodingPermission as K
from patients.access import default_purpose, facility_ids
from recordroom import clock

POLICY_DEFAULTS: dict = {
    "code_before_complete": False,
    "review_sample_percent": Decimal("5"),
    "query_response_loinc": "11506-3",
}


def require(user, permission: str, object_type: str, *, action=Action.VIEW, object_id="") -> None:
    """Refuse (audited) a user without ``permission``."""
    require_permission(
        user,
        permission,
        action=action,
        purpose=default_purpose(user),
        object_type=object_type,
        object_id=str(object_id)[:64],
    )


def may(user, permission: str) -> bool:
    return has_permission(user, permission)


def deny(user, object_type: str, object_id, reason: str, *, action=Action.VIEW, patient_id=None):
    """Audit a refusal that is not about a missing permission (not found, not yours)."""
    record_event(
        user,
        action,
        outcome=Outcome.DENIED,
        purpose=default_purpose(user),
        patient_id=patient_id,
        object_type=object_type,
        object_id=str(object_id)[:64],
        reason=reason,
    )


def audit_list(user, object_type: str, patient_ids, *, action=Action.VIEW, **detail) -> None:
    """One audit row for a page or export that names patients: which ones it showed."""
    shown = list(dict.fromkeys(str(p) for p in patient_ids))
    record_event(
        user,
        action,
        purpose=default_purpose(user),
        object_type=object_type,
        detail={**detail, "count": len(shown), "shown": shown},
    )


def audit(user, action, object_type: str, *, object_id="", patient_id=None, **detail) -> None:
    record_event(
        user,
        action,
        purpose=default_purpose(user),
        patient_id=patient_id,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail,
    )


def parse_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def user_facility_ids(user) -> set[int]:
    return facility_ids(user)


def facilities_of(user) -> list[Facility]:
    return list(Facility.objects.filter(pk__in=facility_ids(user)).order_by("name"))


# --- policy ------------------------------------------------------------------------------


def local_date(moment: dt.datetime) -> dt.date:
    return timezone.localtime(moment).date()


def policy_for(facility=None, on: dt.date | None = None) -> CodingPolicy:
    """The coding policy in force on ``on`` (default today, local) for ``facility`` (a
    Facility, its id or None): a facility's own newest policy first, then the policy for
    all facilities, then an unsaved policy with the US defaults."""
    day = on or local_date(clock.now())
    facility_id = getattr(facility, "pk", facility)
    candidates = CodingPolicy.objects.filter(effective_from__lte=day)
    if facility_id is not None:
        candidates = candidates.filter(Q(facility_id=facility_id) | Q(facility__isnull=True))
    else:
        candidates = candidates.filter(facility__isnull=True)
    chosen = None
    for policy in candidates.order_by("-effective_from", "-pk"):
        if policy.facility_id is not None:
            return policy
        if chosen is None:
            chosen = policy
    if chosen is not None:
        return chosen
    return CodingPolicy(
        effective_from=dt.date(1900, 1, 1), created_at=clock.now(), **POLICY_DEFAULTS
    )


def policies_today(facility_ids_: set[int]) -> dict[int, CodingPolicy]:
    """The policy in force today for each of the given facilities."""
    return {fid: policy_for(fid) for fid in facility_ids_}


__all__ = [
    "K",
    "audit",
    "audit_list",
    "deny",
    "facilities_of",
    "may",
    "parse_uuid",
    "policies_today",
    "policy_for",
    "require",
]
