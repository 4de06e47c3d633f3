"""ROI intake screens: the work queue, logging a request (patient chosen through the MPI
search), the request's page (clocks, documents, authorization checklist, history,
letters, then the processing controls), and the intake steps: attach, record the
authorization or its revocation, record the identity check, validate (pend or go on),
extend, assign.

Thin: access → form → one action → render. Reading pages answer GET; changes POST only.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from recordroom import clock
from roi import access, intake, policy, processing
from roi.accounting_views import apply_errors, search_context
from roi.forms import (
    AttachmentForm,
    AuthorizationForm,
    ExtendForm,
    IdentityForm,
    RequestForm,
    RevokeForm,
)
from roi.models import RequesterType, RequestStatus
from roi.permissions import RoiPermission as RP


@require_GET
def queue_view(request):
    filters = access.QueueFilters(
        status=request.GET.get("status", "")[:20],
        requester_type=request.GET.get("type", "")[:20],
        specialist=request.GET.get("specialist", "")[:40],
    )
    rows = access.queue(request.user, filters)
    context = {
        "rows": rows,
        "filters": filters,
        "statuses": RequestStatus.choices,
        "types": RequesterType.choices,
        "specialists": access.specialists(request.user),
    }
    return render(request, "roi/queue.html", context)


@require_GET
def new_view(request):
    """Step one of logging: find the patient through the MPI."""
    context = search_context(request, RP.LOG_REQUESTS)
    status = 400 if request.GET and context["search_form"].errors else 200
    return render(request, "roi/new.html", context, status=status)


@require_http_methods(["GET", "POST"])
def new_for_patient_view(request, patient_id):
    access.require_logging(request.user, patient_id)
    form = RequestForm(
        request.POST or None,
        initial={"received_on": policy.local_date(clock.now()), "scope_all": True},
        encounter_choices=access.encounter_choices(request.user, patient_id),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = intake.do_log_request(
                request.user,
                patient_id,
                intake.RequestInput(
                    requester_type=data["requester_type"],
                    requester_name=data["requester_name"],
                    received_on=data["received_on"],
                    requester_organization=data["requester_organization"],
                    requester_address=data["requester_address"],
                    requester_email=data["requester_email"] or "",
                    requester_phone=data["requester_phone"],
                    identity_verified=data["identity_verified"],
                    purpose=data["purpose"],
                    urgency=data["urgency"],
                    scope=form.scope(),
                    format=data["format"],
                    delivery=data["delivery"],
                ),
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(
                request, f"Request {created.number} logged; due {created.due_on:%Y-%m-%d}."
            )
            return redirect("roi:request", public_id=created.public_id)
    status = 400 if request.method == "POST" else 200
    return render(request, "roi/new_request.html", {"form": form}, status=status)


def _page(request, public_id, *, forms=None, status=200):
    page = access.request_page(request.user, public_id)
    forms = forms or {}
    context = {
        "page": page,
        "roi_request": page.request,
        "processing": processing.processing_panel(request.user, page.request),
        "attachment_form": forms.get("attachment") or AttachmentForm(),
        "authorization_form": forms.get("authorization") or AuthorizationForm(),
        "identity_form": forms.get("identity") or IdentityForm(),
        "extend_form": forms.get("extend") or ExtendForm(),
        "close_reasons": list(intake.CLOSE_REASONS.items()),
        "revoke_form": forms.get("revoke") or RevokeForm(),
    }
    return render(request, "roi/request.html", context, status=status)


@require_GET
def request_view(request, public_id):
    return _page(request, public_id)


def _step(request, public_id, name, form, call, success):
    if form.is_valid():
        try:
            call(form)
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                apply_errors(form, error)
            else:
                messages.error(request, " ".join(error.messages))
                return redirect("roi:request", public_id=public_id)
        else:
            messages.success(request, success)
            return redirect("roi:request", public_id=public_id)
    return _page(request, public_id, forms={name: form}, status=400)


@require_POST
def attach_view(request, public_id):
    form = AttachmentForm(request.POST, request.FILES)
    return _step(
        request,
        public_id,
        "attachment",
        form,
        lambda f: intake.do_attach(
            request.user, public_id, f.cleaned_data["kind"], f.cleaned_data["attachment"]
        ),
        "The document is attached.",
    )


@require_POST
def authorization_view(request, public_id):
    form = AuthorizationForm(request.POST)

    def record(f):
        data = f.cleaned_data
        made = intake.do_record_authorization(
            request.user,
            public_id,
            intake.AuthorizationInput(
                kind=data["kind"],
                checklist=f.checklist(),
                signed_on=data["signed_on"],
                expires_on=data["expires_on"],
                expiry_event=data["expiry_event"],
                information_described=data["information_described"],
                discloser=data["discloser"],
                recipient=data["recipient"],
                purpose=data["purpose"],
                signed_by_representative=data["signed_by_representative"],
                representative_authority=data["representative_authority"],
                sensitive_categories=tuple(data["sensitive_categories"]),
                revoked_on=data["revoked_on"],
            ),
        )
        if not made.valid:
            messages.warning(request, "The authorization is defective: " + " ".join(made.problems))

    return _step(
        request, public_id, "authorization", form, record, "The authorization is recorded."
    )


@require_POST
def revoke_view(request, public_id):
    form = RevokeForm(request.POST)
    return _step(
        request,
        public_id,
        "revoke",
        form,
        lambda f: intake.do_revoke_authorization(
            request.user,
            public_id,
            f.cleaned_data["authorization"],
            f.cleaned_data["revoked_on"],
            f.cleaned_data["how"],
        ),
        "The revocation is recorded.",
    )


@require_POST
def identity_view(request, public_id):
    form = IdentityForm(request.POST)
    return _step(
        request,
        public_id,
        "identity",
        form,
        lambda f: intake.do_record_identity(
            request.user, public_id, f.cleaned_data["identity_verified"]
        ),
        "The identity check is recorded.",
    )


@require_POST
def check_view(request, public_id):
    try:
        checked = intake.do_check(request.user, public_id)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if checked.status == RequestStatus.PENDED:
            messages.warning(request, "The request is pended; a letter to the requester says why.")
        else:
            messages.success(request, "The request is valid and in process.")
    return redirect("roi:request", public_id=public_id)


@require_POST
def extend_view(request, public_id):
    form = ExtendForm(request.POST)
    return _step(
        request,
        public_id,
        "extend",
        form,
        lambda f: intake.do_extend(request.user, public_id, f.cleaned_data["reason"]),
        "Extended once; the notice is in the letters.",
    )


@require_POST
def assign_view(request, public_id):
    wanted = request.POST.get("assignee", "")[:40]
    assignee = next(
        (u for u in access.specialists(request.user) if str(u.public_id) == wanted), None
    )
    try:
        intake.do_assign(request.user, public_id, assignee)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Assigned.")
    return redirect("roi:request", public_id=public_id)


@require_GET
def dashboard_view(request):
    return render(request, "roi/dashboard.html", {"board": access.dashboard(request.user)})


@require_POST
def close_view(request, public_id):
    try:
        intake.do_close(
            request.user,
            public_id,
            request.POST.get("reason", "")[:20],
            request.POST.get("note", "")[:300],
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "The request is closed.")
    return redirect("roi:request", public_id=public_id)
