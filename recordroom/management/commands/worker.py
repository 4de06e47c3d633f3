from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the background worker (django-tasks database backend) until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between polls.")
        parser.add_argument("--batch", action="store_true", help="Run what is queued, then exit.")

    def handle(self, *args, interval, batch, **options):
        arguments = ["--interval", str(interval)]
        if batch:
            arguments.append("--batch")
        else:
            # The daily chart-completion sweep and reminders re-queue themselves; make
            # sure one run is waiting (nothing is queued twice).
            from completion.reminder_tasks import schedule_next

            schedule_next()
        call_command("db_worker", *arguments)
