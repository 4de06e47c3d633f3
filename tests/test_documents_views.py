"""The document screens: the whole flow through the browser's eyes, bad input, and the
refusal tests every screen has (log-in, methods, roles, outsiders, audit)."""

import datetime as dt
import hashlib

import pytest
import time_machine

from audit.models import Action, Outcome
from documents.models import Document, DocumentStatus, DocumentVersion
from documents.testing import (
    BODY,
    PDF_BYTES,
    amend,
    doc_type,
    file_scanned,
    pdf,
    sign,
    signed,
    stored_files,
    temporary_storage,
    upload,
    write,
)
from patients.actions import do_set_restriction
from patients.models import AccessGrant
from recordroom.testing import PASSWORD, register_patient, sign_in

pytestmark = pytest.mark.django_db
UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Files go to a folder of the test's own."""
    return temporary_storage(settings, tmp_path)


@pytest.fixture(autouse=True)
def frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def patient(personas):
    return register_patient(personas)


@pytest.fixture
def amended(personas, patient, media):
    """A progress note signed, amended and signed again, with a file on version 1."""
    document = write(patient, personas.clinician, attachment=pdf("ecg.pdf"))
    sign(document)
    amend(document, BODY + "\nPlan: chest X-ray.")
    sign(document)
    return document


def urls(document, patient):
    d = document.public_id
    return {
        "new": f"/documents/new/{patient.public_id}/",
        "detail": f"/documents/{d}/",
        "edit": f"/documents/{d}/edit/",
        "sign": f"/documents/{d}/sign/",
        "amend": f"/documents/{d}/amend/",
        "addendum": f"/documents/{d}/addendum/",
        "entered_in_error": f"/documents/{d}/entered-in-error/",
        "history": f"/documents/{d}/history/",
        "diff": f"/documents/{d}/diff/1/2/",
        "attachment": f"/documents/{d}/versions/1/attachment/",
    }


READING = ["detail", "history", "diff", "attachment"]
FORMS = ["new", "edit", "sign", "amend", "addendum", "entered_in_error"]


def new_document(**overrides):
    data = {
        "source": "authored",
        "doc_type": doc_type("34117-2").pk,
        "title": "Admission H&P",
        "service_at": "2026-03-02T08:30",  # America/New_York: 13:30 UTC, before NOW
        "body": "Chief complaint: chest pain.\nHPI: two hours.",
    }
    data.update(overrides)
    return data


# --- the four refusals, for every screen ------------------------------------------------


