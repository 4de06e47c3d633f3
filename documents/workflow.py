"""The document status flow, as data: the one table of allowed transitions.

::

    (new) ──create──▶ draft ──sign──▶ final ──sign an amendment──▶ amended / corrected
    (new) ──file (scanned, imported)──▶ final
    any status but entered-in-error ──mark──▶ entered-in-error (terminal)

A signed document never goes back to draft: it changes only by a new version (an
amendment or a correction, signed by its author) or by an addendum, which is a document
of its own. ``amended → amended`` and ``corrected → corrected`` are allowed because a
document may be amended more than once; every transition, including those, writes a
:class:`documents.models.DocumentStatusChange` row (old, new, who, when, why).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from documents.models import DocumentStatus, VersionKind

S = DocumentStatus
NEW = ""  # the from-status of a document's first row

TRANSITIONS: dict[str, frozenset[str]] = {
    NEW: frozenset({S.DRAFT, S.FINAL}),
    S.DRAFT: frozenset({S.FINAL, S.ENTERED_IN_ERROR}),
    S.FINAL: frozenset({S.AMENDED, S.CORRECTED, S.ENTERED_IN_ERROR}),
    S.AMENDED: frozenset({S.AMENDED, S.CORRECTED, S.ENTERED_IN_ERROR}),
    S.CORRECTED: frozenset({S.AMENDED, S.CORRECTED, S.ENTERED_IN_ERROR}),
    S.ENTERED_IN_ERROR: frozenset(),
}

# Statuses whose current version is authenticated (signed by its author, or filed).
AUTHENTICATED = frozenset({S.FINAL, S.AMENDED, S.CORRECTED})

# The status a document takes when a version of this kind is authenticated.
STATUS_AFTER = {
    VersionKind.ORIGINAL: S.FINAL,
    VersionKind.REVISION: S.FINAL,
    VersionKind.AMENDMENT: S.AMENDED,
    VersionKind.CORRECTION: S.CORRECTED,
}


class Conflict(ValidationError):
    """The request does not fit the document's state (already signed, a draft, entered
    in error…): nothing is wrong with the input, and nothing was changed."""


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


def check_transition(from_status: str, to_status: str) -> None:
    """Raise a Conflict that says what is not allowed, in the department's words."""
    if can_transition(from_status, to_status):
        return
    if from_status == S.ENTERED_IN_ERROR:
        raise Conflict(
            "This document is marked entered in error; it is kept as it is and cannot change."
        )
    if to_status == S.DRAFT:
        raise Conflict("A signed document never goes back to draft.")
    names = dict(DocumentStatus.choices)
    raise Conflict(
        f"A document cannot go from “{names.get(from_status, 'new')}” to “{names.get(to_status, to_status)}”."
    )
