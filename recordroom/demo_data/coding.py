"""Coding in the demo department: a step the demo loader runs after chart completion.

It gives the hospital a coding backlog in every state, on the encounters the population
and the completion step discharged (most recent first), whatever their number:

- encounters **not started** (left alone; those whose record is still incomplete are
  held for it on the DNFB report), one of them **claimed** by the demo coder;
- abstracts **in progress** (claimed by the demo coder, a few codes in);
- abstracts **on hold** with an **open query to the demo clinician** (Dr. Claire Huang,
  ``clinician``), who finds them on her work queue; one query **answered** by her (a
  signed progress note in the record) and one **withdrawn**;
- **final** abstracts grouped to an MS-DRG by ``coding.grouping`` (when the edits pass:
  the code sets must be loaded, ``recordroom codes load``; otherwise they stay in
  progress and :func:`load_coding` says how many), one **reopened and rebilled**;
- a second-level **review sample** of the finalised ones, one review recorded by the
  HIM administrator.

Every change goes through the real actions (``coding.abstracts``, ``coding.queue``,
``coding.queries``, ``coding.productivity``), so versions and the audit trail have
every step.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from coding import abstracts as abstract_actions
from coding import productivity, queries, queue
from coding.models import Abstract, QueryStatus
from encounters.models import Encounter, EncounterStatus
from recordroom.demo import DEMO_PASSWORD

# (principal and secondary diagnoses with POA, ICD-10-PCS procedures): synthetic cases.
CASES = [
    ([("I5033", "Y"), ("E119", "Y"), ("N179", "N")], []),
    ([("J189", "Y"), ("E119", "Y")], []),
    ([("A419", "Y"), ("N179", "Y"), ("E871", "Y")], ["5A1955Z"]),
    ([("I214", "Y"), ("I10", "Y")], ["02703ZZ"]),
    ([("K8000", "Y"), ("E669", "Y")], ["0FT44ZZ"]),
    ([("N390", "Y"), ("E119", "Y")], []),
]
QUERY = {
    "clinical_indicators": (
        "Sodium 128 mmol/L on admission, 131 on day 2; treated with 0.9% saline "
        "(synthetic demonstration values)."
    ),
    "question": "Based on these indicators, can you clarify the condition being treated?",
    "options": ["Hyponatremia", "Dehydration without hyponatremia", "Laboratory finding only"],
}


def _candidates(hospital) -> list[Encounter]:
    return list(
        Encounter.objects.filter(
            facility=hospital,
            status=EncounterStatus.FINISHED,
            ended_at__isnull=False,
            abstract__isnull=True,
            patient__restriction="",
        )
        .select_related("patient", "attending", "facility")
        .order_by("-ended_at", "pk")
    )


def _code(abstract: Abstract, case, coder) -> Abstract:
    diagnoses, procedures = case
    for code, poa in diagnoses:
        abstract = abstract_actions.do_add_diagnosis(abstract, code, poa=poa, acting_user=coder)
    day = abstract.encounter.started_at.date()
    for code in procedures:
        abstract = abstract_actions.do_add_procedure(
            abstract, code, performed_on=day, acting_user=coder
        )
    return abstract


def _claimed(encounter, coder, ready: set[int]) -> Abstract:
    """Claimed from the queue when the record is ready; otherwise opened directly, as a
    coder does under a code-before-complete practice (the first code claims it)."""
    if encounter.pk in ready:
        return queue.do_claim(coder, encounter.public_id)
    return abstract_actions.do_open_abstract(encounter, acting_user=coder)


def load_coding(generator) -> dict:
    """Write the demo's coding backlog; returns what it made, by kind."""
    users = get_user_model().objects
    coder = users.get(username="coder")
    admin = generator.cast.administrator
    clinician = generator.cast.clinician
    hospital = generator.facilities[0]
    made: Counter = Counter()
    ready = set(queue.ready_for_coding({hospital.pk}).values_list("pk", flat=True))
    candidates = _candidates(hospital)
    pool = [e for e in candidates if e.pk in ready] + [e for e in candidates if e.pk not in ready]
    pool = [e for e in pool if e.encounter_class == "IMP"] + [
        e for e in pool if e.encounter_class != "IMP"
    ]
    # One ready encounter is kept back, to be claimed and left not started.
    reserved = next((e for e in reversed(pool) if e.pk in ready), None)
    if reserved is not None:
        pool.remove(reserved)
    cases = iter(range(10_000))

    def next_case():
        return CASES[next(cases) % len(CASES)]

    def take():
        return pool.pop(0) if pool else None

    # Final abstracts (grouped), one reopened and rebilled.
    finals = []
    for _ in range(4):
        encounter = take()
        if encounter is None:
            break
        abstract = _code(_claimed(encounter, coder, ready), next_case(), coder)
        try:
            abstract = abstract_actions.do_finalise_abstract(abstract, acting_user=coder)
        except ValidationError:
            made["could_not_finalise"] += 1
            continue
        finals.append(abstract)
        made["final"] += 1
    if finals:
        rebill = abstract_actions.do_reopen_abstract(
            finals[0], acting_user=coder, reason="late pathology report (demo)"
        )
        abstract_actions.do_finalise_abstract(rebill, acting_user=coder)
        made["rebilled"] += 1
        made["final"] -= 1
    # In progress.
    for _ in range(2):
        encounter = take()
        if encounter is None:
            break
        case = next_case()
        _code(_claimed(encounter, coder, ready), (case[0][:1], []), coder)
        made["in_progress"] += 1
    # On hold: open queries to the demo clinician; one answered, one withdrawn.
    asked = []
    for _ in range(4):
        encounter = take()
        if encounter is None:
            break
        _code(_claimed(encounter, coder, ready), (next_case()[0][:2], []), coder)
        asked.append(
            queries.do_open_query(coder, encounter.public_id, clinician=clinician, **QUERY)
        )
    if len(asked) >= 3:
        queries.do_answer_query(
            clinician, asked[0].public_id, answer="Hyponatremia", password=DEMO_PASSWORD
        )
        queries.do_withdraw_query(
            coder, asked[1].public_id, reason="answered by the discharge summary (demo)"
        )
    made["open_queries"] = sum(1 for q in asked if _status(q) == QueryStatus.OPEN)
    # One claimed but not started; the rest are left for the queue and the DNFB report.
    if reserved is not None:
        _claimed(reserved, coder, ready)
        made["claimed_not_started"] += 1
    # Second-level review of what was finalised today.
    if finals:
        sample = productivity.do_draw_review_sample(admin, percent_=Decimal(100), seed=2026)
        made["reviews"] = len(sample.drawn)
        if sample.drawn:
            first = sample.drawn[0]
            productivity.do_record_review(
                admin,
                first.public_id,
                codes_reviewed=max(1, first.abstract.diagnoses.count()),
                codes_changed=1,
                drg_changed=False,
                findings="A secondary diagnosis's POA indicator corrected (demo).",
            )
            made["reviews_recorded"] = 1
    return dict(made)


def _status(query) -> str:
    query.refresh_from_db(fields=["status"])
    return query.status
