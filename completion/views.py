"""Chart completion screens: the clinician's work queue and bulk signing, the
analysts' deficiency list and detail (add, reassign, waive), a record's completion
status, the HIM analyst's dashboard (charts with their tables), delinquency (rates by
month and quarter, per clinician, the suspension list) and the CSV exports.

Thin: access → form → one action → render. Reading pages answer GET; add and bulk
signing are form pages (GET shows the form after the same checks, POST does it);
reassign and waive answer POST only (their forms sit on the deficiency page). Charts are
SVG drawn here from the figures, each beside a table with the same numbers.
"""

from __future__ import annotations

import csv
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.sudo import sudo_required
from audit.models import Action
from completion import access, actions
from completion.models import DeficiencyKind, DeficiencyStatus
from completion.permissions import CompletionPermission as CP
from recordroom import clock

form_page = require_http_methods(["GET", "POST"])
VIEWED_KEY = "completion_bulk_sign_shown"


# --- forms ------------------------------------------------------------------------------


class FilterForm(forms.Form):
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Open")]
        + [c for c in DeficiencyStatus.choices if c[0] != "open"]
        + [("all", "Any status")],
    )
    kind = forms.ChoiceField(
        label="Kind", required=False, choices=[("", "Any kind"), *DeficiencyKind.choices]
    )
    responsible = forms.ChoiceField(label="Clinician", required=False)
    service = forms.ChoiceField(label="Service", required=False)
    doc_type = forms.CharField(label="Document type (LOINC)", required=False, max_length=10)
    delinquent = forms.BooleanField(label="Delinquent only", required=False)
    encounter = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, clinicians, services, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["responsible"].choices = [
            ("", "Anyone"),
            ("unassigned", "No one responsible"),
            *[(str(u.public_id), u.display_name) for u in clinicians],
        ]
        self.fields["service"].choices = [("", "Any service"), *[(s, s) for s in services]]

    def filters(self) -> access.DeficiencyFilter:
        data = self.cleaned_data
        status = data.get("status") or DeficiencyStatus.OPEN
        who = data.get("responsible") or ""
        return access.DeficiencyFilter(
            status="" if status == "all" else status,
            kind=data.get("kind") or "",
            responsible=None if who in ("", "unassigned") else access.parse_uuid(who),
            unassigned=who == "unassigned",
            service=data.get("service") or "",
            doc_type=(data.get("doc_type") or "").strip(),
            delinquent=bool(data.get("delinquent")),
            encounter=data.get("encounter"),
        )


def _people(people) -> list[tuple[str, str]]:
    return [("", "Choose…"), *[(str(p.public_id), p.display_name) for p in people]]


def _pick(people, public_id):
    return next((p for p in people if str(p.public_id) == str(public_id)), None)


class AddForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", choices=DeficiencyKind.choices)
    description = forms.CharField(label="What is missing or wrong", max_length=300)
    document = forms.ChoiceField(
        label="Document",
        required=False,
        help_text="For an unsigned, incomplete or late document.",
    )
    document_type = forms.ChoiceField(
        label="Type of the missing document", required=False, help_text="For a missing one."
    )
    responsible = forms.ChoiceField(label="Clinician responsible")
    due_at = forms.DateTimeField(
        label="Due",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    reason = forms.CharField(label="Reason", max_length=300)

    def __init__(self, *args, documents, doc_types, clinicians, **kwargs):
        super().__init__(*args, **kwargs)
        self.documents, self.doc_types, self.clinicians = documents, doc_types, clinicians
        self.fields["document"].choices = [
            ("", "None"),
            *[(str(d.public_id), f"{d.doc_type.short_name} · {d.title}") for d in documents],
        ]
        self.fields["document_type"].choices = [
            ("", "None"),
            *[(t.loinc_code, f"{t.display} ({t.loinc_code})") for t in doc_types],
        ]
        self.fields["responsible"].choices = _people(clinicians)

    def action_kwargs(self) -> dict:
        data = self.cleaned_data
        code = data.get("document_type")
        return {
            "kind": data["kind"],
            "description": data["description"],
            "reason": data["reason"],
            "due_at": data["due_at"],
            "responsible": _pick(self.clinicians, data["responsible"]),
            "document": _pick(self.documents, data.get("document")),
            "document_type": next((t for t in self.doc_types if t.loinc_code == code), None),
        }


class ReassignForm(forms.Form):
    to_user = forms.ChoiceField(label="Give it to")
    reason = forms.CharField(
        label="Reason", max_length=300, help_text="For example: the clinician left the staff."
    )

    def __init__(self, *args, clinicians, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinicians = clinicians
        self.fields["to_user"].choices = _people(clinicians)


class WaiveForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=300,
        help_text="Why the deficiency does not need to be completed.",
    )


class BulkSignForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Signing authenticates each ticked order as yours, with the date and time.",
    )


