"""The accounting of disclosures screens: choose a patient (the MPI search), see their
disclosures and accounting requests, enter a disclosure by hand, suspend one, log a
patient's request for an accounting, extend it and answer it with the report.

Thin: access → form → one action → render. Reading pages answer GET; every change
answers POST only.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from patients.forms import SearchForm
from roi import accounting, accounting_access
from roi.accounting_forms import (
    AccountingRequestForm,
    AnswerForm,
    DisclosureForm,
    ExtendForm,
    SuspendForm,
)
from roi.permissions import RoiPermission as RP


def apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for key, errors in exc.error_dict.items():
            form.add_error(key if key in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def search_context(request, permission: str) -> dict:
    """The patient picker: the MPI search form and, when something was typed, results."""
    form = SearchForm(request.GET or None)
    page = None
    if request.GET and form.is_valid():
        query = form.cleaned_data["query"]
        if not query.is_empty:
            page = accounting_access.find_patients(request.user, query, permission)
    return {"search_form": form, "results": page}


@require_GET
def disclosures_view(request):
    rows = accounting_access.open_accounting_requests(request.user)
    context = {"rows": rows, **search_context(request, RP.VIEW_DISCLOSURES)}
    status = 400 if request.GET and context["search_form"].errors else 200
    return render(request, "roi/disclosures.html", context, status=status)


def _patient_page(request, patient_id, *, forms=None, status=200):
    page = accounting_access.patient_accounting(request.user, patient_id)
    forms = forms or {}
    context = {
        "page": page,
        "patient": page.patient,
        "disclosure_form": forms.get("disclosure") or DisclosureForm(),
        "request_form": forms.get("request")
        or AccountingRequestForm(initial={"received_on": page.today}),
        "suspend_form": forms.get("suspend") or SuspendForm(),
        "suspend_target": forms.get("suspend_target"),
    }
    return render(request, "roi/disclosures_patient.html", context, status=status)


@require_GET
def patient_disclosures_view(request, patient_id):
    return _patient_page(request, patient_id)


@require_POST
def record_disclosure_view(request, patient_id):
    form = DisclosureForm(request.POST)
    if form.is_valid():
        try:
            accounting.do_record_disclosure(
                patient_id, acting_user=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Disclosure recorded.")
            return redirect("roi:disclosures_patient", patient_id=patient_id)
    return _patient_page(request, patient_id, forms={"disclosure": form}, status=400)


@require_POST
def log_accounting_request_view(request, patient_id):
    form = AccountingRequestForm(request.POST)
    if form.is_valid():
        try:
            created = accounting.do_log_accounting_request(
                patient_id, acting_user=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Request logged; due {created.due_on:%Y-%m-%d}.")
            return redirect("roi:accounting_request", public_id=created.public_id)
    return _patient_page(request, patient_id, forms={"request": form}, status=400)


@require_POST
def suspend_disclosure_view(request, patient_id, public_id):
    form = SuspendForm(request.POST)
    if form.is_valid():
        try:
            disclosure = accounting.do_suspend_disclosure(
                public_id, acting_user=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Disclosure suspended from the accounting.")
            return redirect("roi:disclosures_patient", patient_id=disclosure.patient.public_id)
    return _patient_page(
        request,
        patient_id,
        forms={"suspend": form, "suspend_target": str(public_id)},
        status=400,
    )


def _request_page(request, public_id, *, forms=None, status=200):
    page = accounting_access.accounting_request_page(request.user, public_id)
    forms = forms or {}
    context = {
        "page": page,
        "request_obj": page.row.request,
        "patient": page.row.request.patient,
        "extend_form": forms.get("extend") or ExtendForm(),
        "answer_form": forms.get("answer") or AnswerForm(),
    }
    return render(request, "roi/accounting_request.html", context, status=status)


@require_GET
def accounting_request_view(request, public_id):
    return _request_page(request, public_id)


@require_POST
def extend_accounting_request_view(request, public_id):
    form = ExtendForm(request.POST)
    if form.is_valid():
        try:
            extended = accounting.do_extend_accounting_request(
                public_id, acting_user=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(
                request, f"Extended to {extended.extended_due_on:%Y-%m-%d}; notice written."
            )
            return redirect("roi:accounting_request", public_id=public_id)
    return _request_page(request, public_id, forms={"extend": form}, status=400)


@require_POST
def answer_accounting_request_view(request, public_id):
    form = AnswerForm(request.POST)
    if form.is_valid():
        try:
            accounting.do_answer_accounting_request(
                public_id, acting_user=request.user, summarize=form.cleaned_data["summarize"]
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Accounting answered; the report letter is kept.")
            return redirect("roi:accounting_request", public_id=public_id)
    return _request_page(request, public_id, forms={"answer": form}, status=400)
