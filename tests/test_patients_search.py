"""Patient search: by MRN, any identifier, partial or misspelt name, date of birth and
phone; ranked, paged, facility-scoped, restricted patients marked, every search audited
without what was typed."""

import datetime as dt

import pytest

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from patients.actions import (
    IdentifierData,
    NameData,
    TelecomData,
    do_set_restriction,
    mrn_of,
)
from patients.models import Restriction
from patients.search import PAGE_SIZE, ParsedQuery, parse_query, search_patients
from recordroom.testing import register_patient, sign_in

pytestmark = pytest.mark.django_db


def _register(personas, family, given, born, **overrides):
    overrides.setdefault("identifiers", [])
    overrides.setdefault("telecoms", [])
    overrides.setdefault("addresses", [])
    return register_patient(
        personas,
        name=NameData(family=family, given=given),
        birth_date=born,
        **overrides,
    )


@pytest.fixture
def population(personas):
    """A handful of synthetic people with names that resemble one another."""
    people = {
        "william": _register(
            personas,
            "Thistlewood",
            "William",
            dt.date(1971, 3, 14),
            identifiers=[IdentifierData(kind="SS", value="219-09-9999")],
            telecoms=[TelecomData(system="phone", value="413-555-0101", use="mobile")],
        ),
        "wilma": _register(personas, "Thistlewood", "Wilma", dt.date(1975, 8, 2)),
        "thistle": _register(personas, "Thistle", "Oren", dt.date(1990, 1, 1)),
        "margaret": _register(personas, "Brambleby", "Margaret", dt.date(1948, 11, 30)),
        "other": _register(personas, "Quenby", "Harold", dt.date(1960, 6, 6)),
    }
    people["elsewhere"] = _register(
        personas, "Thistlewood", "William", dt.date(1971, 3, 14), facility=personas.other_facility
    )
    return people


def _ids(page):
    return [r.public_id for r in page.results]


def _search(user, text="", **fields):
    return search_patients(user, parse_query(text, **fields))


def test_it_finds_a_patient_by_mrn(personas, population):
    mrn = mrn_of(population["margaret"])
    page = _search(personas.technician, mrn.lower())
    assert _ids(page) == [str(population["margaret"].public_id)]
    assert page.results[0].mrns == [mrn]
    assert "MRN" in page.results[0].reasons


def test_it_finds_a_patient_by_ssn_through_the_blind_index(personas, population):
    page = _search(personas.technician, "219-09-9999")
    assert _ids(page) == [str(population["william"].public_id)]
    assert page.results[0].reasons == ["SSN"]


def test_it_finds_a_patient_by_phone_in_any_format(personas, population):
    for typed in ["(413) 555-0101", "413.555.0101", "4135550101", "+1 413 555 0101"]:
        page = _search(personas.technician, typed)
        assert _ids(page) == [str(population["william"].public_id)], typed


def test_a_partial_name_finds_by_prefix_best_first(personas, population):
    page = _search(personas.technician, "thistle")
    ids = _ids(page)
    # The exact family name ranks above the two that only start with it.
    assert ids[0] == str(population["thistle"].public_id)
    assert set(ids) == {
        str(population[k].public_id) for k in ("william", "wilma", "thistle")
    }  # never the patient at the other facility


def test_family_comma_given_narrows(personas, population):
    page = _search(personas.technician, "thistlewood, wil")
    assert set(_ids(page)) == {
        str(population["william"].public_id),
        str(population["wilma"].public_id),
    }
    # A longer prefix ranks the exact one first (William still sounds alike).
    page = _search(personas.technician, "thistlewood, wilm")
    assert _ids(page)[0] == str(population["wilma"].public_id)


def test_a_misspelt_name_finds_by_sound(personas, population):
    page = _search(personas.technician, "Thistelwood Wiliam")
    assert _ids(page)[0] == str(population["william"].public_id)
    assert "family name sounds alike" in page.results[0].reasons


def test_a_nickname_finds_the_formal_name(personas, population):
    page = _search(personas.technician, "Peggy Brambleby")
    assert _ids(page) == [str(population["margaret"].public_id)]
    assert "given name is a nickname form" in page.results[0].reasons


def test_given_and_family_typed_in_either_order(personas, population):
    first = _ids(_search(personas.technician, "William Thistlewood"))
    second = _ids(_search(personas.technician, "Thistlewood William"))
    assert first[0] == second[0] == str(population["william"].public_id)


