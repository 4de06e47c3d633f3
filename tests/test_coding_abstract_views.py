# ruff: noqa: F811 - the fixtures are imported from tests.test_coding_abstract
"""The abstract screen: thin views over coding.abstracts and coding.abstract_access."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import Outcome
from coding import abstracts
from coding.models import AbstractStatus
from recordroom.testing import sign_in
from tests.test_coding_abstract import (  # noqa: F401 - fixtures
    abstract,
    codes,
    encounter,
    frozen,
    patient,
)

pytestmark = pytest.mark.django_db


def url(name, encounter, *args):
    return reverse(f"coding:{name}", args=[encounter.public_id, *args])


def test_a_coder_sees_the_screen_and_the_view_is_audited(client, personas, abstract, audit_rows):
    abstracts.do_add_diagnosis(abstract, "I5021", poa="Y", acting_user=personas.coder)
    sign_in(client, personas.coder)
    response = client.get(url("abstract", abstract.encounter))
    assert response.status_code == 200
    body = response.content.decode()
    assert "I50.21" in body and "DRG 293" in body and "Finalise" in body
    assert audit_rows(object_type="coding.abstract", outcome=Outcome.ALLOWED, action="view")


@pytest.mark.parametrize("who", ["technician", "clinician", "no_role"])
def test_others_are_refused_and_it_is_audited(client, personas, abstract, who, audit_rows):
    sign_in(client, getattr(personas, who))
    assert client.get(url("abstract", abstract.encounter)).status_code == 403
    response = client.post(url("abstract_add_dx", abstract.encounter), {"code": "I10"})
    assert response.status_code == 403
    assert len(audit_rows(outcome=Outcome.DENIED)) == 2
    assert not abstract.diagnoses.exists()


def test_it_requires_login(client, abstract):
    response = client.get(url("abstract", abstract.encounter))
    assert response.status_code == 302 and "login" in response["Location"]


def test_changes_answer_post_only(client, personas, abstract):
    sign_in(client, personas.coder)
    assert client.get(url("abstract_add_dx", abstract.encounter)).status_code == 405
    assert client.get(url("abstract_finalise", abstract.encounter)).status_code == 405


def test_start_coding_then_add_with_htmx_shows_the_drg_and_edits(
    client, personas, encounter, codes
):
    sign_in(client, personas.coder)
    page = client.get(url("abstract", encounter)).content.decode()
    assert "Start coding" in page
    headers = {"HX-Request": "true"}
    client.post(url("abstract_open", encounter), headers=headers)
    response = client.post(
        url("abstract_add_dx", encounter),
        {"code": "i50.21", "poa": "Y", "version": "1"},
        headers=headers,
    )
    body = response.content.decode()
    assert response.status_code == 200 and 'id="workspace"' in body and "<html" not in body
    assert "DRG 293" in body
    response = client.post(
        url("abstract_add_dx", encounter),
        {"code": "J96.01", "poa": "", "version": "2"},
        headers=headers,
    )
    body = response.content.decode()
    assert "DRG 291" in body and "was DRG 293" in body
    assert "J96.01 needs a present-on-admission indicator" in body


def test_a_refused_finalise_shows_the_edits_and_changes_nothing(client, personas, abstract):
    abstracts.do_add_diagnosis(abstract, "I5021", acting_user=personas.coder)
    abstract.refresh_from_db()
    sign_in(client, personas.coder)
    response = client.post(
        url("abstract_finalise", abstract.encounter),
        {"version": str(abstract.version)},
        headers={"HX-Request": "true"},
    )
    assert "cannot be finalised until these edits pass" in response.content.decode()
    abstract.refresh_from_db()
    assert abstract.status == AbstractStatus.IN_PROGRESS


def test_a_stale_form_is_refused_with_a_message(client, personas, abstract):
    sign_in(client, personas.coder)
    client.post(url("abstract_add_dx", abstract.encounter), {"code": "I5021", "version": "1"})
    response = client.post(
        url("abstract_add_dx", abstract.encounter), {"code": "E119", "version": "1"}, follow=True
    )
    assert "changed by someone else" in response.content.decode()
    assert list(abstract.diagnoses.values_list("code", flat=True)) == ["I5021"]


def test_procedure_with_performer_and_the_history_page(client, personas, abstract):
    sign_in(client, personas.coder)
    client.post(
        url("abstract_add_px", abstract.encounter),
        {
            "code": "0DTJ4ZZ",
            "system": "icd10pcs",
            "performed_on": "2026-02-11",
            "performer": str(personas.clinician.public_id),
            "version": "1",
        },
    )
    (row,) = abstract.procedures.all()
    assert row.performer == personas.clinician
    response = client.post(
        url("abstract_add_px", abstract.encounter),
        {"code": "02703DZ", "performer": str(personas.coder.public_id), "version": "2"},
        follow=True,
    )
    assert "Choose the performing clinician" in response.content.decode()
    history = client.get(url("abstract_history", abstract.encounter)).content.decode()
    assert "procedure 0DTJ4ZZ added" in history and "abstract opened" in history


def test_the_cc_mcc_column_shows_only_the_secondary_diagnoses_levels(client, personas, abstract):
    """I50.21 is an MCC as a secondary diagnosis; as the principal its level does not
    count, so the screen shows none beside it (J96.01, secondary, shows MCC)."""
    for code in ("I5021", "J9601"):
        abstract = abstracts.do_add_diagnosis(abstract, code, poa="Y", acting_user=personas.coder)
    sign_in(client, personas.coder)
    body = client.get(url("abstract", abstract.encounter)).content.decode()
    table = body[body.index('id="diagnoses"') :]
    principal, secondary = table.split("</tr>")[1:3]
    assert "I50.21" in principal and "does not count in the grouping" in principal
    assert ">MCC<" not in principal.replace(" ", "")
    assert "J96.01" in secondary and "MCC" in secondary
