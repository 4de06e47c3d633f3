"""An import asks for the same few document types thousands of times: the types of a
batch are looked up once, and the answer is the same as looking each one up."""

import pytest

from documents.imports import OUTSIDE_RECORDS_LOINC, _doc_type
from documents.models import DocumentType

pytestmark = pytest.mark.django_db

DISCHARGE = {"type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]}}
UNKNOWN = {"type": {"coding": [{"system": "http://loinc.org", "code": "00000-0"}]}}


def test_a_known_type_is_looked_up_once_per_batch(django_assert_num_queries):
    known: dict = {}
    first = _doc_type(DISCHARGE, known)
    assert first == DocumentType.objects.get(loinc_code="18842-5")
    with django_assert_num_queries(0):
        assert _doc_type(DISCHARGE, known) == first


def test_an_unknown_code_is_filed_as_outside_records_every_time(django_assert_num_queries):
    known: dict = {}
    outside = DocumentType.objects.get(loinc_code=OUTSIDE_RECORDS_LOINC)
    assert _doc_type(UNKNOWN, known) == outside
    with django_assert_num_queries(0):
        assert _doc_type(UNKNOWN, known) == outside
    assert _doc_type(UNKNOWN) == outside  # without a batch's memory: looked up again
