"""The rows a FHIR search of patient-linked data may return (``api_access.openable_q``)
belong to exactly the patients ``api_access.openable_patients`` lists: an MRN at one of
the user's facilities, not merged away, restricted ones only with a relationship (or
for the keeper of the restricted list), only the token's patient for ``patient/``
scopes. Both forms (the subquery PostgreSQL plans, the probe of each row's patient
SQLite runs) are checked on whichever database the tests use, and both forms of the
probe's facility rule: a user at some of the facilities that hold MRNs (the patient's
MRNs at those facilities) and a user at every one of them (any MRN, the statement
re-checking that no MRN is elsewhere)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from clinical.models import ClinicalEntry
from documents.testing import treats
from interop import api_access
from patients.actions import do_set_restriction
from patients.models import IdentifierKind, Patient, PatientIdentifier
from patients.mrn import next_mrn
from recordroom import clock
from recordroom.testing import make_user
from tests.fhir_api_helpers import CONDITION, api_for, body, record
from tests.test_coding_queue import discharged

pytestmark = pytest.mark.django_db


def principal(user, patient=None):
    return SimpleNamespace(
        user=user, patient_compartment=lambda resource_type, mode="read": patient
    )


def add_mrn(patient, facility):
    PatientIdentifier.objects.create(
        patient=patient,
        kind=IdentifierKind.MRN,
        facility=facility,
        value=next_mrn(facility),
        created_at=clock.now(),
    )


@pytest.fixture
def population(personas):
    """Patients at the main facility, at the other one, at both; one restricted, one
    merged away; a Condition each."""
    from recordroom.testing import register_patient

    main = register_patient(personas, family="Ashgrove", given="Ada")
    other = register_patient(
        personas, family="Brackenridge", given="Bo", facility=personas.other_facility
    )
    both = register_patient(personas, family="Cinderfell", given="Cy")
    add_mrn(both, personas.other_facility)
    restricted = register_patient(personas, family="Duskmoor", given="Di")
    do_set_restriction(restricted, "vip", reason="board member", acting_user=personas.administrator)
    merged = register_patient(personas, family="Elderby", given="Ed")
    Patient.objects.filter(pk=merged.pk).update(merged_into=main)  # as a merge leaves it
    people = {
        "main": main,
        "other": other,
        "both": both,
        "restricted": restricted,
        "merged": merged,
    }
    for patient in people.values():
        record(patient, personas.technician, CONDITION)
    return people


def users(personas):
    at_both = make_user("bea.both", "him_technician")
    at_both.facilities.add(personas.facility, personas.other_facility)
    return {
        "technician (main)": personas.technician,
        "outsider (other)": personas.outsider,
        "technician (both)": at_both,
        "administrator (main, keeps the restricted list)": personas.administrator,
        "clinician (main)": personas.clinician,
    }


def openable(who, patient=None, resource_type="Condition") -> set[int]:
    return set(
        api_access.openable_patients(principal(who, patient), resource_type).values_list(
            "pk", flat=True
        )
    )


@pytest.fixture(params=[True, False], ids=["probe", "subquery"])
def probe(request):
    return request.param


def found(who, patient=None, resource_type="Condition", probe=None) -> set[int]:
    q = api_access.openable_q(principal(who, patient), resource_type, probe=probe)
    return set(ClinicalEntry.objects.filter(q).values_list("patient_id", flat=True))


def names(population, pks) -> set[str]:
    return {name for name, p in population.items() if p.pk in pks}


def test_the_rows_belong_to_exactly_the_openable_patients(personas, population, probe):
    treats(personas.clinician, population["restricted"], personas.facility, personas.technician)
    expected = {
        "technician (main)": {"main", "both"},
        "outsider (other)": {"other", "both"},
        "technician (both)": {"main", "other", "both"},
        "administrator (main, keeps the restricted list)": {"main", "both", "restricted"},
        "clinician (main)": {"main", "both", "restricted"},
    }
    for label, user in users(personas).items():
        assert names(population, found(user, probe=probe)) == expected[label], label
        assert found(user, probe=probe) == openable(user), label
        for patient in population.values():  # patient/ scopes: one patient at most
            assert found(user, patient, probe=probe) == openable(user, patient), (label, patient)
            assert found(user, patient, probe=probe) <= {patient.pk}


def test_a_user_of_no_facility_sees_nothing(personas, population, probe):
    nowhere = make_user("nell.nowhere", "him_technician")
    assert found(nowhere, probe=probe) == openable(nowhere) == set()


def test_a_patient_without_an_mrn_is_seen_by_no_one(personas, population, probe):
    PatientIdentifier.objects.filter(patient=population["main"], kind=IdentifierKind.MRN).update(
        kind=IdentifierKind.MEMBER_ID
    )
    for label, user in users(personas).items():
        assert population["main"].pk not in found(user, probe=probe), label
        assert found(user, probe=probe) == openable(user), label


def test_an_mrn_without_a_facility_counts_for_no_one(personas, population, probe):
    PatientIdentifier.objects.filter(patient=population["main"], kind=IdentifierKind.MRN).update(
        facility=None
    )
    for label, user in users(personas).items():
        assert population["main"].pk not in found(user, probe=probe), label
        assert found(user, probe=probe) == openable(user), label


def test_an_mrn_registered_elsewhere_meanwhile_hides_everything(personas):
    """A user at the only facility holding MRNs gets the probe for any MRN; when an MRN
    is registered at another facility between the check and the search, the statement
    returns nothing rather than that patient."""
    from recordroom.testing import register_patient

    patient = register_patient(personas, family="Ashgrove", given="Ada")
    record(patient, personas.technician, CONDITION)
    q = api_access.openable_q(principal(personas.technician), "Condition", probe=True)
    assert set(ClinicalEntry.objects.filter(q).values_list("patient_id", flat=True)) == {patient.pk}
    elsewhere = register_patient(
        personas, family="Brackenridge", given="Bo", facility=personas.other_facility
    )
    record(elsewhere, personas.technician, CONDITION)
    assert not ClinicalEntry.objects.filter(q).exists()
    # Asked again, the user is at one of two facilities holding MRNs: the probe by facility.
    fresh = api_access.openable_q(principal(personas.technician), "Condition", probe=True)
    assert set(ClinicalEntry.objects.filter(fresh).values_list("patient_id", flat=True)) == {
        patient.pk
    }


def ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {e["resource"]["subject"]["reference"] for e in body(response).get("entry", [])}


def refs(population, *keys) -> set[str]:
    return {f"Patient/{population[k].public_id}" for k in keys}


def test_searches_through_the_api(client, personas, population):
    for key in ("main", "other", "restricted", "merged"):
        facility = personas.other_facility if key == "other" else personas.facility
        discharged(personas, population[key], days_ago=2, facility=facility)
    technician = api_for(client, personas.technician)
    assert ids(technician.get("/fhir/Condition")) == refs(population, "main", "both")
    assert ids(technician.get("/fhir/Encounter")) == refs(population, "main")
    outsider = api_for(client, personas.outsider)
    assert ids(outsider.get("/fhir/Condition")) == refs(population, "other", "both")
    assert ids(outsider.get("/fhir/Encounter")) == refs(population, "other")
    at_both = users(personas)["technician (both)"]
    assert ids(api_for(client, at_both).get("/fhir/Condition")) == refs(
        population, "main", "other", "both"
    )
    # patient/ scope: its patient only, and only where the user may see them.
    scoped = api_for(client, personas.technician, "patient/*.read", patient=population["both"])
    assert ids(scoped.get("/fhir/Condition")) == refs(population, "both")
    outside = api_for(client, personas.technician, "patient/*.read", patient=population["other"])
    assert ids(outside.get("/fhir/Condition")) == set()
