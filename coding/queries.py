"""Physician queries: a coder asks the responsible clinician about the documentation; the
clinician answers; the answer is filed, signed, in the legal record.

A query is **compliant and non-leading** (AHIMA/ACDIS "Guidelines for Achieving a
Compliant Query Practice"):

- it states the clinical indicators from the record that prompt it;
- it is multiple choice with at least two clinically reasonable options, and always
  ends with "Other (please specify)" and "Clinically undetermined";
- it never mentions the financial or quality impact (DRG, CC/MCC, reimbursement,
  payment…) — such a question is refused with a clear message.

Opening a query puts the abstract **on hold**; the clinician finds it on their work
queue (the "Coding queries" section of the chart-completion queue and the home page);
answering writes a document of the policy's type (a progress note by default) with the
question, the indicators and the answer, signs it with the clinician's password
(``documents.actions``), links it to the query and releases the hold when no other query
of the abstract is open. A coder may withdraw an open query (with a reason), which
releases the hold the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404

from audit.actions import record_event
from audit.models import Action, Outcome
from coding import work_access as wa
from coding.models import (
    Abstract,
    AbstractStatus,
    AbstractVersion,
    PhysicianQuery,
    QueryStatus,
)
from coding.permissions import CodingPermission as K
from coding.queue import VOID_ENCOUNTER, discharged_not_final, open_abstract_for_claim
from documents.actions import do_create_document, do_sign_document
from documents.models import DocumentType
from patients.access import Scope, access_patient, default_purpose
from recordroom import clock

OTHER = "Other (please specify)"
UNDETERMINED = "Clinically undetermined"
FIXED_OPTIONS = (OTHER, UNDETERMINED)
MIN_CLINICAL_OPTIONS = 2
MAX_CLINICAL_OPTIONS = 8
MAX_OPTION = 200
MAX_TEXT = 4000
# Words that tie a query to money or to the grouping: a compliant query never says them.
LEADING = re.compile(
    r"\b(ms-?drg|drgs?|mccs?|ccs?|cc/mcc|reimburs\w*|payments?|paid|financial\w*|revenue|"
    r"dollars?|money|severity of illness|risk of mortality|case mix)\b",
    re.IGNORECASE,
)


# --- validation ---------------------------------------------------------------------------


def clean_options(options) -> list[str]:
    """The clinical options as given (trimmed, blanks and duplicates dropped, the fixed
    choices removed) followed by the two fixed choices."""
    seen: set[str] = set()
    clinical = []
    for option in options or []:
        text = " ".join(str(option).split())
        key = text.casefold()
        if not text or key in seen or key in {f.casefold() for f in FIXED_OPTIONS}:
            continue
        seen.add(key)
        clinical.append(text)
    return clinical


def validate_query(*, clinical_indicators: str, question: str, options) -> tuple[str, str, list]:
    errors: dict[str, list[str]] = {}
    indicators = (clinical_indicators or "").strip()
    question = " ".join((question or "").split())
    clinical = clean_options(options)
    if not indicators:
        errors.setdefault("clinical_indicators", []).append(
            "State the clinical indicators in the record that prompt the query."
        )
    elif len(indicators) > MAX_TEXT:
        errors.setdefault("clinical_indicators", []).append("The indicators are too long.")
    if not question:
        errors.setdefault("question", []).append("Write the question.")
    elif len(question) > MAX_TEXT:
        errors.setdefault("question", []).append("The question is too long.")
    elif not question.endswith("?"):
        errors.setdefault("question", []).append("Ask a question (end it with a question mark).")
    for name, text in (("question", question), ("clinical_indicators", indicators)):
        if LEADING.search(text):
            errors.setdefault(name, []).append(
                "A compliant query does not mention the DRG, CC/MCC, payment or any "
                "financial or quality impact."
            )
    if len(clinical) < MIN_CLINICAL_OPTIONS:
        errors.setdefault("options", []).append(
            f"Give at least {MIN_CLINICAL_OPTIONS} clinically reasonable options, so the "
            "query does not lead to one answer."
        )
    elif len(clinical) > MAX_CLINICAL_OPTIONS:
        errors.setdefault("options", []).append(f"Give at most {MAX_CLINICAL_OPTIONS} options.")
    if any(len(o) > MAX_OPTION for o in clinical):
        errors.setdefault("options", []).append(f"Keep each option under {MAX_OPTION} characters.")
    if any(LEADING.search(o) for o in clinical):
        errors.setdefault("options", []).append(
            "An option may not mention the DRG, CC/MCC or payment."
        )
    if errors:
        raise ValidationError(errors)
    return indicators, question, [*clinical, *FIXED_OPTIONS]


# --- the hold ------------------------------------------------------------------------------


def _release_on_answer(abstract: Abstract, *, acting_user, now) -> bool:
    """The clinician's answer releases the hold when no other query of the abstract is
    open: back to in progress (not started when nothing is coded). The clinician holds
    no ``coding.code``, so the abstract screen's ``do_release_hold`` (which asks for it)
    is not used here; the change is versioned the same way (a new AbstractVersion with
    who, when and why, the abstract's snapshot as that module writes it)."""
    from coding.abstracts import snapshot

    if abstract.status != AbstractStatus.ON_HOLD:
        return False
    if abstract.queries.filter(status=QueryStatus.OPEN).exists():
        return False
    begun = abstract.diagnoses.exists() or abstract.procedures.exists()
    abstract.status = AbstractStatus.IN_PROGRESS if begun else AbstractStatus.NOT_STARTED
    abstract.version += 1
    abstract.updated_at = now
    abstract.save(update_fields=["status", "version", "updated_at"])
    AbstractVersion.objects.create(
        abstract=abstract,
        number=abstract.version,
        status=abstract.status,
        snapshot=snapshot(abstract),
        changed_by=acting_user,
        changed_at=now,
        reason="hold released: physician query answered",
    )
    return True


def _hold(abstract: Abstract, *, acting_user) -> None:
    from coding.abstracts import do_hold_abstract

    if abstract.status in (AbstractStatus.NOT_STARTED, AbstractStatus.IN_PROGRESS):
        do_hold_abstract(abstract, acting_user=acting_user, reason="physician query asked")


def _release_on_withdrawal(abstract: Abstract, *, acting_user) -> bool:
    from coding.abstracts import do_release_hold

    if abstract.status != AbstractStatus.ON_HOLD:
        return False
    if abstract.queries.filter(status=QueryStatus.OPEN).exists():
        return False
    do_release_hold(abstract, acting_user=acting_user, reason="physician query withdrawn")
    return True


# --- who may be asked ----------------------------------------------------------------------


def clinician_choices(encounter) -> list:
    """Clinicians who may answer a query about ``encounter``: active people at its
    facility holding ``coding.answer_queries``, the attending first."""
    from accounts.roles import ROLE_PERMISSIONS

    roles = [r.value for r, perms in ROLE_PERMISSIONS.items() if K.ANSWER_QUERIES in perms]
    people = list(
        get_user_model()
        .objects.filter(
            is_active=True,
            is_system_account=False,
            groups__name__in=roles,
            facilities=encounter.facility_id,
        )
        .distinct()
        .order_by("last_name", "first_name", "username")
    )
    people.sort(key=lambda u: u.pk != encounter.attending_id)
    return people


def _encounter_to_query(user, encounter_public_id):
    key = wa.parse_uuid(encounter_public_id)
    encounter = (
        discharged_not_final(wa.user_facility_ids(user))
        .exclude(status__in=VOID_ENCOUNTER)
        .filter(public_id=key)
        .select_related("patient", "attending")
        .first()
        if key
        else None
    )
    if encounter is None:
        wa.deny(
            user,
            "coding.query",
            encounter_public_id,
            "not a discharged encounter to code",
            action=Action.CREATE,
        )
        raise Http404("No such encounter to code")
    return encounter


def access_encounter_for_query(user, encounter_public_id):
    """The encounter a coder is about to query, with whom they may ask (the form)."""
    wa.require(user, K.CODE, "coding.query", action=Action.CREATE, object_id=encounter_public_id)
    encounter = _encounter_to_query(user, encounter_public_id)
    encounter.patient = access_patient(user, encounter.patient.public_id, scope=Scope.CLINICAL)
    return encounter, clinician_choices(encounter)


# --- actions -------------------------------------------------------------------------------


def do_open_query(
    user,
    encounter_public_id,
    *,
    clinical_indicators: str,
    question: str,
    options,
    clinician=None,
) -> PhysicianQuery:
    """Ask the responsible clinician (``clinician``, default the attending) a compliant
    query about an encounter being coded; the abstract goes on hold."""
    wa.require(user, K.CODE, "coding.query", action=Action.CREATE, object_id=encounter_public_id)
    encounter = _encounter_to_query(user, encounter_public_id)
    patient = access_patient(user, encounter.patient.public_id, scope=Scope.CLINICAL)
    indicators, question, choices = validate_query(
        clinical_indicators=clinical_indicators, question=question, options=options
    )
    allowed = clinician_choices(encounter)
    to = clinician or encounter.attending
    if to is None:
        raise ValidationError(
            {"clinician": "Choose the clinician responsible for the documentation."}
        )
    if to.pk not in {u.pk for u in allowed}:
        raise ValidationError(
            {"clinician": "That person cannot answer queries about this encounter."}
        )
    abstract = open_abstract_for_claim(encounter, acting_user=user)
    with transaction.atomic():
        now = clock.now()
        abstract = Abstract.objects.select_for_update().get(pk=abstract.pk)
        if abstract.status in (AbstractStatus.FINAL, AbstractStatus.REBILLED):
            raise ValidationError("The abstract is final; reopen it before querying.")
        query = PhysicianQuery.objects.create(
            abstract=abstract,
            clinician=to,
            asked_by=user,
            asked_at=now,
            clinical_indicators=indicators,
            question=question,
            options=choices,
        )
        _hold(abstract, acting_user=user)
        wa.audit(
            user,
            Action.CREATE,
            "coding.query",
            object_id=query.public_id,
            patient_id=patient.public_id,
            encounter=str(encounter.public_id),
            clinician=str(to.public_id),
            options=len(choices),
        )
    return query


def _find_query(user, public_id, *, action, own_clinician: bool):
    key = wa.parse_uuid(public_id)
    query = (
        PhysicianQuery.objects.select_related(
            "abstract", "abstract__encounter", "abstract__patient", "clinician", "asked_by"
        )
        .filter(public_id=key, abstract__encounter__facility_id__in=wa.user_facility_ids(user))
        .first()
        if key
        else None
    )
    if query is None or (own_clinician and query.clinician_id != user.pk):
        wa.deny(user, "coding.query", public_id, "no such query for this user", action=action)
        raise Http404("No such query")
    return query


def _answer_body(query: PhysicianQuery, answer: str, answer_text: str) -> str:
    lines = [
        "Response to a documentation query from the coding department.",
        "",
        f"Clinical indicators: {query.clinical_indicators}",
        f"Question: {query.question}",
        "Options: " + "; ".join(query.options),
        "",
        f"Answer: {answer}",
    ]
    if answer_text:
        lines.append(f"Specified: {answer_text}")
    return "\n".join(lines) + "\n"


def do_answer_query(user, public_id, *, answer: str, answer_text: str = "", password: str):
    """The clinician's answer: one of the query's options (with text for "Other"),
    filed as a signed document in the legal record, linked to the query; the hold is
    released when no other query of the abstract is open."""
    wa.require(user, K.ANSWER_QUERIES, "coding.query", action=Action.UPDATE, object_id=public_id)
    query = _find_query(user, public_id, action=Action.UPDATE, own_clinician=True)
    if query.status != QueryStatus.OPEN:
        raise ValidationError("This query is no longer open.")
    answer = (answer or "").strip()
    answer_text = (answer_text or "").strip()
    errors: dict[str, list[str]] = {}
    if answer not in query.options:
        errors.setdefault("answer", []).append("Choose one of the query's options.")
    if answer == OTHER and not answer_text:
        errors.setdefault("answer_text", []).append("Say what the other answer is.")
    if len(answer_text) > MAX_TEXT:
        errors.setdefault("answer_text", []).append("The answer is too long.")
    if errors:
        raise ValidationError(errors)
    if not password or not user.check_password(password):
        record_event(
            user,
            Action.SIGN,
            outcome=Outcome.DENIED,
            purpose=default_purpose(user),
            patient_id=query.abstract.patient.public_id,
            object_type="coding.query",
            object_id=str(query.public_id),
            reason="wrong password at signing a query answer",
        )
        raise ValidationError({"password": "The password is not correct; nothing was filed."})
    encounter = query.abstract.encounter
    patient = access_patient(user, query.abstract.patient.public_id, scope=Scope.CLINICAL)
    policy = wa.policy_for(encounter.facility_id)
    doc_type = DocumentType.objects.filter(loinc_code=policy.query_response_loinc).first()
    if doc_type is None:
        raise ValidationError("The coding policy names a document type that does not exist.")
    with transaction.atomic():
        locked = PhysicianQuery.objects.select_for_update().get(pk=query.pk)
        if locked.status != QueryStatus.OPEN:
            raise ValidationError("This query is no longer open.")
        now = clock.now()
        document = do_create_document(
            patient,
            doc_type=doc_type,
            title="Response to coding query",
            body=_answer_body(query, answer, answer_text),
            service_at=now,
            encounter=encounter,
            acting_user=user,
        )
        do_sign_document(document, password=password, acting_user=user)
        locked.status = QueryStatus.ANSWERED
        locked.answer = answer[:300]
        locked.answer_text = answer_text
        locked.answered_at = now
        locked.answer_document = document
        locked.save(
            update_fields=["status", "answer", "answer_text", "answered_at", "answer_document"]
        )
        abstract = Abstract.objects.select_for_update().get(pk=query.abstract_id)
        released = _release_on_answer(abstract, acting_user=user, now=now)
        wa.audit(
            user,
            Action.UPDATE,
            "coding.query",
            object_id=locked.public_id,
            patient_id=patient.public_id,
            answered=True,
            document=str(document.public_id),
            released=released,
        )
    return locked


def do_withdraw_query(user, public_id, *, reason: str) -> PhysicianQuery:
    """Withdraw an open query (its asker, or a reviewer), with the reason."""
    wa.require(user, K.CODE, "coding.query", action=Action.UPDATE, object_id=public_id)
    query = _find_query(user, public_id, action=Action.UPDATE, own_clinician=False)
    if query.asked_by_id != user.pk and not wa.may(user, K.REVIEW):
        wa.deny(user, "coding.query", public_id, "not the asker", action=Action.UPDATE)
        raise ValidationError("Only the coder who asked, or a supervisor, can withdraw it.")
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationError({"reason": "Say why the query is withdrawn."})
    with transaction.atomic():
        locked = PhysicianQuery.objects.select_for_update().get(pk=query.pk)
        if locked.status != QueryStatus.OPEN:
            raise ValidationError("This query is no longer open.")
        locked.status = QueryStatus.WITHDRAWN
        locked.closed_reason = reason[:300]
        locked.save(update_fields=["status", "closed_reason"])
        abstract = Abstract.objects.get(pk=query.abstract_id)
        released = _release_on_withdrawal(abstract, acting_user=user)
        wa.audit(
            user,
            Action.UPDATE,
            "coding.query",
            object_id=locked.public_id,
            patient_id=query.abstract.patient.public_id,
            withdrawn=True,
            released=released,
        )
    return locked


# --- reads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryRow:
    query: PhysicianQuery
    patient_name: str
    encounter: object
    days_open: int


def _rows(queries, now) -> list[QueryRow]:
    from coding.queue import days_since

    return [
        QueryRow(
            query=q,
            patient_name=q.abstract.patient.display_name,
            encounter=q.abstract.encounter,
            days_open=days_since(q.asked_at, now),
        )
        for q in queries
    ]


def _base():
    return PhysicianQuery.objects.select_related(
        "abstract", "abstract__patient", "abstract__encounter", "clinician", "asked_by"
    )


def queries_for_clinician(user, *, now=None) -> list[QueryRow]:
    """Open queries addressed to ``user`` (``coding.answer_queries``), oldest first;
    audited with the patients shown."""
    wa.require(user, K.ANSWER_QUERIES, "coding.query")
    now = now or clock.now()
    rows = _rows(
        _base()
        .filter(clinician=user, status=QueryStatus.OPEN)
        .filter(abstract__encounter__facility_id__in=wa.user_facility_ids(user))
        .order_by("asked_at", "pk"),
        now,
    )
    wa.audit_list(
        user, "coding.query", [r.query.abstract.patient.public_id for r in rows], mine=True
    )
    return rows


def clinician_section(user):
    """The "Coding queries" section of the clinician's work queue: the open queries for
    ``user``, or None for a user who does not answer queries (no section, no refusal)."""
    if not wa.may(user, K.ANSWER_QUERIES):
        return None
    return queries_for_clinician(user)


def query_list(user, *, status: str = QueryStatus.OPEN, mine: bool = False, now=None):
    """Queries at the user's facilities (coders), newest first; audited with patients."""
    wa.require(user, K.CODE, "coding.query")
    if status and status not in QueryStatus.values:
        raise ValidationError({"status": "Unknown query status."})
    now = now or clock.now()
    queries = _base().filter(abstract__encounter__facility_id__in=wa.user_facility_ids(user))
    if status:
        queries = queries.filter(status=status)
    if mine:
        queries = queries.filter(asked_by=user)
    rows = _rows(queries.order_by("-asked_at", "-pk")[:500], now)
    wa.audit_list(
        user, "coding.query", [r.query.abstract.patient.public_id for r in rows], status=status
    )
    return rows


@dataclass
class QueryDetail:
    query: PhysicianQuery
    patient: object
    encounter: object
    may_answer: bool
    may_withdraw: bool


def access_query(user, public_id) -> QueryDetail:
    """One query: coders of the facility, and the clinician it is addressed to. The
    patient is opened through the patient's door (audited); the query view is audited."""
    coder = wa.may(user, K.CODE)
    if not coder:
        wa.require(user, K.ANSWER_QUERIES, "coding.query", object_id=public_id)
    query = _find_query(user, public_id, action=Action.VIEW, own_clinician=not coder)
    patient = access_patient(user, query.abstract.patient.public_id, scope=Scope.CLINICAL)
    wa.audit(
        user, Action.VIEW, "coding.query", object_id=query.public_id, patient_id=patient.public_id
    )
    is_open = query.status == QueryStatus.OPEN
    return QueryDetail(
        query=query,
        patient=patient,
        encounter=query.abstract.encounter,
        may_answer=is_open and query.clinician_id == user.pk and wa.may(user, K.ANSWER_QUERIES),
        may_withdraw=is_open and coder and (query.asked_by_id == user.pk or wa.may(user, K.REVIEW)),
    )
