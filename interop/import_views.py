"""The import-errors screen (quarantine): rejected units, their OperationOutcome and raw
input, correct-and-replay, replay as is, dismiss. For ``interop.manage_import_errors``
only; every view is audited (the raw input may hold patient data)."""

from __future__ import annotations

import orjson
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from interop import import_actions
from interop.import_forms import DismissForm, ReplayForm
from interop.models import UnitStatus
from interop.outcome import issues_from_outcome


def _pretty(raw: bytes) -> str:
    try:
        return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")


@require_GET
def error_list(request):
    status = request.GET.get("status", UnitStatus.REJECTED)
    units = import_actions.list_import_errors(request.user, status=status)
    page = Paginator(units, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "interop/import_errors.html",
        {"page": page, "status": status, "statuses": UnitStatus.choices},
    )


def _unit_page(request, unit, *, replay_form=None, dismiss_form=None, issues=None, status=200):
    raw = bytes(unit.raw or b"")
    return render(
        request,
        "interop/import_unit.html",
        {
            "unit": unit,
            "issues": issues_from_outcome(unit.outcome),
            "new_issues": issues,
            "raw": _pretty(raw) if raw else "",
            "replays": import_actions.unit_replays(unit),
            "replay_form": replay_form
            or ReplayForm(initial={"raw": _pretty(raw)} if raw else None),
            "dismiss_form": dismiss_form or DismissForm(),
            "waiting": unit.status == UnitStatus.REJECTED,
        },
        status=status,
    )


@require_GET
def unit_detail(request, public_id):
    unit = import_actions.access_import_unit(request.user, public_id)
    return _unit_page(request, unit)


@require_POST
def unit_replay(request, public_id):
    unit = import_actions.access_import_unit(request.user, public_id)
    form = ReplayForm(request.POST)
    corrected = None
    if "as_received" not in request.POST:
        if not form.is_valid():
            return _unit_page(request, unit, replay_form=form, status=400)
        corrected = form.cleaned_data["raw"].encode("utf-8")
    try:
        result = import_actions.do_replay_unit(unit, acting_user=request.user, raw=corrected)
    except ValidationError as error:
        form.add_error(None, error)
        return _unit_page(request, unit, replay_form=form, status=409)
    if not result.accepted:
        return _unit_page(request, unit, replay_form=form, issues=result.issues, status=422)
    messages.success(request, "The unit was imported; it has left the quarantine.")
    return redirect("imports:unit", public_id=unit.public_id)


@require_POST
def unit_dismiss(request, public_id):
    unit = import_actions.access_import_unit(request.user, public_id)
    form = DismissForm(request.POST)
    if not form.is_valid():
        return _unit_page(request, unit, dismiss_form=form, status=400)
    try:
        import_actions.do_dismiss_unit(
            unit, acting_user=request.user, reason=form.cleaned_data["reason"]
        )
    except ValidationError as error:
        form.add_error(None, error)
        return _unit_page(request, unit, dismiss_form=form, status=409)
    messages.success(request, "The unit was dismissed.")
    return redirect("imports:errors")
