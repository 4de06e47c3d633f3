"""Chart-completion figures for the HIM department's statistics (``reports.department``):
aggregates only, never a patient row, each one set-based query over
:class:`~completion.models.RecordCompletion`. Cancelled encounters and encounters
entered in error are left out. These functions do not check permissions: the caller
(``reports.department``) does, and audits the view.

- :func:`record_totals` — records received (discharged in the range), completed in the
  range, incomplete now and delinquent now (incomplete past their due time); ``None``
  when chart completion has analysed no record at these facilities.
- :func:`incomplete_by_service` — incomplete and delinquent records now, by service.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q

from completion.models import RecordCompletion, RecordStatus
from encounters.models import VOID_ENCOUNTER


def _records(facility_ids: list[int], service: str = ""):
    records = RecordCompletion.objects.filter(encounter__facility_id__in=facility_ids).exclude(
        encounter__status__in=VOID_ENCOUNTER
    )
    if service:
        records = records.filter(encounter__service__iexact=service)
    return records


def record_totals(
    facility_ids: list[int], *, service: str, low: dt.datetime, high: dt.datetime, now
) -> dict[str, int] | None:
    """``{received, completed, incomplete, delinquent}`` for ``[low, high)`` and now."""
    records = _records(facility_ids, service)
    if not records.exists():
        return None
    incomplete = Q(status=RecordStatus.INCOMPLETE)
    return records.aggregate(
        received=Count("pk", filter=Q(discharged_at__gte=low, discharged_at__lt=high)),
        completed=Count(
            "pk",
            filter=Q(status=RecordStatus.COMPLETE, completed_at__gte=low, completed_at__lt=high),
        ),
        incomplete=Count("pk", filter=incomplete),
        delinquent=Count("pk", filter=incomplete & Q(due_at__lt=now)),
    )


def incomplete_by_service(facility_ids: list[int], *, service: str, now) -> list[tuple]:
    """``(service, incomplete, delinquent)`` rows, by service name."""
    rows = (
        _records(facility_ids, service)
        .filter(status=RecordStatus.INCOMPLETE)
        .values("encounter__service")
        .annotate(n=Count("pk"), late=Count("pk", filter=Q(due_at__lt=now)))
        .order_by("encounter__service")
    )
    return [(r["encounter__service"], r["n"], r["late"]) for r in rows]
