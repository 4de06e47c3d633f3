"""The final codes of an abstract are FHIR encounter-diagnosis Conditions: finalising
keeps them as clinical entries (one per code, source "RecordRoom coding: final
abstract"), so the FHIR Condition search by encounter and the read return them; a
rebill versions a code whose POA changed and marks a dropped one entered in error; the
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
ICD = "http://hl7.org/fhir/sid/icd-10-cm"


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


def test_the_encounter_points_to_the_kept_conditions_not_contained_copies(
    client,
    personas,
    abstract,  # noqa: F811
):
    abstract = coded(abstract, personas.coder, ("I5021", "Y"), ("E119", "N"))
    abstracts.do_finalise_abstract(abstract, acting_user=personas.coder)
    ids = {e.code: str(e.public_id) for e in projected(abstract.encounter)}
    api = api_for(client, personas.clinician, "user/Encounter.read")
    served = body(api.get(f"/fhir/Encounter/{abstract.encounter.public_id}"))
    billing = [d for d in served["diagnosis"] if d["use"]["coding"][0]["code"] == "billing"]
    assert [(d["rank"], d["condition"]["reference"]) for d in billing] == [
        (1, f"Condition/{ids['I50.21']}"),
        (2, f"Condition/{ids['E11.9']}"),
    ]
    assert not any(c.get("resourceType") == "Condition" for c in served.get("contained", []))


def test_a_coded_condition_changes_only_through_its_abstract(
    client,
    personas,
    abstract,  # noqa: F811
    audit_rows,
):
    from django.core.exceptions import ValidationError

    from audit.models import Outcome
    from clinical.actions import do_mark_clinical_entry_in_error, do_update_clinical_entry

    abstract = coded(abstract, personas.coder, ("I5021", "Y"))
    abstracts.do_finalise_abstract(abstract, acting_user=personas.coder)
    entry = projected(abstract.encounter).get()
    changed = {**entry.resource, "code": {"coding": [{"system": ICD, "code": "J18.9"}]}}
    with pytest.raises(ValidationError, match="reopens the abstract"):
        do_update_clinical_entry(
            entry, resource=changed, reason="wrong code", acting_user=personas.clinician
        )
    with pytest.raises(ValidationError, match="reopens the abstract"):
        do_mark_clinical_entry_in_error(
            entry, reason="wrong code", acting_user=personas.administrator
        )
    refused = audit_rows(outcome=Outcome.DENIED)
    assert len(refused) == 2 and {r.object_id for r in refused} == {str(entry.public_id)}
    api = api_for(client, personas.clinician, "user/Condition.read user/Condition.write")
    answer = api.put(f"/fhir/Condition/{entry.public_id}", {**changed, "id": str(entry.public_id)})
    assert 400 <= answer.status_code < 500
    assert body(answer)["resourceType"] == "OperationOutcome"
    entry.refresh_from_db()
    assert (entry.code, entry.version) == ("I50.21", 1)


def test_the_chart_and_the_coders_suggestions_leave_the_coded_conditions_out(
    personas,
    abstract,  # noqa: F811
):
    from clinical.access import clinical_for_chart, clinical_for_encounter
    from coding.abstract_access import _suggestions

    abstract = coded(abstract, personas.coder, ("I5021", "Y"), ("E119", "N"))
    abstracts.do_finalise_abstract(abstract, acting_user=personas.coder)
    assert projected(abstract.encounter).count() == 2
    for groups in (
        clinical_for_chart(personas.clinician, abstract.patient),
        clinical_for_encounter(personas.clinician, abstract.encounter),
    ):
        assert not [e for g in groups for e in g.entries if e.source == CODED_SOURCE]
    assert _suggestions(abstract.encounter, coded=set()) == []


def test_a_code_given_twice_is_projected_once(personas, abstract):  # noqa: F811
    from clinical.actions import project_coded_diagnoses
    from coding.export import condition_resources

    abstract = coded(abstract, personas.coder, ("I5021", "Y"), ("E119", "N"))
    abstracts.do_finalise_abstract(abstract, acting_user=personas.coder)
    twice = condition_resources(abstract.encounter)
    twice.append(dict(twice[0]))
    project_coded_diagnoses(
        abstract.encounter, twice, acting_user=personas.coder, reason="finalised (rebill)"
    )
    live = projected(abstract.encounter).filter(entered_in_error=False)
    assert sorted(live.values_list("code", flat=True)) == ["E11.9", "I50.21"]


def test_abstracts_finalised_before_get_their_conditions_from_the_upgrade_command(
    personas,
    abstract,  # noqa: F811
    audit_rows,
):
    from io import StringIO

    from django.core.management import call_command

    abstract = coded(abstract, personas.coder, ("I5021", "Y"), ("E119", "N"))
    abstracts.do_finalise_abstract(abstract, acting_user=personas.coder)
    # As an abstract finalised before the Conditions were kept: none exist.
    ClinicalEntry.objects.filter(source=CODED_SOURCE).update(source="gone")
    out = StringIO()
    call_command("coding_conditions", stdout=out)
    assert "1 encounter(s)" in out.getvalue()
    assert sorted(projected(abstract.encounter).values_list("code", flat=True)) == [
        "E11.9",
        "I50.21",
    ]
    made = [r for r in audit_rows() if r.object_type == "clinical_entry" and r.actor_id is None]
    assert len(made) == 2
    call_command("coding_conditions", stdout=out)  # again: nothing to do
    assert "0 encounter(s)" in out.getvalue()
    assert projected(abstract.encounter).count() == 2


def test_the_encounter_page_lists_the_final_coded_diagnoses(
    client,
    personas,
    abstract,  # noqa: F811
):
    from django.urls import reverse

    from recordroom.testing import sign_in

    url = reverse("encounters:detail", args=[abstract.encounter.public_id])
    sign_in(client, personas.clinician)
    assert "Final coded diagnoses" not in client.get(url).content.decode()
    abstract = coded(abstract, personas.coder, ("I5021", "Y"), ("E119", "N"))
    abstracts.do_finalise_abstract(abstract, acting_user=personas.coder)
    page = client.get(url).content.decode()
    section = page[page.index("Final coded diagnoses") :]
    assert "I50.21" in section and "E11.9" in section
    assert "Acute systolic (congestive) heart failure" in section
