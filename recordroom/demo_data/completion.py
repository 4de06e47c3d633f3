"""Chart completion in the demo department: a step the demo loader runs after the
population.

The population's records are analysed by the worker from the tasks their changes
queued (``completion.hooks``); this step does not wait for that. It writes a dozen
stays of its own, at fixed distances from today, so the department always shows every
state of chart completion whatever the size or seed of the population:

- open deficiencies of the demo clinician (Dr. Claire Huang, ``clinician``): a missing
  discharge summary, unsigned drafts, unsigned verbal and telephone orders (signed in
  bulk on the orders page), a missing final diagnosis;
- a record whose only open deficiency is its unsigned draft discharge summary, so
  signing it makes the record complete (the browser test does exactly that);
- a deficiency completed by a later signature, one waived by the HIM administrator
  with the reason, one reassigned from another attending to the demo clinician, one
  void (its draft withdrawn as entered in error), one added by hand;
- records delinquent (discharged more than the policy's 30 days ago and still
  incomplete: 3, 22 and 45 days delinquent, the oldest two long enough for the
  suspension list) and near-delinquent ones (delinquent in 2 and 5 days, so reminders
  go out), and complete ones;
- the inbox reminders of one run of :func:`completion.reminders.send_reminders`;
- a quality audit drawn from the last 90 days' inpatient discharges with a few records
  scored, one of them with a discrepancy tracked as a correction.

Every change goes through the real actions (and the analysis), so the deficiencies
have their events and the audit trail has every step. Each stay's analysis is run here
directly, as the worker would after the change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import transaction
from django.test.utils import override_settings

from clinical.actions import do_record_clinical_entry
from completion.actions import do_add_deficiency, do_reassign_deficiency, do_waive_deficiency
from completion.analysis import analyse_encounter
from completion.models import Deficiency, DeficiencyKind, DeficiencyStatus, ItemResult
from completion.quality import (
    ItemData,
    SampleCriteria,
    ScoreData,
    do_create_checklist,
    do_draw_sample,
    do_score_record,
)
from completion.reminders import send_reminders
from documents.actions import do_create_document, do_mark_entered_in_error, do_sign_document
from documents.models import OrderMode
from encounters.actions import do_discharge, do_register_encounter
from encounters.models import Disposition, EncounterClass
from patients.models import IdentifierKind, Patient
from recordroom import clock
from recordroom.demo_data.population import ADMISSIONS, UNITS, _condition

DISCHARGE_SUMMARY = "18842-5"
HISTORY_PHYSICAL = "34117-2"
PROGRESS_NOTE = "11506-3"
ORDERS = "46209-3"
CONSENT = "59284-0"
AUDIT_WINDOW_DAYS = 90
DEMO_EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

SUMMARY_TEXT = (
    "Discharge summary.\n"
    "Reason for admission: {reason}.\n"
    "Hospital course: treated and improved (synthetic demonstration text).\n"
    "Condition at discharge: stable. Disposition: home.\n"
    "Discharge medications: as reconciled.\n"
    "Follow-up: primary care in 1 week.\n"
)
PROGRESS_TEXT = (
    "S: Feels better, tolerating diet.\nO: Afebrile, vital signs stable.\n"
    "A: Improving.\nP: Continue current plan (synthetic demonstration text).\n"
)
VERBAL_ORDERS = [
    (
        OrderMode.VERBAL,
        "Verbal order: acetaminophen",
        "Acetaminophen 650 mg by mouth every 6 hours as needed for temperature above "
        "38.3 °C. Read back and verified.",
        60,
    ),
    (
        OrderMode.TELEPHONE,
        "Telephone order: potassium chloride",
        "Potassium chloride 20 mEq by mouth once; repeat basic metabolic panel in the "
        "morning. Read back and verified.",
        54,
    ),
    (
        OrderMode.VERBAL,
        "Verbal order: chest radiograph",
        "Portable chest radiograph now for increased oxygen requirement. Read back and verified.",
        50,
    ),
    (
        OrderMode.TELEPHONE,
        "Telephone order: diet",
        "Advance diet to cardiac diet as tolerated. Read back and verified.",
        5,
    ),
]
CHECKLIST = [
    ("History and physical on the chart within 24 hours of admission", 2),
    ("Every entry dated, timed and authenticated by its author", 2),
    ("Verbal and telephone orders authenticated within 48 hours", 1),
    ("Discharge summary states the outcome, disposition and follow-up", 2),
    ("Final diagnosis recorded", 1),
]


@dataclass
class CompletionDemo:
    """What the step made, for the loader's caller and the tests."""

    stays: dict = field(default_factory=dict)  # scenario name → encounter
    reminders: dict = field(default_factory=dict)
    quality_audit: object | None = None
    skipped: str = ""


