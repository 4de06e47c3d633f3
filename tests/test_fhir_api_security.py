"""A token sees only what its user may see: patients of the user's facilities (another
facility's answer 404), restricted patients only with a relationship (403, audited, no
break-the-glass through the API), sensitive and entered-in-error documents by the
documents' rules, patient/ scopes only their patient, the audit trail only for the
privacy officer."""

import pytest

from audit.models import Outcome
from documents.actions import do_mark_entered_in_error
from documents.testing import signed, treats
from patients.actions import do_set_restriction
from tests.fhir_api_helpers import api_for, body, patient_with_data

pytestmark = pytest.mark.django_db


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [e["resource"]["id"] for e in body(response).get("entry", [])]


def test_it_hides_another_facilitys_patient_from_the_outsider(client, personas, audit_rows):
    patient, condition, _ = patient_with_data(personas)
    api = api_for(client, personas.outsider)
    start = len(audit_rows())
    assert api.get(f"/fhir/Patient/{patient.public_id}").status_code == 404
    assert api.get(f"/fhir/Condition/{condition.public_id}").status_code == 404
    assert api.get(f"/fhir/Patient/{patient.public_id}/$everything").status_code == 404
    assert ids(api.get("/fhir/Patient", {"family": "quill"})) == []
    assert ids(api.get("/fhir/Condition")) == []
    denied = [r for r in audit_rows()[start:] if r.outcome == Outcome.DENIED]
    assert len(denied) >= 3


def test_a_restricted_patient_is_403_and_audited(client, personas, audit_rows):
    patient, condition, _ = patient_with_data(personas)
    do_set_restriction(patient, "vip", reason="board member", acting_user=personas.administrator)
    api = api_for(client, personas.other_clinician)
    start = len(audit_rows())
    response = api.get(f"/fhir/Patient/{patient.public_id}")
    assert response.status_code == 403
    assert "break-the-glass" in body(response)["issue"][0]["diagnostics"]
    assert api.get(f"/fhir/Condition/{condition.public_id}").status_code == 403
    assert ids(api.get("/fhir/Patient", {"family": "quill"})) == []
    assert ids(api.get("/fhir/Condition")) == []
    denied = [r for r in audit_rows()[start:] if r.outcome == Outcome.DENIED]
    assert len(denied) == 2 and all(r.patient_id == patient.public_id for r in denied)
    # The clinician treating the patient has a relationship.
    treats(personas.clinician, patient, personas.facility, personas.technician)
    treating = api_for(client, personas.clinician)
    assert treating.get(f"/fhir/Patient/{patient.public_id}").status_code == 200
    assert ids(treating.get("/fhir/Patient", {"family": "quill"})) == [str(patient.public_id)]


def test_sensitive_documents_follow_the_document_rules(client, personas):
    patient, _, _ = patient_with_data(personas)
    document = signed(patient, personas.clinician, sensitivity=["behavioral"])
    author = api_for(client, personas.clinician)
    read = author.get(f"/fhir/DocumentReference/{document.public_id}")
    assert read.status_code == 200
    labels = {c["code"] for lab in body(read)["securityLabel"] for c in lab["coding"]}
    assert {"R", "BH"} <= labels
    coder = api_for(client, personas.coder)
    assert coder.get(f"/fhir/DocumentReference/{document.public_id}").status_code == 403
    assert ids(coder.get("/fhir/DocumentReference")) == []
    assert ids(author.get("/fhir/DocumentReference")) == [str(document.public_id)]


def test_entered_in_error_documents_are_hidden_from_ordinary_readers(client, personas):
    patient, _, _ = patient_with_data(personas)
    document = signed(patient, personas.clinician)
    do_mark_entered_in_error(
        document, reason="filed to the wrong patient", acting_user=personas.administrator
    )
    coder = api_for(client, personas.coder)
    assert coder.get(f"/fhir/DocumentReference/{document.public_id}").status_code == 404
    assert ids(coder.get("/fhir/DocumentReference")) == []
    admin = api_for(client, personas.administrator)
    resource = body(admin.get(f"/fhir/DocumentReference/{document.public_id}"))
    assert resource["status"] == "entered-in-error"
    assert ids(admin.get("/fhir/DocumentReference", {"status": "entered-in-error"})) == [
        str(document.public_id)
    ]


def test_a_patient_scope_sees_only_its_patient(client, personas):
    patient, condition, _ = patient_with_data(personas)
    other, other_condition, _ = patient_with_data(personas, family="Ashdown", given="Tobias")
    api = api_for(client, personas.clinician, "patient/*.read", patient=patient)
    assert api.get(f"/fhir/Patient/{patient.public_id}").status_code == 200
    assert api.get(f"/fhir/Patient/{other.public_id}").status_code == 404
    assert api.get(f"/fhir/Condition/{other_condition.public_id}").status_code == 404
    assert ids(api.get("/fhir/Patient")) == [str(patient.public_id)]
    assert ids(api.get("/fhir/Condition")) == [str(condition.public_id)]
    assert api.get(f"/fhir/Patient/{other.public_id}/$everything").status_code == 404


def test_a_narrow_scope_refuses_other_types_and_audits_it(client, personas, audit_rows):
    patient, condition, _ = patient_with_data(personas)
    api = api_for(client, personas.clinician, "user/Patient.read")
    assert api.get(f"/fhir/Patient/{patient.public_id}").status_code == 200
    start = len(audit_rows())
    response = api.get(f"/fhir/Condition/{condition.public_id}")
    assert response.status_code == 403
    assert "insufficient_scope" in response["WWW-Authenticate"]
    assert [r.outcome for r in audit_rows()[start:]] == [Outcome.DENIED]


def test_a_user_without_a_role_is_refused_and_audited(client, personas, audit_rows):
    patient, _, _ = patient_with_data(personas)
    api = api_for(client, personas.no_role)
    start = len(audit_rows())
    assert api.get(f"/fhir/Patient/{patient.public_id}").status_code == 403
    assert api.get("/fhir/Patient").status_code == 403
    assert [r.outcome for r in audit_rows()[start:]] == [Outcome.DENIED, Outcome.DENIED]


def test_the_audit_trail_is_for_the_privacy_officer_only(client, personas, audit_rows):
    patient_with_data(personas)
    clinician = api_for(client, personas.clinician)
    start = len(audit_rows())
    assert clinician.get("/fhir/AuditEvent").status_code == 403
    assert clinician.get("/fhir/AuditEvent/1").status_code == 403
    assert audit_rows()[start].outcome == Outcome.DENIED
    officer = api_for(client, personas.privacy_officer)
    assert officer.get("/fhir/AuditEvent").status_code == 200
    # The privacy officer reads demographics but not the clinical record.
    assert officer.get("/fhir/Condition").status_code == 403
