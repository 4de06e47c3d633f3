"""Screens of the legal document record. Thin: access → form → one action → render.

Form pages answer GET (show the form, after the same checks the action makes, so a
refusal is audited even before anything is posted) and POST (do it); every other
method is refused with 405. Reading pages answer GET only; break-the-glass, whose form
sits on the restricted-document page, answers POST only.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from documents import access, actions
from documents.forms import (
    AddendumForm,
    AmendForm,
    EnteredInErrorForm,
    NewDocumentForm,
    ReviseDraftForm,
    SignForm,
    apply_errors,
)
from documents.workflow import Conflict
from patients.actions import do_break_the_glass
from patients.restriction_forms import BreakTheGlassForm

form_page = require_http_methods(["GET", "POST"])


def _refusals(view):
    """Render the refusals an access or action already audited, with what to say."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except access.RestrictedDocument as exc:
            return _restricted(request, exc.document)
        except access.ActionRefused as exc:
            context = {"title": "Not allowed", "message": exc.message}
            return render(request, "recordroom/error.html", context, status=403)
        except Conflict as exc:
            context = {"title": "Not possible now", "message": " ".join(exc.messages)}
            return render(request, "recordroom/error.html", context, status=409)

    return wrapper


def _attempt(form, action, *args, **kwargs):
    """Run an action; put its input errors on the form (None then). Conflicts go up."""
    try:
        return action(*args, **kwargs)
    except Conflict:
        raise
    except ValidationError as exc:
        apply_errors(form, exc)
        return None


def _posted(request):
    return (request.POST, request.FILES) if request.method == "POST" else (None, None)


def _detail(document):
    return redirect("documents:detail", public_id=document.public_id)


