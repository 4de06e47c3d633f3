"""Quality-audit screens: drawing a sample, checklists, scoring a record beside its
chart, corrections, closing, the CSV export; and for each, log-in required, 405 on GET
to mutations, 403 with an audited refusal, and 404 for another facility."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from audit.models import Action, Outcome
from completion import quality
from completion.models import (
    AuditedRecord,
    Correction,
    CorrectionStatus,
    QualityAudit,
    QualityAuditStatus,
    ReviewChecklist,
)
from completion.quality import ItemData, SampleCriteria, ScoreData
from encounters import actions as encounter_actions
from encounters.models import EncounterClass
from recordroom.testing import register_patient, sign_in

pytestmark = pytest.mark.django_db
UTC = dt.UTC
NOW = dt.datetime(2025, 3, 14, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def february(personas, patient):
    encounters = []
    for day in range(1, 7):
        encounter = encounter_actions.do_register_encounter(
            patient,
            facility=personas.facility,
            encounter_class=EncounterClass.INPATIENT,
            started_at=dt.datetime(2025, 2, day, 8, 0, tzinfo=UTC),
            attending=personas.clinician,
            service="medicine",
            acting_user=personas.technician,
        )
        encounters.append(
            encounter_actions.do_discharge(
                encounter,
                ended_at=dt.datetime(2025, 2, day, 18, 0, tzinfo=UTC),
                disposition="01",
                acting_user=personas.technician,
            )
        )
    return encounters


@pytest.fixture
def checklist(personas):
    return quality.do_create_checklist(
        name="Inpatient record review",
        items=[ItemData("H&P on time", 3), ItemData("Discharge summary signed", 2)],
        acting_user=personas.administrator,
    )


@pytest.fixture
def audit(personas, february, checklist):
    return quality.do_draw_sample(
        checklist=checklist,
        criteria=SampleCriteria(
            facility=personas.facility,
            period_start=dt.date(2025, 2, 1),
            period_end=dt.date(2025, 2, 28),
            size=3,
            seed=11,
        ),
        acting_user=personas.administrator,
    )


def first_record(audit) -> AuditedRecord:
    return (
        AuditedRecord.objects.filter(audit=audit)
        .select_related("audit", "encounter", "encounter__patient", "encounter__attending")
        .order_by("encounter__ended_at")
        .first()
    )


def url(name, *args):
    return reverse(f"completion:{name}", args=args)


def admin_client(client, personas):
    return sign_in(client, personas.administrator, sudo=True)


def tech_client(client, personas):
    return sign_in(client, personas.technician)


# --- the contract: log-in, 405, 403 audited, 404 for another facility --------------------


def _all_urls(audit):
    record = first_record(audit)
    return {
        "quality_audits": url("quality_audits"),
        "quality_new": url("quality_new"),
        "quality_checklists": url("quality_checklists"),
        "quality_checklist_new": url("quality_checklist_new"),
        "quality_corrections": url("quality_corrections"),
        "quality_audit": url("quality_audit", audit.public_id),
        "quality_score": url("quality_score", audit.public_id, record.encounter.public_id),
        "quality_export_csv": url("quality_export_csv", audit.public_id),
    }


def test_every_screen_requires_login(client, audit):
    for name, address in _all_urls(audit).items():
        response = client.get(address)
        assert response.status_code == 302, name
        assert response["Location"].startswith("/accounts/login/"), name


def test_mutations_refuse_get(client, personas, audit):
    sign_in(client, personas.administrator, sudo=True)
    correction_id = "6f1c1d1e-0000-4000-8000-000000000001"
    for address in [
        url("quality_close", audit.public_id),
        url("quality_assign", audit.public_id),
        url("quality_correction_resolve", correction_id),
        url("quality_checklist_retire", audit.checklist.public_id),
    ]:
        assert client.get(address).status_code == 405, address


@pytest.mark.parametrize(
    "persona, name, method",
    [
        ("coder", "quality_audits", "get"),
        ("clinician", "quality_audits", "get"),
        ("coder", "quality_audit", "get"),
        ("technician", "quality_new", "get"),
        ("technician", "quality_new", "post"),
        ("technician", "quality_checklists", "get"),
        ("technician", "quality_checklist_new", "post"),
        ("clinician", "quality_score", "get"),
        ("coder", "quality_score", "post"),
        ("technician", "quality_close", "post"),
        ("technician", "quality_assign", "post"),
        ("technician", "quality_export_csv", "get"),
        ("coder", "quality_corrections", "get"),
    ],
)
def test_roles_without_the_permission_get_403_and_the_refusal_is_audited(
    client, personas, audit, persona, name, method, audit_rows
):
    sign_in(client, getattr(personas, persona), sudo=True)
    record = first_record(audit)
    args = {
        "quality_audit": [audit.public_id],
        "quality_score": [audit.public_id, record.encounter.public_id],
        "quality_close": [audit.public_id],
        "quality_assign": [audit.public_id],
        "quality_export_csv": [audit.public_id],
    }.get(name, [])
    response = getattr(client, method)(url(name, *args))
    assert response.status_code == 403
    denied = audit_rows(outcome=Outcome.DENIED)
    assert denied and denied[0].actor == getattr(personas, persona)
    assert QualityAudit.objects.get(pk=audit.pk).status == QualityAuditStatus.OPEN


def test_another_facility_sees_404_and_it_is_audited(client, personas, audit, audit_rows):
    sign_in(client, personas.outsider)
    record = first_record(audit)
    assert client.get(url("quality_audit", audit.public_id)).status_code == 404
    score_url = url("quality_score", audit.public_id, record.encounter.public_id)
    assert client.get(score_url).status_code == 404
    assert client.post(score_url, {"result_1": "met"}).status_code == 404
    assert len(audit_rows(outcome=Outcome.DENIED)) == 3
    response = client.get(url("quality_audits"))
    assert response.status_code == 200 and response.context["rows"] == []


# --- drawing a sample -----------------------------------------------------------------


def test_the_draw_form_defaults_to_last_month(client, personas, checklist):
    response = admin_client(client, personas).get(url("quality_new"))
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["period_start"] == dt.date(2025, 2, 1)
    assert form.initial["period_end"] == dt.date(2025, 2, 28)
    assert checklist.name.encode() in response.content


def _draw_post(personas, checklist, **overrides):
    data = {
        "checklist": str(checklist.public_id),
        "facility": str(personas.facility.public_id),
        "period_start": "2025-02-01",
        "period_end": "2025-02-28",
        "service": "medicine",
        "size": "4",
        "method": "random",
        "seed": "99",
    }
    data.update(overrides)
    return data


def test_an_administrator_draws_a_sample(client, personas, february, checklist):
    admin_client(client, personas)
    response = client.post(url("quality_new"), _draw_post(personas, checklist), follow=True)
    audit = QualityAudit.objects.get()
    assert response.redirect_chain[-1][0] == url("quality_audit", audit.public_id)
    assert b"4 of 6 discharges drawn (random, seed 99)." in response.content
    assert AuditedRecord.objects.filter(audit=audit).count() == 4
    assert response.context["report"].total == 4
    assert b"Seed" in response.content and b"99" in response.content


def test_a_draw_from_an_empty_period_says_so(client, personas, february, checklist):
    admin_client(client, personas)
    response = client.post(
        url("quality_new"),
        _draw_post(personas, checklist, period_start="2024-06-01", period_end="2024-06-30"),
    )
    assert response.status_code == 400
    assert b"No discharges match these criteria" in response.content
    assert QualityAudit.objects.count() == 0


def test_a_bad_draw_names_the_fields(client, personas, february, checklist):
    admin_client(client, personas)
    response = client.post(
        url("quality_new"),
        _draw_post(personas, checklist, period_end="2025-01-01", method="targeted", size="0"),
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "size" in errors
    response = client.post(
        url("quality_new"),
        _draw_post(personas, checklist, period_end="2025-01-01", method="targeted"),
    )
    errors = response.context["form"].errors
    assert "before it starts" in errors["period_end"][0]
    assert "Choose what the targeted sample looks for" in errors["target"][0]


def test_a_targeted_draw_of_one_attending(client, personas, february, checklist):
    admin_client(client, personas)
    data = _draw_post(
        personas,
        checklist,
        method="targeted",
        target="attending",
        attending=str(personas.clinician.public_id),
        size="30",
    )
    response = client.post(url("quality_new"), data, follow=True)
    assert b"every one of them is in the sample" in response.content
    assert AuditedRecord.objects.count() == 6


# --- checklists -----------------------------------------------------------------------


def test_a_checklist_is_typed_one_item_a_line_with_weights(client, personas):
    admin_client(client, personas)
    response = client.post(
        url("quality_checklist_new"),
        {
            "name": "ED record review",
            "items": "Triage note present\n\n3 | Physician note signed\n2|Disposition recorded\n",
        },
    )
    assert response.status_code == 302
    checklist = ReviewChecklist.objects.get()
    assert list(checklist.items.values_list("text", "weight")) == [
        ("Triage note present", 1),
        ("Physician note signed", 3),
        ("Disposition recorded", 2),
    ]
    page = client.get(url("quality_checklists"))
    assert b"ED record review" in page.content and b"Physician note signed" in page.content


def test_a_bad_checklist_line_is_named(client, personas):
    admin_client(client, personas)
    response = client.post(
        url("quality_checklist_new"),
        {"name": "ED", "items": "Triage note\nthree | Physician note signed"},
    )
    assert response.status_code == 400
    assert (
        "Line 2: the weight “three” is not a whole number."
        in response.context["form"].errors["items"][0]
    )
    response = client.post(url("quality_checklist_new"), {"name": "ED", "items": "0 | Triage"})
    assert response.status_code == 400
    assert b"Item 1 has weight 0" in response.content
    assert ReviewChecklist.objects.count() == 0


def test_a_new_version_is_prefilled_and_retires_the_old_one(client, personas, checklist):
    admin_client(client, personas)
    form_page = client.get(url("quality_checklist_new"), {"replaces": str(checklist.public_id)})
    assert form_page.status_code == 200
    assert (
        form_page.context["form"].initial["items"]
        == "3 | H&P on time\n2 | Discharge summary signed"
    )
    response = client.post(
        url("quality_checklist_new"),
        {
            "name": "Inpatient record review",
            "items": "3 | H&P on time\n2 | Discharge summary signed\nFinal diagnosis",
            "replaces": str(checklist.public_id),
        },
    )
    assert response.status_code == 302
    checklist.refresh_from_db()
    assert not checklist.active
    assert ReviewChecklist.objects.filter(active=True).get().items.count() == 3


def test_retiring_a_checklist_from_the_list(client, personas, checklist):
    admin_client(client, personas)
    address = url("quality_checklist_retire", checklist.public_id)
    refused = client.post(address, {"reason": ""})
    assert refused.status_code == 400
    assert client.post(address, {"reason": "Replaced by the 2025 form"}).status_code == 302
    checklist.refresh_from_db()
    assert not checklist.active


# --- scoring --------------------------------------------------------------------------


def test_the_score_page_shows_the_checklist_beside_links_to_the_chart_and_is_audited(
    client, personas, patient, audit, audit_rows
):
    tech_client(client, personas)
    record = first_record(audit)
    response = client.get(url("quality_score", audit.public_id, record.encounter.public_id))
    assert response.status_code == 200
    body = response.content.decode()
    assert reverse("patients:chart", args=[patient.public_id]) in body
    assert reverse("encounters:detail", args=[record.encounter.public_id]) in body
    assert "H&amp;P on time" in body and "QUILLFEATHER" in body
    views = audit_rows(action=Action.VIEW, actor=personas.technician)
    assert ("patient", patient.public_id) in [(e.object_type, e.patient_id) for e in views]
    assert ("completion.audited_record", patient.public_id) in [
        (e.object_type, e.patient_id) for e in views
    ]


def test_a_reviewer_scores_a_record(client, personas, audit):
    tech_client(client, personas)
    record = first_record(audit)
    address = url("quality_score", audit.public_id, record.encounter.public_id)
    response = client.post(
        address,
        {
            "result_1": "met",
            "result_2": "not_met",
            "comment_2": "Summary not signed",
            "assign_2": str(personas.clinician.public_id),
        },
        follow=True,
    )
    # Weights 3 and 2: met 3 of applicable 5 -> 60.00
    assert b"scored 60.00%" in response.content
    record.refresh_from_db()
    assert record.score == Decimal("60.00")
    (correction,) = Correction.objects.filter(record=record)
    assert correction.assigned_to == personas.clinician
    assert correction.description == "Summary not signed"


def test_a_bad_score_shows_the_errors_at_the_items(client, personas, audit):
    tech_client(client, personas)
    record = first_record(audit)
    address = url("quality_score", audit.public_id, record.encounter.public_id)
    response = client.post(address, {"result_1": "met", "result_2": "not_met"})
    assert response.status_code == 400
    assert b"Item 2 is not met: say what is wrong" in response.content
    response = client.post(address, {"result_1": "met"})
    assert response.status_code == 400
    assert b"Score every item; not scored: 2." in response.content
    record.refresh_from_db()
    assert record.score is None


# --- the audit screen, assigning, closing, export --------------------------------------


def _score_all(audit, personas):
    for i, record in enumerate(
        AuditedRecord.objects.filter(audit=audit).select_related(
            "audit", "encounter", "encounter__patient", "encounter__attending"
        )
    ):
        quality.do_score_record(
            record,
            scores=[
                ScoreData(1, "met"),
                ScoreData(2, "not_met" if i == 0 else "met", "Summary not signed"),
            ],
            acting_user=personas.technician,
        )


def test_the_audit_screen_reports_scores_and_item_compliance(client, personas, audit):
    _score_all(audit, personas)
    response = tech_client(client, personas).get(url("quality_audit", audit.public_id))
    assert response.status_code == 200
    report = response.context["report"]
    # Records: 60.00, 100.00, 100.00 -> mean 86.666... -> 86.67
    assert report.score == Decimal("86.67")
    assert [line.percent for line in report.items] == [Decimal("100.00"), Decimal("66.67")]
    assert b"86.67 %" in response.content
    assert response.context["assign_form"] is None  # a reviewer does not assign


def test_an_administrator_assigns_a_reviewer(client, personas, audit):
    admin_client(client, personas)
    address = url("quality_assign", audit.public_id)
    refused = client.post(address, {"reviewer": ""})
    assert refused.status_code == 400
    response = client.post(address, {"reviewer": str(personas.technician.public_id)}, follow=True)
    assert b"3 record(s) assigned." in response.content
    assert set(AuditedRecord.objects.values_list("reviewer", flat=True)) == {personas.technician.pk}


def test_closing_needs_every_record_scored_then_reports_the_score(client, personas, audit):
    admin_client(client, personas)
    address = url("quality_close", audit.public_id)
    refused = client.post(address)
    assert refused.status_code == 400
    assert b"3 of 3 records are not scored yet" in refused.content
    _score_all(audit, personas)
    response = client.post(address, follow=True)
    assert b"Audit closed. Score: 86.67%." in response.content
    audit.refresh_from_db()
    assert audit.status == QualityAuditStatus.CLOSED


def test_the_csv_export_lists_per_record_scores_and_is_audited(
    client, personas, patient, audit, audit_rows
):
    _score_all(audit, personas)
    admin_client(client, personas)
    response = client.get(url("quality_export_csv", audit.public_id))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:3] == ["visit_number", "encounter_id", "discharged_at"]
    assert rows[0][10:] == ["1. H&P on time (weight 3)", "2. Discharge summary signed (weight 2)"]
    assert len(rows) == 1 + 3 + 1
    assert sorted(row[8] for row in rows[1:4]) == ["100.00", "100.00", "60.00"]
    assert rows[-1][0] == "audit score" and rows[-1][8] == "86.67"
    (event,) = audit_rows(action=Action.EXPORT)
    assert event.detail["patients"] == [str(patient.public_id)]


def test_the_export_asks_for_the_password_again(client, personas, audit):
    sign_in(client, personas.administrator, sudo=False)
    response = client.get(url("quality_export_csv", audit.public_id))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/confirm-password/")


def test_the_audit_list(client, personas, audit):
    response = tech_client(client, personas).get(url("quality_audits"))
    assert response.status_code == 200
    (row,) = response.context["rows"]
    assert row.audit == audit and row.records == 3
    assert audit.name.encode() in response.content


# --- corrections ----------------------------------------------------------------------


def test_corrections_are_listed_and_resolved(client, personas, audit, audit_rows):
    _score_all(audit, personas)
    tech_client(client, personas)
    page = client.get(url("quality_corrections"))
    assert page.status_code == 200
    (entry,) = page.context["entries"]
    correction = entry["line"].correction
    assert b"Summary not signed" in page.content
    address = url("quality_correction_resolve", correction.public_id)
    refused = client.post(address, {"status": "corrected", "resolution": ""})
    assert refused.status_code == 400
    assert refused.context["entries"][0]["failed"]
    done = client.post(address, {"status": "corrected", "resolution": "Signed on 14 March"})
    assert done.status_code == 302
    correction.refresh_from_db()
    assert correction.status == CorrectionStatus.CORRECTED
    assert client.get(url("quality_corrections")).context["entries"] == []
    resolved = client.get(url("quality_corrections"), {"state": "resolved"})
    assert len(resolved.context["entries"]) == 1


def test_the_attending_sees_their_corrections_but_does_not_resolve_them(
    client, personas, audit, audit_rows
):
    _score_all(audit, personas)
    sign_in(client, personas.clinician)
    page = client.get(url("quality_corrections"))
    assert page.status_code == 200
    (entry,) = page.context["entries"]
    assert entry["form"] is None
    response = client.post(
        url("quality_correction_resolve", entry["line"].correction.public_id),
        {"status": "corrected", "resolution": "I signed it"},
    )
    assert response.status_code == 403
    assert audit_rows(outcome=Outcome.DENIED)[-1].object_type == "completion.correction"


def test_overdue_corrections_are_flagged(client, personas, audit):
    _score_all(audit, personas)
    with time_machine.travel(NOW + dt.timedelta(days=45), tick=False):
        page = tech_client(client, personas).get(url("quality_corrections"), {"state": "overdue"})
        (entry,) = page.context["entries"]
        assert entry["line"].overdue
        assert b"overdue" in page.content


def test_the_audit_screen_reads_a_fixed_number_of_queries(client, personas, patient, checklist):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for day in range(1, 9):
        encounter = encounter_actions.do_register_encounter(
            patient,
            facility=personas.facility,
            encounter_class=EncounterClass.OUTPATIENT,
            started_at=dt.datetime(2025, 2, day, 8, 0, tzinfo=UTC),
            acting_user=personas.technician,
        )
        encounter_actions.do_discharge(
            encounter,
            ended_at=dt.datetime(2025, 2, day, 9, 0, tzinfo=UTC),
            acting_user=personas.technician,
        )

    def queries(size):
        audit = quality.do_draw_sample(
            checklist=checklist,
            criteria=SampleCriteria(
                facility=personas.facility,
                period_start=dt.date(2025, 2, 1),
                period_end=dt.date(2025, 2, 28),
                size=size,
            ),
            acting_user=personas.administrator,
        )
        _score_all(audit, personas)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url("quality_audit", audit.public_id)).status_code == 200
            assert client.get(url("quality_corrections")).status_code == 200
        return len(captured)

    admin_client(client, personas)
    queries(2)  # warm the session and caches
    assert queries(2) == queries(8)
