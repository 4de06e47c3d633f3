"""Quality-audit screens: the audits, drawing a sample, the checklists, scoring one
record beside a link to its chart, corrections, closing an audit and the CSV export.

Views read what was typed and call one access function or action in
completion.quality; the forms here only parse input (the rules live in the actions).
"""

from __future__ import annotations

import csv
import datetime as dt

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import has_permission
from accounts.sudo import sudo_required
from audit.models import Action
from completion import quality
from completion.models import CorrectionStatus, ItemResult, QualityAuditStatus
from encounters.models import EncounterClass
from recordroom import clock

# --- forms ----------------------------------------------------------------------------


def add_action_errors(form: forms.Form, error: ValidationError) -> None:
    """Put an action's errors on the form's fields, or at the top of the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for key, texts in error.message_dict.items():
        target = key if key in form.fields else None
        for text in texts:
            form.add_error(target, text)


def _people(users) -> list[tuple[str, str]]:
    return [(str(u.public_id), u.display_name) for u in users]


def _last_month(today: dt.date) -> tuple[dt.date, dt.date]:
    end = today.replace(day=1) - dt.timedelta(days=1)
    return end.replace(day=1), end


class DrawForm(forms.Form):
    name = forms.CharField(
        required=False,
        max_length=200,
        help_text="Leave blank to name it after the checklist and period.",
    )
    checklist = forms.ChoiceField(label="Review checklist")
    facility = forms.ChoiceField()
    period_start = forms.DateField(
        label="Discharged from", widget=forms.DateInput(attrs={"type": "date"})
    )
    period_end = forms.DateField(
        label="Discharged until (inclusive)", widget=forms.DateInput(attrs={"type": "date"})
    )
    service = forms.CharField(
        required=False, max_length=60, help_text="e.g. medicine, surgery; blank for all"
    )
    encounter_class = forms.ChoiceField(
        label="Encounter class",
        required=False,
        choices=[("", "All classes"), *EncounterClass.choices],
    )
    size = forms.IntegerField(
        label="Sample size", min_value=1, max_value=quality.MAX_SAMPLE, initial=30
    )
    method = forms.ChoiceField(
        choices=quality.SampleMethod.CHOICES,
        initial=quality.SampleMethod.RANDOM,
        widget=forms.RadioSelect,
    )
    target = forms.ChoiceField(
        label="Target (targeted samples)",
        required=False,
        choices=[("", "—"), *quality.Target.CHOICES],
    )
    attending = forms.ChoiceField(label="Attending (for a clinician's records)", required=False)
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        help_text="Blank for a new random draw; the seed of an earlier audit repeats its draw.",
    )

    def __init__(self, *args, checklists, facilities, clinicians, **kwargs):
        super().__init__(*args, **kwargs)
        self._checklists = {str(c.public_id): c for c in checklists}
        self._facilities = {str(f.public_id): f for f in facilities}
        self._clinicians = {str(c.public_id): c for c in clinicians}
        self.fields["checklist"].choices = [("", "— choose —")] + [
            (key, c.name) for key, c in self._checklists.items()
        ]
        self.fields["facility"].choices = [(key, f.name) for key, f in self._facilities.items()]
        self.fields["attending"].choices = [("", "—"), *_people(clinicians)]
        if not self.is_bound:
            start, end = _last_month(timezone.localdate(clock.now()))
            self.initial.setdefault("period_start", start)
            self.initial.setdefault("period_end", end)

    def criteria(self) -> quality.SampleCriteria:
        data = self.cleaned_data
        return quality.SampleCriteria(
            facility=self._facilities.get(data["facility"]),
            period_start=data["period_start"],
            period_end=data["period_end"],
            size=data["size"],
            method=data["method"],
            service=data.get("service") or "",
            encounter_class=data.get("encounter_class") or "",
            target=data.get("target") or "",
            attending=self._clinicians.get(data.get("attending") or ""),
            seed=data.get("seed"),
        )

    def checklist_obj(self):
        return self._checklists.get(self.cleaned_data.get("checklist") or "")


class ChecklistForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    items = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text=(
            "One item per line, in order. Start a line with a weight and a bar to weigh it "
            "more, e.g. “3 | Discharge summary authenticated”; an item without one weighs 1."
        ),
    )
    replaces = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_items(self) -> list[quality.ItemData]:
        items, errors = [], []
        for number, line in enumerate(self.cleaned_data["items"].splitlines(), start=1):
            if not line.strip():
                continue
            weight, text = 1, line.strip()
            if "|" in line:
                head, text = (part.strip() for part in line.split("|", 1))
                try:
                    weight = int(head)
                except ValueError:
                    errors.append(f"Line {number}: the weight “{head[:20]}” is not a whole number.")
                    continue
            items.append(quality.ItemData(text=text, weight=weight))
        if errors:
            raise ValidationError(errors)
        return items


def checklist_text(checklist) -> str:
    return "\n".join(
        f"{item.weight} | {item.text}" if item.weight != 1 else item.text
        for item in checklist.items.all()
    )


class RetireForm(forms.Form):
    reason = forms.CharField(max_length=300, label="Why is it retired?")


class AssignForm(forms.Form):
    reviewer = forms.ChoiceField()
    records = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every record not yet assigned.",
    )

    def __init__(self, *args, reviewers, records, **kwargs):
        super().__init__(*args, **kwargs)
        self._reviewers = {str(u.public_id): u for u in reviewers}
        self.fields["reviewer"].choices = [("", "— choose —"), *_people(reviewers)]
        self.fields["records"].choices = [
            (str(line.encounter.public_id), line.encounter.visit_number) for line in records
        ]

    def reviewer_obj(self):
        return self._reviewers.get(self.cleaned_data.get("reviewer") or "")


class ScoreForm(forms.Form):
    """One result, comment and correction assignee per checklist item."""

    RESULTS = [
        (ItemResult.MET, "Met"),
        (ItemResult.NOT_MET, "Not met"),
        (ItemResult.NOT_APPLICABLE, "N/A"),
    ]

    def __init__(self, *args, review: quality.RecordReview, **kwargs):
        super().__init__(*args, **kwargs)
        self.review = review
        self._people = {str(p.public_id): p for p in review.assignees}
        attending = review.encounter.attending
        people = [
            (
                str(p.public_id),
                f"{p.display_name}{' (attending)' if attending and p.pk == attending.pk else ''}",
            )
            for p in review.assignees
        ]
        for item in review.items:
            score = review.scores.get(item.pk)
            correction = review.corrections.get(item.pk)
            self.fields[f"result_{item.position}"] = forms.ChoiceField(
                label=f"{item.position}. {item.text}",
                choices=self.RESULTS,
                widget=forms.RadioSelect,
                required=False,
                initial=score.result if score else None,
            )
            self.fields[f"comment_{item.position}"] = forms.CharField(
                label=f"Comment on item {item.position}",
                required=False,
                max_length=300,
                initial=score.comment if score else "",
            )
            self.fields[f"assign_{item.position}"] = forms.ChoiceField(
                label=f"Correction of item {item.position} goes to",
                required=False,
                choices=people,
                initial=str(correction.assigned_to.public_id)
                if correction and correction.assigned_to
                else (str(attending.public_id) if attending else ""),
            )

    def rows(self):
        for item in self.review.items:
            yield {
                "item": item,
                "result": self[f"result_{item.position}"],
                "comment": self[f"comment_{item.position}"],
                "assign": self[f"assign_{item.position}"],
                "errors": self.errors.get(f"item_{item.position}", []),
                "correction": self.review.corrections.get(item.pk),
            }

    def scores(self) -> list[quality.ScoreData]:
        data = self.cleaned_data
        return [
            quality.ScoreData(
                position=item.position,
                result=data.get(f"result_{item.position}") or "",
                comment=data.get(f"comment_{item.position}") or "",
                assign_to=self._people.get(data.get(f"assign_{item.position}") or ""),
            )
            for item in self.review.items
            if data.get(f"result_{item.position}")
        ]

    def add_action_errors(self, error: ValidationError) -> None:
        for key, texts in error.message_dict.items():
            for text in texts:
                if key.startswith("item_"):
                    self._errors.setdefault(key, self.error_class()).append(text)
                else:
                    self.add_error(None, text)


class ResolveForm(forms.Form):
    status = forms.ChoiceField(
        label="Outcome",
        choices=[
            (CorrectionStatus.CORRECTED, "Corrected in the record"),
            (CorrectionStatus.CLOSED, "Closed without correction"),
        ],
    )
    resolution = forms.CharField(max_length=300, label="How it was corrected, or why it is closed")


class CorrectionFilter(forms.Form):
    state = forms.ChoiceField(
        required=False,
        choices=quality.CorrectionState.CHOICES,
        initial=quality.CorrectionState.OPEN,
    )
    audit = forms.UUIDField(required=False, widget=forms.HiddenInput)


# --- the audits -----------------------------------------------------------------------


@require_GET
def audits_view(request):
    status = request.GET.get("status", "")
    if status not in QualityAuditStatus.values:
        status = ""
    rows = quality.list_audits(request.user, status=status)
    context = {
        "rows": rows,
        "status": status,
        "statuses": QualityAuditStatus.choices,
        "may_manage": has_permission(request.user, quality.MANAGE),
    }
    return render(request, "completion/quality_audits.html", context)


@require_http_methods(["GET", "POST"])
def new_audit_view(request):
    checklists = quality.active_checklists(request.user)
    facilities = quality.facilities_of(request.user)
    form = DrawForm(
        request.POST if request.method == "POST" else None,
        checklists=checklists,
        facilities=facilities,
        clinicians=quality.clinicians_at(facilities),
    )
    if request.method == "POST" and form.is_valid():
        try:
            audit = quality.do_draw_sample(
                checklist=form.checklist_obj(),
                criteria=form.criteria(),
                name=form.cleaned_data.get("name") or "",
                acting_user=request.user,
            )
        except ValidationError as error:
            add_action_errors(form, error)
        else:
            messages.success(request, quality.sample_message(audit))
            return redirect("completion:quality_audit", public_id=audit.public_id)
    context = {"form": form, "checklists": checklists}
    return render(
        request, "completion/quality_new.html", context, status=400 if form.errors else 200
    )


def _render_audit(request, report, *, assign_form=None, close_errors=None, status=200):
    may_manage = has_permission(request.user, quality.MANAGE)
    if may_manage and report.is_open and assign_form is None:
        assign_form = AssignForm(
            reviewers=quality.reviewer_choices(report.audit), records=report.records
        )
    context = {
        "report": report,
        "audit": report.audit,
        "criteria": quality.criteria_summary(report.audit),
        "may_manage": may_manage,
        "assign_form": assign_form if may_manage and report.is_open else None,
        "close_errors": close_errors or [],
    }
    return render(request, "completion/quality_audit.html", context, status=status)


@require_GET
def audit_view(request, public_id):
    return _render_audit(request, quality.access_audit_report(request.user, public_id))


@require_POST
def assign_view(request, public_id):
    audit = quality.access_audit(request.user, public_id, write=True)
    report = quality.access_audit_report(request.user, public_id)
    form = AssignForm(
        request.POST, reviewers=quality.reviewer_choices(audit), records=report.records
    )
    if form.is_valid():
        try:
            count = quality.do_assign_reviewer(
                audit,
                reviewer=form.reviewer_obj(),
                encounter_ids=form.cleaned_data["records"] or None,
                acting_user=request.user,
            )
        except ValidationError as error:
            add_action_errors(form, error)
        else:
            messages.success(request, f"{count} record(s) assigned.")
            return redirect("completion:quality_audit", public_id=audit.public_id)
    return _render_audit(request, report, assign_form=form, status=400)


@require_POST
def close_view(request, public_id):
    audit = quality.access_audit(request.user, public_id, write=True)
    try:
        report = quality.do_close_audit(audit, acting_user=request.user)
    except ValidationError as error:
        report = quality.access_audit_report(request.user, public_id)
        return _render_audit(request, report, close_errors=error.messages, status=400)
    messages.success(request, f"Audit closed. Score: {report.score}%.")
    return redirect("completion:quality_audit", public_id=audit.public_id)


# --- checklists -----------------------------------------------------------------------


@require_GET
def checklists_view(request):
    return _render_checklists(request)


def _render_checklists(request, *, failed=None, bound=None, status=200):
    """The checklists, each with its own retire form (unique ids; the refused one bound)."""
    entries = []
    for checklist in quality.list_checklists(request.user):
        key = str(checklist.public_id)
        form = bound if key == failed else RetireForm(auto_id=f"id_{key[:8]}_%s")
        entries.append({"checklist": checklist, "retire_form": form, "failed": key == failed})
    context = {"entries": entries}
    return render(request, "completion/quality_checklists.html", context, status=status)


@require_http_methods(["GET", "POST"])
def checklist_new_view(request):
    quality.require_manage(request.user)
    replaces_id = request.POST.get("replaces") or request.GET.get("replaces") or ""
    replaces = quality.access_checklist(request.user, replaces_id) if replaces_id else None
    if request.method == "POST":
        form = ChecklistForm(request.POST)
    else:
        initial = {}
        if replaces is not None:
            initial = {
                "name": replaces.name,
                "description": replaces.description,
                "items": checklist_text(replaces),
                "replaces": str(replaces.public_id),
            }
        form = ChecklistForm(initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            checklist = quality.do_create_checklist(
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                items=form.cleaned_data["items"],
                replaces=replaces,
                acting_user=request.user,
            )
        except ValidationError as error:
            add_action_errors(form, error)
        else:
            done = (
                "New version saved; the previous one is retired."
                if replaces
                else "Checklist saved."
            )
            messages.success(
                request, f"{done} ({len(form.cleaned_data['items'])} items: {checklist.name})"
            )
            return redirect("completion:quality_checklists")
    context = {"form": form, "replaces": replaces}
    return render(
        request,
        "completion/quality_checklist_new.html",
        context,
        status=400 if form.errors else 200,
    )


@require_POST
def checklist_retire_view(request, public_id):
    checklist = quality.access_checklist(request.user, public_id)
    form = RetireForm(request.POST, auto_id=f"id_{str(checklist.public_id)[:8]}_%s")
    if form.is_valid():
        try:
            quality.do_retire_checklist(
                checklist, reason=form.cleaned_data["reason"], acting_user=request.user
            )
        except ValidationError as error:
            add_action_errors(form, error)
        else:
            messages.success(request, "Checklist retired; audits drawn with it keep it.")
            return redirect("completion:quality_checklists")
    return _render_checklists(request, failed=str(checklist.public_id), bound=form, status=400)


# --- scoring --------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def score_view(request, public_id, encounter_id):
    review = quality.access_record_review(request.user, public_id, encounter_id)
    form = ScoreForm(request.POST if request.method == "POST" else None, review=review)
    if request.method == "POST" and form.is_valid():
        try:
            record = quality.do_score_record(
                review.record, scores=form.scores(), acting_user=request.user
            )
        except ValidationError as error:
            form.add_action_errors(error)
        else:
            messages.success(
                request, f"Record {review.encounter.visit_number} scored {record.score}%."
            )
            return redirect("completion:quality_audit", public_id=review.audit.public_id)
    context = {"review": review, "form": form, "encounter": review.encounter}
    return render(
        request, "completion/quality_score.html", context, status=400 if form.errors else 200
    )


# --- corrections ----------------------------------------------------------------------


def _render_corrections(request, *, bound=None, status=200):
    filters = CorrectionFilter(request.GET or None)
    state, audit = quality.CorrectionState.OPEN, None
    if filters.is_valid():
        state = filters.cleaned_data.get("state") or quality.CorrectionState.OPEN
        if filters.cleaned_data.get("audit"):
            audit = quality.access_audit(request.user, filters.cleaned_data["audit"])
    lines = quality.list_corrections(request.user, state=state, audit=audit)
    may_resolve = has_permission(request.user, quality.REVIEW)
    failed, bound_form = bound or (None, None)
    entries = []
    for line in lines:
        key = str(line.correction.public_id)
        form = None
        if may_resolve and line.correction.status == CorrectionStatus.OPEN:
            form = bound_form if key == failed else ResolveForm(auto_id=f"id_{key[:8]}_%s")
        entries.append({"line": line, "form": form, "failed": key == failed})
    context = {
        "entries": entries,
        "filters": filters,
        "state": state,
        "audit": audit,
        "may_resolve": may_resolve,
    }
    return render(request, "completion/quality_corrections.html", context, status=status)


@require_GET
def corrections_view(request):
    return _render_corrections(request)


@require_POST
def correction_resolve_view(request, public_id):
    correction = quality.access_correction(request.user, public_id)
    form = ResolveForm(request.POST, auto_id=f"id_{str(correction.public_id)[:8]}_%s")
    if form.is_valid():
        try:
            quality.do_resolve_correction(
                correction,
                status=form.cleaned_data["status"],
                resolution=form.cleaned_data["resolution"],
                acting_user=request.user,
            )
        except ValidationError as error:
            add_action_errors(form, error)
        else:
            messages.success(request, "Correction resolved.")
            return redirect("completion:quality_corrections")
    return _render_corrections(request, bound=(str(correction.public_id), form), status=400)


# --- export ---------------------------------------------------------------------------


class _Echo:
    def write(self, value):
        return value


def _cell(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    # A cell that starts with = + - @ would run as a formula in a spreadsheet.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


@sudo_required(quality.MANAGE, action=Action.EXPORT)
def export_csv_view(request, public_id):
    report = quality.export_audit(request.user, public_id)
    results = quality.item_results(report)
    items = [line.item for line in report.items]
    writer = csv.writer(_Echo())
    header = [
        "visit_number",
        "encounter_id",
        "discharged_at",
        "class",
        "service",
        "attending",
        "reviewer",
        "reviewed_at",
        "score",
        "open_corrections",
        *[f"{item.position}. {item.text} (weight {item.weight})" for item in items],
    ]

    def rows():
        yield writer.writerow(_cell(value) for value in header)
        for line in report.records:
            e, r = line.encounter, line.record
            scored = results.get(r.pk, {})
            yield writer.writerow(
                _cell(value)
                for value in [
                    e.visit_number,
                    e.public_id,
                    e.ended_at,
                    e.encounter_class,
                    e.service,
                    e.attending.display_name if e.attending else "",
                    r.reviewer.display_name if r.reviewer else "",
                    r.reviewed_at,
                    r.score,
                    line.open_corrections,
                    *[scored.get(item.pk, "") for item in items],
                ]
            )
        yield writer.writerow(
            ["audit score", "", "", "", "", "", "", "", report.score, report.open_corrections]
        )

    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="quality-audit-{stamp}.csv"'
    return response
