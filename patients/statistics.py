"""Master-patient-index and break-the-glass figures for the HIM department's statistics
(``reports.department``): aggregates only, never a patient row, each one set-based
query. These functions do not check permissions: the caller (``reports.department``)
does, and audits the view.

- :func:`record_counts` — patient records with an MRN at the facilities, and how many
  of them were merged into another (found to be duplicates).
- :func:`break_the_glass_counts` — break-the-glass accesses to patients of the
  facilities granted in ``[low, high)``, by the privacy officer's review.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Exists, OuterRef, Q

from patients.models import AccessGrant, IdentifierKind, Patient, PatientIdentifier


def _mrns_at(facility_ids: list[int]):
    return PatientIdentifier.objects.filter(kind=IdentifierKind.MRN, facility_id__in=facility_ids)


def record_counts(facility_ids: list[int]) -> dict[str, int]:
    """``{records, merged}``."""
    at_facility = Exists(_mrns_at(facility_ids).filter(patient=OuterRef("pk")))
    return Patient.objects.filter(at_facility).aggregate(
        records=Count("pk"), merged=Count("pk", filter=Q(merged_into__isnull=False))
    )


def break_the_glass_counts(
    facility_ids: list[int], *, low: dt.datetime, high: dt.datetime
) -> dict[str, int]:
    """``{total, pending, appropriate, inappropriate}``."""
    review = AccessGrant.Review
    return AccessGrant.objects.filter(
        kind=AccessGrant.Kind.BREAK_THE_GLASS,
        patient_id__in=_mrns_at(facility_ids).values("patient_id"),
        granted_at__gte=low,
        granted_at__lt=high,
    ).aggregate(
        total=Count("pk"),
        pending=Count("pk", filter=Q(review_status=review.PENDING)),
        appropriate=Count("pk", filter=Q(review_status=review.APPROPRIATE)),
        inappropriate=Count("pk", filter=Q(review_status=review.INAPPROPRIATE)),
    )
