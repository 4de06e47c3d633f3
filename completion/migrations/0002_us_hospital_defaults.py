"""Seed the default completion rules for US hospitals (42 CFR 482.24 and the sections
it leans on) and the default completion policy.

Re-runnable: a rule whose code already exists, or a policy for all facilities that
already exists, is left as it is (an administrator may have changed it since).
"""

import datetime as dt
from decimal import Decimal

from django.db import migrations
from django.utils import timezone

EFFECTIVE_FROM = dt.date(2000, 1, 1)
ALL = ["IMP", "OBSENC", "EMER", "AMB"]
STAYS = ["IMP", "OBSENC"]

# (code, kind, name, citation, encounter classes, LOINC document type, parameters, description)
RULES = [
    (
        "hp-timely",
        "history_physical",
        "History and physical within 30 days before or 24 hours after admission",
        "42 CFR 482.22(c)(5)(i); 482.24(c)(4)(i)",
        STAYS,
        "34117-2",
        {"days_before": 30, "hours_after": 24},
        "A medical history and physical examination completed and documented no more than "
        "30 days before or 24 hours after admission or registration.",
    ),
    (
        "hp-update",
        "hp_update",
        "H&P update within 24 hours when the H&P was done before admission",
        "42 CFR 482.22(c)(5)(ii); 482.24(c)(4)(i)(B)",
        STAYS,
        "34117-2",
        {
            "days_before": 30,
            "hours_after": 24,
            "update_types": ["34117-2", "11506-3"],
            "update_title_words": ["H&P update", "interval history"],
        },
        "An H&P completed within 30 days before admission needs an updated examination, "
        "documented within 24 hours after admission.",
    ),
    (
        "hp-before-procedure",
        "hp_before_procedure",
        "H&P before surgery or a procedure under anaesthesia",
        "42 CFR 482.51(b)(1); 482.24(c)(4)(i)",
        ["IMP", "OBSENC", "AMB"],
        "34117-2",
        {
            "days_before": 30,
            "surgical_categories": ["387713003"],
            "surgical_codes": [],
            "anaesthesia_extension": (
                "https://recordroom.org/fhir/StructureDefinition/procedure-anaesthesia"
            ),
            "assume_anaesthesia": True,
        },
        "The H&P is in the record before surgery or a procedure requiring anaesthesia, "
        "except in emergencies.",
    ),
    (
        "operative-report",
        "operative_report",
        "Operative report for every surgical procedure",
        "42 CFR 482.51(b)(6); 482.24(c)(4)(vi)",
        ALL,
        "11504-8",
        {
            "hours_after_procedure": 24,
            "surgical_categories": ["387713003"],
            "surgical_codes": [],
            "postop_note_types": ["28570-0"],
            "postop_note_replaces_report": False,
        },
        "An operative report written or dictated immediately after surgery; a post-operative "
        "note entered right away covers the time until the full report is in the record.",
    ),
    (
        "discharge-summary",
        "discharge_summary",
        "Discharge summary for every inpatient discharge",
        "42 CFR 482.24(c)(4)(vii)",
        ["IMP"],
        "18842-5",
        {"hours_after_discharge": 48, "also_accepted_types": []},
        "A discharge summary with the outcome of hospitalization, the disposition and the "
        "provisions for follow-up care.",
    ),
    (
        "authentication",
        "authentication",
        "Every entry authenticated by its author",
        "42 CFR 482.24(c)(1)",
        ALL,
        None,
        {"hours_to_sign": 24, "incomplete_markers": ["***"]},
        "All entries are legible, complete, dated, timed and authenticated by the person "
        "responsible for providing or evaluating the service provided.",
    ),
    (
        "verbal-orders",
        "verbal_order",
        "Verbal and telephone orders authenticated within the state's limit",
        "42 CFR 482.24(c)(3)",
        ALL,
        None,
        {"hours": None},
        "Verbal orders are authenticated by the ordering practitioner within the time frame "
        "set by State law (the completion policy's verbal-order hours).",
    ),
    (
        "final-diagnosis",
        "final_diagnosis",
        "Final diagnosis recorded",
        "42 CFR 482.24(c)(4)(viii)",
        STAYS,
        None,
        {"hours_after_discharge": 48, "categories": ["encounter-diagnosis"]},
        "Final diagnosis with completion of the medical record within 30 days following discharge.",
    ),
]


def seed(apps, schema_editor):
    CompletionRule = apps.get_model("completion", "CompletionRule")
    CompletionPolicy = apps.get_model("completion", "CompletionPolicy")
    DocumentType = apps.get_model("documents", "DocumentType")
    now = timezone.now()
    for code, kind, name, citation, classes, loinc, parameters, description in RULES:
        if CompletionRule.objects.filter(code=code).exists():
            continue
        CompletionRule.objects.create(
            code=code,
            kind=kind,
            name=name,
            description=description,
            citation=citation,
            encounter_classes=classes,
            facility=None,
            document_type=DocumentType.objects.get(loinc_code=loinc) if loinc else None,
            parameters=parameters,
            effective_from=EFFECTIVE_FROM,
            active=True,
            created_at=now,
            created_by=None,
            change_reason="US hospital defaults (42 CFR 482.24)",
        )
    if not CompletionPolicy.objects.filter(facility__isnull=True).exists():
        CompletionPolicy.objects.create(
            facility=None,
            effective_from=EFFECTIVE_FROM,
            completion_days=30,
            verbal_order_hours=48,
            delinquency_alert_percent=Decimal("50"),
            suspension_days=14,
            reminder_days=[7, 3, 1],
            created_at=now,
            created_by=None,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("completion", "0001_initial_completion"),
        ("documents", "0002_seed_loinc_document_types"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