@pytest.mark.parametrize("name", READING + FORMS)
def test_it_requires_login(client, personas, patient, amended, name):
    url = urls(amended, patient)[name]
    assert client.get(url)["Location"].startswith("/accounts/login/")
    assert client.post(url)["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("name", READING)
def test_reading_pages_refuse_post(client, personas, patient, amended, name):
    sign_in(client, personas.clinician)
    assert client.post(urls(amended, patient)[name]).status_code == 405


@pytest.mark.parametrize("name", FORMS)
def test_form_pages_refuse_other_methods(client, personas, patient, amended, name):
    sign_in(client, personas.clinician)
    url = urls(amended, patient)[name]
    assert client.put(url).status_code == 405
    assert client.delete(url).status_code == 405


def test_getting_a_form_page_changes_nothing(client, personas, patient):
    document = write(patient, personas.clinician)
    sign_in(client, personas.clinician)
    for name in ["sign", "entered_in_error", "edit"]:
        assert client.get(urls(document, patient)[name]).status_code == 200
    document.refresh_from_db()
    assert document.status == DocumentStatus.DRAFT
    assert not document.current_version.signed_at


@pytest.mark.parametrize(
    "persona, name, method",
    [
        ("coder", "new", "get"),
        ("coder", "new", "post"),
        ("technician", "sign", "post"),
        ("coder", "amend", "post"),
        ("technician", "addendum", "post"),
        ("other_clinician", "entered_in_error", "post"),
        ("coder", "entered_in_error", "get"),
        ("privacy_officer", "detail", "get"),
        ("privacy_officer", "history", "get"),
        ("patient", "detail", "get"),
        ("roi_specialist", "edit", "get"),
    ],
)
def test_it_denies_roles_without_the_permission_and_audits(
    client, personas, patient, amended, audit_rows, persona, name, method
):
    user = getattr(personas, persona)
    sign_in(client, user)
    data = {"password": PASSWORD, "reason": "A good long reason", "body": "x", "kind": "amendment"}
    response = getattr(client, method)(
        urls(amended, patient)[name], data if method == "post" else None
    )
    assert response.status_code == 403
    denials = audit_rows(outcome=Outcome.DENIED, actor=user)
    assert denials
    amended.refresh_from_db()
    assert amended.status == DocumentStatus.AMENDED
    assert DocumentVersion.objects.filter(document=amended).count() == 2
    assert Document.objects.count() == 1


@pytest.mark.parametrize("name", READING + FORMS)
def test_it_hides_the_patient_from_an_outsider(
    client, personas, patient, amended, audit_rows, name
):
    sign_in(client, personas.outsider)
    assert client.get(urls(amended, patient)[name]).status_code == 404
    assert audit_rows(outcome=Outcome.DENIED, actor=personas.outsider)


@pytest.mark.parametrize(
    "name, detail",
    [
        ("detail", {"version": 2}),
        ("history", {"page": "history"}),
        ("diff", {"page": "diff", "versions": [1, 2]}),
    ],
)
def test_it_audits_the_allowed_access(client, personas, patient, amended, audit_rows, name, detail):
    sign_in(client, personas.clinician)
    assert client.get(urls(amended, patient)[name]).status_code == 200
    (event,) = audit_rows(action=Action.VIEW, object_type="document")
    assert event.outcome == Outcome.ALLOWED
    assert event.actor == personas.clinician
    assert event.object_id == str(amended.public_id)
    assert event.patient_id == patient.public_id
    assert event.detail == detail
    assert audit_rows(action=Action.VIEW, object_type="patient", patient_id=patient.public_id)


# --- the whole flow --------------------------------------------------------------------------


def test_a_clinician_writes_signs_amends_and_others_see_the_right_version(
    client, personas, patient, audit_rows
):
    sign_in(client, personas.clinician)
    response = client.post(f"/documents/new/{patient.public_id}/", new_document())
    assert response.status_code == 302, response.context["form"].errors
    document = Document.objects.get(title="Admission H&P")
    assert document.status == DocumentStatus.DRAFT
    paths = urls(document, patient)
    assert response["Location"] == paths["detail"]
    page = client.get(paths["detail"]).content.decode()
    assert "Chief complaint: chest pain." in page and "Sign" in page

    wrong = client.post(paths["sign"], {"password": "not-it"})
    assert wrong.status_code == 400
    assert "The password is not correct" in wrong.content.decode()
    assert client.post(paths["sign"], {"password": PASSWORD}).status_code == 302
    document.refresh_from_db()
    assert document.status == DocumentStatus.FINAL

    again = client.post(paths["sign"], {"password": PASSWORD})
    assert again.status_code == 409
    assert "already signed" in again.content.decode()

    response = client.post(
        paths["amend"],
        {
            "kind": "amendment",
            "reason": "Added the family history",
            "body": "Chief complaint: chest pain.\nFH: father MI at 50.",
        },
    )
    assert response["Location"] == paths["sign"]
    other = sign_in(client.__class__(), personas.other_clinician)
    before = other.get(paths["detail"]).content.decode()
    assert "father MI" not in before  # the amendment is not signed yet
    assert client.post(paths["sign"], {"password": PASSWORD}).status_code == 302
    after = other.get(paths["detail"]).content.decode()
    assert "father MI" in after and "Amended" in after
    assert other.get(paths["diff"]).status_code == 403  # the signed original: not theirs
    assert client.get(paths["diff"]).status_code == 200  # the author's
    history = client.get(paths["history"]).content.decode()
    assert "Added the family history" in history and "intact" in history


def test_the_diff_is_escaped_and_readable(client, personas, patient):
    document = signed(patient, personas.clinician, body="line one\nline two\nline three")
    amend(document, "line one\n<script>alert('x')</script>\nline three")
    sign(document)
    sign_in(client, personas.clinician)
    page = client.get(f"/documents/{document.public_id}/diff/1/2/").content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert 'class="removed"' in page and 'class="added"' in page
    assert "1 line added, 1 removed." in page


def test_a_non_author_is_refused_with_a_clear_message(client, personas, patient, audit_rows):
    document = write(patient, personas.clinician)
    sign_in(client, personas.other_clinician)
    response = client.post(f"/documents/{document.public_id}/sign/", {"password": PASSWORD})
    assert response.status_code == 403
    assert "Only the author of this document" in response.content.decode()
    assert audit_rows(outcome=Outcome.DENIED, action=Action.SIGN)
    document.refresh_from_db()
    assert document.status == DocumentStatus.DRAFT


def test_an_addendum_through_the_screens(client, personas, patient):
    document = signed(patient, personas.clinician)
    sign_in(client, personas.other_clinician)
    response = client.post(
        f"/documents/{document.public_id}/addendum/", {"body": "Seen again at 18:00."}
    )
    addendum = Document.objects.get(addendum_to=document)
    assert response["Location"] == f"/documents/{addendum.public_id}/sign/"
    assert client.post(response["Location"], {"password": PASSWORD}).status_code == 302
    page = client.get(f"/documents/{document.public_id}/").content.decode()
    assert "Seen again at 18:00." in page and "Addenda" in page


def test_an_administrator_marks_entered_in_error(client, personas, patient):
    document = signed(patient, personas.clinician)
    sign_in(client, personas.administrator)
    response = client.post(
        f"/documents/{document.public_id}/entered-in-error/",
        {"reason": "Filed to the wrong patient"},
    )
    assert response["Location"] == f"/patients/{patient.public_id}/"
    assert "entered in error" in client.get(f"/documents/{document.public_id}/").content.decode()
    other = sign_in(client.__class__(), personas.other_clinician)
    assert other.get(f"/documents/{document.public_id}/").status_code == 404
    short = client.post(f"/documents/{document.public_id}/entered-in-error/", {"reason": "x"})
    assert short.status_code == 409  # already marked: nothing more to do


def test_a_restricted_document_shows_type_and_date_only(client, personas, patient, audit_rows):
    document = signed(
        patient,
        personas.clinician,
        title="HIV counselling",
        sensitivity=["hiv_sti"],
        body="Result discussed.",
    )
    sign_in(client, personas.other_clinician)
    response = client.get(f"/documents/{document.public_id}/")
    page = response.content.decode()
    assert response.status_code == 403
    assert "Restricted document" in page and "Progress note" in page and "2026-03-02" in page
    assert "HIV counselling" not in page and "Result discussed" not in page
    assert audit_rows(
        outcome=Outcome.DENIED, actor=personas.other_clinician, object_type="document"
    )


# --- files ----------------------------------------------------------------------------------------


def test_a_technician_files_a_scan_and_it_streams_back(
    client, personas, patient, media, audit_rows
):
    sign_in(client, personas.technician)
    response = client.post(
        f"/documents/new/{patient.public_id}/",
        new_document(
            source="scanned",
            doc_type=doc_type("11503-0").pk,
            title="Outside records",
            body="",
            attachment=pdf("maple-clinic.pdf"),
        ),
    )
    assert response.status_code == 302
    document = Document.objects.get()
    assert document.status == DocumentStatus.FINAL
    streamed = client.get(f"/documents/{document.public_id}/versions/1/attachment/")
    assert streamed.status_code == 200
    assert b"".join(streamed.streaming_content) == PDF_BYTES
    assert streamed["Content-Type"] == "application/pdf"
    assert streamed["Content-Disposition"] == 'inline; filename="maple-clinic.pdf"'
    assert streamed["X-Content-Type-Options"] == "nosniff"
    (viewed,) = audit_rows(action=Action.VIEW, object_type="document")
    assert viewed.detail == {
        "attachment_of_version": 1,
        "sha256": hashlib.sha256(PDF_BYTES).hexdigest(),
    }


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"attachment": upload("scan.pdf", b"MZ\x90\x00 not a pdf")}, "is not a PDF"),
        ({"title": "<script>alert(1)</script>"}, "cannot contain markup"),
        ({"attachment": upload("a<b>.pdf", PDF_BYTES)}, "markup"),
        ({"service_at": "2030-01-01T10:00"}, "in the future"),
        ({"source": "authored"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_refused_clearly_and_nothing_is_stored(
    client, personas, patient, media, overrides, message
):
    sign_in(client, personas.technician)
    data = new_document(source="scanned", body="", attachment=pdf())
    data.update(overrides)
    response = client.post(f"/documents/new/{patient.public_id}/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert not Document.objects.exists()
    assert not stored_files(media)


def test_the_same_input_without_the_fault_is_filed(client, personas, patient, media):
    sign_in(client, personas.technician)
    data = new_document(source="scanned", body="", attachment=pdf())
    assert client.post(f"/documents/new/{patient.public_id}/", data).status_code == 302
    assert Document.objects.count() == 1
    assert len(stored_files(media)) == 1


def test_an_oversized_pdf_is_refused(client, personas, patient, media, settings):
    settings.MAX_UPLOAD_MB = 1
    sign_in(client, personas.technician)
    data = new_document(
        source="scanned", body="", attachment=pdf("big.pdf", PDF_BYTES + b"0" * (1024 * 1024 + 1))
    )
    response = client.post(f"/documents/new/{patient.public_id}/", data)
    assert response.status_code == 400
    assert "the limit is 1 MB" in response.content.decode()
    assert not Document.objects.exists()
    assert not stored_files(media)


def test_a_damaged_file_is_not_served_and_is_reported(client, personas, patient, media, audit_rows):
    document = file_scanned(patient, personas.technician)
    (stored,) = stored_files(media)
    stored.write_bytes(PDF_BYTES.replace(b"612", b"999"))
    sign_in(client, personas.technician)
    response = client.get(f"/documents/{document.public_id}/versions/1/attachment/")
    assert response.status_code == 500
    assert "damaged" in response.content.decode()
    (alert,) = audit_rows(action=Action.SECURITY)
    assert alert.outcome == Outcome.DENIED


def test_an_old_versions_file_is_for_those_allowed(client, personas, patient, amended):
    other = sign_in(client, personas.other_clinician)
    assert other.get(f"/documents/{amended.public_id}/versions/1/attachment/").status_code == 403
    assert other.get(f"/documents/{amended.public_id}/versions/2/attachment/").status_code == 200


def test_the_signed_original_is_one_click_away_for_those_allowed(
    client, personas, patient, amended, audit_rows
):
    original = f"/documents/{amended.public_id}/?version=1"
    sign_in(client, personas.administrator)
    page = client.get(original).content.decode()
    assert "You are reading version 1, which was superseded" in page
    assert "Plan: chest X-ray" not in page and "Plan: fluids." in page
    history = client.get(f"/documents/{amended.public_id}/history/").content.decode()
    assert f'href="{original}"' in history.replace("&amp;", "&")
    other = sign_in(client.__class__(), personas.other_clinician)
    assert other.get(original).status_code == 403
    assert audit_rows(outcome=Outcome.DENIED, actor=personas.other_clinician)
    assert other.get(f"/documents/{amended.public_id}/?version=x").status_code == 404
    assert other.get(f"/documents/{amended.public_id}/?version=9").status_code == 404


# --- emergency access from a restricted document ------------------------------------------


@pytest.fixture
def hiv_note(personas, patient):
    return signed(
        patient,
        personas.clinician,
        title="HIV counselling",
        sensitivity=["hiv_sti"],
        body="Result discussed.",
    )


@pytest.fixture
def vip_coder(personas, patient):
    """A coder with a standing job relationship to a VIP patient: past the patient's
    restriction, but without documents.read_sensitive."""
    AccessGrant.objects.create(
        patient=patient,
        user=personas.coder,
        kind=AccessGrant.Kind.JOB,
        reason="coding",
        granted_at=NOW,
    )
    do_set_restriction(patient, "vip", reason="Public figure", acting_user=personas.administrator)
    return personas.coder


BTG = {"reason_code": "emergency_care", "details": "Unresponsive in the ED, need history"}


def test_break_the_glass_opens_a_restricted_document(client, hiv_note, vip_coder, audit_rows):
    sign_in(client, vip_coder)
    url = f"/documents/{hiv_note.public_id}/"
    page = client.get(url)
    assert page.status_code == 403
    assert "Break the glass and open the document" in page.content.decode()
    assert client.get(url + "break-the-glass/").status_code == 405
    wrong = client.post(url + "break-the-glass/", {**BTG, "password": "nope"})
    assert wrong.status_code == 400
    assert "That is not your password." in wrong.content.decode()
    assert audit_rows(action=Action.BREAK_THE_GLASS, outcome=Outcome.DENIED)
    response = client.post(url + "break-the-glass/", {**BTG, "password": PASSWORD})
    assert response["Location"] == url
    (grant,) = audit_rows(action=Action.BREAK_THE_GLASS, outcome=Outcome.ALLOWED)
    assert grant.patient_id == hiv_note.patient.public_id
    opened = client.get(url)
    assert opened.status_code == 200 and "Result discussed." in opened.content.decode()
    viewed = audit_rows(action=Action.VIEW, object_type="document", outcome=Outcome.ALLOWED)[-1]
    assert viewed.detail["sensitive_via"] == "break_the_glass"


def test_break_the_glass_opens_a_sensitive_document_of_an_unrestricted_patient(
    client, personas, hiv_note, audit_rows
):
    sign_in(client, personas.other_clinician)
    url = f"/documents/{hiv_note.public_id}/"
    assert "Break the glass" in client.get(url).content.decode()
    response = client.post(url + "break-the-glass/", {**BTG, "password": PASSWORD})
    assert response.status_code == 302
    (event,) = audit_rows(action=Action.BREAK_THE_GLASS, outcome=Outcome.ALLOWED)
    assert event.detail["document"] == str(hiv_note.public_id)
    assert client.get(url).status_code == 200


def test_break_the_glass_refusals(client, personas, hiv_note, vip_coder, audit_rows):
    url = f"/documents/{hiv_note.public_id}/break-the-glass/"
    assert client.post(url, BTG)["Location"].startswith("/accounts/login/")
    sign_in(client, personas.patient)
    assert client.post(url, {**BTG, "password": PASSWORD}).status_code == 403
    assert audit_rows(outcome=Outcome.DENIED, actor=personas.patient)
    outsider = sign_in(client.__class__(), personas.outsider)
    assert outsider.post(url, {**BTG, "password": PASSWORD}).status_code == 404
    assert not audit_rows(action=Action.BREAK_THE_GLASS, outcome=Outcome.ALLOWED)


def test_break_the_glass_is_not_needed_for_a_document_already_open(
    client, personas, hiv_note, audit_rows
):
    sign_in(client, personas.clinician)
    url = f"/documents/{hiv_note.public_id}/"
    assert client.post(url + "break-the-glass/", {**BTG, "password": PASSWORD})["Location"] == url
    assert not audit_rows(action=Action.BREAK_THE_GLASS)


def test_a_throwaway_draft_does_not_open_sensitive_documents(client, personas, patient, hiv_note):
    """Writing for a patient is not a treatment relationship (review finding H1)."""
    from documents.actions import do_create_document
    from documents.models import DocumentType

    do_create_document(
        patient,
        doc_type=DocumentType.objects.get(loinc_code="11506-3"),
        title="x",
        service_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5),
        acting_user=personas.other_clinician,
        body="x",
    )
    sign_in(client, personas.other_clinician)
    response = client.get(f"/documents/{hiv_note.public_id}/")
    assert response.status_code == 403
    assert b"Result discussed." not in response.content


def test_the_new_document_form_is_prefilled_from_a_deficiency_link(client, personas, patient):
    from encounters.actions import do_register_encounter
    from encounters.models import EncounterClass

    encounter = do_register_encounter(
        patient,
        facility=personas.facility,
        encounter_class=EncounterClass.INPATIENT,
        started_at=dt.datetime(2026, 3, 1, 14, tzinfo=dt.UTC),
        acting_user=personas.technician,
        attending=personas.clinician,
        unit="4 West",
    )
    sign_in(client, personas.clinician)
    url = f"/documents/new/{patient.public_id}/"
    response = client.get(url, {"encounter": str(encounter.public_id), "doc_type": "18842-5"})
    form = response.context["form"]
    assert form.initial["doc_type"].loinc_code == "18842-5"
    assert form.initial["title"] == "Discharge summary"
    assert form.initial["encounter"].public_id == encounter.public_id
    # Values that match nothing the user may choose are ignored, not an error.
    response = client.get(url, {"encounter": "not-a-uuid", "doc_type": "99999-9"})
    assert response.status_code == 200
    assert "doc_type" not in response.context["form"].initial
    assert "encounter" not in response.context["form"].initial
