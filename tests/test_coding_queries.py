"""Physician queries: compliant and non-leading (clinical indicators, multiple choice
that always ends with "Other (please specify)" and "Clinically undetermined", nothing
about the DRG or payment); asking puts the abstract on hold; the clinician finds it on
their work queue, answers, and the answer is a signed document in the legal record that
releases the hold."""

from __future__ import annotations

import uuid

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.http import Http404

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from coding import queries
from coding.models import Abstract, AbstractStatus, AbstractVersion, PhysicianQuery, QueryStatus
from documents.models import Document, DocumentStatus
from recordroom.testing import PASSWORD, make_user, register_patient, sign_in
from tests.test_coding_queue import NOW, discharged, make_abstract

pytestmark = pytest.mark.django_db

INDICATORS = "Sodium 128 mmol/L on admission and 131 on day 2; given 0.9% saline."
QUESTION = "Based on these indicators, can you clarify the diagnosis being treated?"
OPTIONS = ["Hyponatremia", "Dehydration without hyponatremia", "Laboratory finding only"]


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def encounter(personas, patient):
    return discharged(personas, patient, days_ago=3)


def ask(personas, encounter, **overrides):
    kwargs = {"clinical_indicators": INDICATORS, "question": QUESTION, "options": OPTIONS}
    kwargs.update(overrides)
    return queries.do_open_query(personas.coder, encounter.public_id, **kwargs)


# --- asking ---------------------------------------------------------------------------------


def test_asking_adds_the_fixed_options_and_puts_the_abstract_on_hold(
    personas, encounter, audit_rows
):
    make_abstract(encounter, coder=personas.coder)
    with time_machine.travel(NOW, tick=False):
        query = ask(personas, encounter)
    assert query.options == [*OPTIONS, queries.OTHER, queries.UNDETERMINED]
    assert query.clinician == personas.clinician  # the attending by default
    assert query.status == QueryStatus.OPEN and query.asked_at == NOW
    abstract = Abstract.objects.get(encounter=encounter)
    assert abstract.status == AbstractStatus.ON_HOLD
    held = AbstractVersion.objects.filter(abstract=abstract).order_by("-number").first()
    assert held.status == AbstractStatus.ON_HOLD and held.changed_by == personas.coder
    assert held.reason.startswith("on hold")
    (row,) = audit_rows(object_type="coding.query", action=Action.CREATE)
    assert row.patient_id == encounter.patient.public_id
    assert QUESTION not in str(row.detail)  # ids and counts only


def test_asking_opens_an_abstract_when_there_is_none(personas, encounter):
    ask(personas, encounter)
    assert Abstract.objects.get(encounter=encounter).status == AbstractStatus.ON_HOLD


def test_given_fixed_options_and_duplicates_are_not_repeated(personas, encounter):
    query = ask(
        personas,
        encounter,
        options=["Hyponatremia", " hyponatremia ", "", "Clinically undetermined", "Sepsis"],
    )
    assert query.options == ["Hyponatremia", "Sepsis", queries.OTHER, queries.UNDETERMINED]


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("options", {"options": ["Hyponatremia"]}),
        ("options", {"options": ["Hyponatremia", queries.OTHER, queries.UNDETERMINED]}),
        ("options", {"options": [f"Option {n}" for n in range(9)]}),
        ("options", {"options": ["Sepsis (an MCC)", "Bacteremia"]}),
        ("question", {"question": "Please document hyponatremia."}),
        ("question", {"question": "Would adding hyponatremia raise the DRG?"}),
        ("question", {"question": "Could this affect reimbursement?"}),
        ("question", {"question": "   "}),
        ("clinical_indicators", {"clinical_indicators": ""}),
        ("clinical_indicators", {"clinical_indicators": "Payment depends on it."}),
    ],
)
def test_a_leading_or_incomplete_query_is_refused_and_changes_nothing(
    personas, encounter, field, overrides
):
    with pytest.raises(ValidationError) as caught:
        ask(personas, encounter, **overrides)
    assert field in caught.value.message_dict
    assert not PhysicianQuery.objects.exists()
    assert not Abstract.objects.exists()


