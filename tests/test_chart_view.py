"""The chart: patient banner (name, MRN, date of birth and age, sex, allergies,
restriction), the encounter timeline, documents by encounter and type, clinical data,
and the ways to version history. Reading it goes through the patient's door."""

import datetime as dt

import pytest
import time_machine

from audit.models import Action, Outcome
from clinical.actions import do_record_clinical_entry
from documents.actions import do_create_document
from documents.models import DocumentSource, DocumentType
from encounters import actions as encounter_actions
from patients.actions import do_set_restriction, mrn_of
from patients.chart import age_text
from patients.models import Restriction
from recordroom.testing import register_patient, sign_in

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2025, 3, 14, 15, 0, tzinfo=dt.UTC)

PENICILLIN = {
    "resourceType": "AllergyIntolerance",
    "clinicalStatus": {"coding": [{"code": "active"}]},
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
POTASSIUM = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium"}]},
    "effectiveDateTime": "2025-03-13T07:30:00Z",
    "valueQuantity": {"value": 5.9, "unit": "mmol/L"},
    "referenceRange": [{"low": {"value": 3.5}, "high": {"value": 5.1}}],
    "interpretation": [{"coding": [{"code": "H"}]}],
}


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


def chart_url(patient, query=""):
    return f"/patients/{patient.public_id}/{query}"


def register(personas, patient, started_at, **overrides):
    values = {
        "facility": personas.facility,
        "encounter_class": "AMB",
        "started_at": started_at,
        "acting_user": personas.technician,
    }
    values.update(overrides)
    return encounter_actions.do_register_encounter(patient, **values)


def doc_type(code):
    return DocumentType.objects.get(loinc_code=code)


def write(personas, patient, code, title, service_at, **kwargs):
    kwargs.setdefault("acting_user", personas.clinician)
    kwargs.setdefault("body", "Synthetic note text.")
    return do_create_document(
        patient, doc_type=doc_type(code), title=title, service_at=service_at, **kwargs
    )


@pytest.fixture
def record(personas, patient):
    """Two encounters (an admission and an older clinic visit), their documents, one
    unfiled outside record, an allergy and a result."""
    admission = register(
        personas,
        patient,
        NOW - dt.timedelta(days=3),
        encounter_class="IMP",
        attending=personas.clinician,
        unit="4 West",
        bed="12A",
        visit_number="ADM-1",
    )
    visit = register(personas, patient, NOW - dt.timedelta(days=400), visit_number="CLN-1")
    encounter_actions.do_discharge(
        visit, ended_at=NOW - dt.timedelta(days=400, hours=-1), acting_user=personas.technician
    )
    docs = {
        "hp": write(
            personas,
            patient,
            "34117-2",
            "Admission H&P",
            NOW - dt.timedelta(days=3),
            encounter=admission,
        ),
        "progress1": write(
            personas,
            patient,
            "11506-3",
            "Progress day 1",
            NOW - dt.timedelta(days=2),
            encounter=admission,
        ),
        "progress2": write(
            personas,
            patient,
            "11506-3",
            "Progress day 2",
            NOW - dt.timedelta(days=1),
            encounter=admission,
        ),
        "clinic": write(
            personas,
            patient,
            "11488-4",
            "Cardiology consult",
            NOW - dt.timedelta(days=400),
            encounter=visit,
        ),
        "outside": write(
            personas,
            patient,
            "11503-0",
            "Records from Lakeside Clinic",
            NOW - dt.timedelta(days=900),
            acting_user=personas.technician,
            source=DocumentSource.IMPORTED,
        ),
    }
    do_record_clinical_entry(patient, resource=PENICILLIN, acting_user=personas.clinician)
    do_record_clinical_entry(
        patient, resource=POTASSIUM, encounter=admission, acting_user=personas.clinician
    )
    return {"admission": admission, "visit": visit, "docs": docs}


# --- the door ----------------------------------------------------------------------------


