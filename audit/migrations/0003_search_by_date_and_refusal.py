"""Faster audit searches: an index for action and outcome together, and the chain head's
record of how far the clock has stepped back, which date filters use to bound seq.

The backfill walks the trail once in seq order, in batches; it can be re-run.
"""

import datetime as dt

from django.db import migrations, models


def backfill_clock_bounds(apps, schema_editor):
    event_model = apps.get_model("audit", "AuditEvent")
    head_model = apps.get_model("audit", "AuditChainHead")
    latest = None
    step_back = dt.timedelta(0)
    last_seq = 0
    while True:
        batch = list(
            event_model.objects.filter(seq__gt=last_seq)
            .order_by("seq")
            .values_list("seq", "occurred_at")[:10_000]
        )
        if not batch:
            break
        for _seq, occurred_at in batch:
            if latest is None or occurred_at > latest:
                latest = occurred_at
            else:
                step_back = max(step_back, latest - occurred_at)
        last_seq = batch[-1][0]
    head_model.objects.filter(pk=1).update(max_occurred_at=latest, max_step_back=step_back)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only")]

    operations = [
        migrations.AddField(
            model_name="auditchainhead",
            name="max_occurred_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="auditchainhead",
            name="max_step_back",
            field=models.DurationField(default=dt.timedelta(0)),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                fields=["action", "outcome", "-seq"], name="audit_action_outcome_seq"
            ),
        ),
        migrations.RunPython(backfill_clock_bounds, migrations.RunPython.noop),
    ]
