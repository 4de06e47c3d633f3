"""`recordroom completion analyse [--encounter PUBLIC_ID] [--all-open]` and
`recordroom completion remind`.

``analyse --all-open`` is the daily sweep (cron or the task runner): deadlines pass
without any change to a record, and this is when a gap not yet due becomes a
deficiency. It analyses every encounter in progress or discharged whose record is not
complete or still has an open deficiency.
"""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError
from rich.progress import Progress

from completion.analysis import analyse_encounter, open_records
from completion.models import RecordStatus
from encounters.models import Encounter


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class Command(BaseCommand):
    help = (
        "Chart completion. `completion analyse --encounter ID` analyses one record; "
        "`completion analyse --all-open` every open one; `completion remind` sends the "
        "reminders due before records become delinquent."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        analyse = sub.add_parser("analyse", help="Analyse records against the completion rules.")
        analyse.add_argument("--encounter", metavar="PUBLIC_ID", help="One encounter's public id.")
        analyse.add_argument(
            "--all-open",
            action="store_true",
            help="Every encounter in progress or discharged whose record is not complete.",
        )
        sub.add_parser("remind", help="Send the reminders due now (e-mail and in-app inbox).")

    def handle(self, *args, operation, **options):
        if operation == "analyse":
            self._analyse(options)
        elif operation == "remind":
            self._remind()

    def _analyse(self, options) -> None:
        one, every = options.get("encounter"), options.get("all_open")
        if bool(one) == bool(every):
            raise CommandError("Give either --encounter PUBLIC_ID or --all-open.")
        if one:
            try:
                key = uuid.UUID(str(one))
            except ValueError:
                raise CommandError(f"{one[:40]!r} is not an encounter id (a UUID).") from None
            encounter = Encounter.objects.filter(public_id=key).first()
            if encounter is None:
                raise CommandError(f"No encounter {key}.")
            result = analyse_encounter(encounter, trigger="command")
            self.stdout.write(
                f"Encounter {key}: {result.opened} opened, {result.closed} completed, "
                f"{result.voided} void, {result.late} recorded late, {result.unchanged} "
                f"unchanged; record {result.status.replace('_', ' ')}, deficiencies "
                f"{result.open_count} open."
            )
            return
        encounters = open_records()
        total = encounters.count()
        counts = {"opened": 0, "closed": 0, "voided": 0, "late": 0, "complete": 0}
        with Progress(disable=options["verbosity"] < 1 or total < 200) as progress:
            task = progress.add_task("Analysing open records", total=total)
            for encounter in encounters.iterator(chunk_size=500):
                result = analyse_encounter(encounter, trigger="command --all-open")
                for key in ("opened", "closed", "voided", "late"):
                    counts[key] += getattr(result, key)
                counts["complete"] += result.status == RecordStatus.COMPLETE
                progress.advance(task)
        self.stdout.write(
            self.style.SUCCESS(
                f"Analysed {_plural(total, 'record')}: {counts['opened']} deficiencies opened, "
                f"{counts['closed']} completed, {counts['voided']} void, {counts['late']} "
                f"recorded late; {counts['complete']} records now complete."
            )
        )

    def _remind(self) -> None:
        from completion.reminders import send_reminders

        counts = send_reminders()
        summary = ", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Reminders sent. {summary or 'nothing due'}."))
