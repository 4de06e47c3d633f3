"""Letters of release of information: generated as PDF, stored, and kept with their text.

:func:`issue_letter` is the one way to make a letter (pend letters, extension notices,
denials, cover letters, accounting and amendment letters). It writes the ``Letter``
row with its PDF file and the PDF's SHA-256, in the caller's transaction. It does not
check permissions or write the audit trail: it is called from the actions that do
(``roi.intake``, ``roi.denials``, ``roi.packets``, ``roi.accounting``, ``roi.amendments``),
which record the letter's creation with the rest of what they do.

The body is plain text; a blank line separates paragraphs. No patient data goes into
the file name (the letter's public id is the name).
"""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.utils import timezone

from recordroom import clock
from roi.models import Letter, LetterKind
from roi.pdf import letter_pdf

DEFAULT_LETTERHEAD = "Health Information Management"


def letterhead_for(request=None, accounting_request=None, amendment=None) -> tuple[str, list[str]]:
    """The letterhead: the facility of the request when there is one, then the
    department's name."""
    facility = getattr(request, "facility", None)
    if facility is not None:
        return facility.name, [DEFAULT_LETTERHEAD]
    return DEFAULT_LETTERHEAD, []


def paragraphs_of(body: str) -> list[str]:
    """The paragraphs of a plain-text body (blank lines separate them)."""
    chunks = [chunk.strip("\n") for chunk in body.replace("\r\n", "\n").split("\n\n")]
    return [chunk for chunk in chunks if chunk.strip()]


def _reference(request=None, accounting_request=None, amendment=None) -> str:
    if request is not None:
        return request.number
    if accounting_request is not None:
        return f"Accounting request {str(accounting_request.public_id)[:8]}"
    if amendment is not None:
        return f"Amendment request {str(amendment.public_id)[:8]}"
    return ""


def render_letter(
    kind: str, body: str, *, request=None, accounting_request=None, amendment=None, title=""
) -> bytes:
    """The PDF of a letter (not stored)."""
    name, lines = letterhead_for(request, accounting_request, amendment)
    reference = _reference(request, accounting_request, amendment)
    heading = title or LetterKind(kind).label
    if reference:
        heading = f"{heading} - {reference}"
    return letter_pdf(
        title=heading,
        paragraphs=paragraphs_of(body),
        letterhead=name,
        letterhead_lines=lines,
        date=timezone.localdate(clock.now()),
        footer=reference,
    )


def issue_letter(
    kind: str,
    patient,
    body: str,
    by,
    *,
    request=None,
    accounting_request=None,
    amendment=None,
    title: str = "",
) -> Letter:
    """Make, store and return a letter of ``kind`` (a :class:`roi.models.LetterKind`
    value) to or about ``patient``, written by ``by``. Raises ``ValueError`` for an
    unknown kind or an empty body (nothing is stored then)."""
    if kind not in LetterKind.values:
        raise ValueError(f"Unknown letter kind: {kind}")
    if not body or not body.strip():
        raise ValueError("A letter needs a body.")
    content = render_letter(
        kind,
        body,
        request=request,
        accounting_request=accounting_request,
        amendment=amendment,
        title=title,
    )
    letter = Letter(
        kind=kind,
        patient=patient,
        request=request,
        accounting_request=accounting_request,
        amendment=amendment,
        body=body,
        sha256=hashlib.sha256(content).hexdigest(),
        created_at=clock.now(),
        created_by=by,
    )
    letter.file.save(f"{letter.public_id}.pdf", ContentFile(content), save=False)
    letter.save(force_insert=True)
    return letter
