"""Counts for the coding panels on the home page (recordroom/home.py): the coder's work
queue, the queries the department waits on, and the queries waiting for a clinician.
Set-based queries returning numbers (and, for the queue, visit numbers with their age),
never a patient's name; each is audited as a figures view without patients."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q

from audit.models import Action
from coding import work_access as wa
from coding.models import PhysicianQuery, QueryStatus
from coding.permissions import CodingPermission as K
from recordroom import clock

LATE_QUERY_DAYS = 7


@dataclass(frozen=True)
class QueryCounts:
    open: int
    mine: int
    late: int
    late_days: int = LATE_QUERY_DAYS

    def __bool__(self) -> bool:
        # The panel shows its counts even when they are all zero.
        return True


class _Counts(dict):
    def __bool__(self) -> bool:
        return True


def work_queue(user) -> dict:
    """Discharged encounters ready for coding: how many, how many are the user's, how
    many unclaimed, and the oldest few by visit number (coders)."""
    from coding.queue import queue_counts

    counts = _Counts(queue_counts(user))
    wa.audit(user, Action.VIEW, "coding.summary", panel="work_queue")
    return counts


def _query_counts(user, base, mine_filter: Q) -> QueryCounts:
    late = clock.now() - dt.timedelta(days=LATE_QUERY_DAYS)
    counts = base.filter(status=QueryStatus.OPEN).aggregate(
        open=Count("pk"),
        mine=Count("pk", filter=mine_filter),
        late=Count("pk", filter=Q(asked_at__lt=late)),
    )
    return QueryCounts(**counts)


def open_queries(user) -> QueryCounts:
    """Physician queries at the user's facilities that wait for an answer (coders)."""
    wa.require(user, K.CODE, "coding.summary")
    base = PhysicianQuery.objects.filter(
        abstract__encounter__facility_id__in=wa.user_facility_ids(user)
    )
    counts = _query_counts(user, base, Q(asked_by=user))
    wa.audit(user, Action.VIEW, "coding.summary", panel="open_queries")
    return counts


def my_queries(user) -> QueryCounts:
    """Queries waiting for this clinician's answer."""
    wa.require(user, K.ANSWER_QUERIES, "coding.summary")
    base = PhysicianQuery.objects.filter(clinician=user)
    counts = _query_counts(user, base, Q(clinician=user))
    wa.audit(user, Action.VIEW, "coding.summary", panel="my_queries")
    return counts