def test_name_and_birth_date_must_both_match(personas, population):
    page = _search(personas.technician, "thistlewood 1975-08-02")
    assert _ids(page) == [str(population["wilma"].public_id)]
    page = _search(personas.technician, "thistlewood 08/02/1975")
    assert _ids(page) == [str(population["wilma"].public_id)]


def test_a_birth_date_one_digit_off_still_finds_the_name(personas, population):
    page = _search(personas.technician, "thistlewood, wilma 1975-08-03")
    assert _ids(page) == [str(population["wilma"].public_id)]
    assert "date of birth one digit off" in page.results[0].reasons


def test_a_birth_date_alone(personas, population):
    page = _search(personas.technician, birth_date=dt.date(1948, 11, 30))
    assert _ids(page) == [str(population["margaret"].public_id)]


def test_a_previous_name_finds_the_patient(personas):
    patient = _register(
        personas,
        "Fairweather",
        "Juniper",
        dt.date(1980, 2, 2),
        other_names=[NameData(family="Oakhollow", given="Juniper", use="maiden")],
    )
    page = _search(personas.technician, "Oakhollow Juniper")
    assert _ids(page) == [str(patient.public_id)]
    assert "maiden name on file" in page.results[0].reasons


def test_results_show_mrn_name_birth_date_age_and_sex(personas, population):
    result = _search(personas.technician, "brambleby").results[0]
    assert result.display_name == "BRAMBLEBY, Margaret"
    assert result.birth_date == dt.date(1948, 11, 30)
    assert result.age >= 77
    assert result.sex == "Female"


def test_results_are_paged(personas):
    for day in range(1, PAGE_SIZE + 6):
        _register(personas, "Pagewright", "Ada", dt.date(2000, 1, 1) + dt.timedelta(days=day))
    first = _search(personas.technician, "pagewright")
    assert first.count == PAGE_SIZE + 5
    assert (first.page, first.pages, len(first.results)) == (1, 2, PAGE_SIZE)
    second = search_patients(personas.technician, parse_query("pagewright"), page=2)
    assert len(second.results) == 5
    assert not set(_ids(first)) & set(_ids(second))
    assert search_patients(personas.technician, parse_query("pagewright"), page=99).page == 2


def test_restricted_patients_are_marked_and_minimal_for_those_who_may_not_open_them(
    personas, population
):
    do_set_restriction(
        population["margaret"],
        Restriction.VIP,
        reason="public figure",
        acting_user=personas.privacy_officer,
    )
    result = _search(personas.technician, "brambleby").results[0]
    assert result.restricted and not result.may_open
    assert result.display_name and result.birth_date and result.mrns
    assert result.sex == "" and result.reasons == []
    # The people who keep the restricted list may open it, so they see the whole row.
    result = _search(personas.administrator, "brambleby").results[0]
    assert result.restricted and result.may_open and result.sex == "Female"


def test_merged_patients_are_not_listed(personas, population):
    from patients.models import Patient

    Patient.objects.filter(pk=population["other"].pk).update(merged_into=population["margaret"])
    assert _search(personas.technician, "quenby").results == []


def test_the_search_is_audited_without_what_was_typed(personas, population, audit_rows):
    page = _search(personas.technician, "thistlewood, wil 1971-03-14")
    (event,) = audit_rows(action=Action.SEARCH)
    assert event.outcome == Outcome.ALLOWED
    assert event.detail["fields"] == ["name", "birth_date"]
    assert event.detail["shown"] == _ids(page)
    text = str(event.detail) + event.reason + event.object_id
    for typed in ("thistlewood", "Thistlewood", "1971", "wil"):
        assert typed not in text


def test_an_empty_search_returns_nothing_and_is_not_audited(personas, audit_rows):
    page = search_patients(personas.technician, ParsedQuery())
    assert page.results == [] and page.count == 0
    assert not audit_rows(action=Action.SEARCH)


def test_a_role_without_demographics_is_refused_and_audited(personas, population, audit_rows):
    with pytest.raises(AccessDenied):
        _search(personas.patient, "thistlewood")
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.action == Action.SEARCH


def test_the_outsider_finds_only_their_facility(personas, population):
    page = _search(personas.outsider, "thistlewood william")
    assert _ids(page) == [str(population["elsewhere"].public_id)]
    assert _search(personas.outsider, mrn_of(population["margaret"])).results == []


