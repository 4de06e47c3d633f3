"""US defaults for the hospital statistics, seeded once (re-running adds nothing):

- the statistics definitions (AHIMA): a newborn is a baby born in this hospital (UB-04
  point of origin "5a"); a death is discharge status "20" (expired); the net death
  rate leaves out deaths under 48 hours; a post-operative death is one within 10 days
  of surgery; surgery is a Procedure of category SNOMED CT 387713003 "Surgical
  procedure"; a consultation is a Consult note (LOINC 11488-4);
- the 30-day readmission rule, loosely after CMS's Planned Readmission Algorithm
  (version 4, ICD-10): a readmission is planned when its principal diagnosis is
  radiotherapy (Z51.0), chemotherapy or immunotherapy (Z51.1-), other specified
  aftercare such as rehabilitation (Z51.89) or organ donation (Z52-), or when it has a
  transplant (ICD-10-PCS heart 02YA, lung 0BY, liver 0FY0, pancreas 0FYG, kidney
  0TY0/0TY1, intestine 0DY8/0DYE) or a stem-cell or bone-marrow infusion (30233/30243
  G, X, Y); index stays ending in death (20), against medical advice (07) or transfer
  to another acute hospital (02) are not counted; only the first readmission counts.
"""

import datetime as dt

from django.db import migrations
from django.utils import timezone

SINCE = dt.date(2000, 1, 1)
REASON = "US default (AHIMA definitions; CMS planned readmission algorithm, abridged)"

READMISSION = {
    "window_days": 30,
    "planned_admit_sources": [],
    "planned_diagnosis_prefixes": ["Z510", "Z511", "Z5189", "Z52"],
    "planned_procedure_prefixes": [
        "02YA",
        "0BY",
        "0FY0",
        "0FYG",
        "0TY0",
        "0TY1",
        "0DY8",
        "0DYE",
        "30233G",
        "30233X",
        "30233Y",
        "30243G",
        "30243X",
        "30243Y",
    ],
    "exclude_dispositions": ["20", "07", "02"],
    "first_only": True,
    "parameters": {"source": "CMS Planned Readmission Algorithm v4.0 (abridged)"},
}

POLICY = {
    "newborn_admit_sources": ["5a"],
    "death_dispositions": ["20"],
    "net_death_hours": 48,
    "postoperative_days": 10,
    "surgical_categories": ["387713003"],
    "surgical_codes": [],
    "consultation_document_codes": ["11488-4"],
}


def seed(apps, schema_editor):
    ReadmissionRule = apps.get_model("reports", "ReadmissionRule")
    StatisticsPolicy = apps.get_model("reports", "StatisticsPolicy")
    now = timezone.now()
    if not ReadmissionRule.objects.exists():
        ReadmissionRule.objects.create(
            effective_from=SINCE, created_at=now, change_reason=REASON, **READMISSION
        )
    if not StatisticsPolicy.objects.exists():
        StatisticsPolicy.objects.create(
            effective_from=SINCE, created_at=now, change_reason=REASON, **POLICY
        )


class Migration(migrations.Migration):
    dependencies = [("reports", "0002_statistics_policy")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
