"""Rules of disclosure, as data: on what basis a release is made (and so whether it
enters the accounting of disclosures, 45 CFR 164.528), which sensitive categories a
request may receive, where minimum necessary applies and what each purpose needs, and
the notices that go with a packet.

The basis values are those of :data:`roi.accounting.BASES`. A release is **not
accountable** when it is for treatment, payment or operations, to the patient or their
personal representative, or under the patient's authorization; everything else
(subpoenas, court orders, law enforcement, public health, research without
authorization, …) is.

Facility policy may override the minimum-necessary table and the notices through
``RoiPolicy.parameters`` (``minimum_necessary_categories``, ``part2_notice``,
``redisclosure_notice``); the values here are the federal defaults.
"""

from __future__ import annotations

from documents.models import SensitiveCategory
from roi.models import RequesterType as RT

# --- basis of a release ---------------------------------------------------------------

# requester type -> (basis without an authorization, basis with a valid authorization)
RELEASE_BASIS: dict[str, tuple[str, str]] = {
    RT.PATIENT: ("to_patient", "to_patient"),
    RT.REPRESENTATIVE: ("to_patient", "to_patient"),
    RT.PROVIDER: ("treatment", "treatment"),
    RT.PAYER: ("payment", "authorized"),
    RT.ATTORNEY: ("judicial", "authorized"),
    RT.SUBPOENA: ("judicial", "authorized"),
    RT.COURT_ORDER: ("judicial", "judicial"),
    RT.LAW_ENFORCEMENT: ("law_enforcement", "authorized"),
    RT.PUBLIC_HEALTH: ("public_health", "public_health"),
    RT.RESEARCH: ("research_waiver", "authorized"),
    RT.OTHER: ("other", "authorized"),
}

NOT_ACCOUNTABLE_BASES = frozenset(
    {"treatment", "payment", "operations", "to_patient", "authorized"}
    | {"incidental", "directory", "national_security", "correctional", "limited_data_set"}
)


def release_basis(requester_type: str, *, authorized: bool) -> str:
    """The basis of a release to this requester type (with or without a valid
    authorization from the patient on the request)."""
    without, with_authorization = RELEASE_BASIS.get(requester_type, ("other", "authorized"))
    return with_authorization if authorized else without


def is_accountable(basis: str) -> bool:
    """Whether a release on ``basis`` enters the accounting: not for treatment, payment,
    operations, to the patient/representative, or patient-authorized (and the other
    164.528(a)(1) exceptions)."""
    return basis not in NOT_ACCOUNTABLE_BASES


# --- who the rules treat as the patient, and treatment ---------------------------------

SELF_REQUESTERS = frozenset({RT.PATIENT, RT.REPRESENTATIVE})
TREATMENT_REQUESTERS = frozenset({RT.PROVIDER})


def minimum_necessary_applies(requester_type: str) -> bool:
    """Minimum necessary (164.502(b)) does not apply to treatment nor to the patient's
    (or representative's) own request."""
    return requester_type not in SELF_REQUESTERS | TREATMENT_REQUESTERS


# --- sensitive categories ---------------------------------------------------------------

# The kind of authorization a category needs before it may be released to anyone but
# the patient: psychotherapy notes their own authorization (164.508(a)(2)); substance
# use disorder records a Part 2 consent (42 CFR 2.31); the others a HIPAA authorization
# that names the category specifically.
CATEGORY_NEEDS_KIND: dict[str, frozenset[str]] = {
    SensitiveCategory.PSYCHOTHERAPY: frozenset({"psychotherapy"}),
    SensitiveCategory.SUBSTANCE_USE: frozenset({"part2"}),
    SensitiveCategory.HIV_STI: frozenset({"hipaa", "part2"}),
    SensitiveCategory.GENETIC: frozenset({"hipaa", "part2"}),
    SensitiveCategory.REPRODUCTIVE: frozenset({"hipaa", "part2"}),
    SensitiveCategory.BEHAVIORAL: frozenset({"hipaa", "part2", "psychotherapy"}),
}

# The patient (or representative) has a right of access to their designated record set
# (164.524), which excludes psychotherapy notes: those still need their own
# authorization.
SELF_ALLOWED_CATEGORIES = frozenset(
    c for c in SensitiveCategory.values if c != SensitiveCategory.PSYCHOTHERAPY
)


