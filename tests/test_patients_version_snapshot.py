"""A registration's first version is written from the rows it has just written (not
read back): it must say exactly what reading them back says."""

import pytest

from patients.actions import ContactData, IdentifierData, NameData, patient_snapshot
from patients.models import PatientVersion
from recordroom.testing import register_patient

pytestmark = pytest.mark.django_db


def test_the_first_version_is_what_the_database_holds(personas):
    patient = register_patient(
        personas,
        other_names=[NameData(family="Featherquill", given="Marigold")],
        identifiers=[
            IdentifierData(kind="SS", value="123-45-6789"),
            IdentifierData(kind="DL", value="S1234567", issuer="MA"),
        ],
        contacts=[ContactData(kind="emergency", name="Rowan Quillfeather", relationship="spouse")],
    )
    version = PatientVersion.objects.get(patient=patient, number=1)
    read_back = patient_snapshot(patient)
    assert version.snapshot == read_back
    assert [i["kind"] for i in read_back["identifiers"]] == ["SS", "DL", "MR"]
    assert read_back["identifiers"][0]["value"] == "***-**-6789"  # masked, never the number
    assert len(read_back["names"]) == 2 and len(read_back["contacts"]) == 1
