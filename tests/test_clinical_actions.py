"""Clinical data actions: FHIR R4 resources validated with fhir.resources, kept whole,
with their search columns filled; every state a version; entered-in-error kept and
hidden; bad resources refused with a message naming the problem."""

import datetime as dt
import decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from clinical import actions
from clinical.access import allergies_of, clinical_for_chart, clinical_for_encounter
from clinical.models import ClinicalEntry, ClinicalEntryVersion
from encounters.actions import do_cancel_encounter, do_register_encounter
from recordroom.testing import register_patient

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2025, 3, 14, 15, 0, tzinfo=dt.UTC)

GLUCOSE = {
    "resourceType": "Observation",
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory",
                }
            ]
        }
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
    "subject": {"reference": "Patient/from-the-sender"},
    "effectiveDateTime": "2025-03-13T07:30:00Z",
    "valueQuantity": {"value": 182.5, "unit": "mg/dL", "system": "http://unitsofmeasure.org"},
    "referenceRange": [{"low": {"value": 70}, "high": {"value": 99}}],
    "interpretation": [{"coding": [{"code": "H"}]}],
}

BLOOD_PRESSURE = {
    "resourceType": "Observation",
    "status": "final",
    "category": [{"coding": [{"code": "vital-signs"}]}],
    "code": {
        "coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure"}]
    },
    "effectiveDateTime": "2025-03-13T08:00:00Z",
    "component": [
        {"code": {"coding": [{"code": "8480-6"}]}, "valueQuantity": {"value": 132, "unit": "mmHg"}},
        {"code": {"coding": [{"code": "8462-4"}]}, "valueQuantity": {"value": 84, "unit": "mmHg"}},
    ],
}

PENICILLIN = {
    "resourceType": "AllergyIntolerance",
    "clinicalStatus": {"coding": [{"code": "active"}]},
    "verificationStatus": {"coding": [{"code": "confirmed"}]},
    "category": ["medication"],
    "criticality": "high",
    "code": {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "7980",
                "display": "Penicillin G",
            }
        ]
    },
    "patient": {"reference": "Patient/x"},
    "reaction": [{"manifestation": [{"text": "Hives"}]}],
}

DIABETES = {
    "resourceType": "Condition",
    "clinicalStatus": {"coding": [{"code": "active"}]},
    "category": [{"coding": [{"code": "problem-list-item"}]}],
    "code": {
        "coding": [
            {
                "system": "http://hl7.org/fhir/sid/icd-10-cm",
                "code": "E11.9",
                "display": "Type 2 diabetes mellitus without complications",
            }
        ]
    },
    "subject": {"reference": "Patient/x"},
    "onsetDateTime": "2019",
}

METFORMIN = {
    "resourceType": "MedicationStatement",
    "status": "active",
    "medicationCodeableConcept": {"text": "Metformin 500 mg tablet"},
    "subject": {"reference": "Patient/x"},
    "effectiveDateTime": "2024-06-01",
    "dosage": [{"text": "1 tablet twice daily"}],
}

FLU_SHOT = {
    "resourceType": "Immunization",
    "status": "completed",
    "vaccineCode": {
        "coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "158"}],
        "text": "Influenza",
    },
    "patient": {"reference": "Patient/x"},
    "occurrenceDateTime": "2024-10-01",
}

APPENDECTOMY = {
    "resourceType": "Procedure",
    "status": "completed",
    "code": {"text": "Appendectomy"},
    "subject": {"reference": "Patient/x"},
    "performedPeriod": {"start": "2020-01-05T10:00:00-05:00"},
}


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def encounter(personas, patient):
    return do_register_encounter(
        patient,
        facility=personas.facility,
        encounter_class="IMP",
        started_at=NOW - dt.timedelta(days=2),
        attending=personas.clinician,
        unit="4 West",
        acting_user=personas.technician,
    )


def record(personas, patient, resource, **kwargs):
    kwargs.setdefault("acting_user", personas.clinician)
    return actions.do_record_clinical_entry(patient, resource=resource, **kwargs)


def test_a_result_fills_its_search_columns(personas, patient, encounter, audit_rows):
    entry = record(personas, patient, GLUCOSE, encounter=encounter, source="lab-interface")
    entry.refresh_from_db()
    assert entry.resource_type == "Observation"
    assert (entry.code_system, entry.code, entry.display) == (
        "http://loinc.org",
        "2345-7",
        "Glucose",
    )
    assert entry.category == "laboratory"
    assert entry.status == "final"
    assert entry.effective_at == dt.datetime(2025, 3, 13, 7, 30, tzinfo=dt.UTC)
    assert entry.value_quantity == decimal.Decimal("182.5")
    assert entry.value_unit == "mg/dL"
    assert (entry.reference_low, entry.reference_high) == (70, 99)
    assert entry.interpretation == "H"
    assert entry.source == "lab-interface"
    assert entry.recorded_by == personas.clinician
    assert entry.recorded_at == NOW
    (event,) = audit_rows(action=Action.CREATE, object_type="clinical_entry")
    assert event.patient_id == patient.public_id
    assert event.object_id == str(entry.public_id)
    assert event.detail["resource_type"] == "Observation"


