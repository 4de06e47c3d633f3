"""Amendment screens (45 CFR 164.526): the list with deadlines and days left, logging a
patient's request against their documents (the patient chosen through the MPI search),
one request with its extension, acceptance, denial, the patient's choice to have a
denial travel, and the statement of disagreement and rebuttal.

Thin: access → form → one action → render. Every change answers POST only.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from roi import accounting_access, amendments
from roi.accounting_views import apply_errors, search_context
from roi.amendment_forms import (
    AcceptForm,
    DenyForm,
    ExtendAmendmentForm,
    LogAmendmentForm,
    SendWithDisclosuresForm,
    StatementForm,
)
from roi.models import AmendmentStatus
from roi.permissions import RoiPermission as RP

STATUS_FILTERS = [("open", "Open"), *AmendmentStatus.choices, ("all", "Any status")]


class FilterForm(forms.Form):
    status = forms.ChoiceField(label="Status", required=False, choices=STATUS_FILTERS)


@require_GET
def amendments_view(request):
    filters = FilterForm(request.GET or None)
    status = (filters.cleaned_data.get("status") if filters.is_valid() else "") or "open"
    rows = accounting_access.amendments_list(request.user, status=status)
    context = {
        "rows": rows,
        "filters": filters,
        "status": status,
        **search_context(request, RP.MANAGE_AMENDMENTS),
    }
    return render(request, "roi/amendments.html", context)


@require_http_methods(["GET", "POST"])
def log_amendment_view(request, patient_id):
    patient, documents = accounting_access.amendment_log_page(request.user, patient_id)
    form = LogAmendmentForm(request.POST or None, documents=documents)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                created = amendments.do_log_amendment(
                    patient_id,
                    acting_user=request.user,
                    received_on=data["received_on"],
                    document_ids=data["documents"],
                    requested_change=data["requested_change"],
                    requester_reason=data["requester_reason"],
                )
            except ValidationError as exc:
                apply_errors(form, exc)
            else:
                messages.success(request, f"Request logged; decide by {created.due_on:%Y-%m-%d}.")
                return redirect("roi:amendment", public_id=created.public_id)
    context = {"patient": patient, "form": form, "has_documents": bool(documents)}
    return render(request, "roi/amendment_log.html", context, status=status)


def _page(request, public_id, *, bound=None, status=200):
    page = accounting_access.amendment_page(request.user, public_id)
    bound = bound or {}
    amendment = page.row.amendment
    context = {
        "page": page,
        "amendment": amendment,
        "patient": amendment.patient,
        "extend_form": bound.get("extend") or ExtendAmendmentForm(),
        "accept_form": bound.get("accept") or AcceptForm(),
        "deny_form": bound.get("deny")
        or DenyForm(initial={"basis": "not_designated_record_set"} if page.in_error else None),
        "statement_form": bound.get("statement") or StatementForm(),
        "send_form": bound.get("send")
        or SendWithDisclosuresForm(initial={"send": amendment.send_with_disclosures}),
    }
    return render(request, "roi/amendment.html", context, status=status)


@require_GET
def amendment_view(request, public_id):
    return _page(request, public_id)


def _act(request, public_id, key: str, form, action, success: str):
    """Validate ``form``, call ``action(cleaned_data)``; redirect or re-render with errors."""
    if form.is_valid():
        try:
            action(form.cleaned_data)
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, success)
            return redirect("roi:amendment", public_id=public_id)
    return _page(request, public_id, bound={key: form}, status=400)


@require_POST
def extend_amendment_view(request, public_id):
    return _act(
        request,
        public_id,
        "extend",
        ExtendAmendmentForm(request.POST),
        lambda data: amendments.do_extend_amendment(
            public_id, acting_user=request.user, reason=data["reason"]
        ),
        "Deadline extended; the notice is written.",
    )


@require_POST
def accept_amendment_view(request, public_id):
    return _act(
        request,
        public_id,
        "accept",
        AcceptForm(request.POST),
        lambda data: amendments.do_accept_amendment(public_id, acting_user=request.user, **data),
        "Amendment accepted and filed in the record; the letter is written.",
    )


@require_POST
def deny_amendment_view(request, public_id):
    return _act(
        request,
        public_id,
        "deny",
        DenyForm(request.POST),
        lambda data: amendments.do_deny_amendment(public_id, acting_user=request.user, **data),
        "Amendment denied; the letter is written.",
    )


@require_POST
def send_with_disclosures_view(request, public_id):
    return _act(
        request,
        public_id,
        "send",
        SendWithDisclosuresForm(request.POST),
        lambda data: amendments.do_set_send_with_disclosures(
            public_id, acting_user=request.user, send=data["send"]
        ),
        "Saved.",
    )


@require_POST
def statement_view(request, public_id):
    return _act(
        request,
        public_id,
        "statement",
        StatementForm(request.POST),
        lambda data: amendments.do_record_statement(public_id, acting_user=request.user, **data),
        "Statement recorded and linked to the record.",
    )