def authorized_categories(requester_type: str, authorizations) -> set[str]:
    """The sensitive categories this request may receive: those the patient's right of
    access covers for a self-request, plus those specifically named in a valid
    authorization of the kind each needs."""
    allowed: set[str] = set()
    if requester_type in SELF_REQUESTERS:
        allowed |= SELF_ALLOWED_CATEGORIES
    for authorization in authorizations:
        for category in authorization.sensitive_categories or ():
            if authorization.kind in CATEGORY_NEEDS_KIND.get(category, frozenset()):
                allowed.add(category)
    return allowed


# --- minimum necessary: the document categories each purpose needs --------------------

# DocumentType.category values. A request that names document types gets those types;
# a request for "all" is cut to what its purpose needs, and the specialist may widen it
# with a reason (the whole record only when justified).
CLINICAL = ["clinical-note", "result", "order"]
MINIMUM_NECESSARY_CATEGORIES: dict[str, list[str]] = {
    RT.PAYER: CLINICAL,
    RT.ATTORNEY: [*CLINICAL, "correspondence", "outside-record"],
    RT.SUBPOENA: [*CLINICAL, "correspondence", "outside-record"],
    RT.COURT_ORDER: [*CLINICAL, "correspondence", "outside-record", "consent", "legal"],
    RT.LAW_ENFORCEMENT: [],
    RT.PUBLIC_HEALTH: ["clinical-note", "result"],
    RT.RESEARCH: ["clinical-note", "result"],
    RT.OTHER: ["clinical-note", "result"],
}


def categories_needed(requester_type: str, parameters: dict | None = None) -> set[str] | None:
    """The document categories the purpose needs, or None when minimum necessary does
    not apply. ``parameters`` is the policy's ``parameters`` (its
    ``minimum_necessary_categories`` overrides the defaults per requester type)."""
    if not minimum_necessary_applies(requester_type):
        return None
    table = dict(MINIMUM_NECESSARY_CATEGORIES)
    table.update((parameters or {}).get("minimum_necessary_categories") or {})
    return set(table.get(requester_type, ["clinical-note", "result"]))


# --- notices ----------------------------------------------------------------------------

# 42 CFR 2.32(a) (2024 rule); check the current text before relying on it.
PART2_NOTICE = (
    "42 CFR part 2 prohibits unauthorized use or disclosure of these records.\n\n"
    "This record which has been disclosed to you is protected by Federal confidentiality "
    "rules (42 CFR part 2). These rules prohibit you from using or disclosing this record, "
    "or testimony that describes the information contained in this record, in any civil, "
    "criminal, administrative, or legislative proceedings by any Federal, State, or local "
    "authority, against the patient, unless authorized by the consent of the patient, "
    "except as provided at 42 CFR 2.12(c)(5) or as authorized by a court in accordance "
    "with 42 CFR 2.64 or 2.65. In addition, the Federal rules prohibit you from making any "
    "other use or disclosure of this record unless at least one of the following applies: "
    "(A) further use or disclosure is expressly permitted by the written consent of the "
    "individual whose information is being disclosed in this record or as otherwise "
    "permitted by 42 CFR part 2; (B) you are a covered entity or business associate and "
    "have received the record for treatment, payment, or health care operations; or (C) "
    "you have received the record from a covered entity or business associate as "
    "permitted by 45 CFR part 164, subparts A and E. A general authorization for the "
    "release of medical or other information is NOT sufficient to meet the required "
    "elements of written consent to further use or redisclose the record (see 42 CFR 2.31)."
)

# The statement 164.508(c)(2)(iii) requires on the authorization, repeated on the packet.
REDISCLOSURE_NOTICE = (
    "This information has been disclosed to you under the patient's written "
    "authorization. Information disclosed under an authorization may be subject to "
    "redisclosure by the recipient and may then no longer be protected by the federal "
    "privacy rule (45 CFR Part 164). Use it only for the purpose stated in the "
    "authorization; do not redisclose it except as the authorization or the law permits."
)


def notices_for(
    *, basis: str, categories_released: set[str], parameters: dict | None = None
) -> list[tuple[str, str]]:
    """(title, text) of each notice the packet must carry: the Part 2 notice when
    substance use disorder records go out; the redisclosure statement for a release
    under an authorization."""
    parameters = parameters or {}
    notices = []
    if SensitiveCategory.SUBSTANCE_USE in categories_released:
        notices.append(
            (
                "Notice to accompany disclosure (42 CFR 2.32)",
                parameters.get("part2_notice") or PART2_NOTICE,
            )
        )
    if basis == "authorized":
        notices.append(
            (
                "Notice about redisclosure",
                parameters.get("redisclosure_notice") or REDISCLOSURE_NOTICE,
            )
        )
    return notices
