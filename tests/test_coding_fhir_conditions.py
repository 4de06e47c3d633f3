"""The final codes of an abstract are FHIR encounter-diagnosis Conditions: finalising
keeps them as clinical entries (one per code, source "RecordRoom coding: final
abstract"), so the FHIR Condition search by encounter and the read return them; a
rebill versions a changed code and marks a dropped one entered in error; the
completion rule for a final diagnosis does not count them (they are the coder's, not
the clinician's documentation); nothing is projected before the abstract is final."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.condition import Condition

from audit.models import Action
from clinical.models import CODED_SOURCE, ClinicalEntry
from coding import abstracts
from completion.rules import build_context, final_diagnosis
from recordroom import clock
from tests.fhir_api_helpers import api_for, body
from tests.test_coding_abstract import abstract, coded, codes, encounter, frozen, patient  # noqa: F401

pytestmark = pytest.mark.django_db


def projected(encounter):  # noqa: F811
    return ClinicalEntry.objects.filter(encounter=encounter, source=CODED_SOURCE)


def search(client, personas, encounter):  # noqa: F811
    api = api_for(client, personas.clinician, "user/Condition.read")
    response = api.get("/fhir/Condition", {"encounter": str(encounter.public_id)})
    assert response.status_code == 200, response.content
    return [e["resource"] for e in body(response).get("entry", [])]


def test_nothing_is_projected_before_the_abstract_is_final(personas, abstract):  # noqa: F811
    coded(abstract, personas.coder, ("I5021", "Y"), ("E119", "Y"))
    assert not projected(abstract.encounter).exists()


def test_finalising_makes_the_final_codes_searchable_conditions(
    client,
    personas,
    abstract,  # noqa: F811
    audit_rows,
):
    abstract = coded(abstract, personas.coder, ("I5021", "Y"), ("E119", "N"))
    start = len(audit_rows())
    abstracts.do_finalise_abstract(abstract, acting_user=personas.coder)
    rows = list(projected(abstract.encounter).order_by("pk"))
    assert [(e.code, e.category, e.code_system) for e in rows] == [
        ("I50.21", "encounter-diagnosis", "http://hl7.org/fhir/sid/icd-10-cm"),
        ("E11.9", "encounter-diagnosis", "http://hl7.org/fhir/sid/icd-10-cm"),
    ]
    assert all(e.recorded_by == personas.coder for e in rows)
    created = [
        row
        for row in audit_rows()[start:]
        if row.action == Action.CREATE and row.object_type == "clinical_entry"
    ]
    assert len(created) == 2 and {r.actor_id for r in created} == {personas.coder.pk}

    found = search(client, personas, abstract.encounter)
    codes_found = {c["code"]["coding"][0]["code"] for c in found}
    assert codes_found == {"I50.21", "E11.9"}
    for resource in found:
        Condition.model_validate(resource)
        assert resource["encounter"]["reference"] == f"Encounter/{abstract.encounter.public_id}"
        assert resource["subject"]["reference"] == f"Patient/{abstract.patient.public_id}"
        assert resource["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
        assert resource["recordedDate"].startswith("2026-02-14")
    poa = {c["code"]["coding"][0]["code"]: c["extension"][0]["valueCoding"]["code"] for c in found}
    assert poa == {"I50.21": "Y", "E11.9": "N"}

    api = api_for(client, personas.clinician, "user/Condition.read")
    one = api.get(f"/fhir/Condition/{rows[0].public_id}")
    assert one.status_code == 200 and body(one)["code"]["coding"][0]["code"] == "I50.21"


def test_a_rebill_versions_changed_codes_and_retires_dropped_ones(
    client,
    personas,
    abstract,  # noqa: F811
):
    coder = personas.coder
    abstract = coded(abstract, coder, ("I5021", "Y"), ("E119", "Y"), ("N179", "N"))
    abstract = abstracts.do_finalise_abstract(abstract, acting_user=coder)
    before = {e.code: e.public_id for e in projected(abstract.encounter)}

    abstract = abstracts.do_reopen_abstract(abstract, acting_user=coder, reason="late result")
    # Still billed as before while the rebill is worked.
    assert {
        c["code"]["coding"][0]["code"] for c in search(client, personas, abstract.encounter)
    } == {
        "I50.21",
        "E11.9",
        "N17.9",
    }
    abstract = abstracts.do_set_poa(abstract, 2, "N", acting_user=coder)
    abstract = abstracts.do_remove_diagnosis(abstract, 3, acting_user=coder)
    abstracts.do_finalise_abstract(abstract, acting_user=coder)

    rows = {e.code: e for e in projected(abstract.encounter)}
    assert {code: e.public_id for code, e in rows.items()} == before  # same Conditions
    assert rows["I50.21"].version == 1  # unchanged
    assert (
        rows["E11.9"].version == 2
        and rows["E11.9"].resource["extension"][0]["valueCoding"]["code"] == "N"
    )
    dropped = rows["N17.9"]
    assert dropped.entered_in_error and dropped.version == 2
    assert dropped.resource["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert "no longer a final code" in dropped.versions.first().reason
    assert {
        c["code"]["coding"][0]["code"] for c in search(client, personas, abstract.encounter)
    } == {
        "I50.21",
        "E11.9",
    }


def test_the_coded_diagnoses_do_not_satisfy_the_final_diagnosis_rule(personas, abstract):  # noqa: F811
    from completion.models import CompletionRule, RuleKind

    abstract = coded(abstract, personas.coder, ("I5021", "Y"))
    abstracts.do_finalise_abstract(abstract, acting_user=personas.coder)
    assert projected(abstract.encounter).count() == 1
    rule = CompletionRule.objects.filter(kind=RuleKind.FINAL_DIAGNOSIS).first()
    assert rule is not None
    gaps = final_diagnosis(rule, build_context(abstract.encounter, clock.now()))
    assert len(gaps) == 1 and "Final diagnosis not recorded" in gaps[0].description