class _Stays:
    """Writes the demo's completion stays for one generator (its cast and types)."""

    def __init__(self, generator, now: dt.datetime):
        self.g = generator
        self.now = now
        self.cast = generator.cast
        self.hospital = generator.facilities[0]
        self.by_name = {u.username: u for u in self.cast.attendings}
        self.patients = _patients(self.hospital, now)
        self.next_patient = 0

    # -- building blocks ---------------------------------------------------------------

    def _patient(self) -> Patient:
        patient = self.patients[self.next_patient % len(self.patients)]
        self.next_patient += 1
        return patient

    def stay(
        self,
        *,
        attending,
        ended_ago: dt.timedelta | None,
        length: dt.timedelta,
        admission: int = 0,
        history_physical: bool = True,
        diagnosis: bool = True,
        progress_notes: int = 1,
    ):
        """An inpatient stay at the hospital: admitted ``length`` before its discharge
        ``ended_ago`` (None: still in, admitted ``length`` ago), with the H&P and
        progress notes filed from the EHR and the final diagnosis recorded unless told
        otherwise."""
        code, display, service = ADMISSIONS[admission % len(ADMISSIONS)]
        ended = None if ended_ago is None else self.now - ended_ago
        started = (ended or self.now) - length
        patient = self._patient()
        tech = self.cast.technician
        encounter = do_register_encounter(
            patient,
            facility=self.hospital,
            encounter_class=EncounterClass.INPATIENT,
            started_at=started,
            acting_user=tech,
            service=service,
            admit_source="7",
            attending=attending,
            unit=UNITS[service],
            bed=f"{10 + self.next_patient}A",
            reason=display,
        )
        if history_physical:
            self.g._file(
                patient, encounter, HISTORY_PHYSICAL, "History and physical", started, attending
            )
        for day in range(1, progress_notes + 1):
            self.g._file(
                patient,
                encounter,
                PROGRESS_NOTE,
                f"Progress note, hospital day {day + 1}",
                started + dt.timedelta(days=day),
                attending,
            )
        if diagnosis:
            self._diagnosis(patient, encounter, code, display, started)
        if ended is not None:
            do_discharge(encounter, ended_at=ended, acting_user=tech, disposition=Disposition.HOME)
        return encounter

    def _diagnosis(self, patient, encounter, code, display, started):
        do_record_clinical_entry(
            patient,
            encounter=encounter,
            acting_user=self.cast.technician,
            source="demo",
            resource=_condition(code, display, category="encounter-diagnosis", onset=started),
        )

    def draft(
        self,
        encounter,
        loinc: str,
        title: str,
        body: str,
        *,
        author=None,
        service_at=None,
        order_mode="",
    ):
        """A document written in RecordRoom by its author and left unsigned."""
        author = author or self.cast.clinician
        if service_at is None:
            service_at = (encounter.ended_at or self.now) - dt.timedelta(hours=1)
        return do_create_document(
            encounter.patient,
            doc_type=self.g._type(loinc),
            title=title,
            service_at=service_at,
            acting_user=author,
            encounter=encounter,
            body=body,
            order_mode=order_mode or OrderMode.NOT_AN_ORDER,
        )

    def summary_draft(self, encounter, **kwargs):
        return self.draft(
            encounter,
            DISCHARGE_SUMMARY,
            "Discharge summary",
            SUMMARY_TEXT.format(reason=encounter.reason or "see history and physical"),
            **kwargs,
        )

    def file_summary(self, encounter):
        return self.g._file(
            encounter.patient,
            encounter,
            DISCHARGE_SUMMARY,
            "Discharge summary",
            encounter.ended_at - dt.timedelta(hours=3),
            encounter.attending,
        )

    def analyse(self, encounter):
        return analyse_encounter(encounter, trigger="demo")

    def open_deficiency(self, encounter, rule_code: str) -> Deficiency:
        return (
            Deficiency.objects.select_related("patient", "encounter", "encounter__facility")
            .filter(encounter=encounter, rule__code=rule_code, status=DeficiencyStatus.OPEN)
            .order_by("pk")
            .first()
        )

    # -- the scenarios -------------------------------------------------------------------

    def ready_to_sign(self):
        """Discharged yesterday; everything in the record but the clinician's signature
        on her draft discharge summary."""
        encounter = self.stay(
            attending=self.cast.clinician,
            ended_ago=dt.timedelta(hours=20),
            length=dt.timedelta(days=3, hours=2),
            progress_notes=2,
        )
        self.summary_draft(encounter)
        self.analyse(encounter)
        return encounter

    def signed_later(self):
        """A draft summary found unsigned by the analysis and signed afterwards (the
        deficiency completed); a progress note drafted on the wrong chart withdrawn as
        entered in error (its deficiency void). The record ends complete."""
        from recordroom.demo import DEMO_PASSWORD

        encounter = self.stay(
            attending=self.cast.clinician,
            ended_ago=dt.timedelta(days=6, hours=3),
            length=dt.timedelta(days=4),
            admission=3,
        )
        summary = self.summary_draft(encounter)
        misfiled = self.draft(
            encounter,
            PROGRESS_NOTE,
            "Progress note",
            PROGRESS_TEXT,
            service_at=encounter.ended_at - dt.timedelta(days=1),
        )
        self.analyse(encounter)
        do_mark_entered_in_error(
            misfiled,
            reason="written on the wrong patient's chart (demo)",
            acting_user=self.cast.clinician,
        )
        do_sign_document(summary, password=DEMO_PASSWORD, acting_user=self.cast.clinician)
        self.analyse(encounter)
        return encounter

    def near_delinquent(self, days_left: int, admission: int):
        """Discharged ``30 - days_left`` days ago and still incomplete."""
        ended_ago = dt.timedelta(days=30 - days_left) - dt.timedelta(hours=2)
        if days_left >= 5:
            # The summary was never written.
            encounter = self.stay(
                attending=self.cast.clinician,
                ended_ago=ended_ago,
                length=dt.timedelta(days=5),
                admission=admission,
            )
        else:
            # The summary is filed, but a progress note awaits its signature and the
            # final diagnosis was never recorded.
            encounter = self.stay(
                attending=self.cast.clinician,
                ended_ago=ended_ago,
                length=dt.timedelta(days=3),
                admission=admission,
                diagnosis=False,
            )
            self.file_summary(encounter)
            self.draft(
                encounter,
                PROGRESS_NOTE,
                "Progress note, day of discharge",
                PROGRESS_TEXT,
                service_at=encounter.ended_at - dt.timedelta(hours=4),
            )
        self.analyse(encounter)
        return encounter

    def delinquent(self, attending, days_delinquent: int, admission: int, *, draft: bool):
        """Discharged ``30 + days_delinquent`` days ago, still without a signed
        summary: a draft the clinician never signed, or none at all."""
        encounter = self.stay(
            attending=attending,
            ended_ago=dt.timedelta(days=30 + days_delinquent, hours=2),
            length=dt.timedelta(days=4),
            admission=admission,
            diagnosis=attending != self.cast.clinician or not draft,
        )
        if draft:
            self.summary_draft(encounter, author=attending)
        self.analyse(encounter)
        return encounter

    def reassigned(self):
        """Dr. Okoye's patient, summary missing; the HIM administrator gives it to Dr.
        Huang, who covered the end of the stay."""
        attending = self.by_name.get("dr.okoye") or self.cast.attendings[-1]
        encounter = self.stay(
            attending=attending,
            ended_ago=dt.timedelta(days=12, hours=5),
            length=dt.timedelta(days=6),
            admission=1,
        )
        self.analyse(encounter)
        deficiency = self.open_deficiency(encounter, "discharge-summary")
        if deficiency is not None:
            do_reassign_deficiency(
                deficiency,
                to_user=self.cast.clinician,
                reason="Dr. Okoye is on leave; Dr. Huang covered the last three days of the stay",
                acting_user=self.cast.administrator,
            )
        return encounter

    def waived(self):
        """A patient who left against medical advice three hours after admission: no
        H&P was possible, the HIM administrator waives it with the reason, and the
        record is complete."""
        attending = self.by_name.get("dr.park") or self.cast.attendings[-1]
        encounter = self.stay(
            attending=attending,
            ended_ago=dt.timedelta(days=18, hours=6),
            length=dt.timedelta(hours=3),
            admission=3,
            history_physical=False,
            progress_notes=0,
        )
        self.file_summary(encounter)
        self.analyse(encounter)
        deficiency = self.open_deficiency(encounter, "hp-timely")
        if deficiency is not None:
            do_waive_deficiency(
                deficiency,
                reason="Left against medical advice 3 hours after admission, before the H&P; "
                "the emergency department assessment and the AMA form are in the record",
                acting_user=self.cast.administrator,
            )
        return encounter

    def added_by_hand(self, encounter):
        """A deficiency the rules cannot see, found at record review: a transfusion
        consent missing from the chart."""
        return do_add_deficiency(
            encounter,
            kind=DeficiencyKind.MISSING,
            description="Consent for blood transfusion not in the record",
            reason="Found at record review: a transfusion was given on hospital day 2",
            responsible=self.cast.clinician,
            due_at=encounter.ended_at + dt.timedelta(days=2),
            acting_user=self.cast.administrator,
            document_type=self.g._type(CONSENT),
        )

    def verbal_orders(self):
        """Still in hospital: orders given by voice or phone, three of them past the
        48-hour limit (deficiencies), one given this morning (not due yet). All four
        can be signed at once on the orders page."""
        encounter = self.stay(
            attending=self.cast.clinician,
            ended_ago=None,
            length=dt.timedelta(days=3, hours=4),
            admission=0,
            progress_notes=2,
            diagnosis=False,
        )
        for mode, title, body, hours_ago in VERBAL_ORDERS:
            self.draft(
                encounter,
                ORDERS,
                title,
                body,
                service_at=self.now - dt.timedelta(hours=hours_ago),
                order_mode=mode,
            )
        self.analyse(encounter)
        return encounter


