"""US federal default fee schedules (effective 2013-09-23, the HITECH omnibus rule).

- The patient's own copy (and a personal representative's): cost-based — the labour of
  copying, supplies for paper, media, postage; no search or retrieval fee — with the
  flat fee of $6.50 for an electronic copy of electronic records (HHS guidance).
- Third parties (attorneys, payers, subpoenas, court orders, research, other): a
  state-style per-page fee with a first-pages rule. The figures are placeholders to be
  replaced by the state's table (a schedule per state with its effective dates).
- Providers for continuing care, public health and law enforcement: no charge.

Re-runnable: a schedule with the same name and effective date is left alone.
"""

import datetime as dt

from django.db import migrations
from django.utils import timezone

EFFECTIVE = dt.date(2013, 9, 23)
SCHEDULES = [
    (
        "Patient's own copy (cost-based)",
        ["patient", "representative"],
        {
            "method": "cost",
            "flat_fee_electronic": "6.50",
            "labour_per_hour": "25.00",
            "pages_per_hour": "300",
            "supplies_per_page": "0.05",
            "media": "5.00",
            "postage": "1.50",
            "search_fee": "0",
        },
    ),
    (
        "Third party (per page, first pages rule)",
        ["attorney", "payer", "subpoena", "court_order", "research", "other"],
        {
            "method": "per_page",
            "first_pages": 25,
            "first_pages_price": "1.00",
            "per_page": "0.50",
            "postage": "1.50",
        },
    ),
    (
        "Continuing care and public agencies (no charge)",
        ["provider", "public_health", "law_enforcement"],
        {"method": "none"},
    ),
]


def seed(apps, schema_editor):
    FeeSchedule = apps.get_model("roi", "FeeSchedule")
    now = timezone.now()
    for name, types, parameters in SCHEDULES:
        FeeSchedule.objects.get_or_create(
            name=name,
            effective_from=EFFECTIVE,
            state="",
            defaults={"requester_types": types, "parameters": parameters, "created_at": now},
        )


def unseed(apps, schema_editor):
    FeeSchedule = apps.get_model("roi", "FeeSchedule")
    FeeSchedule.objects.filter(
        name__in=[name for name, _, _ in SCHEDULES], effective_from=EFFECTIVE, state=""
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("roi", "0002_disclosure_basis_suspension_amendment_travel")]

    operations = [migrations.RunPython(seed, unseed)]
