"""The encounter abstract: opening it, coding diagnoses (POA) and procedures (date,
performer), the header, versions with who/when/why, optimistic concurrency, hold and
release, finalising (refused with the edit list, changing nothing) and the rebill; and
the door (coding.code / coding.review, patient visibility, audited)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.http import Http404

from accounts.access import AccessDenied
from audit.models import Action, Outcome
from coding import abstracts
from coding.abstract_access import access_abstract_page
from coding.models import AbstractStatus, AbstractVersion, Code
from encounters.models import Encounter, EncounterStatus
from recordroom.testing import register_patient

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2026, 2, 20, 15, 0, tzinfo=UTC)
ADMITTED = dt.datetime(2026, 2, 10, 14, 0, tzinfo=UTC)
DISCHARGED = dt.datetime(2026, 2, 14, 16, 0, tzinfo=UTC)
ALL_YEARS = [2023, 2024, 2025, 2026, 2027]

# code: (title, billable, parent, notes, fiscal years)
CODES = {
    "I50": ("Heart failure", False, "", {}, ALL_YEARS),
    "I502": ("Systolic (congestive) heart failure", False, "I50", {}, ALL_YEARS),
    "I5021": ("Acute systolic (congestive) heart failure", True, "I502", {}, ALL_YEARS),
    "I5020": ("Unspecified systolic (congestive) heart failure", True, "I502", {}, ALL_YEARS),
    "I10": ("Essential (primary) hypertension", True, "", {}, ALL_YEARS),
    "E11": (
        "Type 2 diabetes mellitus",
        False,
        "",
        {"excludes1": ["type 1 diabetes mellitus (E10.-)", "gestational diabetes (O24.4-)"]},
        ALL_YEARS,
    ),
    "E119": ("Type 2 diabetes mellitus without complications", True, "E11", {}, ALL_YEARS),
    "E1165": ("Type 2 diabetes mellitus with hyperglycemia", True, "E11", {}, ALL_YEARS),
    "E11A": ("Type 2 diabetes mellitus without complications in remission", True, "E11", {},
             [2026, 2027]),
    "E10": ("Type 1 diabetes mellitus", False, "", {}, ALL_YEARS),
    "E109": ("Type 1 diabetes mellitus without complications", True, "E10", {}, ALL_YEARS),
    "N17": ("Acute kidney failure", False, "", {}, ALL_YEARS),
    "N179": ("Acute kidney failure, unspecified", True, "N17", {}, ALL_YEARS),
    "J96": ("Respiratory failure", False, "", {}, ALL_YEARS),
    "J960": ("Acute respiratory failure", False, "J96", {}, ALL_YEARS),
    "J9601": ("Acute respiratory failure with hypoxia", True, "J960", {}, ALL_YEARS),
    "Z79": ("Long term (current) drug therapy", False, "", {}, ALL_YEARS),
    "Z7901": ("Long term (current) use of anticoagulants", True, "Z79", {}, ALL_YEARS),
    "V00": ("Pedestrian conveyance accident", False, "", {}, ALL_YEARS),
    "V0001XA": ("Pedestrian injured in collision with roller-skater, initial", True, "V00",
                {}, ALL_YEARS),
    "G01": ("Meningitis in bacterial diseases classified elsewhere", True, "", {}, ALL_YEARS),
    "A39": ("Meningococcal infection", False, "", {}, ALL_YEARS),
    "A390": ("Meningococcal meningitis", True, "A39", {}, ALL_YEARS),
    "K35": ("Acute appendicitis", False, "", {}, ALL_YEARS),
    "K358": ("Other and unspecified acute appendicitis", False, "K35", {}, ALL_YEARS),
    "K3580": ("Unspecified acute appendicitis", True, "K358", {}, ALL_YEARS),
    "N40": ("Benign prostatic hyperplasia", False, "", {}, ALL_YEARS),
    "N400": ("Benign prostatic hyperplasia without lower urinary tract symptoms", True, "N40",
             {}, ALL_YEARS),
    "P59": ("Neonatal jaundice from other and unspecified causes", False, "", {}, ALL_YEARS),
    "P599": ("Neonatal jaundice, unspecified", True, "P59", {}, ALL_YEARS),
    "Z38": ("Liveborn infants according to place of birth and type of delivery", False, "",
            {}, ALL_YEARS),
    "Z3800": ("Single liveborn infant, delivered vaginally", True, "Z38", {}, ALL_YEARS),
    "O80": ("Encounter for full-term uncomplicated delivery", True, "", {}, ALL_YEARS),
    "Z8546": ("Personal history of malignant neoplasm of prostate", True, "", {}, ALL_YEARS),
    "S62": ("Fracture at wrist and hand level", False, "",
            {"seventh_characters": {"A": "initial encounter for closed fracture",
                                    "D": "subsequent encounter", "S": "sequela"}}, ALL_YEARS),
    "S625": ("Fracture of thumb", False, "S62", {}, ALL_YEARS),
    "S6250": ("Fracture of unspecified phalanx of thumb", False, "S625", {}, ALL_YEARS),
    "S62501": ("Fracture of unspecified phalanx of right thumb", False, "S6250", {}, ALL_YEARS),
    "S62501A": ("Fracture of unspecified phalanx of right thumb, initial", True, "S62501", {},
                ALL_YEARS),
    "T07": ("Unspecified multiple injuries", False, "",
            {"seventh_characters": {"A": "initial encounter"}}, ALL_YEARS),
}  # fmt: skip
PCS = {
    "0DTJ4ZZ": "Resection of Appendix, Percutaneous Endoscopic Approach",
    "02703DZ": "Dilation of Coronary Artery, One Artery with Intraluminal Device, Perc",
}


def load_codes(*codes):
    """Code rows for the tests (all of them when none are named)."""
    rows = []
    for code in codes or CODES:
        title, billable, parent, notes, years = CODES[code]
        rows.append(
            Code(
                system="icd10cm",
                code=code,
                title=title,
                billable=billable,
                parent=parent,
                chapter="",
                notes=notes,
                fiscal_years=years,
                first_fiscal_year=min(years),
                last_fiscal_year=max(years),
                depth=len(code) - 2,
            )
        )
    if not codes:
        rows += [
            Code(system="icd10pcs", code=c, title=t, billable=True, fiscal_years=ALL_YEARS)
            for c, t in PCS.items()
        ]
    Code.objects.bulk_create(rows, ignore_conflicts=True)


def make_inpatient(personas, patient, *, admitted=ADMITTED, discharged=DISCHARGED, **fields):
    values = {
        "patient": patient,
        "facility": personas.facility,
        "visit_number": uuid.uuid4().hex[:12].upper(),
        "encounter_class": "IMP",
        "status": EncounterStatus.FINISHED if discharged else EncounterStatus.IN_PROGRESS,
        "service": "medicine",
        "admit_source": "7",
        "started_at": admitted,
        "ended_at": discharged,
        "disposition": "01" if discharged else "",
        "attending": personas.clinician,
        "created_at": admitted,
        "updated_at": discharged or admitted,
    }
    values.update(fields)
    return Encounter.objects.create(**values)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def codes(db):
    load_codes()


@pytest.fixture
def patient(personas):
    return register_patient(personas, sex_at_birth="M", birth_date=dt.date(1950, 6, 1))


@pytest.fixture
def encounter(personas, patient):
    return make_inpatient(personas, patient)


@pytest.fixture
def abstract(personas, encounter, codes):
    return abstracts.do_open_abstract(encounter, acting_user=personas.coder)


def coded(abstract, coder, *items):
    """Add diagnoses given as (code, poa)."""
    for code, poa in items:
        abstract = abstracts.do_add_diagnosis(abstract, code, poa=poa, acting_user=coder)
    return abstract


# --- opening --------------------------------------------------------------------------


def test_opening_creates_a_not_started_abstract_with_version_1(personas, encounter, audit_rows):
    abstract = abstracts.do_open_abstract(encounter, acting_user=personas.coder)
    assert abstract.status == AbstractStatus.NOT_STARTED
    assert abstract.version == 1
    assert (abstract.admit_source, abstract.disposition) == ("7", "01")
    (version,) = abstract.versions.all()
    assert (version.number, version.changed_by, version.reason) == (
        1,
        personas.coder,
        "abstract opened",
    )
    (event,) = audit_rows(object_type="coding.abstract")
    assert event.action == Action.CREATE and event.patient_id == encounter.patient.public_id
    again = abstracts.do_open_abstract(encounter, acting_user=personas.coder)
    assert again.pk == abstract.pk and again.version == 1


def test_an_encounter_not_yet_discharged_is_not_coded(personas, patient):
    in_house = make_inpatient(personas, patient, discharged=None)
    with pytest.raises(ValidationError, match="discharged"):
        abstracts.do_open_abstract(in_house, acting_user=personas.coder)


@pytest.mark.parametrize("who", ["technician", "clinician", "no_role", "roi_specialist"])
def test_it_refuses_a_user_without_coding_code_and_audits_it(personas, encounter, who, audit_rows):
    with pytest.raises(AccessDenied):
        abstracts.do_open_abstract(encounter, acting_user=getattr(personas, who))
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.object_type == "coding.abstract" and "coding.code" in event.reason
    assert not encounter.__class__.objects.get(pk=encounter.pk).__dict__.get("abstract")


def test_a_coder_of_another_facility_gets_404_and_it_is_audited(personas, encounter, audit_rows):
    from recordroom.testing import make_user

    stranger = make_user("carl.coder", "coder")
    stranger.facilities.add(personas.other_facility)
    with pytest.raises(Http404):
        abstracts.do_open_abstract(encounter, acting_user=stranger)
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert "no such encounter" in event.reason


# --- coding ---------------------------------------------------------------------------------


def test_codes_are_normalised_and_each_change_is_a_version(personas, abstract, audit_rows):
    coder = personas.coder
    abstract = abstracts.do_add_diagnosis(abstract, "i50.21", poa="y", acting_user=coder)
    abstract = abstracts.do_add_diagnosis(abstract, " e119 ", poa="Y", acting_user=coder)
    assert [(d.sequence, d.code, d.poa) for d in abstract.diagnoses.all()] == [
        (1, "I5021", "Y"),
        (2, "E119", "Y"),
    ]
    assert abstract.status == AbstractStatus.IN_PROGRESS
    assert abstract.coder == coder and abstract.version == 3
    numbers = list(abstract.versions.values_list("number", "reason"))
    assert numbers == [
        (1, "abstract opened"),
        (2, "diagnosis I50.21 added"),
        (3, "diagnosis E11.9 added"),
    ]
    last = abstract.versions.get(number=3)
    assert last.snapshot["diagnoses"][1] == {"sequence": 2, "code": "E119", "poa": "Y"}
    assert last.changed_by == coder and last.changed_at == NOW
    assert len(audit_rows(object_type="coding.abstract", action=Action.UPDATE)) == 2


@pytest.mark.parametrize("bad", ["", "11.9", "E1", "E11.9999X9", "ZZ!9", "0DTJ4ZZ"])
def test_a_malformed_code_is_refused_and_nothing_changes(personas, abstract, bad):
    with pytest.raises(ValidationError) as error:
        abstracts.do_add_diagnosis(abstract, bad, acting_user=personas.coder)
    assert error.value.message_dict["code"]
    abstract.refresh_from_db()
    assert abstract.version == 1 and not abstract.diagnoses.exists()


def test_a_bad_poa_is_refused(personas, abstract):
    with pytest.raises(ValidationError, match="Y, N, U, W or 1"):
        abstracts.do_add_diagnosis(abstract, "I10", poa="X", acting_user=personas.coder)


def test_reorder_make_principal_remove_and_poa(personas, abstract):
    coder = personas.coder
    abstract = coded(abstract, coder, ("E119", "Y"), ("I5021", "Y"), ("N179", "N"))
    abstract = abstracts.do_move_diagnosis(abstract, 2, 1, acting_user=coder)
    assert list(abstract.diagnoses.values_list("code", flat=True)) == ["I5021", "E119", "N179"]
    abstract = abstracts.do_set_poa(abstract, 3, "Y", acting_user=coder)
    abstract = abstracts.do_remove_diagnosis(abstract, 2, acting_user=coder)
    assert list(abstract.diagnoses.values_list("sequence", "code", "poa")) == [
        (1, "I5021", "Y"),
        (2, "N179", "Y"),
    ]
    abstract = abstracts.do_add_diagnosis(
        abstract, "J9601", poa="Y", principal=True, acting_user=coder
    )
    assert abstract.diagnoses.get(sequence=1).code == "J9601"
    with pytest.raises(ValidationError, match="no diagnosis 9"):
        abstracts.do_remove_diagnosis(abstract, 9, acting_user=coder)
    with pytest.raises(ValidationError, match="from 1 to 3"):
        abstracts.do_move_diagnosis(abstract, 2, 7, acting_user=coder)


def test_procedures_with_date_and_performer(personas, abstract):
    coder = personas.coder
    abstract = abstracts.do_add_procedure(
        abstract,
        "0dtj4zz",
        performed_on=dt.date(2026, 2, 11),
        performer=personas.clinician,
        acting_user=coder,
    )
    (row,) = abstract.procedures.all()
    assert (row.code, row.system, row.performed_on, row.performer) == (
        "0DTJ4ZZ",
        "icd10pcs",
        dt.date(2026, 2, 11),
        personas.clinician,
    )
    with pytest.raises(ValidationError, match="not an ICD-10-PCS code"):
        abstracts.do_add_procedure(abstract, "0DTJ4ZI", acting_user=coder)
    with pytest.raises(ValidationError, match="future"):
        abstracts.do_add_procedure(
            abstract, "02703DZ", performed_on=dt.date(2026, 3, 30), acting_user=coder
        )
    with pytest.raises(ValidationError, match="modifier"):
        abstracts.do_add_procedure(
            abstract, "99213", system="cpt", modifiers=["25X"], acting_user=coder
        )
    abstract = abstracts.do_add_procedure(abstract, "02703DZ", acting_user=coder)
    abstract = abstracts.do_move_procedure(abstract, 2, 1, acting_user=coder)
    assert list(abstract.procedures.values_list("code", flat=True)) == ["02703DZ", "0DTJ4ZZ"]
    abstract = abstracts.do_remove_procedure(abstract, 1, acting_user=coder)
    assert list(abstract.procedures.values_list("sequence", "code")) == [(1, "0DTJ4ZZ")]


def test_the_header_is_validated(personas, abstract):
    abstract = abstracts.do_set_header(
        abstract, admit_source="1", disposition="03", payer="Medicare", acting_user=personas.coder
    )
    assert (abstract.admit_source, abstract.disposition, abstract.payer) == ("1", "03", "Medicare")
    with pytest.raises(ValidationError) as error:
        abstracts.do_set_header(
            abstract, admit_source="Z", disposition="99", acting_user=personas.coder
        )
    assert set(error.value.message_dict) == {"admit_source", "disposition"}


def test_a_stale_version_is_refused_and_changes_nothing(personas, abstract):
    coder = personas.coder
    seen = abstract.version
    abstracts.do_add_diagnosis(abstract, "I5021", poa="Y", acting_user=coder, version=seen)
    with pytest.raises(abstracts.StaleAbstract, match="changed by someone else"):
        abstracts.do_add_diagnosis(abstract, "E119", poa="Y", acting_user=coder, version=seen)
    assert list(abstract.diagnoses.values_list("code", flat=True)) == ["I5021"]


def test_each_change_regroups_and_the_drg_moves(personas, abstract):
    coder = personas.coder
    abstract = coded(abstract, coder, ("I5021", "Y"))
    alone = abstract.drg
    abstract = coded(abstract, coder, ("J9601", "Y"))
    assert (alone, abstract.drg) == ("293", "291")
    assert abstract.drg_weight is not None and abstract.drg_gmlos is not None
    assert abstract.versions.get(number=abstract.version - 1).snapshot["drg"] == "293"


# --- hold, finalise, rebill ------------------------------------------------------------------


def test_hold_and_release(personas, abstract):
    coder = personas.coder
    held = abstracts.do_hold_abstract(abstract, acting_user=coder, reason="query 1 asked")
    assert held.status == AbstractStatus.ON_HOLD
    with pytest.raises(ValidationError, match="Give a reason"):
        abstracts.do_release_hold(held, acting_user=coder, reason=" ")
    released = abstracts.do_release_hold(held, acting_user=coder, reason="query answered")
    assert released.status == AbstractStatus.NOT_STARTED
    assert released.versions.order_by("-number").first().reason == "hold released: query answered"
    with pytest.raises(ValidationError, match="cannot be released"):
        abstracts.do_release_hold(released, acting_user=coder, reason="again")


def test_finalise_with_errors_is_refused_and_changes_nothing(personas, abstract, audit_rows):
    coder = personas.coder
    abstract = coded(abstract, coder, ("I5021", "Y"), ("E119", ""))
    before = (abstract.version, abstract.status, AbstractVersion.objects.count())
    start = len(audit_rows())
    with pytest.raises(abstracts.EditsFailed) as error:
        abstracts.do_finalise_abstract(abstract, acting_user=coder)
    assert [f.edit for f in error.value.findings] == ["poa-missing"]
    assert "E11.9 needs a present-on-admission indicator" in str(error.value)
    abstract.refresh_from_db()
    assert (abstract.version, abstract.status, AbstractVersion.objects.count()) == before
    assert abstract.finalised_at is None and len(audit_rows()) == start


def test_finalise_then_reopen_for_rebill(personas, abstract):
    coder = personas.coder
    abstract = coded(abstract, coder, ("I5021", "Y"), ("E119", "Y"))
    final = abstracts.do_finalise_abstract(abstract, acting_user=coder, version=abstract.version)
    assert final.status == AbstractStatus.FINAL
    assert (final.finalised_at, final.finalised_by) == (NOW, coder)
    assert final.drg == "293"
    with pytest.raises(ValidationError, match="reopen it"):
        abstracts.do_add_diagnosis(final, "N179", poa="N", acting_user=coder)
    with pytest.raises(ValidationError, match="Give a reason"):
        abstracts.do_reopen_abstract(final, acting_user=coder, reason="")
    reopened = abstracts.do_reopen_abstract(final, acting_user=coder, reason="late lab result")
    assert reopened.status == AbstractStatus.IN_PROGRESS
    reopened = abstracts.do_add_diagnosis(reopened, "N179", poa="N", acting_user=coder)
    rebilled = abstracts.do_finalise_abstract(reopened, acting_user=coder)
    assert rebilled.status == AbstractStatus.REBILLED
    reasons = list(rebilled.versions.values_list("reason", flat=True))
    assert "reopened for rebill: late lab result" in reasons and reasons[-1] == "finalised (rebill)"


def test_an_abstract_on_hold_is_not_finalised(personas, abstract):
    abstract = coded(abstract, personas.coder, ("I5021", "Y"))
    held = abstracts.do_hold_abstract(abstract, acting_user=personas.coder, reason="query")
    with pytest.raises(ValidationError, match="on hold"):
        abstracts.do_finalise_abstract(held, acting_user=personas.coder)


# --- the read door ------------------------------------------------------------------------


def test_a_reviewer_reads_and_the_read_is_audited(personas, abstract, audit_rows):
    page = access_abstract_page(personas.administrator, abstract.encounter.public_id)
    assert page.abstract == abstract and not page.may_code and not page.editable
    (event,) = audit_rows(action=Action.VIEW, object_type="coding.abstract")
    assert event.patient_id == abstract.patient.public_id and event.outcome == Outcome.ALLOWED


@pytest.mark.parametrize("who", ["technician", "clinician", "no_role"])
def test_the_read_door_refuses_others_and_audits(personas, abstract, who, audit_rows):
    with pytest.raises(AccessDenied):
        access_abstract_page(getattr(personas, who), abstract.encounter.public_id)
    (event,) = audit_rows(outcome=Outcome.DENIED)
    assert event.object_type == "coding.abstract"


def test_an_unknown_encounter_is_404_and_audited(personas, audit_rows):
    with pytest.raises(Http404):
        access_abstract_page(personas.coder, uuid.uuid4())
    assert audit_rows(outcome=Outcome.DENIED)
