"""The synthetic demo department: patients, encounters, documents in every status,
clinical data and restricted cases, generated deterministically from a seed.

Everything goes through the real actions, so the demo has versions, signatures and an
audit trail like a real department. Most historical documents arrive the way they do in
a hospital — filed from the EHR interface, already final — and a few dozen are written
and signed in RecordRoom (a signature re-checks the author's password, which is slow on
purpose).
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from accounts.roles import Role
from clinical.actions import do_record_clinical_entry
from documents.actions import (
    do_add_addendum,
    do_amend_document,
    do_create_document,
    do_mark_entered_in_error,
    do_sign_document,
)
from documents.models import DocumentSource, DocumentType, SensitiveCategory
from encounters.actions import do_discharge, do_register_encounter, do_transfer
from encounters.models import Disposition, EncounterClass
from patients.actions import (
    AddressData,
    ContactData,
    IdentifierData,
    NameData,
    PatientData,
    TelecomData,
    do_register_patient,
    do_set_restriction,
)
from patients.models import Restriction
from recordroom import clock
from recordroom.demo_data import names

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
SNOMED = "http://snomed.info/sct"

PROBLEMS = [
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("I10", "Essential (primary) hypertension"),
    ("J44.9", "Chronic obstructive pulmonary disease, unspecified"),
    ("E78.5", "Hyperlipidemia, unspecified"),
    ("I50.9", "Heart failure, unspecified"),
    ("N18.3", "Chronic kidney disease, stage 3 (moderate)"),
    ("J45.909", "Unspecified asthma, uncomplicated"),
    ("F32.9", "Major depressive disorder, single episode, unspecified"),
    ("M17.11", "Unilateral primary osteoarthritis, right knee"),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
]
ADMISSIONS = [
    ("J18.9", "Pneumonia, unspecified organism", "medicine"),
    ("I21.4", "Non-ST elevation myocardial infarction", "cardiology"),
    ("K35.80", "Unspecified acute appendicitis", "surgery"),
    ("N39.0", "Urinary tract infection, site not specified", "medicine"),
    ("I63.9", "Cerebral infarction, unspecified", "neurology"),
    (
        "S72.001A",
        "Fracture of unspecified part of neck of right femur, initial encounter",
        "orthopedics",
    ),
    ("A41.9", "Sepsis, unspecified organism", "medicine"),
    ("K80.20", "Calculus of gallbladder without obstruction", "surgery"),
]
MEDICATIONS = [
    ("860975", "metformin 500 MG Oral Tablet"),
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("617310", "atorvastatin 20 MG Oral Tablet"),
    ("197361", "amlodipine 5 MG Oral Tablet"),
    ("310965", "ibuprofen 200 MG Oral Tablet"),
    ("745679", "albuterol 0.09 MG/ACTUAT inhaler"),
]
ALLERGIES = [
    ("7980", "Penicillin G"),
    ("2670", "Codeine"),
    ("7984", "Sulfamethoxazole"),
    ("1191", "Aspirin"),
]
UNITS = {
    "medicine": "4 West",
    "cardiology": "CCU",
    "surgery": "5 East",
    "neurology": "6 North",
    "orthopedics": "5 East",
}


@dataclass
class Cast:
    technician: object
    administrator: object
    clinician: object
    attendings: list


def _cast(facilities) -> Cast:
    users = get_user_model().objects
    clinician_group = Group.objects.get(name=Role.CLINICIAN.value)
    attendings = [users.get(username="clinician")]
    for username, first, last in [
        ("dr.ramos", "Elena", "Ramos"),
        ("dr.okoye", "Chidi", "Okoye"),
        ("dr.lindgren", "Sofia", "Lindgren"),
        ("dr.park", "Daniel", "Park"),
        ("dr.haddad", "Rania", "Haddad"),
    ]:
        user, created = users.get_or_create(
            username=username, defaults={"first_name": f"Dr. {first}", "last_name": last}
        )
        if created:
            user.set_unusable_password()  # attendings of the demo; they do not sign in
            user.save()
            user.groups.add(clinician_group)
            user.facilities.set(facilities)
        attendings.append(user)
    return Cast(
        technician=users.get(username="tech"),
        administrator=users.get(username="admin"),
        clinician=attendings[0],
        attendings=attendings,
    )


def _person(rng: random.Random, today: dt.date) -> PatientData:
    sex = rng.choice("FFFMMMU") if rng.random() < 0.02 else rng.choice("FM")
    sex = "UNK" if sex == "U" else sex
    pool = names.FEMALE_GIVEN if sex == "F" else names.MALE_GIVEN
    family = rng.choice(names.SURNAMES)
    age_days = int(rng.triangular(0, 95 * 365, 55 * 365))
    birth = today - dt.timedelta(days=age_days)
    city, state, zip3 = rng.choice(names.CITIES)
    phone = f"{rng.choice(['413', '508', '617', '860', '401'])}555{rng.randint(100, 199):03d}{rng.randint(0, 9)}"
    identifiers = []
    if age_days > 18 * 365 or rng.random() < 0.5:
        area = rng.randint(1, 665)
        identifiers.append(
            IdentifierData(
                kind="SS", value=f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
            )
        )
    if rng.random() < 0.6:
        identifiers.append(
            IdentifierData(
                kind="MB", value=f"W{rng.randint(10**8, 10**9 - 1)}", issuer="Acme Health Plan"
            )
        )
    contacts = [
        ContactData(
            kind="emergency",
            name=f"{rng.choice(names.FEMALE_GIVEN + names.MALE_GIVEN)} {family}",
            relationship=rng.choice(["spouse", "daughter", "son", "sister", "brother", "friend"]),
            phone=f"(413) 555-{rng.randint(200, 999):04d}",
        )
    ]
    if age_days < 18 * 365:
        contacts.append(
            ContactData(
                kind="representative",
                name=f"{rng.choice(names.FEMALE_GIVEN)} {family}",
                relationship="mother",
                authority="parent",
            )
        )
    return PatientData(
        name=NameData(
            family=family,
            given=rng.choice(pool),
            middle=rng.choice(pool) if rng.random() < 0.5 else "",
        ),
        birth_date=birth,
        sex_at_birth=sex,
        preferred_language=rng.choice(["en"] * 8 + ["es", "pt"]),
        identifiers=identifiers,
        addresses=[
            AddressData(
                line1=f"{rng.randint(1, 999)} {rng.choice(names.STREETS)} {rng.choice(names.STREET_KINDS)}",
                city=city,
                state=state,
                postal_code=f"{zip3}{rng.randint(0, 99):02d}",
            )
        ],
        telecoms=[TelecomData(system="phone", value=phone, use=rng.choice(["home", "mobile"]))],
        contacts=contacts,
    )


def _aware(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """A wall-clock time of the hospital's day (the display time zone)."""
    local = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=local)


