"""Screens of processing and release: the processing panel (propose, decide items,
submit, quality check, release, deny), the packet for staff, a new download link,
paper marked printed/mailed, the invoice, denial reviews, and the requester's download
page (outside the log-in: the link, then the request number and the patient's date of
birth).

Thin: parse input → one call into ``roi.processing``/``roi.release``/``roi.denials`` →
render or redirect. Every change answers POST only; releasing asks for the password
again (sudo). Refusals are audited where they are decided.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import has_permission
from accounts.sudo import sudo_required
from audit.models import Action
from roi import denials, fees, processing, release
from roi.permissions import RoiPermission as RP


def _back(public_id):
    """The request's page (the intake part's) when it exists, else the processing page."""
    try:
        return redirect(reverse("roi:request", args=[public_id]) + "#processing")
    except NoReverseMatch:
        return redirect("roi:processing", public_id=public_id)


def _message(error: ValidationError) -> str:
    return " ".join(error.messages)


def _run(request, public_id, call, success: str):
    try:
        call()
    except ValidationError as error:
        messages.error(request, _message(error))
    else:
        messages.success(request, success)
    return _back(public_id)


@require_GET
def processing_view(request, public_id):
    panel = processing.open_processing_page(request.user, public_id)
    context = {
        "processing": panel,
        "roi_request": panel.request,
        "basis_choices": denials.BASIS_CHOICES,
    }
    if request.headers.get("HX-Request"):
        return render(request, "roi/_processing.html", context)
    return render(request, "roi/packet_processing.html", context)


@require_POST
def propose_view(request, public_id):
    return _run(
        request,
        public_id,
        lambda: processing.do_propose(request.user, public_id),
        "The documents in scope are listed with the system's proposal.",
    )


@require_POST
def decide_item_view(request, public_id, document_id):
    include = request.POST.get("include") == "1"
    return _run(
        request,
        public_id,
        lambda: processing.do_decide_item(
            request.user,
            public_id,
            document_id,
            include=include,
            reason=request.POST.get("reason", ""),
        ),
        "Included." if include else "Excluded.",
    )


@require_POST
def submit_view(request, public_id):
    return _run(
        request,
        public_id,
        lambda: processing.do_submit_for_check(request.user, public_id),
        "Sent to the quality check.",
    )


@require_POST
def check_view(request, public_id):
    passed = request.POST.get("passed") == "1"
    return _run(
        request,
        public_id,
        lambda: processing.do_quality_check(
            request.user, public_id, passed=passed, notes=request.POST.get("notes", "")
        ),
        "Quality check passed: ready to release." if passed else "Sent back for processing.",
    )


@require_POST
@sudo_required(RP.PROCESS, action=Action.DISCLOSE)
def release_view(request, public_id):
    try:
        released = release.do_release(
            request.user, public_id, rerelease_reason=request.POST.get("rerelease_reason", "")
        )
    except ValidationError as error:
        messages.error(request, _message(error))
        return _back(public_id)
    return _released_page(request, public_id, released.packet, released.token)


def _released_page(request, public_id, packet, token):
    link = request.build_absolute_uri(reverse("roi:download", args=[token])) if token else ""
    context = {"packet": packet, "link": link, "request_id": public_id}
    return render(request, "roi/packet_released.html", context)


@require_GET
def packet_view(request, public_id, packet_id):
    try:
        packet, handle = release.open_packet(request.user, public_id, packet_id)
    except ValidationError as error:
        messages.error(request, _message(error))
        return _back(public_id)
    response = FileResponse(
        handle, content_type="application/pdf", filename=f"{packet.request.number}.pdf"
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
def new_link_view(request, public_id, packet_id):
    try:
        packet, token = release.do_new_download_link(request.user, public_id, packet_id)
    except ValidationError as error:
        messages.error(request, _message(error))
        return _back(public_id)
    return _released_page(request, public_id, packet, token)


@require_POST
def paper_view(request, public_id, packet_id, step):
    return _run(
        request,
        public_id,
        lambda: release.do_mark_paper(request.user, public_id, packet_id, step=step),
        f"The packet is marked {step}.",
    )


@require_GET
def invoice_view(request, public_id):
    panel = processing.open_processing_page(request.user, public_id)
    context = {
        "roi_request": panel.request,
        "lines": panel.invoice,
        "total": fees.total(panel.invoice),
    }
    return render(request, "roi/packet_invoice.html", context)


@require_POST
def deny_view(request, public_id):
    return _run(
        request,
        public_id,
        lambda: denials.do_deny(
            request.user,
            public_id,
            basis=request.POST.get("basis", ""),
            explanation=request.POST.get("explanation", ""),
            partial=request.POST.get("partial") == "1",
            determined_by=request.POST.get("determined_by", ""),
        ),
        "The denial is recorded and its letter kept.",
    )


@require_POST
def review_requested_view(request, public_id, denial_id):
    return _run(
        request,
        public_id,
        lambda: denials.do_request_review(request.user, public_id, denial_id),
        "The request for a review is recorded.",
    )


@require_POST
def review_view(request, public_id, denial_id):
    response = _run(
        request,
        public_id,
        lambda: denials.do_record_review(
            request.user,
            public_id,
            denial_id,
            upheld=request.POST.get("upheld") == "1",
            note=request.POST.get("note", ""),
        ),
        "The review is recorded.",
    )
    # A reviewer who does not process requests goes back to the reviews waiting.
    return response if has_permission(request.user, RP.PROCESS) else redirect("roi:denial_reviews")


@require_GET
def reviews_waiting_view(request):
    return render(
        request,
        "roi/denial_reviews.html",
        {"denials": denials.reviews_waiting(request.user)},
    )


@require_GET
def letter_view(request, public_id, letter_id):
    letter, handle = denials.open_letter(request.user, public_id, letter_id)
    response = FileResponse(
        handle, content_type="application/pdf", filename=f"letter-{letter.kind}.pdf"
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- the requester's download page ----------------------------------------------------------


def _birth_date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        return None


@login_not_required
@require_http_methods(["GET", "POST"])
def download_view(request, token):
    try:
        packet = release.check_link(token)
    except release.DownloadRefused as refused:
        return render(request, "roi/download_invalid.html", {"message": str(refused)}, status=404)
    if request.method == "GET":
        return render(request, "roi/download.html", {"expires_at": packet.download_expires_at})
    try:
        packet, handle = release.download(
            token,
            request_number=request.POST.get("request_number", ""),
            birth_date=_birth_date(request.POST.get("birth_date", "")),
        )
    except release.DownloadRefused as refused:
        context = {"expires_at": packet.download_expires_at, "error": str(refused)}
        return render(request, "roi/download.html", context, status=400)
    response = FileResponse(
        handle,
        content_type="application/pdf",
        as_attachment=True,
        filename=f"{packet.request.number}.pdf",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response
