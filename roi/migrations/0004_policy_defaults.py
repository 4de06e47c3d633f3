"""US federal defaults for release of information (45 CFR 164.524, 164.526, 164.528)
and the department's own targets for other requesters; a facility overrides them with
its own rows."""

import datetime as dt

from django.db import migrations

DUE_DAYS = {
    "patient": 30,
    "representative": 30,
    "provider": 1,
    "payer": 15,
    "attorney": 15,
    "subpoena": 14,
    "court_order": 14,
    "law_enforcement": 10,
    "public_health": 10,
    "research": 30,
    "other": 30,
}


def seed(apps, schema_editor):
    RoiPolicy = apps.get_model("roi", "RoiPolicy")
    if RoiPolicy.objects.filter(facility__isnull=True).exists():
        return
    RoiPolicy.objects.create(
        facility=None,
        effective_from=dt.date(2000, 1, 1),
        due_days=DUE_DAYS,
        extension_days=30,
        urgent_same_day=True,
        quality_check_required=True,
        download_link_days=30,
        accounting_due_days=60,
        accounting_extension_days=30,
        accounting_years=6,
        amendment_due_days=60,
        amendment_extension_days=30,
        parameters={
            "accounting_fee": "25.00",
            "privacy_contact": "the Privacy Officer, Health Information Management",
            "statement_max_chars": 10000,
            "amendment_document_loinc": "51852-2",
        },
        created_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        change_reason="US federal defaults (45 CFR 164.524, 164.526, 164.528)",
    )


class Migration(migrations.Migration):
    dependencies = [("roi", "0003_fee_schedule_defaults")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