def _patients(hospital, now: dt.datetime) -> list[Patient]:
    """Adults of the population with an MRN at the hospital, not restricted, alive, and
    without a visit in the last 100 days (so the demo's stays do not overlap theirs);
    the same for the same population. Falls back to any hospital patient."""
    with_mrn = Patient.objects.filter(
        identifiers__kind=IdentifierKind.MRN, identifiers__facility=hospital
    ).distinct()
    quiet = (
        with_mrn.filter(restriction="", deceased_at__isnull=True)
        .filter(birth_date__lt=(now - dt.timedelta(days=20 * 365)).date())
        .exclude(encounters__started_at__gte=now - dt.timedelta(days=100))
        .order_by("pk")
    )
    return list(quiet) or list(with_mrn.filter(restriction="").order_by("pk"))


def _quality_audit(generator, now: dt.datetime):
    """A quality audit of the last 90 days' inpatient discharges, three records scored
    by the HIM technician; one discrepancy becomes a correction for the attending."""
    cast = generator.cast
    checklist = do_create_checklist(
        name="Inpatient record review",
        description="Quarterly review of discharged inpatient records (demo).",
        items=[ItemData(text, weight) for text, weight in CHECKLIST],
        acting_user=cast.administrator,
    )
    today = now.date()
    audit = do_draw_sample(
        checklist=checklist,
        criteria=SampleCriteria(
            facility=generator.facilities[0],
            period_start=today - dt.timedelta(days=AUDIT_WINDOW_DAYS),
            period_end=today,
            size=8,
            encounter_class=EncounterClass.INPATIENT,
            seed=2026,
        ),
        acting_user=cast.administrator,
        name="Inpatient discharges, last 90 days",
    )
    findings = [
        {},
        {4: (ItemResult.NOT_MET, "Follow-up plan missing from the discharge summary")},
        {3: (ItemResult.NOT_APPLICABLE, "")},
    ]
    records = list(audit.records.select_related("encounter", "encounter__patient").order_by("pk"))
    for record, finding in zip(records, findings, strict=False):
        scores = []
        for position in range(1, len(CHECKLIST) + 1):
            result, comment = finding.get(position, (ItemResult.MET, ""))
            scores.append(ScoreData(position=position, result=result, comment=comment))
        do_score_record(record, scores=scores, acting_user=cast.technician)
    return audit


