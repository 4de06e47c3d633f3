"""The coder's abstract screen: header, diagnoses with POA, procedures with date and
performer, the live edit results and the DRG panel, finalise and reopen, the version
history.

Thin: access → parse → one action (``coding.abstracts``) → render. Every change is a
POST; from htmx it answers the workspace fragment (codes, edits, DRG) so the coder sees
the DRG move, otherwise it redirects back to the screen. A refused change shows its
message and changes nothing.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from coding import abstracts
from coding.abstract_access import abstract_for_coding, access_abstract_page, performer_for
from coding.models import CodeSystem


def _messages_of(error: ValidationError) -> list[str]:
    if hasattr(error, "message_dict"):
        return [m for values in error.message_dict.values() for m in values]
    return list(error.messages)


def _respond(request, encounter_id, problems=None, done=""):
    if request.htmx:
        page = access_abstract_page(request.user, encounter_id)
        return render(
            request,
            "coding/abstract_workspace.html",
            {"page": page, "problems": problems or [], "done": done},
        )
    for problem in problems or []:
        messages.error(request, problem)
    if done and not problems:
        messages.success(request, done)
    return redirect("coding:abstract", encounter_id=encounter_id)


def _act(request, encounter_id, work, done=""):
    """Run one action on the encounter's abstract (opening it first when needed)."""
    encounter, abstract = abstract_for_coding(request.user, encounter_id)
    version = request.POST.get("version") or None
    try:
        if abstract is None:
            abstract = abstracts.do_open_abstract(encounter, acting_user=request.user)
            version = None
        work(abstract, int(version) if version and version.isdigit() else None, encounter)
    except ValidationError as error:
        return _respond(request, encounter_id, _messages_of(error))
    return _respond(request, encounter_id, done=done)


def _date(value: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as error:
        raise ValidationError({"performed_on": "Give the date as YYYY-MM-DD."}) from error


def _performer(encounter, value):
    performer = performer_for(encounter, value)
    if performer is False:
        raise ValidationError({"performer": "Choose the performing clinician from the list."})
    return performer


# --- pages ------------------------------------------------------------------------------


@require_GET
def abstract_view(request, encounter_id):
    page = access_abstract_page(request.user, encounter_id)
    return render(request, "coding/abstract.html", {"page": page, "problems": []})


@require_GET
def history_view(request, encounter_id):
    page = access_abstract_page(request.user, encounter_id)
    return render(request, "coding/abstract_history.html", {"page": page})


# --- changes -------------------------------------------------------------------------------


@require_POST
def open_view(request, encounter_id):
    return _act(request, encounter_id, lambda a, v, e: None, "Abstract opened.")


@require_POST
def header_view(request, encounter_id):
    p = request.POST

    def work(abstract, version, encounter):
        abstracts.do_set_header(
            abstract,
            acting_user=request.user,
            admit_source=p.get("admit_source", ""),
            disposition=p.get("disposition", ""),
            payer=p.get("payer", ""),
            version=version,
        )

    return _act(request, encounter_id, work, "Header saved.")


@require_POST
def add_diagnosis_view(request, encounter_id):
    p = request.POST

    def work(abstract, version, encounter):
        abstracts.do_add_diagnosis(
            abstract,
            p.get("code", ""),
            poa=p.get("poa", ""),
            principal=p.get("principal") == "1",
            acting_user=request.user,
            version=version,
        )

    return _act(request, encounter_id, work, "Diagnosis added.")


@require_POST
def change_diagnosis_view(request, encounter_id, sequence):
    p = request.POST

    def work(abstract, version, encounter):
        abstracts.do_change_diagnosis(
            abstract,
            sequence,
            code=p.get("code", None),
            poa=p.get("poa", None),
            acting_user=request.user,
            version=version,
        )

    return _act(request, encounter_id, work, "Diagnosis changed.")


@require_POST
def remove_diagnosis_view(request, encounter_id, sequence):
    def work(abstract, version, encounter):
        abstracts.do_remove_diagnosis(abstract, sequence, acting_user=request.user, version=version)

    return _act(request, encounter_id, work, "Diagnosis removed.")


@require_POST
def move_diagnosis_view(request, encounter_id, sequence):
    to = request.POST.get("to", "")

    def work(abstract, version, encounter):
        if not to.isdigit():
            raise ValidationError("Give the position to move to.")
        abstracts.do_move_diagnosis(
            abstract, sequence, int(to), acting_user=request.user, version=version
        )

    return _act(request, encounter_id, work, "Diagnosis moved.")


@require_POST
def add_procedure_view(request, encounter_id):
    p = request.POST

    def work(abstract, version, encounter):
        abstracts.do_add_procedure(
            abstract,
            p.get("code", ""),
            system=p.get("system") or CodeSystem.ICD10PCS,
            performed_on=_date(p.get("performed_on", "")),
            performer=_performer(encounter, p.get("performer", "")),
            modifiers=p.get("modifiers", "").replace(",", " ").split(),
            acting_user=request.user,
            version=version,
        )

    return _act(request, encounter_id, work, "Procedure added.")


@require_POST
def change_procedure_view(request, encounter_id, sequence):
    p = request.POST

    def work(abstract, version, encounter):
        abstracts.do_change_procedure(
            abstract,
            sequence,
            code=p["code"] if p.get("code") else None,
            performed_on=_date(p.get("performed_on", "")),
            performer=_performer(encounter, p.get("performer", "")),
            acting_user=request.user,
            version=version,
        )

    return _act(request, encounter_id, work, "Procedure changed.")


@require_POST
def remove_procedure_view(request, encounter_id, sequence):
    def work(abstract, version, encounter):
        abstracts.do_remove_procedure(abstract, sequence, acting_user=request.user, version=version)

    return _act(request, encounter_id, work, "Procedure removed.")


@require_POST
def move_procedure_view(request, encounter_id, sequence):
    to = request.POST.get("to", "")

    def work(abstract, version, encounter):
        if not to.isdigit():
            raise ValidationError("Give the position to move to.")
        abstracts.do_move_procedure(
            abstract, sequence, int(to), acting_user=request.user, version=version
        )

    return _act(request, encounter_id, work, "Procedure moved.")


@require_POST
def finalise_view(request, encounter_id):
    def work(abstract, version, encounter):
        abstracts.do_finalise_abstract(abstract, acting_user=request.user, version=version)

    return _act(request, encounter_id, work, "Abstract finalised.")


@require_POST
def reopen_view(request, encounter_id):
    reason = request.POST.get("reason", "")

    def work(abstract, version, encounter):
        abstracts.do_reopen_abstract(
            abstract, acting_user=request.user, reason=reason, version=version
        )

    return _act(request, encounter_id, work, "Abstract reopened for a rebill.")
