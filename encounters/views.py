"""Encounter screens: register a visit or admission, see one encounter with its
locations, documents, clinical data and versions, and the workflow steps on it
(check in, transfer, discharge, cancel the discharge, correct, cancel).

The steps are forms on the encounter screen that post to their own URL; a refused
step shows the screen again with its form open and the errors on it."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from encounters import access, actions
from encounters.forms import (
    CancelDischargeForm,
    CancelForm,
    CorrectForm,
    DischargeForm,
    EncounterForm,
    StartForm,
    TransferForm,
    add_action_errors,
)


@require_http_methods(["GET", "POST"])
def new_encounter_view(request, patient_id):
    patient = access.access_patient_for_encounters(request.user, patient_id)
    facilities = access.facilities_for_new_encounter(request.user, patient)
    form = EncounterForm(
        request.POST if request.method == "POST" else None,
        facilities=facilities,
        clinicians=access.attending_choices(facilities),
    )
    if request.method == "POST" and form.is_valid():
        try:
            encounter = actions.do_register_encounter(
                patient, acting_user=request.user, **form.action_kwargs()
            )
        except ValidationError as error:
            add_action_errors(form, error)
        else:
            messages.success(request, f"Encounter {encounter.visit_number} registered.")
            return redirect("encounters:detail", public_id=encounter.public_id)
    context = {"form": form, "patient": patient, "facilities": facilities}
    return render(request, "encounters/new.html", context, status=400 if form.errors else 200)


def _render_detail(request, encounter, *, bound=None, status=200):
    page = access.encounter_page(request.user, encounter)
    forms = {}
    if page.can_manage:
        clinicians = access.attending_choices([encounter.facility])
        forms = {
            "start": StartForm(),
            "transfer": TransferForm(),
            "discharge": DischargeForm(),
            "cancel_discharge": CancelDischargeForm(),
            "correct": CorrectForm(encounter=encounter, clinicians=clinicians),
            "cancel": CancelForm(),
        }
    if bound:
        forms.update(bound)
    context = {
        "page": page,
        "encounter": encounter,
        "patient": encounter.patient,
        "forms": forms,
        "open_form": next(iter(bound), "") if bound else "",
    }
    return render(request, "encounters/detail.html", context, status=status)


@require_GET
def encounter_view(request, public_id):
    encounter = access.access_encounter(request.user, public_id)
    return _render_detail(request, encounter)


def _step(request, public_id, name, form, run, done):
    """One workflow step: the door (write), the form, the action, then back to the
    encounter screen — with the form open and its errors when refused."""
    encounter = access.access_encounter(request.user, public_id, write=True)
    if callable(form):
        form = form(encounter)
    if form.is_valid():
        try:
            run(encounter, form)
        except ValidationError as error:
            add_action_errors(form, error)
        else:
            messages.success(request, done)
            return redirect("encounters:detail", public_id=encounter.public_id)
    return _render_detail(request, encounter, bound={name: form}, status=400)


@require_POST
def start_view(request, public_id):
    return _step(
        request,
        public_id,
        "start",
        StartForm(request.POST),
        lambda e, f: actions.do_start_encounter(e, acting_user=request.user, **f.cleaned_data),
        "The patient is checked in.",
    )


@require_POST
def transfer_view(request, public_id):
    return _step(
        request,
        public_id,
        "transfer",
        TransferForm(request.POST),
        lambda e, f: actions.do_transfer(e, acting_user=request.user, **f.cleaned_data),
        "Transfer recorded.",
    )


@require_POST
def discharge_view(request, public_id):
    return _step(
        request,
        public_id,
        "discharge",
        DischargeForm(request.POST),
        lambda e, f: actions.do_discharge(e, acting_user=request.user, **f.cleaned_data),
        "Discharge recorded.",
    )


@require_POST
def cancel_discharge_view(request, public_id):
    return _step(
        request,
        public_id,
        "cancel_discharge",
        CancelDischargeForm(request.POST),
        lambda e, f: actions.do_cancel_discharge(
            e, reason=f.cleaned_data["reason"], acting_user=request.user
        ),
        "The discharge is cancelled; the encounter is in progress again.",
    )


@require_POST
def correct_view(request, public_id):
    def form(encounter):
        return CorrectForm(
            request.POST,
            encounter=encounter,
            clinicians=access.attending_choices([encounter.facility]),
        )

    return _step(
        request,
        public_id,
        "correct",
        form,
        lambda e, f: actions.do_correct_encounter(
            e,
            changes=f.changes(),
            reason=f.cleaned_data["correction_reason"],
            acting_user=request.user,
        ),
        "Correction saved as a new version.",
    )


@require_POST
def cancel_view(request, public_id):
    return _step(
        request,
        public_id,
        "cancel",
        CancelForm(request.POST),
        lambda e, f: actions.do_cancel_encounter(
            e,
            status=f.cleaned_data["status"],
            reason=f.cleaned_data["reason"],
            acting_user=request.user,
        ),
        "The encounter is marked and kept; the chart's timeline no longer shows it.",
    )