def _condition(code, display, status="active", category="problem-list-item", onset=None) -> dict:
    resource = {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": status,
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": category,
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": ICD10, "code": code, "display": display}], "text": display},
        "subject": {"reference": "Patient/demo"},
    }
    if onset:
        resource["onsetDateTime"] = onset.isoformat()
    return resource


def _vital(code, display, value, unit, ucum, when, low=None, high=None) -> dict:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": "Patient/demo"},
        "effectiveDateTime": when.isoformat(),
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": ucum,
        },
    }
    if low is not None:
        resource["referenceRange"] = [
            {"low": {"value": low, "unit": unit}, "high": {"value": high, "unit": unit}}
        ]
    return resource


class Generator:
    def __init__(self, *, seed: int, today: dt.date):
        self.rng = random.Random(seed)
        self.today = today
        from recordroom.demo import load_demo_facilities

        self.facilities = load_demo_facilities()
        self.cast = _cast(self.facilities)
        self.types = {t.loinc_code: t for t in DocumentType.objects.all()}
        self.signatures_left = 30  # real signatures re-check a password: a few dozen suffice

    def _type(self, code: str):
        return self.types[code]

    def patient(self, index: int):
        rng, cast = self.rng, self.cast
        facility = self.facilities[0] if rng.random() < 0.85 else self.facilities[1]
        patient = do_register_patient(
            _person(rng, self.today),
            facility=facility,
            acting_user=cast.technician,
            reason="demo registration",
        )
        if index % 40 == 7:
            do_set_restriction(
                patient,
                rng.choice([Restriction.VIP, Restriction.EMPLOYEE, Restriction.CONFIDENTIAL]),
                reason="demo: restricted case",
                acting_user=cast.administrator,
            )
        self._clinical_baseline(patient)
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
            self._encounter(patient, facility)
        return patient

    def _clinical_baseline(self, patient):
        rng, actor = self.rng, self.cast.technician
        for code, display in rng.sample(PROBLEMS, rng.choice([0, 1, 2, 3])):
            do_record_clinical_entry(
                patient, resource=_condition(code, display), acting_user=actor, source="demo"
            )
        if rng.random() < 0.3:
            code, display = rng.choice(ALLERGIES)
            do_record_clinical_entry(
                patient,
                acting_user=actor,
                source="demo",
                resource={
                    "resourceType": "AllergyIntolerance",
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {
                        "coding": [{"system": RXNORM, "code": code, "display": display}],
                        "text": display,
                    },
                    "patient": {"reference": "Patient/demo"},
                    "reaction": [
                        {
                            "manifestation": [
                                {"text": rng.choice(["Hives", "Rash", "Anaphylaxis", "Nausea"])}
                            ]
                        }
                    ],
                },
            )
        for code, display in rng.sample(MEDICATIONS, rng.choice([0, 1, 2])):
            do_record_clinical_entry(
                patient,
                acting_user=actor,
                source="demo",
                resource={
                    "resourceType": "MedicationStatement",
                    "status": "active",
                    "medicationCodeableConcept": {
                        "coding": [{"system": RXNORM, "code": code, "display": display}],
                        "text": display,
                    },
                    "subject": {"reference": "Patient/demo"},
                },
            )

    def _encounter(self, patient, facility):
        rng, cast = self.rng, self.cast
        if facility == self.facilities[0]:
            kind = rng.choices(
                [
                    EncounterClass.OUTPATIENT,
                    EncounterClass.EMERGENCY,
                    EncounterClass.INPATIENT,
                    EncounterClass.OBSERVATION,
                ],
                weights=[5, 2, 3, 1],
            )[0]
        else:  # the clinic sees outpatients only
            kind = EncounterClass.OUTPATIENT
        days_ago = rng.randint(0, 700)
        start_day = max(self.today - dt.timedelta(days=days_ago), patient.birth_date)
        started = _aware(start_day, rng.randint(7, 20), rng.choice([0, 15, 30, 45]))
        # An encounter drawn for today must not start later than now.
        started = min(started, clock.now() - dt.timedelta(hours=1))
        attending = rng.choice(cast.attendings)
        if kind == EncounterClass.INPATIENT:
            code, display, service = rng.choice(ADMISSIONS)
            length = rng.choice([1, 2, 3, 3, 4, 5, 7, 10])
            still_in = days_ago < length
            encounter = do_register_encounter(
                patient,
                facility=self.facilities[0],
                encounter_class=kind,
                started_at=started,
                acting_user=cast.technician,
                service=service,
                admit_source=rng.choice(["1", "2", "7"]),
                attending=attending,
                unit=UNITS[service],
                bed=f"{rng.randint(1, 30)}{rng.choice('AB')}",
                reason=display,
            )
            if length > 3 and not still_in and rng.random() < 0.4:
                do_transfer(
                    encounter,
                    unit="4 West" if UNITS[service] != "4 West" else "3 South",
                    at=started + dt.timedelta(days=1, hours=3),
                    acting_user=cast.technician,
                    bed=f"{rng.randint(1, 30)}A",
                )
            ended = None
            if not still_in:
                ended = started + dt.timedelta(days=length, hours=rng.randint(-3, 4))
                ended = min(ended, clock.now() - dt.timedelta(hours=1))
                if ended <= started:
                    ended = started + dt.timedelta(hours=6)
                do_discharge(
                    encounter,
                    ended_at=ended,
                    acting_user=cast.technician,
                    disposition=rng.choices(
                        [
                            Disposition.HOME,
                            Disposition.SNF,
                            Disposition.HOME_HEALTH,
                            Disposition.EXPIRED,
                        ],
                        weights=[14, 3, 3, 1],
                    )[0],
                )
            do_record_clinical_entry(
                patient,
                encounter=encounter,
                acting_user=cast.technician,
                source="demo",
                resource=_condition(code, display, category="encounter-diagnosis", onset=started),
            )
            self._vitals(patient, encounter, started)
            self._inpatient_documents(patient, encounter, attending, started, ended)
        else:
            visit_reasons = [
                "Annual physical",
                "Follow-up",
                "Chest pain",
                "Laceration",
                "Cough",
                "Back pain",
            ]
            length = dt.timedelta(
                hours=rng.choice([1, 2, 4]) if kind != EncounterClass.OBSERVATION else 20
            )
            encounter = do_register_encounter(
                patient,
                facility=facility,
                encounter_class=kind,
                started_at=started,
                acting_user=cast.technician,
                attending=attending,
                reason=rng.choice(visit_reasons),
                service="emergency" if kind == EncounterClass.EMERGENCY else "primary care",
            )
            ended = min(started + length, clock.now() - dt.timedelta(minutes=5))
            if ended > started and days_ago > 0:
                do_discharge(
                    encounter,
                    ended_at=ended,
                    acting_user=cast.technician,
                    disposition=Disposition.HOME if kind != EncounterClass.OUTPATIENT else "",
                )
            self._vitals(patient, encounter, started)
            if kind == EncounterClass.OBSERVATION:
                # A stay: its record needs an H&P and a final diagnosis like an admission.
                code, display, _ = rng.choice(ADMISSIONS)
                do_record_clinical_entry(
                    patient,
                    encounter=encounter,
                    acting_user=cast.technician,
                    source="demo",
                    resource=_condition(
                        code, display, category="encounter-diagnosis", onset=started
                    ),
                )
                self._file(
                    patient, encounter, "34117-2", "History and physical", started, attending
                )
            self._file(patient, encounter, "11506-3", "Progress note", started, attending)
        return encounter

    def _vitals(self, patient, encounter, when):
        rng, actor = self.rng, self.cast.technician
        for resource in [
            _vital("8867-4", "Heart rate", rng.randint(55, 115), "/min", "/min", when, 60, 100),
            _vital(
                "8310-5",
                "Body temperature",
                round(rng.uniform(36.2, 39.1), 1),
                "Cel",
                "Cel",
                when,
                36.1,
                37.8,
            ),
        ]:
            do_record_clinical_entry(
                patient, encounter=encounter, resource=resource, acting_user=actor, source="demo"
            )

    def _file(self, patient, encounter, loinc, title, service_at, attending, *, sensitivity=()):
        body = (
            f"{title}.\nAttending: {attending.get_full_name()}.\n"
            "Synthetic demonstration text: no real patient is described.\n"
        )
        latest = clock.now() - dt.timedelta(minutes=5)
        service_at = min(service_at + dt.timedelta(hours=2), latest)
        return do_create_document(
            patient,
            doc_type=self._type(loinc),
            title=title,
            service_at=service_at,
            acting_user=self.cast.technician,
            author=attending,
            written_at=min(service_at + dt.timedelta(hours=self.rng.randint(1, 20)), latest),
            body=body,
            encounter=encounter,
            source=DocumentSource.IMPORTED,
            sensitivity=sensitivity,
        )

    def _inpatient_documents(self, patient, encounter, attending, started, ended):
        rng = self.rng
        self._file(patient, encounter, "34117-2", "History and physical", started, attending)
        for day in range(1, min(4, ((ended or clock.now()) - started).days + 1)):
            self._file(
                patient,
                encounter,
                "11506-3",
                f"Progress note, hospital day {day + 1}",
                started + dt.timedelta(days=day),
                attending,
            )
        if encounter.service == "surgery":
            self._file(
                patient,
                encounter,
                "11504-8",
                "Operative report",
                started + dt.timedelta(hours=20),
                attending,
            )
        if rng.random() < 0.05:
            self._file(
                patient,
                encounter,
                "11506-3",
                "Behavioural health consultation",
                started + dt.timedelta(hours=30),
                attending,
                sensitivity=[SensitiveCategory.BEHAVIORAL],
            )
        if ended is None:
            return
        if attending.username == "clinician" and self.signatures_left > 0:
            self._authored_discharge_summary(patient, encounter, ended)
        elif rng.random() < 0.8:
            self._file(
                patient,
                encounter,
                "18842-5",
                "Discharge summary",
                ended - dt.timedelta(hours=1),
                attending,
            )
        # else: no discharge summary yet — a deficiency for chart completion

    def _authored_discharge_summary(self, patient, encounter, ended):
        """Written in RecordRoom by the demo clinician: some still drafts waiting to be
        signed, some signed, some amended, one with an addendum, one entered in error."""
        from recordroom.demo import DEMO_PASSWORD

        rng, clinician = self.rng, self.cast.clinician
        document = do_create_document(
            patient,
            doc_type=self._type("18842-5"),
            title="Discharge summary",
            service_at=ended - dt.timedelta(hours=1),
            acting_user=clinician,
            encounter=encounter,
            body=(
                "Discharge summary.\nHospital course: uneventful (synthetic demonstration text).\n"
                "Discharge medications: as reconciled.\nFollow-up: primary care in 1 week.\n"
            ),
        )
        roll = rng.random()
        if roll < 0.35:
            return  # a draft waiting for the clinician's signature
        do_sign_document(document, password=DEMO_PASSWORD, acting_user=clinician)
        self.signatures_left -= 1
        if roll > 0.85 and self.signatures_left > 0:
            do_amend_document(
                document,
                body=document.current_version.body
                + "Addendum to follow-up: cardiology in 2 weeks.\n",
                reason="follow-up plan changed",
                kind="amendment",
                acting_user=clinician,
            )
        elif roll > 0.75:
            do_add_addendum(
                document,
                body="Pathology result received after discharge: benign.",
                acting_user=clinician,
            )
        elif roll > 0.72:
            do_mark_entered_in_error(
                document,
                reason="filed to the wrong encounter (demo)",
                acting_user=self.cast.administrator,
            )


def load_population(
    patients: int, *, seed: int = 2026, progress: Callable[[int], None] | None = None
) -> int:
    """Generate ``patients`` synthetic patients (a transaction each). Returns how many."""
    from recordroom.demo_data.coding import load_coding
    from recordroom.demo_data.completion import load_completion
    from recordroom.demo_data.roi import load_roi

    # The hospital's calendar date: after midnight UTC it is still yesterday in America.
    generator = Generator(seed=seed, today=timezone.localdate(clock.now()))
    for index in range(patients):
        with transaction.atomic():
            generator.patient(index)
        if progress:
            progress(1)
    if patients:
        load_completion(generator)  # chart completion in every state, after the population
        load_coding(generator)  # a coding backlog: abstracts in every status, open queries
        load_roi(generator)  # release-of-information requests in every state
    return patients