def test_a_clinician_who_cannot_answer_is_refused(personas, encounter):
    with pytest.raises(ValidationError, match="cannot answer"):
        ask(personas, encounter, clinician=personas.technician)
    outsider_doc = make_user("dr.away", "clinician")
    outsider_doc.facilities.add(personas.other_facility)
    with pytest.raises(ValidationError, match="cannot answer"):
        ask(personas, encounter, clinician=outsider_doc)


def test_another_clinician_of_the_facility_may_be_asked(personas, encounter):
    query = ask(personas, encounter, clinician=personas.other_clinician)
    assert query.clinician == personas.other_clinician


def test_a_final_abstract_is_not_queried(personas, encounter):
    make_abstract(
        encounter, status=AbstractStatus.FINAL, finalised_by=personas.coder, finalised_at=NOW
    )
    with pytest.raises(Http404):
        ask(personas, encounter)


def test_asking_refuses_a_clinician_and_audits_it(personas, encounter, audit_rows):
    with pytest.raises(AccessDenied):
        queries.do_open_query(
            personas.clinician,
            encounter.public_id,
            clinical_indicators=INDICATORS,
            question=QUESTION,
            options=OPTIONS,
        )
    assert audit_rows(object_type="coding.query")[0].outcome == Outcome.DENIED


def test_asking_about_an_unknown_encounter_is_an_audited_404(personas, audit_rows):
    with pytest.raises(Http404):
        queries.do_open_query(
            personas.coder,
            uuid.uuid4(),
            clinical_indicators=INDICATORS,
            question=QUESTION,
            options=OPTIONS,
        )
    assert audit_rows(object_type="coding.query")[0].outcome == Outcome.DENIED


# --- answering --------------------------------------------------------------------------------


def test_the_answer_is_a_signed_document_and_releases_the_hold(personas, encounter, audit_rows):
    make_abstract(encounter, coder=personas.coder)
    query = ask(personas, encounter)
    rows = queries.queries_for_clinician(personas.clinician)
    assert [r.query.pk for r in rows] == [query.pk]
    answered = queries.do_answer_query(
        personas.clinician, query.public_id, answer="Hyponatremia", password=PASSWORD
    )
    assert answered.status == QueryStatus.ANSWERED and answered.answer == "Hyponatremia"
    document = Document.objects.get(pk=answered.answer_document_id)
    assert document.status == DocumentStatus.FINAL and document.signed_at is not None
    assert document.encounter_id == encounter.pk and document.author == personas.clinician
    assert document.doc_type.loinc_code == "11506-3"
    body = document.current_version.body
    assert QUESTION in body and INDICATORS in body and "Answer: Hyponatremia" in body
    assert Abstract.objects.get(encounter=encounter).status == AbstractStatus.IN_PROGRESS
    assert queries.queries_for_clinician(personas.clinician) == []
    update = audit_rows(object_type="coding.query", action=Action.UPDATE)[-1]
    assert update.detail["released"] is True
    assert update.detail["document"] == str(document.public_id)


def test_other_needs_its_text(personas, encounter):
    query = ask(personas, encounter)
    with pytest.raises(ValidationError) as caught:
        queries.do_answer_query(
            personas.clinician, query.public_id, answer=queries.OTHER, password=PASSWORD
        )
    assert "answer_text" in caught.value.message_dict
    done = queries.do_answer_query(
        personas.clinician,
        query.public_id,
        answer=queries.OTHER,
        answer_text="Syndrome of inappropriate ADH",
        password=PASSWORD,
    )
    assert "Specified: Syndrome of inappropriate ADH" in done.answer_document.current_version.body
    # Nothing begun before the query: the abstract goes back to "not started".
    assert Abstract.objects.get(encounter=encounter).status == AbstractStatus.NOT_STARTED


def test_an_answer_not_among_the_options_is_refused(personas, encounter):
    query = ask(personas, encounter)
    with pytest.raises(ValidationError):
        queries.do_answer_query(
            personas.clinician, query.public_id, answer="Sepsis", password=PASSWORD
        )
    assert not Document.objects.filter(title="Response to coding query").exists()


