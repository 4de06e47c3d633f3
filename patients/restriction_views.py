"""Restricted records: the restriction notice, break-the-glass, setting a restriction,
and the privacy officer's review of break-the-glass accesses."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.sudo import sudo_required
from audit.actions import record_event
from audit.models import Action, Outcome, Purpose
from patients import actions, restriction_access
from patients.permissions import PatientsPermission
from patients.restriction_forms import BreakTheGlassForm, RestrictionForm, ReviewForm


def _errors(error: ValidationError) -> list[str]:
    return list(error.messages)


@require_GET
def restricted_view(request, public_id):
    """The notice a user meets at a restricted record they have no relationship with."""
    notice = restriction_access.restriction_notice(request.user, public_id)
    if notice.may_open:
        return redirect("patients:chart", public_id=notice.public_id)
    form = BreakTheGlassForm(request.user) if notice.may_break_the_glass else None
    return render(request, "patients/restricted.html", {"notice": notice, "form": form})


@require_POST
def break_the_glass_view(request, public_id):
    patient = restriction_access.patient_for_break_the_glass(request.user, public_id)
    if not restriction_access.needs_break_the_glass(request.user, patient):
        return redirect("patients:chart", public_id=patient.public_id)
    form = BreakTheGlassForm(request.user, request.POST)
    if form.is_valid():
        try:
            grant = actions.do_break_the_glass(
                patient, reason=form.reason, acting_user=request.user
            )
        except ValidationError as error:
            form.add_error("details", _errors(error))
        else:
            until = timezone.localtime(grant.expires_at).strftime("%H:%M")
            messages.warning(
                request,
                f"Emergency access granted until {until}. It is recorded and will be "
                "reviewed by the privacy officer.",
            )
            return redirect("patients:chart", public_id=patient.public_id)
    elif form.password_refused:
        record_event(
            request.user,
            Action.BREAK_THE_GLASS,
            outcome=Outcome.DENIED,
            purpose=Purpose.EMERGENCY,
            patient_id=patient.public_id,
            object_type="patient",
            object_id=str(patient.public_id),
            reason="wrong password at break-the-glass",
        )
    notice = restriction_access.notice_for(request.user, patient)
    return render(request, "patients/restricted.html", {"notice": notice, "form": form}, status=400)


@sudo_required(PatientsPermission.MANAGE_RESTRICTIONS)
def restriction_view(request, public_id):
    """Flag a patient VIP, employee or confidential, or lift the flag, with a reason."""
    page = restriction_access.patient_for_restriction(request.user, public_id)
    patient = page.patient
    data = request.POST if request.method == "POST" else None
    form = RestrictionForm(data, current=patient.restriction)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_set_restriction(
                patient,
                form.cleaned_data["restriction"],
                reason=form.cleaned_data["reason"],
                acting_user=request.user,
            )
        except ValidationError as error:
            form.add_error(None, _errors(error))
        else:
            messages.success(request, "The restriction is saved.")
            return redirect("patients:restriction", public_id=patient.public_id)
    return render(
        request,
        "patients/restriction.html",
        {"page": page, "patient": patient, "form": form},
        status=400 if form.errors else 200,
    )


@require_GET
def review_queue_view(request):
    """Break-the-glass accesses waiting for review, oldest first; or those reviewed."""
    reviewed = request.GET.get("tab") == "reviewed"
    queue = restriction_access.break_the_glass_queue(
        request.user, reviewed=reviewed, page=request.GET.get("page") or 1
    )
    return render(request, "patients/btg_queue.html", {"queue": queue})


def review_view(request, grant_id):
    """One break-the-glass access with what its holder did; mark it reviewed."""
    form = ReviewForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        grant = restriction_access.grant_for_decision(request.user, grant_id)
        if form.is_valid():
            try:
                actions.do_review_break_the_glass(
                    grant,
                    status=form.cleaned_data["status"],
                    note=form.cleaned_data["note"],
                    acting_user=request.user,
                )
            except ValidationError as error:
                form.add_error(None, _errors(error))
            else:
                messages.success(request, "The review is recorded and the access is closed.")
                return redirect("patients:btg_queue")
    review = restriction_access.grant_for_review(request.user, grant_id)
    return render(
        request,
        "patients/btg_review.html",
        {"review": review, "grant": review.grant, "form": form},
        status=400 if form.errors else 200,
    )
