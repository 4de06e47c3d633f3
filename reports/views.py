"""The statistics dashboard, its exports, and the bed counts.

Thin: parse the filters from the query string (dates, facility, service, population —
no patient data, so the URL can be bookmarked and shared), call one door, render. Each
table is drawn as an SVG chart (``reports.charts``) beside the table itself. Exports:
``export/?table=<key>&format=csv|xlsx`` for one table, ``format=pdf`` for the whole
dashboard; tables with patient-level rows also need ``reports.export_patient_rows`` and
a recent password confirmation.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.sudo import in_sudo_mode
from recordroom import clock
from reports import actions, exports
from reports.charts import chart_for
from reports.dashboard import dashboard, filter_facilities
from reports.forms import BedCapacityForm, FilterForm


def _filters(request):
    """The filter form bound to the query string (defaults when it is empty)."""
    form = FilterForm(request.GET or {}, facilities=filter_facilities(request.user))
    return form, (form.filters() if form.is_valid() else None)


@require_GET
def dashboard_view(request):
    form, filters = _filters(request)
    context = {"form": form, "board": None}
    if filters is not None:
        board = dashboard(request.user, filters)
        query = urlencode(filters.as_query())
        context.update(
            board=board,
            query=query,
            charts={t.key: chart_for(t) for s in board.sections for t in s.tables},
        )
    return render(request, "reports/dashboard.html", context, status=200 if filters else 400)


@require_GET
def export_view(request):
    fmt = request.GET.get("format", "")
    if fmt not in exports.FORMATS:
        raise Http404("No such export format")
    key = request.GET.get("table", "")
    if fmt != "pdf" and not key:
        raise Http404("Name the table to export")
    form, filters = _filters(request)
    if filters is None:
        return render(request, "reports/dashboard.html", {"form": form, "board": None}, status=400)
    board = dashboard(request.user, filters, export_format=fmt, table=key)
    content_type, extension = exports.FORMATS[fmt]
    if fmt == "pdf":
        body = exports.dashboard_pdf(
            "Statistics", filters, board.sections, generated_at=clock.now().astimezone()
        )
        name = exports.filename("statistics", filters, extension)
    else:
        table = board.table(key)
        if table is None:
            raise Http404("No such table")
        if not exports.authorize_export(
            request.user, table, fmt, filters, confirmed=in_sudo_mode(request)
        ):
            confirm = urlencode({"next": request.get_full_path()})
            return redirect(f"/accounts/confirm-password/?{confirm}")
        body = exports.table_csv(table) if fmt == "csv" else exports.tables_xlsx([table])
        name = exports.filename(key, filters, extension)
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_http_methods(["GET", "POST"])
def beds_view(request):
    facilities = actions.bed_facilities(request.user, write=request.method == "POST")
    form = BedCapacityForm(request.POST or None, facilities=facilities)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_set_bed_capacity(**form.action_kwargs(), acting_user=request.user)
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                for message in errors:
                    form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, "The bed count is recorded.")
            return redirect("reports:beds")
    rows = actions.bed_capacity_rows(request.user)
    status = 400 if request.method == "POST" else 200
    return render(request, "reports/beds.html", {"form": form, "rows": rows}, status=status)
