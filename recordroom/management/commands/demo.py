from django.core.management.base import BaseCommand, CommandError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from recordroom.demo import DEMO_USERS, load_demo_client, load_demo_users, login_table


class Command(BaseCommand):
    help = (
        "Load the synthetic demo department once — users, facilities, then patients with "
        "encounters, documents, clinical data and restricted cases — and print the log-ins. "
        "What exists is left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--patients", type=int, default=1000, help="How many patients (default 1000)."
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=2026,
            help="Random seed: the same seed makes the same people.",
        )
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print the log-ins.")

    def handle(self, *args, patients, seed, quiet_logins=False, **options):
        from patients.models import Patient
        from recordroom.demo_data.population import load_population

        if patients < 0:
            raise CommandError("--patients must be 0 or more.")
        created = sum(1 for _, was_created in load_demo_users() if was_created)
        self.stdout.write(
            f"Demo users: {created} created, {len(DEMO_USERS) - created} already there."
        )
        if load_demo_client():
            self.stdout.write("Demo FHIR API client: created.")
        if Patient.objects.exists():
            self.stdout.write("Demo patients: already loaded.")
        elif patients:
            columns = [
                TextColumn("Demo patients"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            ]
            with Progress(*columns, disable=options["verbosity"] < 1) as progress:
                task = progress.add_task("patients", total=patients)
                load_population(patients, seed=seed, progress=lambda n: progress.advance(task, n))
            self.stdout.write(f"Demo patients: {patients} loaded (seed {seed}).")
        if not quiet_logins:
            self.stdout.write(login_table())
