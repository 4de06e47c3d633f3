"""Screens of the coding work: the queue (claim, release), DNFB, productivity and
accuracy, second-level reviews, physician queries and exports.

Thin: parse the input (a form), call one function of ``coding.queue``, ``dnfb``,
``productivity``, ``queries`` or ``export``, render. Reading pages answer GET; every
change answers POST only; exports ask for the password again (sudo mode).
"""

from __future__ import annotations

import csv
import json

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.sudo import sudo_required
from audit.models import Action
from coding import dnfb, export, productivity, queries, queue, work_access
from coding.models import AbstractStatus, QueryStatus
from coding.permissions import CodingPermission as K
from encounters.models import EncounterClass
from recordroom import clock

form_page = require_http_methods(["GET", "POST"])


def _messages(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [m for errors in exc.message_dict.values() for m in errors]
    return list(exc.messages)


def _apply(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _back(request, default: str):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return redirect(target)
    return redirect(default)


class _Echo:
    def write(self, value):
        return value


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # Spreadsheet formula injection: a cell never starts with =, +, - or @.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def _csv(lines, name: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow([_cell(v) for v in line]) for line in lines),
        content_type="text/csv; charset=utf-8",
    )
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


# --- the queue -------------------------------------------------------------------------------


class QueueForm(forms.Form):
    service = forms.ChoiceField(label="Service", required=False)
    payer = forms.ChoiceField(label="Payer", required=False)
    encounter_class = forms.ChoiceField(
        label="Class", required=False, choices=[("", "Any class"), *EncounterClass.choices]
    )
    status = forms.ChoiceField(
        label="Abstract",
        required=False,
        choices=[
            ("", "Any status"),
            *[
                c
                for c in AbstractStatus.choices
                if c[0] not in (AbstractStatus.FINAL, AbstractStatus.REBILLED)
            ],
        ],
    )
    claim = forms.ChoiceField(
        label="Claimed",
        required=False,
        choices=[
            ("", "Anyone's"),
            ("mine", "Mine"),
            ("unclaimed", "Unclaimed"),
            ("claimed", "Claimed"),
        ],
    )
    discharged_from = forms.DateField(
        label="Discharged from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    discharged_to = forms.DateField(
        label="Discharged to", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    sort = forms.ChoiceField(
        label="Order",
        required=False,
        choices=[
            ("discharged", "Oldest discharge first"),
            ("-discharged", "Newest discharge first"),
            ("service", "By service"),
            ("payer", "By payer"),
        ],
    )

    def __init__(self, *args, services, payers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].choices = [("", "Any service"), *[(s, s) for s in services]]
        self.fields["payer"].choices = [("", "Any payer"), *[(p, p) for p in payers]]

    def filters(self) -> queue.QueueFilter:
        data = self.cleaned_data
        return queue.QueueFilter(
            service=data.get("service") or "",
            payer=data.get("payer") or "",
            encounter_class=data.get("encounter_class") or "",
            status=data.get("status") or "",
            claim=data.get("claim") or "",
            discharged_from=data.get("discharged_from"),
            discharged_to=data.get("discharged_to"),
            sort=data.get("sort") or "discharged",
        )


@require_GET
def queue_view(request):
    choices = queue.filter_choices(request.user)
    form = QueueForm(request.GET or None, services=choices["services"], payers=choices["payers"])
    valid = not request.GET or form.is_valid()
    filters = form.filters() if request.GET and valid else queue.QueueFilter()
    number = request.GET.get("page", "1")
    page = None
    try:
        page = queue.work_queue(request.user, filters, page=int(number) if number.isdigit() else 1)
    except ValidationError as exc:
        _apply(form, exc)
        valid = False
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    return render(request, "coding/queue.html", context, status=200 if valid else 400)


@require_POST
def claim_view(request, public_id):
    try:
        queue.do_claim(request.user, public_id)
    except ValidationError as exc:
        for message in _messages(exc):
            messages.error(request, message)
    else:
        messages.success(request, "Claimed: the encounter is yours to code.")
    return _back(request, "coding:queue")


@require_POST
def release_view(request, public_id):
    try:
        queue.do_release(request.user, public_id, reason=request.POST.get("reason", ""))
    except ValidationError as exc:
        for message in _messages(exc):
            messages.error(request, message)
    else:
        messages.success(request, "Released to the queue.")
    return _back(request, "coding:queue")


# --- DNFB --------------------------------------------------------------------------------------


@require_GET
def dnfb_view(request):
    report = dnfb.dnfb_report(request.user)
    bucket, reason = request.GET.get("bucket", ""), request.GET.get("reason", "")
    rows, status = None, 200
    if bucket or reason:
        try:
            rows = dnfb.dnfb_list(request.user, bucket=bucket, reason=reason)
        except ValidationError as exc:
            for message in _messages(exc):
                messages.error(request, message)
            status = 400
    context = {
        "report": report,
        "rows": rows,
        "bucket": bucket,
        "reason": reason,
        "reason_label": dict(dnfb.REASONS).get(reason, ""),
        "bucket_label": {b.key: b.label for b in dnfb.AGE_BUCKETS}.get(bucket, ""),
    }
    return render(request, "coding/dnfb.html", context, status=status)


@require_GET
@sudo_required(K.VIEW_REPORTS, action=Action.EXPORT)
def dnfb_csv_view(request):
    report = dnfb.export_dnfb(request.user)
    header = ["reason", *[b.label for b in dnfb.AGE_BUCKETS], "total"]
    lines = [header]
    lines += [[label, *[c.count for c in cells], total] for _, label, cells, total in report.matrix]
    lines.append(["All", *[n for _, n in report.by_bucket], report.total])
    return _csv(lines, "coding-dnfb")


# --- productivity and accuracy -------------------------------------------------------------------


class PeriodForm(forms.Form):
    start = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


def _period(request):
    form = PeriodForm(request.GET or None)
    if request.GET and form.is_valid():
        return form, form.cleaned_data.get("start"), form.cleaned_data.get("end")
    return form, None, None


@require_GET
def productivity_view(request):
    form, start, end = _period(request)
    status = 200 if not form.is_bound or form.is_valid() else 400
    try:
        figures = productivity.productivity(request.user, start=start, end=end)
        rows = productivity.accuracy(request.user, start=figures.start, end=figures.end)
    except ValidationError as exc:
        _apply(form, exc)
        figures = productivity.productivity(request.user)
        rows = productivity.accuracy(request.user, start=figures.start, end=figures.end)
        status = 400
    context = {"form": form, "figures": figures, "accuracy": rows}
    return render(request, "coding/productivity.html", context, status=status)


@require_GET
@sudo_required(K.VIEW_REPORTS, action=Action.EXPORT)
def productivity_csv_view(request):
    _form, start, end = _period(request)
    figures = productivity.export_productivity(request.user, start=start, end=end)
    lines = [["coder", *[d.isoformat() for d in figures.days], "total"]]
    lines += [[r.coder.display_name, *r.per_day, r.total] for r in figures.rows]
    return _csv(lines, "coding-productivity")


# --- reviews ------------------------------------------------------------------------------------


class DrawForm(PeriodForm):
    percent = forms.DecimalField(
        label="Sample (%)",
        required=False,
        min_value=0,
        max_value=100,
        help_text="Empty: the coding policy's percentage.",
    )


class ReviewForm(forms.Form):
    codes_reviewed = forms.IntegerField(label="Codes reviewed", min_value=0)
    codes_changed = forms.IntegerField(label="Codes changed", min_value=0)
    drg_changed = forms.BooleanField(label="The MS-DRG changed", required=False)
    findings = forms.CharField(
        label="Findings", required=False, widget=forms.Textarea(attrs={"rows": 4})
    )


@require_GET
def reviews_view(request):
    pending = productivity.review_list(request.user, pending=True)
    done = productivity.review_list(request.user, pending=False)
    context = {"pending": pending, "done": done[:50], "form": DrawForm()}
    return render(request, "coding/review_list.html", context)


@require_POST
def review_draw_view(request):
    form = DrawForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = productivity.do_draw_review_sample(
                request.user,
                start=data.get("start"),
                end=data.get("end"),
                percent_=data.get("percent"),
            )
        except ValidationError as exc:
            for message in _messages(exc):
                messages.error(request, message)
        else:
            messages.success(
                request, f"{len(result.drawn)} abstract(s) drawn for review ({result.percent} %)."
            )
    else:
        for errors in form.errors.values():
            for message in errors:
                messages.error(request, message)
    return redirect("coding:reviews")


@form_page
def review_view(request, public_id):
    if request.method == "POST":
        detail = productivity.access_review(request.user, public_id)
        form = ReviewForm(request.POST)
        if form.is_valid():
            try:
                productivity.do_record_review(request.user, public_id, **form.cleaned_data)
            except ValidationError as exc:
                _apply(form, exc)
            else:
                messages.success(request, "Review recorded.")
                return redirect("coding:reviews")
        context = {"detail": detail, "form": form}
        return render(request, "coding/review.html", context, status=400)
    detail = productivity.access_review(request.user, public_id)
    form = ReviewForm(initial={"codes_reviewed": detail.code_count, "codes_changed": 0})
    return render(request, "coding/review.html", {"detail": detail, "form": form})


# --- physician queries ----------------------------------------------------------------------------


class QueryForm(forms.Form):
    clinician = forms.ChoiceField(label="Ask")
    clinical_indicators = forms.CharField(
        label="Clinical indicators",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What in the record prompts the question: findings, results, treatment.",
    )
    question = forms.CharField(
        label="Question",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="A question, not a suggestion.",
    )
    options = forms.CharField(
        label="Answer options, one per line",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=f'At least two clinically reasonable options; "{queries.OTHER}" and '
        f'"{queries.UNDETERMINED}" are always added.',
    )

    def __init__(self, *args, clinicians, **kwargs):
        super().__init__(*args, **kwargs)
        self.clinicians = clinicians
        self.fields["clinician"].choices = [(str(c.public_id), c.display_name) for c in clinicians]

    def action_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "clinician": next(
                (c for c in self.clinicians if str(c.public_id) == data["clinician"]), None
            ),
            "clinical_indicators": data["clinical_indicators"],
            "question": data["question"],
            "options": data["options"].splitlines(),
        }


class AnswerForm(forms.Form):
    answer = forms.ChoiceField(label="Your answer", widget=forms.RadioSelect)
    answer_text = forms.CharField(
        label="If other, please specify", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    password = forms.CharField(
        label="Your password (signs the answer)", widget=forms.PasswordInput, strip=False
    )

    def __init__(self, *args, options, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["answer"].choices = [(o, o) for o in options]


class WithdrawForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=300)


@require_GET
def queries_view(request):
    status = request.GET.get("status", QueryStatus.OPEN)
    status = "" if status == "all" else status
    try:
        rows = queries.query_list(request.user, status=status, mine=request.GET.get("mine") == "1")
    except ValidationError as exc:
        for message in _messages(exc):
            messages.error(request, message)
        return redirect("coding:queries")
    context = {
        "rows": rows,
        "status": status or "all",
        "mine": request.GET.get("mine") == "1",
        "statuses": QueryStatus.choices,
    }
    return render(request, "coding/query_list.html", context)


@form_page
def query_new_view(request, encounter_id):
    encounter, clinicians = queries.access_encounter_for_query(request.user, encounter_id)
    initial = {"clinician": str(encounter.attending.public_id)} if encounter.attending else {}
    form = QueryForm(request.POST or None, clinicians=clinicians, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                query = queries.do_open_query(request.user, encounter_id, **form.action_kwargs())
            except ValidationError as exc:
                _apply(form, exc)
            else:
                messages.success(
                    request, "Query sent; the abstract is on hold until it is answered."
                )
                return redirect("coding:query", public_id=query.public_id)
        status = 400
    context = {"form": form, "encounter": encounter, "fixed": queries.FIXED_OPTIONS}
    return render(request, "coding/query_new.html", context, status=status)


def _render_query(request, detail, *, answer=None, withdraw=None, status=200):
    context = {
        "detail": detail,
        "query": detail.query,
        "answer_form": answer
        or (AnswerForm(options=detail.query.options) if detail.may_answer else None),
        "withdraw_form": withdraw or (WithdrawForm() if detail.may_withdraw else None),
    }
    return render(request, "coding/query.html", context, status=status)


@require_GET
def query_view(request, public_id):
    return _render_query(request, queries.access_query(request.user, public_id))


@require_POST
def query_answer_view(request, public_id):
    form = AnswerForm(request.POST, options=request.POST.getlist("answer"))
    form.is_valid()
    data = form.cleaned_data
    try:
        queries.do_answer_query(
            request.user,
            public_id,
            answer=request.POST.get("answer", ""),
            answer_text=data.get("answer_text", ""),
            password=request.POST.get("password", ""),
        )
    except ValidationError as exc:
        detail = queries.access_query(request.user, public_id)
        bound = AnswerForm(request.POST, options=detail.query.options)
        bound.is_valid()
        _apply(bound, exc)
        return _render_query(request, detail, answer=bound, status=400)
    messages.success(request, "Answer signed and filed in the record.")
    return redirect("coding:query", public_id=public_id)


@require_POST
def query_withdraw_view(request, public_id):
    form = WithdrawForm(request.POST)
    try:
        queries.do_withdraw_query(request.user, public_id, reason=request.POST.get("reason", ""))
    except ValidationError as exc:
        detail = queries.access_query(request.user, public_id)
        form.is_valid()
        _apply(form, exc)
        return _render_query(request, detail, withdraw=form, status=400)
    messages.success(request, "Query withdrawn.")
    return redirect("coding:query", public_id=public_id)


# --- exports -----------------------------------------------------------------------------------


@require_GET
def exports_view(request):
    work_access.require(request.user, K.VIEW_REPORTS, "coding.export")
    return render(request, "coding/productivity_exports.html", {"form": PeriodForm()})


@require_GET
@sudo_required(K.VIEW_REPORTS, action=Action.EXPORT)
def export_csv_view(request):
    form = PeriodForm(request.GET)
    if not form.is_valid():
        return render(request, "coding/productivity_exports.html", {"form": form}, status=400)
    try:
        result = export.export_csv(
            request.user, start=form.cleaned_data.get("start"), end=form.cleaned_data.get("end")
        )
    except ValidationError as exc:
        _apply(form, exc)
        return render(request, "coding/productivity_exports.html", {"form": form}, status=400)
    return _csv([export.CSV_HEADER, *result.rows], "coding-abstracts")


@require_GET
@sudo_required(K.CODE, action=Action.EXPORT)
def export_claim_view(request, encounter_id):
    try:
        resource = export.export_claim(request.user, encounter_id)
    except ValidationError as exc:
        return HttpResponse(
            " ".join(_messages(exc)), status=409, content_type="text/plain; charset=utf-8"
        )
    response = HttpResponse(json.dumps(resource, indent=2), content_type="application/fhir+json")
    response["Content-Disposition"] = f'attachment; filename="claim-{resource["id"]}.json"'
    return response
