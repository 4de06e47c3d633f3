"""Code look-up: prefixes, words in any order, stems, typos, hostile input, the
screens' permission (refusal audited) and that they show no patient data."""

import pytest
from django.urls import reverse

from audit.models import Outcome
from coding import lookup
from coding.models import CodeSystem
from coding.testing import load_codes_for_tests
from recordroom.testing import sign_in

CODES = ("E11.9", "E11.22", "E10.9", "I50.21", "S72.001A", "S72.002A", "R73.03")


@pytest.fixture
def some_codes(db):
    return load_codes_for_tests(*CODES)


def shown(result):
    return [h.display for h in result.hits]


def test_stem():
    assert lookup.stem("fractures") == lookup.stem("fracture") == lookup.stem("fractured")
    assert lookup.stem("diabetes") == lookup.stem("diabete")
    assert lookup.stem("bypass") == "bypass"


def test_distance_is_bounded():
    assert lookup.distance("diabet", "daibet") == 1
    assert lookup.distance("heart", "hearts") == 1
    assert lookup.distance("kidney", "liver", 2) == 3


def test_prefix_in_any_form(some_codes):
    for typed in ("e11", "E11", " e11 "):
        result = lookup.search(typed)
        assert result.mode == "code"
        assert shown(result)[0] == "E11"  # the exact code first, then billable codes
        assert "E11.9" in shown(result)
    assert shown(lookup.search("e11.9")) == ["E11.9"]


def test_words_any_order_billable_first(some_codes):
    a = shown(lookup.search("diabetes type 2 kidney"))
    b = shown(lookup.search("kidney diabetes 2 type"))
    assert a == b and "E11.22" in a
    result = lookup.search("diabetes")
    billable = [h.code.billable for h in result.hits]
    assert billable == sorted(billable, reverse=True)


def test_typo_tolerance(some_codes):
    result = lookup.search("daibetes")
    assert "daibetes" in result.corrected
    assert "E11.9" in shown(result)
    assert "I50.21" in shown(lookup.search("systolc heart failure"))


def test_hierarchy_and_notes(some_codes):
    hit = lookup.search("E11.9").hits[0]
    assert hit.ancestors[0][0] == "E11"
    assert any(code == "E08-E13" for code, _ in hit.ancestors)
    assert hit.notes.get("excludes1_inherited")
    fracture = lookup.search("S72.001A").hits[0]
    assert "A" in fracture.notes["seventh_characters"]


def test_unknown_code_and_empty(some_codes):
    assert lookup.search("Q99.9").hits == []
    assert lookup.search("").mode == ""
    assert lookup.search("zzzzqqq").message


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "%",
        "_",
        "E1%",
        "\x00diabetes",
        "a" * 5000,
        "🙂 diabetes",
        "diabetes; DROP TABLE coding_code;",
        "\\",
    ],
)
def test_hostile_strings(some_codes, hostile, client, personas):
    result = lookup.search(hostile)
    assert len(result.hits) <= lookup.DEFAULT_LIMIT
    assert lookup.search("E11.9").hits  # the table is still there
    sign_in(client, personas.coder)
    response = client.get(reverse("coding:lookup_results"), {"q": hostile})
    assert response.status_code == 200
    assert b"<script>alert" not in response.content


def test_page_and_fragment(some_codes, client, personas):
    sign_in(client, personas.coder)
    page = client.get(reverse("coding:lookup"), {"q": "e119"})
    assert page.status_code == 200
    assert b"E11.9" in page.content and b"hx-get" in page.content
    fragment = client.get(reverse("coding:lookup_results"), {"q": "diabetes"})
    assert b"<html" not in fragment.content and b"E11.9" in fragment.content
    data = client.get(reverse("coding:lookup_results"), {"q": "e11", "format": "json"}).json()
    assert data["mode"] == "code"
    assert data["results"][0]["display"] == "E11"
    pcs = client.get(reverse("coding:lookup_results"), {"q": "x", "system": "nope"})
    assert pcs.status_code == 200


