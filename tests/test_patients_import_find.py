"""The import's patient look-up (``patients.imports.find_patients``): the sender's
identifiers name the person — a plain identifier from the same issuer, or an SSN with the
same date of birth — tried in the order sent; a merged record gives its survivor; many
people are looked up with a few queries, with the answers one look-up each would give."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from patients.actions import IdentifierData
from patients.imports import find_patient, find_patients
from patients.models import Patient
from recordroom.testing import patient_data, register_patient

pytestmark = pytest.mark.django_db

BORN = dt.date(1968, 4, 12)


def _member(value: str, issuer: str = "urn:payer") -> IdentifierData:
    return IdentifierData(kind="MB", value=value, issuer=issuer)


def _ssn(value: str) -> IdentifierData:
    return IdentifierData(kind="SS", value=value)


@pytest.fixture
def people(personas):
    ada = register_patient(personas, identifiers=[_member("M-1"), _ssn("123-45-6789")])
    bea = register_patient(
        personas, given="Bea", identifiers=[_member("M-2"), _ssn("487-65-4321")], birth_date=BORN
    )
    cy = register_patient(personas, given="Cy", identifiers=[_member("M-3")])
    # Cy's record was merged into Bea's.
    Patient.objects.filter(pk=cy.pk).update(merged_into=bea)
    return ada, bea, cy


def test_each_person_is_found_as_one_look_up_would_find_them(people):
    ada, bea, _ = people
    asked = [
        patient_data(identifiers=[_member("M-1")]),  # plain identifier
        patient_data(identifiers=[_member("M-1", issuer="urn:other")]),  # other issuer
        patient_data(identifiers=[_ssn("487-65-4321")], birth_date=BORN),  # SSN + DOB
        patient_data(identifiers=[_ssn("487-65-4321")], birth_date=dt.date(1970, 1, 1)),
        patient_data(identifiers=[_member("M-3")]),  # merged: the survivor
        patient_data(identifiers=[_member("nobody"), _member("M-2")]),  # the second one
        patient_data(identifiers=[_member("M-1"), _member("M-2")]),  # the first one wins
        patient_data(identifiers=[]),
    ]
    expected = [ada, None, bea, None, bea, bea, ada, None]
    assert find_patients(asked) == expected
    assert [find_patient(data) for data in asked] == expected


def test_many_people_take_a_few_queries(people):
    asked = [
        patient_data(identifiers=[_member(f"M-{i}"), _ssn(f"555-00-{i:04d}")]) for i in range(60)
    ]
    with CaptureQueriesContext(connection) as queries:
        found = find_patients(asked)
    assert sum(p is not None for p in found) == 3  # M-1, M-2 and M-3 (merged into Bea)
    assert len(queries) <= 4  # member ids, SSNs, the merged record's survivor