@pytest.mark.parametrize(
    "typed, message",
    [
        ("smith 2024-02-30", "not a real date"),
        ("smith 2999-01-01", "cannot be in the future"),
        ("1970-01-01 1971-01-01", "Two different dates"),
    ],
)
def test_impossible_input_is_refused_with_a_clear_message(typed, message):
    from patients.search import QueryError

    with pytest.raises(QueryError, match=message):
        parse_query(typed)


# --- the screen ------------------------------------------------------------------------------


def test_the_search_page_requires_login(client, db):
    response = client.get("/patients/?q=smith")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_search_page_lists_results(client, personas, population, audit_rows):
    sign_in(client, personas.technician)
    response = client.get("/patients/", {"q": "thistlewood"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "THISTLEWOOD, William" in page
    assert mrn_of(population["william"]) in page
    assert f"/patients/{population['william'].public_id}/" in page
    assert "1971-03-14" in page
    assert str(population["elsewhere"].public_id) not in page
    assert audit_rows(action=Action.SEARCH)


def test_the_search_page_marks_restricted_patients(client, personas, population):
    do_set_restriction(
        population["margaret"], Restriction.VIP, reason="vip", acting_user=personas.administrator
    )
    sign_in(client, personas.technician)
    page = client.get("/patients/", {"q": "brambleby"}).content.decode()
    assert "Restricted" in page
    assert "BRAMBLEBY, Margaret" in page
    assert "Female" not in page
    assert f"/patients/{population['margaret'].public_id}/" in page


def test_htmx_gets_only_the_results_fragment(client, personas, population):
    sign_in(client, personas.technician)
    response = client.get("/patients/", {"q": "brambleby"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b"BRAMBLEBY" in response.content


def test_a_bad_date_on_the_page_is_a_400_with_the_message(client, personas):
    sign_in(client, personas.technician)
    response = client.get("/patients/", {"q": "smith 2024-02-30"})
    assert response.status_code == 400
    assert b"not a real date" in response.content


def test_html_typed_into_the_search_is_escaped(client, personas, population):
    sign_in(client, personas.technician)
    response = client.get("/patients/", {"q": "<script>alert(1)</script>"})
    assert b"<script>alert(1)" not in response.content


def test_the_search_page_denies_a_patient_and_audits(client, personas, audit_rows):
    sign_in(client, personas.patient)
    response = client.get("/patients/", {"q": "smith"})
    assert response.status_code == 403
    assert audit_rows(outcome=Outcome.DENIED, action=Action.SEARCH)


def test_the_search_page_hides_other_facilities_from_the_outsider(client, personas, population):
    sign_in(client, personas.outsider)
    page = client.get("/patients/", {"q": "brambleby"}).content.decode()
    assert "BRAMBLEBY" not in page
    assert "No patient at your facilities matches" in page


def test_the_search_page_query_count_does_not_grow_with_the_results(client, personas):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sign_in(client, personas.technician)

    def queries_for(count):
        for day in range(count):
            _register(personas, f"Countwell{'x' * count}", "Ivy", dt.date(1990, 1, 1 + day))
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/patients/", {"q": f"countwell{'x' * count}"})
        assert response.status_code == 200
        return len(captured.captured_queries)

    assert queries_for(2) == queries_for(20)


def test_search_visibility_is_the_patients_visible_to_rule(personas, population):
    from patients.access import patients_visible_to
    from patients.models import Patient
    from patients.search import visible_patients

    Patient.objects.filter(pk=population["other"].pk).update(merged_into=population["margaret"])
    for user in (personas.technician, personas.outsider, personas.no_role):
        assert set(visible_patients(user)) == set(patients_visible_to(user))


def test_a_typing_slip_that_changes_the_soundex_still_finds_the_name(personas, population):
    # "Bambleby" (B514) for "Brambleby" (B651): the given name is exact, the family name
    # is one dropped letter away.
    page = _search(personas.technician, "Margaret Bambleby")
    assert _ids(page) == [str(population["margaret"].public_id)]
    assert "family name differs by a typing slip" in page.results[0].reasons


def test_a_live_search_with_a_bad_date_shows_the_message_in_the_fragment(client, personas):
    sign_in(client, personas.technician)
    response = client.get("/patients/", {"q": "smith 2024-02-30"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b"not a real date" in response.content
