from django.core.management.base import BaseCommand

from recordroom.demo import DEMO_USERS, load_demo_users, login_table


class Command(BaseCommand):
    help = "Load the synthetic demo department (once: what exists is left alone) and print the log-ins."

    def add_arguments(self, parser):
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print the log-ins.")

    def handle(self, *args, quiet_logins=False, **options):
        created = sum(1 for _, was_created in load_demo_users() if was_created)
        self.stdout.write(
            f"Demo users: {created} created, {len(DEMO_USERS) - created} already there."
        )
        if not quiet_logins:
            self.stdout.write(login_table())