def test_the_chart_requires_login(client, patient):
    assert client.get(chart_url(patient))["Location"].startswith("/accounts/login/")


def test_the_chart_refuses_post(client, personas, patient):
    sign_in(client, personas.technician)
    assert client.post(chart_url(patient)).status_code == 405


def test_the_chart_is_denied_without_the_clinical_permission(client, personas, patient, audit_rows):
    sign_in(client, personas.privacy_officer)
    assert client.get(chart_url(patient)).status_code == 403
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.privacy_officer
    assert "patients.read_clinical" in denied.reason


def test_the_chart_hides_the_patient_from_an_outsider(client, personas, patient, audit_rows):
    sign_in(client, personas.outsider)
    assert client.get(chart_url(patient)).status_code == 404
    (denied,) = audit_rows(outcome=Outcome.DENIED)
    assert denied.actor == personas.outsider


def test_a_restricted_chart_sends_to_the_notice(client, personas, patient):
    do_set_restriction(
        patient, Restriction.VIP, reason="public figure", acting_user=personas.administrator
    )
    sign_in(client, personas.coder)
    response = client.get(chart_url(patient))
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{patient.public_id}/restricted/"


def test_opening_the_chart_is_audited(client, personas, patient, audit_rows):
    sign_in(client, personas.coder)
    assert client.get(chart_url(patient)).status_code == 200
    (view,) = audit_rows(action=Action.VIEW)
    assert (view.actor, view.patient_id, view.outcome) == (
        personas.coder,
        patient.public_id,
        Outcome.ALLOWED,
    )
    assert view.detail["scope"] == "clinical"


# --- the banner ---------------------------------------------------------------------------


def test_the_banner_names_the_patient_and_their_allergies(client, personas, patient, record):
    sign_in(client, personas.technician)
    page = client.get(chart_url(patient)).content.decode()
    assert "QUILLFEATHER, Marigold June" in page
    assert mrn_of(patient, personas.facility) in page
    assert "1968-04-12 (56 y)" in page
    assert "Female" in page
    assert "Penicillin G" in page and "Hives" in page
    assert 'data-banner="restriction"><span class="muted">None' in page


def test_the_banner_says_when_no_allergy_is_recorded(client, personas, patient):
    sign_in(client, personas.technician)
    page = client.get(chart_url(patient)).content.decode()
    assert "No allergy information recorded" in page


def test_the_banner_shows_the_restriction(client, personas, patient):
    do_set_restriction(
        patient, Restriction.EMPLOYEE, reason="staff member", acting_user=personas.administrator
    )
    sign_in(client, personas.administrator)
    page = client.get(chart_url(patient)).content.decode()
    assert '<strong class="warn">Employee</strong>' in page


def test_the_chart_links_to_demographics_and_version_history(client, personas, patient):
    sign_in(client, personas.coder)
    page = client.get(chart_url(patient)).content.decode()
    assert f"/patients/{patient.public_id}/demographics/" in page
    assert f"/patients/{patient.public_id}/demographics/versions/" in page


@pytest.mark.parametrize(
    "who, new_encounter, new_document",
    [("technician", True, True), ("clinician", False, True), ("coder", False, False)],
)
def test_the_actions_offered_follow_the_role(
    client, personas, patient, who, new_encounter, new_document
):
    sign_in(client, getattr(personas, who))
    page = client.get(chart_url(patient)).content.decode()
    assert (f"/encounters/new/{patient.public_id}/" in page) is new_encounter
    assert (f"/documents/new/{patient.public_id}/" in page) is new_document


# --- timeline and documents ------------------------------------------------------------------


