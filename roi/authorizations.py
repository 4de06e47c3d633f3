"""What makes an authorization valid (45 CFR 164.508(b)–(c); 42 CFR 2.31 for a Part 2
consent), as data: each core element and required statement with its citation. The
specialist ticks what the document contains; :func:`problems` says what is defective."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Element:
    key: str
    label: str
    citation: str


CORE_ELEMENTS = [
    Element(
        "information",
        "A specific and meaningful description of the information to be disclosed",
        "164.508(c)(1)(i)",
    ),
    Element("discloser", "Who may make the disclosure", "164.508(c)(1)(ii)"),
    Element("recipient", "Who may receive it", "164.508(c)(1)(iii)"),
    Element("purpose", "The purpose of the disclosure", "164.508(c)(1)(iv)"),
    Element("expiration", "An expiration date or event", "164.508(c)(1)(v)"),
    Element("signature", "The individual's signature and date", "164.508(c)(1)(vi)"),
]
REQUIRED_STATEMENTS = [
    Element(
        "revocation",
        "The right to revoke in writing, and how (or a reference to the notice)",
        "164.508(c)(2)(i)",
    ),
    Element(
        "conditioning",
        "Whether treatment, payment, enrolment or eligibility is conditioned on signing",
        "164.508(c)(2)(ii)",
    ),
    Element(
        "redisclosure",
        "That the information may be redisclosed by the recipient and no longer protected",
        "164.508(c)(2)(iii)",
    ),
    Element("plain_language", "Written in plain language", "164.508(c)(3)"),
]
CHECKLIST = CORE_ELEMENTS + REQUIRED_STATEMENTS
KINDS = {
    "hipaa": "HIPAA authorization (164.508)",
    "psychotherapy": "Authorization for psychotherapy notes (164.508(a)(2))",
    "part2": "Part 2 consent for substance use disorder records (42 CFR 2.31)",
}


def problems(
    checklist: dict[str, bool],
    *,
    kind: str,
    today: dt.date,
    signed_on: dt.date | None,
    expires_on: dt.date | None,
    expiry_event: str,
    revoked_on: dt.date | None,
    signed_by_representative: bool,
    representative_authority: str,
) -> list[str]:
    """Why the authorization is defective (164.508(b)(2)); empty when it is valid."""
    found = [
        f"Missing: {element.label.lower()} ({element.citation})."
        for element in CHECKLIST
        if not checklist.get(element.key)
    ]
    if kind not in KINDS:
        found.append(f"Unknown kind of authorization: {kind}.")
    if signed_on is None:
        found.append("The date of signature is missing (164.508(c)(1)(vi)).")
    elif signed_on > today:
        found.append("The date of signature is in the future.")
    if expires_on is None and not expiry_event.strip():
        found.append("Neither an expiration date nor an expiration event is given.")
    elif expires_on is not None and expires_on < today:
        found.append(f"The authorization expired on {expires_on.isoformat()}.")
    elif expires_on is not None and signed_on is not None and expires_on < signed_on:
        found.append("The expiration date is before the date of signature.")
    if revoked_on is not None and revoked_on <= today:
        found.append(f"The authorization was revoked on {revoked_on.isoformat()}.")
    elif revoked_on is not None:
        found.append("The revocation date is in the future; record it when it is received.")
    if signed_by_representative and not representative_authority.strip():
        found.append(
            "Signed by a personal representative without a description of their authority "
            "(164.508(c)(1)(vi))."
        )
    return found
