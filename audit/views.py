import csv

from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.sudo import sudo_required
from audit import access
from audit.forms import TrailSearchForm
from audit.models import Action
from audit.permissions import AuditPermission

CSV_COLUMNS = [
    "seq",
    "occurred_at",
    "actor_username",
    "actor_roles",
    "action",
    "outcome",
    "purpose",
    "patient_id",
    "object_type",
    "object_id",
    "reason",
    "client_ip",
    "user_agent",
    "path",
    "row_hash",
]


def _filters(form: TrailSearchForm) -> access.TrailFilter:
    data = form.cleaned_data
    return access.TrailFilter(
        username=data.get("username") or "",
        patient_id=data.get("patient_id"),
        action=data.get("action") or "",
        outcome=data.get("outcome") or "",
        date_from=data.get("date_from"),
        date_to=data.get("date_to"),
    )


def trail_view(request):
    form = TrailSearchForm(request.GET or None)
    valid = form.is_valid() if request.GET else True
    filters = _filters(form) if request.GET and valid else access.TrailFilter()
    data = form.cleaned_data if request.GET and valid else {}
    page = access.search_trail(
        request.user, filters, before=data.get("before"), after=data.get("after")
    )
    query = request.GET.copy()
    query.pop("before", None)
    query.pop("after", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    template = "audit/_trail_results.html" if request.htmx else "audit/trail.html"
    return render(request, template, context, status=200 if valid else 400)


class _Echo:
    def write(self, value):
        return value


@sudo_required(AuditPermission.EXPORT_TRAIL, action=Action.EXPORT)
def trail_export_view(request):
    form = TrailSearchForm(request.GET or None)
    filters = _filters(form) if request.GET and form.is_valid() else access.TrailFilter()
    events = access.export_trail(request.user, filters)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for event in events:
            yield writer.writerow([_cell(getattr(event, column)) for column in CSV_COLUMNS])

    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-trail-{stamp}.csv"'
    return response


def _cell(value):
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    # A cell that starts with = + - @ would run as a formula in a spreadsheet.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text
