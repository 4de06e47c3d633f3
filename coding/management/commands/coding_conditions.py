"""``recordroom coding-conditions``: an upgrade step. Since RecordRoom keeps the final
codes of an abstract as encounter-diagnosis Conditions when it is finalised (served by
the FHIR Condition API), abstracts finalised before that get theirs here. Safe to run
again: an abstract that has them is left alone. Audited as the system."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from coding.abstracts import project_earlier_final_abstracts


class Command(BaseCommand):
    help = "Keep the final codes of earlier final abstracts as FHIR Conditions (upgrade step)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="At most this many.")

    def handle(self, *args, limit=None, **options):
        done = project_earlier_final_abstracts(limit=limit)
        self.stdout.write(f"{done} encounter(s) got the Conditions of their final codes.")