def test_lookup_needs_permission_and_refusal_is_audited(some_codes, client, personas, audit_rows):
    from accounts.access import has_permission

    lacking = [
        p
        for p in (personas.technician, personas.roi_specialist, personas.patient)
        if not has_permission(p, "coding.look_up_codes")
    ]
    assert lacking
    sign_in(client, lacking[0])
    for name in ("coding:lookup", "coding:lookup_results"):
        response = client.get(reverse(name), {"q": "diabetes"})
        assert response.status_code == 403
    denied = audit_rows(outcome=Outcome.DENIED, object_type="coding.code")
    assert len(denied) == 2


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(reverse("coding:lookup"))
    assert response.status_code == 302


def test_no_patient_data_on_the_page(some_codes, client, personas):
    from recordroom.testing import register_patient

    patient = register_patient(personas)
    sign_in(client, personas.coder)
    content = client.get(reverse("coding:lookup"), {"q": "diabetes"}).content.decode()
    assert patient.family_name not in content


def test_pcs_lookup(db):
    load_codes_for_tests("0DTJ4ZZ", "0DTJ0ZZ", system=CodeSystem.ICD10PCS)
    assert shown(lookup.search("0DTJ", system=CodeSystem.ICD10PCS))[:2] == ["0DTJ0ZZ", "0DTJ4ZZ"]
    assert "0DTJ4ZZ" in shown(
        lookup.search("appendix resection percutaneous", system=CodeSystem.ICD10PCS)
    )


def test_stem_joins_word_forms():
    assert lookup.stem("hypertension") == lookup.stem("hypertensive")
    assert lookup.stem("diabetes") == lookup.stem("diabetic")
    assert lookup.stem("infections") == lookup.stem("infected")
    assert lookup.stem("renal") == "renal"  # never fewer than 4 letters left
    assert lookup.stem("1") == "1"


@pytest.fixture
def more_codes(db):
    return load_codes_for_tests(
        "C50.912", "S72.001A", "J18.9", "B59", "I12.9", "E11.9", "E11.65", "N18.5"
    )


def test_synonyms_prefixes_and_derived_words(more_codes):
    assert "C50.912" in shown(lookup.search("breast cancer left"))
    assert "S72.001A" in shown(lookup.search("fract femur right"))  # not only the last word
    assert "I12.9" in shown(lookup.search("hypertension kidney"))  # "Hypertensive ..."
    assert "N18.5" in shown(lookup.search("renal chronic stage 5"))  # kidney ↔ renal


def test_title_matches_before_inclusion_terms(more_codes):
    found = shown(lookup.search("pneumonia"))
    # B59 "Pneumocystosis" is found by its inclusion term "Pneumonia due to ..." and
    # has the shorter title, but J18.9 has the word in its title.
    assert found.index("J18.9") < found.index("B59")


def test_unknown_word_is_ignored_and_said(more_codes):
    result = lookup.search("xyzzyq diabetes")
    assert result.ignored == ["xyzzyq"] and "E11.9" in shown(result)
    assert lookup.search("xyzzyq qqqzzz").message == "No code has these words."


def test_billable_only_and_total(more_codes):
    every = lookup.search("diabetes")
    billable = lookup.search("diabetes", billable_only=True)
    assert any(not h.code.billable for h in every.hits)
    assert billable.hits and all(h.code.billable for h in billable.hits)
    assert every.total == len(every.hits) and billable.total < every.total
    assert lookup.search("diabetes", limit=1).total == every.total


def test_index_follows_a_new_load(db, tmp_path):
    from coding import codesets

    assert lookup.search("licensed widget", system=CodeSystem.CPT).hits == []
    path = tmp_path / "cpt_2026.txt"
    path.write_text("code\tdescriptor\n99213\tLicensed widget text\n")
    codesets.load_cpt(path, year=2026)  # no cache clearing: the index sees the release
    assert shown(lookup.search("licensed widget", system=CodeSystem.CPT)) == ["99213"]


def test_fragment_labels_the_notes(some_codes, client, personas):
    sign_in(client, personas.coder)
    page = client.get(reverse("coding:lookup_results"), {"q": "E11.9"}).content.decode()
    assert "Excludes1 (from a parent)" in page and "E08-E13" in page
    page = client.get(reverse("coding:lookup_results"), {"q": "S72.001A"}).content.decode()
    assert "7th characters" in page and "initial encounter" in page