def test_a_wrong_password_files_nothing_and_is_audited(personas, encounter, audit_rows):
    query = ask(personas, encounter)
    with pytest.raises(ValidationError) as caught:
        queries.do_answer_query(
            personas.clinician, query.public_id, answer="Hyponatremia", password="wrong"
        )
    assert "password" in caught.value.message_dict
    assert not Document.objects.filter(title="Response to coding query").exists()
    query.refresh_from_db()
    assert query.status == QueryStatus.OPEN
    denied = audit_rows(object_type="coding.query", outcome=Outcome.DENIED)
    assert denied and denied[-1].action == Action.SIGN


def test_the_hold_stays_while_another_query_is_open(personas, encounter):
    first = ask(personas, encounter)
    ask(personas, encounter, clinician=personas.other_clinician)
    queries.do_answer_query(
        personas.clinician, first.public_id, answer=queries.UNDETERMINED, password=PASSWORD
    )
    assert Abstract.objects.get(encounter=encounter).status == AbstractStatus.ON_HOLD


def test_only_the_clinician_asked_may_answer(personas, encounter, audit_rows):
    query = ask(personas, encounter)
    with pytest.raises(Http404):
        queries.do_answer_query(
            personas.other_clinician, query.public_id, answer="Hyponatremia", password=PASSWORD
        )
    with pytest.raises(AccessDenied):
        queries.do_answer_query(
            personas.coder, query.public_id, answer="Hyponatremia", password=PASSWORD
        )
    assert len(audit_rows(object_type="coding.query", outcome=Outcome.DENIED)) == 2


def test_an_answered_query_is_not_answered_again(personas, encounter):
    query = ask(personas, encounter)
    queries.do_answer_query(
        personas.clinician, query.public_id, answer="Hyponatremia", password=PASSWORD
    )
    with pytest.raises(ValidationError, match="no longer open"):
        queries.do_answer_query(
            personas.clinician, query.public_id, answer="Hyponatremia", password=PASSWORD
        )


# --- withdrawing ----------------------------------------------------------------------------


def test_the_asker_withdraws_with_a_reason_and_the_hold_is_released(personas, encounter):
    make_abstract(encounter, coder=personas.coder)
    query = ask(personas, encounter)
    with pytest.raises(ValidationError):
        queries.do_withdraw_query(personas.coder, query.public_id, reason=" ")
    done = queries.do_withdraw_query(personas.coder, query.public_id, reason="asked in error")
    assert done.status == QueryStatus.WITHDRAWN and done.closed_reason == "asked in error"
    assert Abstract.objects.get(encounter=encounter).status == AbstractStatus.IN_PROGRESS
    with pytest.raises(ValidationError, match="no longer open"):
        queries.do_withdraw_query(personas.coder, query.public_id, reason="again")


def test_another_coder_may_not_withdraw(personas, encounter):
    other = make_user("carl.coder", "coder")
    other.facilities.add(personas.facility)
    query = ask(personas, encounter)
    with pytest.raises(ValidationError, match="Only the coder"):
        queries.do_withdraw_query(other, query.public_id, reason="mine now")


# --- reads and screens --------------------------------------------------------------------------