def load_completion(generator) -> CompletionDemo:
    """Write the chart-completion stays of the demo, send one round of reminders and
    open a quality audit (see the module docstring). ``generator`` is the population's
    (its cast, facilities and document types)."""
    now = clock.now()
    result = CompletionDemo()
    stays = _Stays(generator, now)
    if not stays.patients:
        result.skipped = "no patient at the hospital to admit"
        return result
    clinician = generator.cast.clinician
    others = [u for u in generator.cast.attendings if u != clinician]
    lindgren = stays.by_name.get("dr.lindgren") or others[0]
    plan = [
        ("ready_to_sign", stays.ready_to_sign),
        ("signed_later", stays.signed_later),
        ("near_delinquent_5", lambda: stays.near_delinquent(5, admission=2)),
        ("near_delinquent_2", lambda: stays.near_delinquent(2, admission=4)),
        ("delinquent_3", lambda: stays.delinquent(clinician, 3, admission=6, draft=True)),
        ("delinquent_22", lambda: stays.delinquent(clinician, 22, admission=0, draft=False)),
        ("delinquent_45_other", lambda: stays.delinquent(lindgren, 45, admission=7, draft=False)),
        ("reassigned", stays.reassigned),
        ("waived", stays.waived),
        ("verbal_orders", stays.verbal_orders),
    ]
    for name, build in plan:
        with transaction.atomic():
            result.stays[name] = build()
    with transaction.atomic():
        stays.added_by_hand(result.stays["near_delinquent_5"])
    # The demo's addresses are not real (.invalid): the reminders' e-mails stay in memory.
    with override_settings(EMAIL_BACKEND=DEMO_EMAIL_BACKEND):
        result.reminders = send_reminders(now=now)
    result.quality_audit = _quality_audit(generator, now)
    return result
