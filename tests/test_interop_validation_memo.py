"""The validation memo (interop/validation_memo.py) changes how fast resources are
validated, never what is refused or why."""

import copy

import pytest
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from interop import validation_memo
from interop.importer import validate_resource

GOOD = {
    "resourceType": "Observation",
    "id": "o1",
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
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2024-01-01T10:00:00Z",
    "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org"},
}


def _bad_variants():
    wrong_code = copy.deepcopy(GOOD)  # a code with a space inside the shared CodeableConcept
    wrong_code["code"]["coding"][0]["code"] = " 8867-4"
    extra = copy.deepcopy(GOOD)  # an element the model does not have, deep inside
    extra["valueQuantity"]["colour"] = "red"
    wrong_type = copy.deepcopy(GOOD)
    wrong_type["subject"] = {"reference": 12}
    null_item = copy.deepcopy(GOOD)
    null_item["category"] = [None]
    return [wrong_code, extra, wrong_type, null_item]


def _issues_without_memo(resource):
    validation_memo.forget()
    original = validation_memo._original
    from fhir_core.types import FhirBase

    FhirBase.fhir_model_validator = classmethod(original)
    try:
        return [i.diagnostics for i in validate_resource(resource, None, False)]
    finally:
        validation_memo._original = None
        validation_memo.install()


def test_it_is_installed_when_django_starts():
    assert validation_memo.installed()


@pytest.mark.parametrize("number", range(4))
def test_a_bad_element_is_refused_the_same_with_a_warm_memo(number):
    bad = _bad_variants()[number]
    expected = _issues_without_memo(bad)
    assert expected  # it is refused at all
    # The good resource first: its elements are in the memo when the bad one comes.
    assert validate_resource(copy.deepcopy(GOOD), None, False) == []
    for _ in range(2):  # a failing element is never kept: refused again, the same way
        assert [i.diagnostics for i in validate_resource(bad, None, False)] == expected


def test_the_same_elements_are_validated_once():
    validation_memo.forget()
    Observation.model_validate(copy.deepcopy(GOOD))
    kept = len(validation_memo._kept)
    assert kept > 3
    second = copy.deepcopy(GOOD)
    second["id"] = "o2"
    second["effectiveDateTime"] = "2024-01-02T10:00:00Z"
    Observation.model_validate(second)
    assert len(validation_memo._kept) == kept  # nothing new: every element came back


def test_values_that_are_not_plain_json_are_validated_as_they_are():
    odd = copy.deepcopy(GOOD)
    odd["valueQuantity"]["value"] = float("nan")
    with pytest.raises(ValidationError):
        Observation.model_validate(odd)
    odd["valueQuantity"]["value"] = None  # NaN must not have been kept under "null"
    Observation.model_validate(odd)
