"""Seed the document types by LOINC document code.

Codes and display names are LOINC's (https://loinc.org): the five notes that chart
completion rules name (H&P, progress, consult, operative, discharge summary), orders,
results reports, correspondence, consent and outside records. Re-runnable: a type that
exists (by code) is brought back to these names; types added by a site are left alone.
"""

from django.db import migrations

# (LOINC code, LOINC display name, short name, category)
DOCUMENT_TYPES = [
    ("34117-2", "History and physical note", "H&P", "clinical-note"),
    ("11506-3", "Progress note", "Progress note", "clinical-note"),
    ("11488-4", "Consult note", "Consultation", "clinical-note"),
    ("11504-8", "Surgical operation note", "Operative report", "clinical-note"),
    ("28570-0", "Procedure note", "Procedure note", "clinical-note"),
    ("34111-5", "Emergency department note", "ED note", "clinical-note"),
    ("18842-5", "Discharge summary", "Discharge summary", "clinical-note"),
    ("18761-7", "Transfer summary note", "Transfer summary", "clinical-note"),
    ("46209-3", "Provider orders", "Orders", "order"),
    ("11502-2", "Laboratory report", "Laboratory report", "result"),
    ("18748-4", "Diagnostic imaging study", "Imaging report", "result"),
    ("11526-1", "Pathology study", "Pathology report", "result"),
    ("47045-0", "Study report", "Study report", "result"),
    ("51852-2", "Letter", "Letter", "correspondence"),
    ("57133-1", "Referral note", "Referral", "correspondence"),
    ("59284-0", "Consent Document", "Consent", "consent"),
    ("42348-3", "Advance directives", "Advance directive", "legal"),
    ("11503-0", "Medical records", "Outside records", "outside-record"),
]


def seed(apps, schema_editor):
    DocumentType = apps.get_model("documents", "DocumentType")
    for code, display, short_name, category in DOCUMENT_TYPES:
        DocumentType.objects.update_or_create(
            loinc_code=code,
            defaults={"display": display, "short_name": short_name, "category": category},
        )


class Migration(migrations.Migration):
    dependencies = [("documents", "0001_initial_documents")]

    # Reversing keeps the rows: documents may already point to them.
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