def test_the_clinicians_queue_shows_a_coding_queries_section(client, personas, encounter):
    query = ask(personas, encounter)
    sign_in(client, personas.clinician)
    response = client.get("/completion/mine/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "Coding queries" in text and f"/coding/queries/{query.public_id}/" in text


def test_a_coder_sees_no_coding_queries_section_on_the_deficiency_queue(client, personas):
    sign_in(client, personas.coder)
    response = client.get("/completion/mine/")
    assert b"coding-queries" not in response.content


def test_a_clinician_answers_from_the_page(client, personas, encounter):
    query = ask(personas, encounter)
    sign_in(client, personas.clinician)
    page = client.get(f"/coding/queries/{query.public_id}/")
    assert page.status_code == 200 and b"Sign and file the answer" in page.content
    bad = client.post(
        f"/coding/queries/{query.public_id}/answer/", {"answer": "Hyponatremia", "password": "x"}
    )
    assert bad.status_code == 400 and b"password is not correct" in bad.content
    response = client.post(
        f"/coding/queries/{query.public_id}/answer/",
        {"answer": "Hyponatremia", "password": PASSWORD},
    )
    assert response.status_code == 302
    query.refresh_from_db()
    assert query.status == QueryStatus.ANSWERED


def test_a_coder_asks_from_the_page(client, personas, encounter):
    sign_in(client, personas.coder)
    url = f"/coding/queries/new/{encounter.public_id}/"
    assert client.get(url).status_code == 200
    bad = client.post(
        url,
        {
            "clinician": str(personas.clinician.public_id),
            "clinical_indicators": INDICATORS,
            "question": "Is it the MCC?",
            "options": "A\nB",
        },
    )
    assert bad.status_code == 400 and b"compliant query" in bad.content
    response = client.post(
        url,
        {
            "clinician": str(personas.clinician.public_id),
            "clinical_indicators": INDICATORS,
            "question": QUESTION,
            "options": "\n".join(OPTIONS),
        },
    )
    assert response.status_code == 302
    assert PhysicianQuery.objects.get().clinician == personas.clinician


def test_the_query_list_and_pages_refuse_outsiders_and_audit_it(
    client, personas, encounter, audit_rows
):
    query = ask(personas, encounter)
    sign_in(client, personas.technician)
    assert client.get("/coding/queries/").status_code == 403
    assert client.get(f"/coding/queries/{query.public_id}/").status_code == 403
    assert client.get(f"/coding/queries/new/{encounter.public_id}/").status_code == 403
    assert len(audit_rows(object_type="coding.query", outcome=Outcome.DENIED)) == 3


def test_another_clinician_gets_a_404_for_the_query(client, personas, encounter, audit_rows):
    query = ask(personas, encounter)
    sign_in(client, personas.other_clinician)
    assert client.get(f"/coding/queries/{query.public_id}/").status_code == 404
    assert audit_rows(object_type="coding.query", outcome=Outcome.DENIED)


def test_viewing_a_query_is_audited(client, personas, encounter, audit_rows):
    query = ask(personas, encounter)
    sign_in(client, personas.coder)
    assert client.get("/coding/queries/").status_code == 200
    assert client.get(f"/coding/queries/{query.public_id}/").status_code == 200
    views = audit_rows(object_type="coding.query", action=Action.VIEW)
    assert views[0].detail["shown"] == [str(encounter.patient.public_id)]
    assert views[-1].object_id == str(query.public_id)


def test_mutations_are_post_only_and_need_login(client, personas, encounter):
    query = ask(personas, encounter)
    assert client.post(f"/coding/queries/{query.public_id}/answer/").status_code == 302
    sign_in(client, personas.clinician)
    assert client.get(f"/coding/queries/{query.public_id}/answer/").status_code == 405
    assert client.get(f"/coding/queries/{query.public_id}/withdraw/").status_code == 405


def test_a_coder_withdraws_from_the_page(client, personas, encounter):
    query = ask(personas, encounter)
    sign_in(client, personas.coder)
    bad = client.post(f"/coding/queries/{query.public_id}/withdraw/", {"reason": ""})
    assert bad.status_code == 400
    ok = client.post(f"/coding/queries/{query.public_id}/withdraw/", {"reason": "duplicate"})
    assert ok.status_code == 302
    query.refresh_from_db()
    assert query.status == QueryStatus.WITHDRAWN


def test_the_home_panels_count_queries_without_naming_patients(client, personas, encounter):
    ask(personas, encounter)
    sign_in(client, personas.clinician)
    page = client.get("/").content.decode()
    assert 'data-coding-count="queries">1<' in page
    assert encounter.patient.display_name not in page
    sign_in(client, personas.coder)
    page = client.get("/").content.decode()
    assert 'data-coding-count="open">1<' in page and 'data-coding-count="mine">1<' in page
    assert 'data-coding-count="ready">1<' in page
    assert encounter.patient.display_name not in page
