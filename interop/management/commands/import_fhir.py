"""``recordroom import-fhir PATH...``: load FHIR R4 files, folders, NDJSON or Bundles."""

from __future__ import annotations

import sys
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.access import AccessDenied
from accounts.models import Facility
from accounts.roles import Role
from interop.import_actions import do_import_paths
from interop.outcome import FhirError


def _integration_account(username: str | None):
    users = get_user_model().objects.filter(is_active=True)
    if username:
        user = users.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no active account {username!r}.")
        return user
    user = (
        users.filter(is_system_account=True, groups__name=Role.INTEGRATION.value)
        .order_by("pk")
        .first()
    )
    if user is None:
        raise CommandError(
            "There is no active system account with the integration role: create one "
            "(recordroom add-user … --role integration) or name an account with --as."
        )
    return user


class _Progress:
    """Resources per second on stderr, only when stderr is a terminal."""

    def __init__(self, stream) -> None:
        self.enabled = stream.isatty()
        self.started = time.monotonic()
        self.done = 0
        self._progress = None
        if self.enabled:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.completed:,} resources"),
                TextColumn("{task.fields[rate]:,.0f} resources/s"),
                TimeElapsedColumn(),
                console=Console(file=stream),
                transient=True,
            )
            self._task = self._progress.add_task("import", total=None, rate=0.0)
            self._progress.start()

    def __call__(self, number: int) -> None:
        self.done += number
        if self._progress is not None:
            elapsed = max(time.monotonic() - self.started, 1e-6)
            self._progress.update(self._task, completed=self.done, rate=self.done / elapsed)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


class Command(BaseCommand):
    help = (
        "Import FHIR R4 data: files and folders (*.json lone resources or Bundles, "
        "*.ndjson one resource a line). Each Bundle, line or lone resource is one unit, "
        "written whole or not at all; refused units are quarantined (the import-errors "
        "screen). Exits 1 when any unit was refused, after importing the good ones."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")
        parser.add_argument(
            "--source",
            default="import",
            help="The sender's system: the namespace of resource ids without meta.source.",
        )
        parser.add_argument(
            "--facility", help="Facility code patients are registered at (default: the account's)."
        )
        parser.add_argument(
            "--allow-unresolved",
            action="store_true",
            help="For reference material: keep a reference that cannot be resolved as "
            "written (with a warning) unless RecordRoom needs it to place the resource "
            "(its patient/subject or encounter). Default: such a unit is refused.",
        )
        parser.add_argument(
            "--as",
            dest="username",
            help="Import as this account (default: the first active integration system account).",
        )

    def handle(self, *args, paths, source, facility, username, allow_unresolved, **options):
        user = _integration_account(username)
        chosen = None
        if facility:
            chosen = Facility.objects.filter(code=facility).first()
            if chosen is None:
                raise CommandError(f"There is no facility with code {facility!r}.")
        progress = _Progress(sys.stderr)
        started = time.monotonic()
        try:
            result = do_import_paths(
                paths,
                acting_user=user,
                source=source,
                facility=chosen,
                progress=progress,
                allow_unresolved=allow_unresolved,
                keep_results=False,
            )
        except AccessDenied:
            raise CommandError(f"The account {user.username} may not import FHIR data.") from None
        except FileNotFoundError as error:
            raise CommandError(str(error)) from None
        except FhirError as error:
            raise CommandError(str(error)) from None
        finally:
            progress.stop()
        elapsed = max(time.monotonic() - started, 1e-6)
        self._report(result, elapsed)
        if result.units_refused:
            sys.exit(1)

    def _report(self, result, elapsed: float) -> None:
        write = self.stdout.write
        header = f"{'resource type':<28}{'created':>9}{'updated':>9}{'unchanged':>11}{'refused':>9}"
        write(header)
        for rtype in sorted(result.counts):
            c = result.counts[rtype]
            write(
                f"{rtype:<28}{c['created']:>9,}{c['updated']:>9,}{c['unchanged']:>11,}{c['refused']:>9,}"
            )
        t = result.totals()
        write(
            f"{'total':<28}{t['created']:>9,}{t['updated']:>9,}{t['unchanged']:>11,}{t['refused']:>9,}"
        )
        done = t["created"] + t["updated"] + t["unchanged"]
        write(
            f"{result.units_accepted:,} units imported, {result.units_refused:,} refused; "
            f"{done:,} resources in {elapsed:.1f} s ({done / elapsed:,.0f} resources/s)."
        )
        if result.warnings:
            write(
                f"{result.warnings:,} unresolved references kept as written "
                "(--allow-unresolved); each is a warning in its unit's outcome."
            )
        for refused in result.refused[:50]:
            where = f"{refused.source} {refused.position}".strip()
            self.stderr.write(f"refused: {where}: {refused.reason} (unit {refused.public_id})")
        if len(result.refused) > 50:
            self.stderr.write(f"… and {len(result.refused) - 50} more refused units.")
        if result.refused:
            self.stderr.write(
                "Refused units wait in quarantine: /interop/imports/ (Import errors)."
            )