def _apply(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for key, errors in exc.error_dict.items():
            form.add_error(key if key in form.fields else None, errors)
    else:
        form.add_error(None, exc)


# --- charts -------------------------------------------------------------------------------

CHART_WIDTH = 360
BAR_HEIGHT = 18
BAR_GAP = 8


def bar_chart(rows, *, width: int = CHART_WIDTH) -> dict:
    """Geometry of a horizontal bar chart of incomplete records with the delinquent part
    drawn over it (``rows``: objects with ``label``, ``incomplete``, ``delinquent``)."""
    top = max([r.incomplete for r in rows], default=0) or 1
    bars = []
    for index, row in enumerate(rows):
        bars.append(
            {
                "label": row.label,
                "incomplete": row.incomplete,
                "delinquent": row.delinquent,
                "y": index * (BAR_HEIGHT + BAR_GAP),
                "text_y": index * (BAR_HEIGHT + BAR_GAP) + BAR_HEIGHT - 4,
                "w_incomplete": round(width * row.incomplete / top, 1),
                "w_delinquent": round(width * row.delinquent / top, 1),
                "value_x": round(width * row.incomplete / top, 1) + 6,
            }
        )
    return {"bars": bars, "height": max(1, len(bars)) * (BAR_HEIGHT + BAR_GAP), "width": width}


def trend_chart(rates, threshold: Decimal, *, height: int = 160, step: int = 44) -> dict:
    """Geometry of the monthly delinquency-rate columns with the alert threshold drawn
    as a line across them."""
    values = [r.percent or Decimal(0) for r in rates]
    top = max([*values, threshold, Decimal(1)]) * Decimal("1.1")
    columns = []
    for index, (rate, value) in enumerate(zip(rates, values, strict=True)):
        h = float(value / top) * height
        columns.append(
            {
                "rate": rate,
                "x": index * step + 4,
                "y": round(height - h, 1),
                "h": round(h, 1),
                "label_x": index * step + 4 + (step - 12) / 2,
                "alert": rate.alert,
            }
        )
    return {
        "columns": columns,
        "height": height,
        "width": len(columns) * step + 8,
        "threshold_y": round(height - float(threshold / top) * height, 1),
        "threshold": threshold,
        "bar_width": step - 12,
    }


# --- the clinician's queue ----------------------------------------------------------------


@require_GET
def queue_view(request):
    from coding.queries import clinician_section

    rows = access.my_queue(request.user)
    context = {
        "rows": rows,
        "coding_queries": clinician_section(request.user),
        "overdue": sum(1 for r in rows if r.overdue),
        "signable": sum(1 for r in rows if r.bulk_signable),
    }
    return render(request, "completion/queue.html", context)


@form_page
def bulk_sign_view(request):
    form = BulkSignForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                result = actions.do_bulk_sign(
                    request.user,
                    request.POST.getlist("documents"),
                    form.cleaned_data["password"],
                    request.session.get(VIEWED_KEY, []),
                )
            except ValidationError as exc:
                _apply(form, exc)
            else:
                if result.signed:
                    messages.success(request, f"{len(result.signed)} order(s) signed.")
                for _public_id, reason in result.failed:
                    messages.warning(request, f"An order was not signed: {reason}")
                return redirect("completion:bulk_sign")
        status = 400
    orders = access.bulk_sign_candidates(request.user)
    request.session[VIEWED_KEY] = [str(o.document.public_id) for o in orders]
    return render(
        request, "completion/bulk_sign.html", {"form": form, "orders": orders}, status=status
    )


# --- deficiencies -----------------------------------------------------------------------------


@require_GET
def deficiencies_view(request):
    choices = access.filter_choices(request.user)
    form = FilterForm(request.GET or None, **choices)
    valid = not request.GET or form.is_valid()
    filters = form.filters() if request.GET and valid else access.DeficiencyFilter()
    number = request.GET.get("page", "1")
    page = access.deficiency_list(
        request.user, filters, page=int(number) if number.isdigit() else 1
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    return render(request, "completion/deficiencies.html", context, status=200 if valid else 400)


def _render_deficiency(request, detail, *, bound=None, status=200):
    forms_ = {}
    if detail.may_manage and detail.deficiency.status == DeficiencyStatus.OPEN:
        clinicians = access.responsible_choices(detail.deficiency.encounter.facility)
        forms_ = {"reassign": ReassignForm(clinicians=clinicians), "waive": WaiveForm()}
        forms_.update(bound or {})
    context = {"detail": detail, "row": detail.row, "forms": forms_}
    return render(request, "completion/deficiency.html", context, status=status)


@require_GET
def deficiency_view(request, public_id):
    return _render_deficiency(request, access.access_deficiency(request.user, public_id))


@require_POST
def reassign_view(request, public_id):
    detail = access.access_deficiency(request.user, public_id, write=True)
    clinicians = access.responsible_choices(detail.deficiency.encounter.facility)
    form = ReassignForm(request.POST, clinicians=clinicians)
    if form.is_valid():
        try:
            actions.do_reassign_deficiency(
                detail.deficiency,
                to_user=_pick(clinicians, form.cleaned_data["to_user"]),
                reason=form.cleaned_data["reason"],
                acting_user=request.user,
            )
        except ValidationError as exc:
            _apply(form, exc)
        else:
            messages.success(request, "Deficiency reassigned.")
            return redirect("completion:deficiency", public_id=public_id)
    return _render_deficiency(request, detail, bound={"reassign": form}, status=400)


@require_POST
def waive_view(request, public_id):
    detail = access.access_deficiency(request.user, public_id, write=True)
    form = WaiveForm(request.POST)
    if form.is_valid():
        try:
            actions.do_waive_deficiency(
                detail.deficiency, reason=form.cleaned_data["reason"], acting_user=request.user
            )
        except ValidationError as exc:
            _apply(form, exc)
        else:
            messages.success(request, "Deficiency waived.")
            return redirect("completion:deficiency", public_id=public_id)
    return _render_deficiency(request, detail, bound={"waive": form}, status=400)


@form_page
def add_view(request, public_id):
    from documents.access import document_types

    encounter = access.access_encounter_for_deficiency(request.user, public_id)
    form = AddForm(
        request.POST if request.method == "POST" else None,
        documents=access.encounter_documents(request.user, encounter),
        doc_types=list(document_types()),
        clinicians=access.responsible_choices(encounter.facility),
        initial={"responsible": str(encounter.attending.public_id) if encounter.attending else ""},
    )
    if request.method == "POST" and form.is_valid():
        try:
            deficiency = actions.do_add_deficiency(
                encounter, acting_user=request.user, **form.action_kwargs()
            )
        except ValidationError as exc:
            _apply(form, exc)
        else:
            messages.success(request, "Deficiency added.")
            return redirect("completion:deficiency", public_id=deficiency.public_id)
    context = {"form": form, "encounter": encounter, "patient": encounter.patient}
    return render(request, "completion/add.html", context, status=400 if form.errors else 200)


@require_GET
def record_view(request, public_id):
    page = access.access_record(request.user, public_id)
    return render(request, "completion/record.html", {"page": page})


# --- the analyst's figures ----------------------------------------------------------------


def _facility(request):
    """The facility the page is about (``?facility=``), after the permission check."""
    return access.analyst_facility(request.user, request.GET.get("facility"))


def _no_facility(request):
    context = {"title": "No facility", "message": "You are not assigned to any facility."}
    return render(request, "recordroom/error.html", context, status=200)


@require_GET
def dashboard_view(request):
    facility = _facility(request)
    if facility is None:
        return _no_facility(request)
    counts = access.completion_counts(request.user, facility=facility)
    trend = access.delinquency_trend(request.user, facility=facility, months=12, quarters=4)
    threshold = trend["monthly"][-1].threshold
    context = {
        "facility": facility,
        "facilities": access.facilities_of(request.user),
        "counts": counts,
        "service_chart": bar_chart(counts.by_service),
        "clinician_chart": bar_chart(counts.by_clinician),
        "age_chart": bar_chart(counts.by_age),
        "trend": trend,
        "trend_chart": trend_chart(trend["monthly"], threshold),
    }
    return render(request, "completion/dashboard.html", context)


@require_GET
def delinquency_view(request):
    facility = _facility(request)
    if facility is None:
        return _no_facility(request)
    period, error = None, ""
    if request.GET.get("period"):
        try:
            period = access.Period.parse(request.GET["period"])
        except ValueError as exc:
            error = f"Period: {exc}."
    days_text = request.GET.get("days", "")
    if days_text and not days_text.isdigit():
        error = "Days: give a whole number of days."
    days = int(days_text) if days_text.isdigit() else None
    trend = access.delinquency_trend(request.user, facility=facility, months=12, quarters=4)
    context = {
        "facility": facility,
        "facilities": access.facilities_of(request.user),
        "error": error,
        "period_text": request.GET.get("period", ""),
        "rate": access.delinquency_rate(request.user, period, facility=facility)
        if period
        else None,
        "trend": trend,
        "trend_chart": trend_chart(trend["monthly"], trend["monthly"][-1].threshold),
        "by_clinician": access.delinquency_by_clinician(request.user, facility=facility),
        "suspension": access.suspension_list(request.user, facility=facility, days=days),
        "records": access.delinquent_records(request.user, facility=facility),
    }
    return render(request, "completion/delinquency.html", context, status=400 if error else 200)


# --- CSV --------------------------------------------------------------------------------------


class _Echo:
    def write(self, value):
        return value


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


def _counts_lines(counts):
    yield ["table", "group", "incomplete records", "delinquent records"]
    for table, rows in (
        ("service", counts.by_service),
        ("clinician", counts.by_clinician),
        ("days since discharge", counts.by_age),
    ):
        for row in rows:
            yield [table, row.label, row.incomplete, row.delinquent]
    yield ["total", "all", counts.incomplete, counts.delinquent]


DEFICIENCY_COLUMNS = [
    "deficiency",
    "mrn",
    "patient",
    "visit number",
    "service",
    "discharged",
    "document type",
    "kind",
    "description",
    "responsible",
    "status",
    "due",
    "delinquent from",
    "days to delinquency",
]


def _deficiency_lines(rows):
    yield DEFICIENCY_COLUMNS
    for r in rows:
        d = r.deficiency
        yield [
            d.public_id,
            r.mrn,
            r.patient_name,
            r.encounter.visit_number,
            r.encounter.service,
            r.encounter.ended_at,
            r.document_type.display if r.document_type else "",
            r.kind_label,
            d.description,
            d.responsible.display_name if d.responsible else "",
            r.status_label,
            r.due_at,
            r.delinquent_on,
            r.days_to_delinquent,
        ]


@require_GET
@sudo_required(CP.VIEW_DEFICIENCIES, action=Action.EXPORT)
def export_csv_view(request):
    what = request.GET.get("what", "counts")
    if what not in ("counts", "deficiencies"):
        raise Http404("No such export")
    facility = _facility(request)
    if facility is None:
        return _no_facility(request)
    if what == "counts":
        lines = _counts_lines(access.export_counts(request.user, facility=facility))
    else:
        choices = access.filter_choices(request.user)
        form = FilterForm(request.GET, **choices)
        filters = form.filters() if form.is_valid() else access.DeficiencyFilter()
        filters = access.DeficiencyFilter(**{**filters.__dict__, "facility": facility.public_id})
        lines = _deficiency_lines(access.export_deficiencies(request.user, filters))
    writer = csv.writer(_Echo())
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(
        (writer.writerow([_cell(v) for v in line]) for line in lines),
        content_type="text/csv; charset=utf-8",
    )
    name = f"completion-{what}-{facility.code}-{stamp}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
