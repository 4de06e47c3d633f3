"""Administration of the FHIR API's OAuth clients (HIM administrators)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.sudo import sudo_required
from interop import clients
from interop.client_forms import ClientForm, RevokeForm
from interop.permissions import InteropPermission


@require_GET
def client_list_view(request):
    return render(
        request, "interop/client_list.html", {"clients": clients.list_clients(request.user)}
    )


@sudo_required(InteropPermission.MANAGE_CLIENTS, action="create")
def client_create_view(request):
    form = ClientForm(
        request.POST if request.method == "POST" else None,
        account_choices=clients.system_account_choices(),
    )
    if request.method == "POST" and form.is_valid():
        data = clients.ClientData(**form.cleaned_data)
        try:
            client, secret = clients.do_register_client(data, acting_user=request.user)
        except ValidationError as error:
            for name, problems in error.message_dict.items():
                form.add_error(name if name in form.fields else None, problems)
        else:
            # The secret is in this one answer and nowhere else.
            return render(
                request, "interop/client_secret.html", {"client": client, "secret": secret}
            )
    return render(
        request, "interop/client_form.html", {"form": form}, status=400 if form.errors else 200
    )


@require_GET
def client_detail_view(request, public_id):
    client = clients.access_client(request.user, public_id)
    return render(
        request,
        "interop/client_detail.html",
        {
            "client": client,
            "tokens": clients.active_token_count(client),
            "form": RevokeForm(),
        },
    )


@require_POST
@sudo_required(InteropPermission.MANAGE_CLIENTS, action="update")
def client_revoke_view(request, public_id):
    client = clients.access_client(request.user, public_id)
    form = RevokeForm(request.POST)
    if form.is_valid():
        try:
            revoked = clients.do_revoke_client(
                client, reason=form.cleaned_data["reason"], acting_user=request.user
            )
        except ValidationError as error:
            form.add_error("reason", error.message_dict.get("reason", error.messages))
        else:
            messages.success(request, f"{client.name} revoked; {revoked} token(s) revoked.")
            return redirect("clients:detail", public_id=client.public_id)
    return render(
        request,
        "interop/client_detail.html",
        {"client": client, "tokens": clients.active_token_count(client), "form": form},
        status=400,
    )
