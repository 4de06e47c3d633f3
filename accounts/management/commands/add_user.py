import getpass
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.actions import do_provision_user
from accounts.roles import Role


class Command(BaseCommand):
    help = "Create an account from the command line (e.g. the first HIM administrator). Audited."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", action="append", required=True, choices=Role.values)
        parser.add_argument("--first-name", required=True)
        parser.add_argument("--last-name", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-file", type=Path, help="Read the password from this file instead of asking."
        )

    def handle(self, *args, username, role, first_name, last_name, email, password_file, **opts):
        if password_file:
            password = password_file.read_text().strip()
        else:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The two passwords differ.")
        try:
            user = do_provision_user(
                username=username,
                first_name=first_name,
                last_name=last_name,
                email=email,
                roles=role,
                password=password,
                reason="created from the command line",
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"Created {user.username} ({', '.join(role)})."))
