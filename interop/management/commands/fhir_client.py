"""``recordroom fhir-client create|list|revoke``: manage the FHIR API's OAuth clients
from the command line (audited; the operator has shell access, like add-user)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from interop import clients
from interop.models import ClientKind


class Command(BaseCommand):
    help = "Register, list or revoke FHIR API clients (OAuth 2.0). The secret is printed once."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Register a client.")
        create.add_argument("--name", required=True)
        create.add_argument("--kind", choices=["system", "app"], default="system")
        create.add_argument("--account", default="", help="System account (system clients).")
        create.add_argument("--scopes", required=True, help='e.g. "system/*.read"')
        create.add_argument(
            "--redirect-uri", action="append", default=[], help="User-facing apps (repeatable)."
        )
        create.add_argument("--public", action="store_true", help="An app without a secret.")
        create.add_argument(
            "--jwks",
            default="",
            help="A JSON file of the system client's public keys (SMART Backend Services); "
            "the client then gets no secret.",
        )
        keys = sub.add_parser("set-jwks", help="Replace a system client's public keys.")
        keys.add_argument("client_id")
        keys.add_argument("jwks", help='A JSON file {"keys": [...]}')
        keys.add_argument("--reason", required=True)
        sub.add_parser("list", help="List the clients.")
        revoke = sub.add_parser("revoke", help="Revoke a client and its tokens.")
        revoke.add_argument("client_id")
        revoke.add_argument("--reason", required=True)

    def handle(self, *args, action, **options):
        getattr(self, f"handle_{action.replace('-', '_')}")(**options)

    def handle_create(self, *, name, kind, account, scopes, redirect_uri, public, jwks, **_):
        data = clients.ClientData(
            name=name,
            kind=ClientKind.SYSTEM if kind == "system" else ClientKind.USER_APP,
            account=account,
            scopes=scopes,
            redirect_uris=redirect_uri,
            public=public,
            jwks=_read_jwks(jwks) if jwks else None,
        )
        try:
            client, secret = clients.do_register_client(data, acting_user=None)
        except ValidationError as error:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
            ) from None
        self.stdout.write(f"client_id={client.client_id}")
        if secret:
            self.stdout.write(f"client_secret={secret}")
            self.stderr.write("The secret is shown only now; RecordRoom keeps only its hash.")

    def handle_set_jwks(self, *, client_id, jwks, reason, **_):
        try:
            client = clients.find_client_for_command(client_id)
            clients.do_set_jwks(client, _read_jwks(jwks), acting_user=None, reason=reason)
        except Http404:
            raise CommandError(f"No client {client_id}.") from None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        kids = ", ".join(str(k.get("kid")) for k in client.jwks.get("keys", []))
        self.stdout.write(f"{client.client_id}: keys {kids}")

    def handle_list(self, **_):
        for client in clients.list_clients(None):
            state = "active" if client.active else "revoked"
            account = client.account.username if client.account else "-"
            self.stdout.write(
                f"{client.client_id}\t{client.kind}\t{state}\t{account}\t{client.name}\t"
                f"{client.allowed_scopes}"
            )

    def handle_revoke(self, *, client_id, reason, **_):
        try:
            client = clients.find_client_for_command(client_id)
            revoked = clients.do_revoke_client(client, reason=reason, acting_user=None)
        except Http404:
            raise CommandError(f"No client {client_id}.") from None
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(f"Revoked {client.client_id} and {revoked} token(s).")


def _read_jwks(path: str) -> dict:
    import json
    from pathlib import Path

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise CommandError(f"Cannot read {path}: {error.strerror}.") from None
    except ValueError:
        raise CommandError(f"{path} is not JSON.") from None
