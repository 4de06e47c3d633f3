from django.core.management.base import BaseCommand

from accounts.sync import sync_roles


class Command(BaseCommand):
    help = "Write the role → permission mapping (accounts/roles.py) into the database."

    def handle(self, *args, **options):
        counts = sync_roles()
        self.stdout.write(
            f"Synced {counts['roles']} roles and {counts['permissions']} permissions."
        )