@form_page
@_refusals
def new_document_view(request, patient_id):
    patient, sources = access.access_patient_for_new_document(request.user, patient_id)
    doc_types = access.document_types()
    encounters = access.encounter_choices(patient)
    form = NewDocumentForm(
        *_posted(request),
        sources=sources,
        doc_types=doc_types,
        encounters=encounters,
        initial=_prefill(request, doc_types, encounters),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        document = _attempt(
            form,
            actions.do_create_document,
            patient,
            acting_user=request.user,
            **{key: data[key] for key in NewDocumentForm.base_fields},
        )
        if document is not None:
            messages.success(
                request, "Document saved." if document.status == "draft" else "Document filed."
            )
            return _detail(document)
    context = {
        "form": form,
        "patient": patient,
        "chart_url": _chart_url(patient),
        "banner": access.patient_banner(patient),
    }
    return render(request, "documents/new.html", context, status=400 if form.errors else 200)


def _prefill(request, doc_types, encounters) -> dict:
    """Initial values from the query string (the completion queue links a missing
    document as ``?encounter=<uuid>&doc_type=<LOINC>``); values that match nothing the
    user may choose are ignored."""
    if request.method != "GET":
        return {}
    initial = {}
    code = request.GET.get("doc_type", "")
    doc_type = next((t for t in doc_types if t.loinc_code == code), None) if code else None
    if doc_type is not None:
        initial["doc_type"] = doc_type
        initial["title"] = doc_type.display
    wanted = request.GET.get("encounter", "")
    encounter = (
        next((e for e in encounters if str(e.public_id) == wanted), None) if wanted else None
    )
    if encounter is not None:
        initial["encounter"] = encounter
    return initial


@require_GET
@_refusals
def document_view(request, public_id):
    number = request.GET.get("version", "")
    if number and not number.isdigit():
        raise Http404("No such version")
    page = access.document_page(request.user, public_id, version=int(number) if number else None)
    return render(request, "documents/detail.html", {"page": page, **_frame(page.document)})


@form_page
@_refusals
def edit_draft_view(request, public_id):
    document = access.access_document(request.user, public_id, write=request.method == "POST")
    actions.check_revise(document, acting_user=request.user)
    form = ReviseDraftForm(*_posted(request), initial={"body": document.current_version.body})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if _attempt(
            form,
            actions.do_revise_draft,
            document,
            body=data["body"],
            attachment=data["attachment"],
            acting_user=request.user,
        ):
            messages.success(request, "Draft saved as a new version.")
            return _detail(document)
    context = {"form": form, "version": document.current_version, **_frame(document)}
    return render(request, "documents/edit.html", context, status=400 if form.errors else 200)


@form_page
@_refusals
def sign_view(request, public_id):
    document = access.access_document(request.user, public_id, write=request.method == "POST")
    version = actions.check_sign(document, acting_user=request.user)
    form = SignForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        password = form.cleaned_data["password"]
        if _attempt(
            form, actions.do_sign_document, document, password=password, acting_user=request.user
        ):
            messages.success(request, f"Version {version.number} signed.")
            return _detail(document)
    context = {"form": form, "version": version, **_frame(document)}
    return render(request, "documents/sign.html", context, status=400 if form.errors else 200)


@form_page
@_refusals
def amend_view(request, public_id):
    document = access.access_document(request.user, public_id, write=request.method == "POST")
    actions.check_amend(document, acting_user=request.user)
    latest = access.latest_version(document)
    form = AmendForm(*_posted(request), initial={"body": latest.body})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        version = _attempt(
            form, actions.do_amend_document, document, acting_user=request.user, **data
        )
        if version is not None:
            if not version.content_sha256:  # an authored change waits for its signature
                messages.success(
                    request, f"Version {version.number} saved; sign it to make it current."
                )
                return redirect("documents:sign", public_id=document.public_id)
            messages.success(request, f"Version {version.number} filed.")
            return _detail(document)
    context = {"form": form, "latest": latest, **_frame(document)}
    return render(request, "documents/amend.html", context, status=400 if form.errors else 200)


@form_page
@_refusals
def addendum_view(request, public_id):
    document = access.access_document(request.user, public_id, write=request.method == "POST")
    actions.check_addendum(document, acting_user=request.user)
    form = AddendumForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        addendum = _attempt(
            form, actions.do_add_addendum, document, acting_user=request.user, **form.cleaned_data
        )
        if addendum is not None:
            messages.success(request, "Addendum saved; sign it to make it part of the record.")
            return redirect("documents:sign", public_id=addendum.public_id)
    context = {"form": form, **_frame(document)}
    return render(request, "documents/addendum.html", context, status=400 if form.errors else 200)


@form_page
@_refusals
def entered_in_error_view(request, public_id):
    document = access.access_document(request.user, public_id, write=request.method == "POST")
    actions.check_mark_in_error(document, acting_user=request.user)
    form = EnteredInErrorForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        reason = form.cleaned_data["reason"]
        if _attempt(
            form,
            actions.do_mark_entered_in_error,
            document,
            reason=reason,
            acting_user=request.user,
        ):
            messages.success(
                request, "Marked entered in error. It is kept, and hidden from ordinary views."
            )
            return redirect(_chart_url(document.patient))
    context = {"form": form, **_frame(document)}
    return render(
        request, "documents/entered_in_error.html", context, status=400 if form.errors else 200
    )


@require_GET
@_refusals
def history_view(request, public_id):
    page = access.history_page(request.user, public_id)
    return render(request, "documents/history.html", {"page": page, **_frame(page.document)})


@require_GET
@_refusals
def diff_view(request, public_id, a, b):
    page = access.diff_page(request.user, public_id, a, b)
    return render(request, "documents/diff.html", {"page": page, **_frame(page.document)})


@require_GET
@_refusals
def attachment_view(request, public_id, number):
    try:
        version, handle = access.open_attachment(request.user, public_id, number)
    except access.AttachmentDamaged:
        context = {
            "title": "The stored file is damaged",
            "message": "The file no longer matches the checksum kept when it was filed. "
            "It was not shown; the HIM administrator has been alerted in the audit trail.",
        }
        return render(request, "recordroom/error.html", context, status=500)
    response = FileResponse(
        handle,
        content_type=version.attachment_content_type,
        as_attachment=False,
        filename=version.attachment_name,
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
def break_the_glass_view(request, public_id):
    """Emergency access from a restricted document's page: reason and password, then a
    time-limited grant for the patient, reviewed later by the privacy officer."""
    document, closed = access.document_for_break_the_glass(request.user, public_id)
    if not closed:
        return _detail(document)
    if not access.may_break_glass(request.user, document.patient):
        return _restricted(request, document)
    form = BreakTheGlassForm(request.user, request.POST)
    if form.is_valid():
        try:
            do_break_the_glass(
                document.patient, reason=form.reason, acting_user=request.user, document=document
            )
        except ValidationError as exc:
            form.add_error("details", exc.messages)
        else:
            messages.warning(
                request, "Emergency access granted. It is recorded and will be reviewed."
            )
            return _detail(document)
    elif form.password_refused:
        actions.record_refused_break_the_glass(document, acting_user=request.user)
    return _restricted(request, document, form=form, status=400)


def _restricted(request, document, *, form=None, status=403):
    context = access.restricted_summary(request.user, document)
    if context["may_break_glass"]:
        context["form"] = form or BreakTheGlassForm(request.user)
    return render(request, "documents/restricted.html", context, status=status)


def _chart_url(patient) -> str:
    return reverse("patients:chart", args=[patient.public_id])


def _frame(document) -> dict:
    """What every document page shows around its content: the patient and the way back."""
    return {
        "document": document,
        "patient": document.patient,
        "chart_url": _chart_url(document.patient),
        "banner": access.patient_banner(document.patient),
    }