def test_the_resource_is_kept_whole_with_recordrooms_ids(personas, patient, encounter):
    entry = record(personas, patient, GLUCOSE, encounter=encounter)
    stored = entry.resource
    assert stored["id"] == str(entry.public_id)
    assert stored["meta"]["versionId"] == "1"
    assert stored["subject"] == {"reference": f"Patient/{patient.public_id}"}
    assert stored["encounter"] == {"reference": f"Encounter/{encounter.public_id}"}
    assert stored["referenceRange"] == GLUCOSE["referenceRange"]
    (version,) = ClinicalEntryVersion.objects.filter(entry=entry)
    assert (version.number, version.reason, version.resource) == (1, "recorded", stored)


@pytest.mark.parametrize(
    "resource, expected",
    [
        (
            BLOOD_PRESSURE,
            {"display": "Blood pressure", "value_text": "132/84 mmHg", "category": "vital-signs"},
        ),
        (
            PENICILLIN,
            {
                "code": "7980",
                "status": "active",
                "value_text": "Hives (high criticality)",
                "category": "medication",
            },
        ),
        (DIABETES, {"code": "E11.9", "status": "active", "category": "problem-list-item"}),
        (
            METFORMIN,
            {
                "display": "Metformin 500 mg tablet",
                "value_text": "1 tablet twice daily",
                "status": "active",
            },
        ),
        (FLU_SHOT, {"code": "158", "display": "Influenza", "status": "completed"}),
        (APPENDECTOMY, {"display": "Appendectomy", "status": "completed"}),
    ],
)
def test_each_kind_of_clinical_data_is_read(personas, patient, resource, expected):
    entry = record(personas, patient, resource)
    for key, value in expected.items():
        assert getattr(entry, key) == value, key
    assert entry.effective_at is not None or resource is PENICILLIN


def test_a_partial_date_means_its_first_day(personas, patient):
    entry = record(personas, patient, DIABETES)
    local = entry.effective_at.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert (local.year, local.month, local.day) == (2019, 1, 1)


@pytest.mark.parametrize(
    "resource, key, words",
    [
        ({"resourceType": "Patient"}, "resource", "Clinical data is one of"),
        ([1, 2], "resource", "JSON object"),
        ({**GLUCOSE, "status": "done"}, "status", "'done' is not a valid Observation.status"),
        ({k: v for k, v in GLUCOSE.items() if k != "code"}, "resource", "code: Field required"),
        ({**GLUCOSE, "valueQuantity": {"value": "lots"}}, "resource", "valueQuantity.value"),
        ({**GLUCOSE, "colour": "blue"}, "resource", "colour"),
        ({**DIABETES, "code": {"coding": [{"system": "x"}]}}, "code", "no code or text"),
        ({**GLUCOSE, "effectiveDateTime": "2031-01-01T00:00:00Z"}, "effective", "in the future"),
        ({**GLUCOSE, "valueQuantity": {"value": 1e15, "unit": "mg/dL"}}, "value", "too large"),
    ],
)
def test_a_bad_resource_is_refused_naming_the_problem(
    personas, patient, resource, key, words, audit_rows
):
    with pytest.raises(ValidationError) as excinfo:
        record(personas, patient, resource)
    messages = excinfo.value.message_dict[key]
    assert any(words in m for m in messages), messages
    assert not ClinicalEntry.objects.exists()
    assert not audit_rows(action=Action.CREATE)


def test_the_encounter_must_be_the_patients_and_not_cancelled(personas, patient, encounter):
    other = register_patient(personas, family="Ashgrove", given="Tobias")
    with pytest.raises(ValidationError) as excinfo:
        record(personas, other, GLUCOSE, encounter=encounter)
    assert "another patient's" in excinfo.value.message_dict["encounter"][0]
    do_cancel_encounter(encounter, reason="Did not arrive", acting_user=personas.technician)
    with pytest.raises(ValidationError) as excinfo:
        record(personas, patient, GLUCOSE, encounter=encounter)
    assert "cancelled or entered in error" in excinfo.value.message_dict["encounter"][0]


def test_a_role_without_the_permission_is_refused_and_audited(personas, patient, audit_rows):
    with pytest.raises(AccessDenied):
        record(personas, patient, GLUCOSE, acting_user=personas.coder)
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.coder
    assert "clinical.record" in denied.reason
    assert not ClinicalEntry.objects.exists()