def test_the_timeline_is_newest_first_with_documents_by_type(client, personas, patient, record):
    sign_in(client, personas.technician)
    page = client.get(chart_url(patient)).content.decode()
    admission, visit = record["admission"], record["visit"]
    assert page.index(f'data-encounter="{admission.public_id}"') < page.index(
        f'data-encounter="{visit.public_id}"'
    )
    # The admission's documents, grouped: H&P, then the two progress notes together.
    section = page[
        page.index(f'data-encounter="{admission.public_id}"') : page.index(
            f'data-encounter="{visit.public_id}"'
        )
    ]
    assert "3 documents: H&amp;P 1 · Progress note 2" in section
    assert section.index('data-doc-type="34117-2"') < section.index('data-doc-type="11506-3"')
    assert section.index("Progress day 2") < section.index("Progress day 1")
    for key in ("hp", "progress1", "progress2"):
        assert f'href="/documents/{record["docs"][key].public_id}/"' in section
    assert "Cardiology consult" not in section
    assert "Cardiology consult" in page


def test_unfiled_documents_have_their_own_section(client, personas, patient, record):
    sign_in(client, personas.technician)
    page = client.get(chart_url(patient)).content.decode()
    unfiled = page[page.index('id="unlinked-title"') :]
    assert "Records from Lakeside Clinic" in unfiled


def test_a_cancelled_encounter_leaves_the_timeline_and_can_be_shown(
    client, personas, patient, record
):
    encounter_actions.do_cancel_encounter(
        record["visit"],
        status="entered-in-error",
        reason="Registered on the wrong patient",
        acting_user=personas.technician,
    )
    sign_in(client, personas.technician)
    page = client.get(chart_url(patient)).content.decode()
    assert f'data-encounter="{record["visit"].public_id}"' not in page
    assert "Show 1 cancelled or entered-in-error encounter" in page
    page = client.get(chart_url(patient, "?void=1")).content.decode()
    assert f'data-encounter="{record["visit"].public_id}"' in page


def test_a_sensitive_document_stays_with_its_encounter_without_its_title(
    client, personas, patient, record
):
    hidden = write(
        personas,
        patient,
        "11506-3",
        "Behavioural health session",
        NOW - dt.timedelta(days=1),
        encounter=record["admission"],
        sensitivity=["behavioral"],
    )
    sign_in(client, personas.coder)
    page = client.get(chart_url(patient)).content.decode()
    assert "Behavioural health session" not in page
    admission, visit = record["admission"], record["visit"]
    section = page[
        page.index(f'data-encounter="{admission.public_id}"') : page.index(
            f'data-encounter="{visit.public_id}"'
        )
    ]
    # Counted with the encounter's progress notes, listed by type and date only.
    assert "4 documents: H&amp;P 1 · Progress note 3" in section
    row = section[section.index(f'data-document="{hidden.public_id}"') :]
    row = row[: row.index("</tr>")]
    assert "Restricted document" in row
    assert "Sensitive" in row
    assert personas.clinician.display_name not in row


def test_the_clinical_data_is_shown_by_type(client, personas, patient, record):
    sign_in(client, personas.coder)
    page = client.get(chart_url(patient)).content.decode()
    results = page[page.index('data-clinical-group="results"') :]
    assert "Potassium" in results
    assert "5.9 mmol/L" in results
    assert "3.5–5.1" in results
    assert '<strong class="warn">H</strong>' in results


def test_a_patient_with_nothing_recorded_has_an_empty_chart(client, personas, patient):
    sign_in(client, personas.coder)
    page = client.get(chart_url(patient)).content.decode()
    assert "No encounters recorded." in page
    assert "None recorded." in page


@pytest.mark.parametrize(
    "born, on, text",
    [
        (dt.date(1968, 4, 12), dt.date(2025, 3, 14), "56 y"),
        (dt.date(1968, 3, 14), dt.date(2025, 3, 14), "57 y"),
        (dt.date(2024, 1, 20), dt.date(2025, 3, 14), "13 mo"),
        (dt.date(2025, 3, 1), dt.date(2025, 3, 14), "13 d"),
        (dt.date(2023, 3, 15), dt.date(2025, 3, 14), "23 mo"),
    ],
)
def test_the_age_is_shown_as_a_chart_reads_it(born, on, text):
    assert age_text(born, on) == text
