"""The chart-completion screens: log-in, 405 on mutations, 403 (audited) for the wrong
role, 404 for an outsider where a patient is involved, the allowed access audited, and
what each screen does."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from audit.models import Action, Outcome
from completion.models import Deficiency, DeficiencyKind, DeficiencyStatus, RecordStatus
from documents.actions import do_create_document
from documents.models import DocumentStatus
from recordroom.testing import PASSWORD, register_patient, sign_in
from tests.test_completion_queue import (
    NOW,
    discharged,
    doc_type,
    make_deficiency,
    make_encounter,
    make_record,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def encounter(personas, patient):
    encounter = discharged(personas, patient, days_ago=40, service="surgery")
    make_record(encounter)
    return encounter


@pytest.fixture
def deficiency(encounter, personas):
    return make_deficiency(encounter, responsible=personas.clinician)


def as_(client, user):
    return sign_in(client, user, sudo=True)


def read_pages(deficiency, encounter):
    return [
        "/completion/mine/",
        "/completion/deficiencies/",
        f"/completion/deficiencies/{deficiency.public_id}/",
        f"/completion/encounters/{encounter.public_id}/",
        "/completion/dashboard/",
        "/completion/delinquency/",
        "/completion/export.csv",
        "/completion/mine/sign/",
        f"/completion/encounters/{encounter.public_id}/add/",
    ]


def test_every_page_requires_log_in(client, deficiency, encounter):
    for path in read_pages(deficiency, encounter):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/"), path


def test_mutations_refuse_get(client, personas, deficiency):
    as_(client, personas.technician)
    for path in (
        f"/completion/deficiencies/{deficiency.public_id}/reassign/",
        f"/completion/deficiencies/{deficiency.public_id}/waive/",
    ):
        assert client.get(path).status_code == 405, path
    assert client.put("/completion/mine/sign/").status_code == 405
    assert client.post("/completion/dashboard/").status_code == 405


@pytest.mark.parametrize(
    ("who", "paths"),
    [
        (
            "roi_specialist",
            ["/completion/mine/", "/completion/deficiencies/", "/completion/dashboard/"],
        ),
        ("privacy_officer", ["/completion/delinquency/", "/completion/export.csv"]),
        ("clinician", ["/completion/dashboard/", "/completion/delinquency/"]),
        ("technician", ["/completion/mine/sign/"]),
        ("coder", ["add"]),
    ],
)
def test_the_wrong_role_gets_403_and_the_refusal_is_audited(
    client, personas, encounter, audit_rows, who, paths
):
    as_(client, getattr(personas, who))
    for path in paths:
        if path == "add":
            path = f"/completion/encounters/{encounter.public_id}/add/"
        before = len(audit_rows(outcome=Outcome.DENIED))
        assert client.get(path).status_code == 403, path
        assert len(audit_rows(outcome=Outcome.DENIED)) == before + 1, path


def test_reassign_and_waive_are_refused_to_a_clinician_and_audited(
    client, personas, deficiency, audit_rows
):
    as_(client, personas.clinician)
    for verb in ("reassign", "waive"):
        response = client.post(
            f"/completion/deficiencies/{deficiency.public_id}/{verb}/", {"reason": "Mine now"}
        )
        assert response.status_code == 403
    assert len(audit_rows(outcome=Outcome.DENIED)) == 2
    deficiency.refresh_from_db()
    assert deficiency.status == DeficiencyStatus.OPEN


def test_an_outsider_gets_404_for_another_facilitys_patient(
    client, personas, deficiency, encounter, audit_rows
):
    as_(client, personas.outsider)
    for path in (
        f"/completion/deficiencies/{deficiency.public_id}/",
        f"/completion/encounters/{encounter.public_id}/",
        f"/completion/encounters/{encounter.public_id}/add/",
    ):
        assert client.get(path).status_code == 404, path
    for verb in ("reassign", "waive"):
        path = f"/completion/deficiencies/{deficiency.public_id}/{verb}/"
        assert client.post(path, {"reason": "Not mine"}).status_code == 404
    assert len(audit_rows(outcome=Outcome.DENIED)) == 5
    page = client.get("/completion/deficiencies/")
    assert page.status_code == 200 and "QUILLFEATHER" not in page.content.decode()


# --- the queue ------------------------------------------------------------------------


def test_the_clinician_sees_their_queue_with_the_overdue_in_red(
    client, personas, deficiency, audit_rows
):
    as_(client, personas.clinician)
    response = client.get("/completion/mine/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "QUILLFEATHER, Marigold June" in page
    assert '<span class="error">delinquent 10 days</span>' in page
    assert "Write the document" in page
    (event,) = audit_rows(object_type="completion.queue")
    assert event.detail["shown"] == [str(deficiency.patient.public_id)]


def test_another_clinician_sees_an_empty_queue(client, personas, deficiency):
    as_(client, personas.other_clinician)
    page = client.get("/completion/mine/").content.decode()
    assert "Nothing to complete" in page and "QUILLFEATHER" not in page


# --- bulk signing ---------------------------------------------------------------------


@pytest.fixture
def orders(personas, patient):
    encounter = make_encounter(personas, patient, started=NOW - dt.timedelta(days=1))
    made = []
    for n in range(3):
        order = do_create_document(
            patient,
            doc_type=doc_type("46209-3"),
            title="Verbal order",
            body=f"Potassium chloride 20 mmol, dose {n}.",
            service_at=NOW - dt.timedelta(hours=3),
            encounter=encounter,
            order_mode="verbal",
            acting_user=personas.clinician,
        )
        make_deficiency(
            encounter, responsible=personas.clinician, kind=DeficiencyKind.UNSIGNED, document=order
        )
        made.append(order)
    return made


def test_the_bulk_signing_page_shows_each_order_in_full_and_signs_the_ticked(
    client, personas, orders, audit_rows
):
    as_(client, personas.clinician)
    page = client.get("/completion/mine/sign/").content.decode()
    for n in range(3):
        assert f"Potassium chloride 20 mmol, dose {n}." in page
    assert len(audit_rows(action=Action.VIEW, object_type="document")) == 3
    ticked = [str(o.public_id) for o in orders[:2]]
    response = client.post("/completion/mine/sign/", {"documents": ticked, "password": PASSWORD})
    assert response.status_code == 302
    statuses = [type(o).objects.get(pk=o.pk).status for o in orders]
    assert statuses == [DocumentStatus.FINAL, DocumentStatus.FINAL, DocumentStatus.DRAFT]
    assert Deficiency.objects.filter(status=DeficiencyStatus.OPEN).count() == 1
    followed = client.get(response["Location"]).content.decode()
    assert "2 order(s) signed." in followed


def test_an_order_never_shown_in_this_session_is_not_signed(client, personas, orders):
    as_(client, personas.clinician)  # no GET of the page first
    response = client.post(
        "/completion/mine/sign/", {"documents": [str(orders[0].public_id)], "password": PASSWORD}
    )
    assert response.status_code == 302
    assert type(orders[0]).objects.get(pk=orders[0].pk).status == DocumentStatus.DRAFT
    assert "Not shown to you" in client.get(response["Location"]).content.decode()


def test_a_wrong_password_at_bulk_signing_is_400_and_signs_nothing(client, personas, orders):
    as_(client, personas.clinician)
    client.get("/completion/mine/sign/")
    response = client.post(
        "/completion/mine/sign/", {"documents": [str(orders[0].public_id)], "password": "nope"}
    )
    assert response.status_code == 400
    assert "nothing was signed" in response.content.decode()
    assert type(orders[0]).objects.get(pk=orders[0].pk).status == DocumentStatus.DRAFT


# --- the analysts' list and detail -----------------------------------------------------------


def test_the_list_filters_from_the_url_and_is_audited(
    client, personas, encounter, deficiency, audit_rows
):
    make_deficiency(encounter, responsible=personas.other_clinician, kind=DeficiencyKind.UNSIGNED)
    as_(client, personas.technician)
    response = client.get(
        "/completion/deficiencies/",
        {"kind": "missing", "responsible": str(personas.clinician.public_id), "delinquent": "on"},
    )
    page = response.content.decode()
    assert response.status_code == 200 and "1 deficiency" in page
    (event,) = audit_rows(object_type="completion.deficiency", action=Action.VIEW)
    assert event.detail["filters"]["kind"] == "missing"
    assert event.detail["shown"] == [str(deficiency.patient.public_id)]


def test_a_bad_filter_is_400(client, personas, deficiency):
    as_(client, personas.technician)
    assert client.get("/completion/deficiencies/", {"kind": "lost"}).status_code == 400


def test_a_clinician_lists_only_their_own(client, personas, encounter, deficiency):
    make_deficiency(encounter, responsible=personas.other_clinician, description="Olga's gap")
    as_(client, personas.clinician)
    page = client.get("/completion/deficiencies/").content.decode()
    assert "Yours only" in page and "Olga&#x27;s gap" not in page and "1 deficiency" in page


def test_the_detail_shows_the_history_and_is_audited(client, personas, deficiency, audit_rows):
    as_(client, personas.technician)
    response = client.get(f"/completion/deficiencies/{deficiency.public_id}/")
    assert response.status_code == 200
    assert "Reassign" in response.content.decode()
    (event,) = audit_rows(object_type="completion.deficiency", action=Action.VIEW)
    assert event.patient_id == deficiency.patient.public_id
    assert audit_rows(object_type="patient", action=Action.VIEW)


def test_a_clinician_opens_their_own_deficiency_but_not_anothers(client, personas, deficiency):
    as_(client, personas.clinician)
    page = client.get(f"/completion/deficiencies/{deficiency.public_id}/")
    assert page.status_code == 200 and "Reassign" not in page.content.decode()
    as_(client, personas.other_clinician)
    assert client.get(f"/completion/deficiencies/{deficiency.public_id}/").status_code == 404


def test_an_analyst_reassigns_and_waives_through_the_page(client, personas, deficiency):
    as_(client, personas.technician)
    url = f"/completion/deficiencies/{deficiency.public_id}/"
    response = client.post(
        url + "reassign/",
        {"to_user": str(personas.other_clinician.public_id), "reason": "Wrote the note"},
    )
    assert response.status_code == 302 and response["Location"] == url
    response = client.post(url + "waive/", {"reason": "Not applicable here"})
    assert response.status_code == 302
    deficiency.refresh_from_db()
    assert deficiency.responsible == personas.other_clinician
    assert deficiency.status == DeficiencyStatus.WAIVED
    assert [e.event for e in deficiency.events.all()] == ["reassigned", "waived"]


def test_a_waive_without_reason_is_400_with_the_error(client, personas, deficiency):
    as_(client, personas.technician)
    response = client.post(f"/completion/deficiencies/{deficiency.public_id}/waive/", {})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    deficiency.refresh_from_db()
    assert deficiency.status == DeficiencyStatus.OPEN


def test_an_analyst_adds_a_deficiency_through_the_form(client, personas, encounter, audit_rows):
    as_(client, personas.technician)
    url = f"/completion/encounters/{encounter.public_id}/add/"
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "kind": "missing",
            "description": "Consent missing",
            "document_type": "59284-0",
            "responsible": str(personas.clinician.public_id),
            "due_at": "2025-03-22T10:00",
            "reason": "Chart review",
        },
    )
    assert response.status_code == 302
    added = Deficiency.objects.get()
    assert response["Location"] == f"/completion/deficiencies/{added.public_id}/"
    assert added.document_type.loinc_code == "59284-0" and added.opened_by == personas.technician
    assert audit_rows(action=Action.CREATE, object_type="completion.deficiency")


def test_adding_with_bad_input_is_400_and_writes_nothing(client, personas, encounter):
    as_(client, personas.technician)
    response = client.post(
        f"/completion/encounters/{encounter.public_id}/add/",
        {
            "kind": "missing",
            "description": "Consent missing",
            "responsible": str(personas.clinician.public_id),
            "due_at": "2025-03-22T10:00",
            "reason": "Chart review",
        },
    )
    assert response.status_code == 400
    assert "Say which type of document is missing." in response.content.decode()
    assert not Deficiency.objects.exists()


def test_the_record_page_shows_status_and_delinquency(client, personas, encounter, deficiency):
    as_(client, personas.technician)
    page = client.get(f"/completion/encounters/{encounter.public_id}/").content.decode()
    assert "Incomplete" in page and "delinquent 10 days" in page


# --- figures ----------------------------------------------------------------------------------


def test_the_dashboard_draws_charts_with_tables(client, personas, deficiency, audit_rows):
    as_(client, personas.technician)
    response = client.get("/completion/dashboard/")
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count("<svg") == 4 and "<table" in page
    assert "surgery" in page and "Over 60 days" in page and "Dr.Carl Testperson" in page
    assert audit_rows(object_type="completion.counts", action=Action.VIEW)


def test_a_facility_that_is_not_the_users_is_404(client, personas, deficiency):
    as_(client, personas.technician)
    response = client.get(
        "/completion/dashboard/", {"facility": str(personas.other_facility.public_id)}
    )
    assert response.status_code == 404


def test_the_delinquency_page_shows_rates_and_the_suspension_list(client, personas, deficiency):
    as_(client, personas.technician)
    response = client.get("/completion/delinquency/", {"period": "2025-02", "days": "5"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "2025-Q1" in page and "Suspension list" in page and "Dr.Carl Testperson" in page
    assert "QUILLFEATHER" in page  # the delinquent record
    assert client.get("/completion/delinquency/", {"period": "soon"}).status_code == 400


def test_the_counts_export_is_csv_and_audited(client, personas, deficiency, audit_rows):
    as_(client, personas.technician)
    response = client.get("/completion/export.csv", {"what": "counts"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert "service,surgery,1,1" in body and "total,all,1,1" in body
    (event,) = audit_rows(action=Action.EXPORT)
    assert event.object_type == "completion.counts"


def test_the_deficiency_export_has_no_national_ids(client, personas, deficiency, audit_rows):
    as_(client, personas.technician)
    response = client.get("/completion/export.csv", {"what": "deficiencies"})
    body = b"".join(response.streaming_content).decode()
    assert "QUILLFEATHER" in body and str(deficiency.public_id) in body
    assert "123-45-6789" not in body and "6789" not in body
    (event,) = audit_rows(action=Action.EXPORT)
    assert event.detail["patients"] == [str(deficiency.patient.public_id)]


def test_the_export_asks_for_the_password_again(client, personas, deficiency):
    sign_in(client, personas.technician, sudo=False)
    response = client.get("/completion/export.csv")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/confirm-password/")


def test_an_unknown_export_is_404(client, personas):
    as_(client, personas.technician)
    assert client.get("/completion/export.csv", {"what": "everything"}).status_code == 404


def test_record_status_is_complete_once_waived(client, personas, encounter, deficiency):
    as_(client, personas.technician)
    client.post(
        f"/completion/deficiencies/{deficiency.public_id}/waive/", {"reason": "Paper record"}
    )
    encounter.completion.refresh_from_db()
    assert encounter.completion.status == RecordStatus.COMPLETE
