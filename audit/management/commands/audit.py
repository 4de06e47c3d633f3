from django.core.management.base import BaseCommand, CommandError
from rich.progress import Progress

from audit.models import AuditEvent
from audit.verify import verify_chain


class Command(BaseCommand):
    help = "Audit-trail operations. `audit verify` walks the hash chain and names the first broken row."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="operation", required=True)
        sub.add_parser("verify", help="Recompute every row's hash and check the chain.")

    def handle(self, *args, operation, **options):
        if operation == "verify":
            total = AuditEvent.objects.count()
            with Progress(disable=options["verbosity"] < 1 or total < 50_000) as progress:
                task = progress.add_task("Verifying the audit trail", total=total)
                result = verify_chain(progress=lambda n: progress.advance(task, n))
            if not result.ok:
                raise CommandError(
                    f"Audit trail BROKEN at row {result.broken_seq}: {result.problem} "
                    f"({result.rows_checked} rows before it are intact)."
                )
            self.stdout.write(
                self.style.SUCCESS(
                    f"Audit trail intact: {result.rows_checked} row{'' if result.rows_checked == 1 else 's'} verified."
                )
            )