def test_an_him_technician_abstracts_from_a_paper_record(personas, patient):
    entry = record(
        personas, patient, FLU_SHOT, acting_user=personas.technician, source="paper chart 1998"
    )
    assert entry.recorded_by == personas.technician


def test_an_update_is_a_new_version(personas, patient, audit_rows):
    entry = record(personas, patient, GLUCOSE)
    corrected = {**GLUCOSE, "status": "corrected", "valueQuantity": {"value": 128, "unit": "mg/dL"}}
    actions.do_update_clinical_entry(
        entry,
        resource=corrected,
        reason="Lab corrected the result",
        acting_user=personas.clinician,
    )
    entry.refresh_from_db()
    assert (entry.version, entry.status, entry.value_quantity) == (2, "corrected", 128)
    first, second = entry.versions.order_by("number")
    assert first.resource["valueQuantity"]["value"] == 182.5
    assert second.resource["valueQuantity"]["value"] == 128
    assert second.resource["meta"]["versionId"] == "2"
    assert audit_rows(action=Action.UPDATE)[-1].reason == "Lab corrected the result"
    with pytest.raises(ValidationError) as excinfo:
        actions.do_update_clinical_entry(
            entry,
            resource=DIABETES,
            reason="Turn it into a problem",
            acting_user=personas.clinician,
        )
    assert "cannot become a Condition" in excinfo.value.message_dict["resource"][0]


def test_entered_in_error_is_kept_and_leaves_the_chart(personas, patient, encounter, audit_rows):
    wrong = record(personas, patient, PENICILLIN, encounter=encounter)
    kept = record(personas, patient, GLUCOSE, encounter=encounter)
    actions.do_mark_clinical_entry_in_error(
        wrong, reason="Allergy belongs to another patient", acting_user=personas.administrator
    )
    wrong.refresh_from_db()
    assert wrong.entered_in_error
    assert wrong.version == 2
    assert wrong.resource["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert (
        wrong.versions.get(number=1).resource["verificationStatus"]["coding"][0]["code"]
        == "confirmed"
    )
    groups = {g.key: g for g in clinical_for_chart(personas.technician, patient)}
    assert groups["allergies"].entries == []
    assert groups["results"].entries == [kept]
    assert [g.key for g in clinical_for_encounter(personas.technician, encounter)] == ["results"]
    event = audit_rows(action=Action.UPDATE, object_type="clinical_entry")[-1]
    assert event.detail["entered_in_error"] is True
    with pytest.raises(ValidationError):
        actions.do_mark_clinical_entry_in_error(
            wrong, reason="Once more", acting_user=personas.administrator
        )


def test_marking_in_error_needs_its_permission_and_a_reason(personas, patient, audit_rows):
    entry = record(personas, patient, GLUCOSE)
    with pytest.raises(AccessDenied):
        actions.do_mark_clinical_entry_in_error(
            entry, reason="Not mine", acting_user=personas.coder
        )
    assert audit_rows(outcome=Outcome.DENIED)
    with pytest.raises(ValidationError):
        actions.do_mark_clinical_entry_in_error(
            entry, reason="", acting_user=personas.administrator
        )
    entry.refresh_from_db()
    assert not entry.entered_in_error


def test_the_chart_groups_by_type_newest_first_with_counts(
    personas, patient, django_assert_max_num_queries
):
    for day in range(30):
        record(
            personas,
            patient,
            {**GLUCOSE, "effectiveDateTime": f"2025-02-{day % 28 + 1:02d}T0{day % 10}:00:00Z"},
        )
    record(personas, patient, PENICILLIN)
    record(personas, patient, {**PENICILLIN, "clinicalStatus": {"coding": [{"code": "resolved"}]}})
    record(personas, patient, DIABETES)
    with django_assert_max_num_queries(4):
        groups = clinical_for_chart(personas.technician, patient)
    by_key = {g.key: g for g in groups}
    assert [g.key for g in groups] == [
        "allergies",
        "problems",
        "medications",
        "results",
        "procedures",
        "immunizations",
    ]
    results = by_key["results"]
    assert (results.total, len(results.entries), results.more) == (30, 25, 5)
    dates = [e.effective_at for e in results.entries]
    assert dates == sorted(dates, reverse=True)
    assert by_key["allergies"].total == 2
    assert [a.status for a in allergies_of(groups)] == ["active"]


def test_reading_clinical_data_needs_the_clinical_permission(personas, patient, audit_rows):
    with pytest.raises(AccessDenied):
        clinical_for_chart(personas.privacy_officer, patient)
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.patient_id == patient.public_id
