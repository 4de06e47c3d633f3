"""The query layer of the chart: what the chart page shows about one patient, gathered
in a small, fixed number of queries however long the record is.

The caller has already been through the patient's door (patients.access.access_patient,
clinical scope), which checked and audited the access. Encounters, documents and
clinical data are read through their apps' access functions.

Layout for a long record (say 200 encounters and 2,000 documents): the encounter
timeline is paged, 20 encounters a page, newest first. Each encounter is one line with
its documents counted by type; opening it lists its documents grouped by type. Only
the documents of the page's encounters (and those filed to no encounter, which have
their own section) are fetched, in one query, so the work follows what the page
shows, not the length of the record. Sensitive documents the user may not read are
listed with their encounter as "Restricted document" (type, date and status only).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from itertools import groupby

from accounts.access import has_permission
from clinical.access import ClinicalGroup, allergies_of, clinical_for_chart
from documents.access import documents_for_chart
from documents.permissions import DocumentsPermission
from encounters.access import encounter_counts, encounters_for_chart, may_manage
from encounters.models import EncounterStatus
from patients.access import facility_ids
from patients.models import IdentifierKind, Patient
from recordroom import clock

ENCOUNTERS_PER_PAGE = 20


@dataclass
class DocumentTypeGroup:
    """The documents of one type (by LOINC document code) in one encounter."""

    doc_type: object
    documents: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.doc_type.display


def group_documents_by_type(documents) -> list[DocumentTypeGroup]:
    """Documents (documents.access.ChartDocument rows) grouped by type, types in
    alphabetical order, newest first within a type."""
    ordered = sorted(
        documents,
        key=lambda d: (d.doc_type.display, d.doc_type.pk, -d.service_at.timestamp()),
    )
    return [
        DocumentTypeGroup(doc_type=docs[0].doc_type, documents=docs)
        for docs in (list(g) for _, g in groupby(ordered, key=lambda d: d.doc_type.pk))
    ]


@dataclass
class TimelinePage:
    """One page of the encounter timeline (the counts come from one aggregate query,
    so the page does not count again)."""

    number: int
    count: int
    per_page: int = ENCOUNTERS_PER_PAGE

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.count // self.per_page))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page

    @property
    def start_index(self) -> int:
        return self.offset + 1 if self.count else 0

    @property
    def end_index(self) -> int:
        return min(self.offset + self.per_page, self.count)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1


@dataclass
class TimelineEntry:
    encounter: object
    document_groups: list[DocumentTypeGroup]
    open: bool = False

    @property
    def document_count(self) -> int:
        return sum(len(g.documents) for g in self.document_groups)


@dataclass
class Banner:
    patient: Patient
    mrns: list[tuple[str, str]]
    age: str
    allergies: list
    allergy_more: int

    @property
    def restriction(self) -> str:
        return self.patient.get_restriction_display() if self.patient.restriction else ""


@dataclass
class Chart:
    patient: Patient
    banner: Banner
    page: TimelinePage
    timeline: list[TimelineEntry]
    unlinked: list[DocumentTypeGroup]
    clinical: list[ClinicalGroup]
    void_count: int
    show_void: bool
    can_new_encounter: bool
    can_new_document: bool

    @property
    def unlinked_count(self) -> int:
        return sum(len(g.documents) for g in self.unlinked)


def age_text(birth_date: dt.date, on: dt.date) -> str:
    """Age as a chart shows it: years, or months under two, or days under a month."""
    years = on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))
    if years >= 2:
        return f"{years} y"
    months = (
        (on.year - birth_date.year) * 12 + on.month - birth_date.month - (on.day < birth_date.day)
    )
    if months >= 1:
        return f"{months} mo"
    return f"{(on - birth_date).days} d"


def _banner(user, patient: Patient, clinical: list[ClinicalGroup]) -> Banner:
    mrns = [
        (identifier.facility.name if identifier.facility_id else "", identifier.value)
        for identifier in patient.identifiers.filter(
            kind=IdentifierKind.MRN, active=True, facility_id__in=facility_ids(user)
        )
        .select_related("facility")
        .order_by("facility__name", "pk")
    ]
    on = patient.deceased_at.date() if patient.deceased_at else clock.now().date()
    allergies = allergies_of(clinical)
    group = next((g for g in clinical if g.key == "allergies"), None)
    return Banner(
        patient=patient,
        mrns=mrns,
        age=age_text(patient.birth_date, on),
        allergies=allergies,
        allergy_more=group.more if group else 0,
    )


def _page_number(value) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 1


def build_chart(user, patient: Patient, *, page=1, show_void: bool = False) -> Chart:
    """Everything the chart page shows, for a patient the user was let in to."""
    clinical = clinical_for_chart(user, patient)
    standing, void = encounter_counts(patient)
    count = standing + void if show_void else standing
    number = min(_page_number(page), max(1, -(-count // ENCOUNTERS_PER_PAGE)))
    current_page = TimelinePage(number=number, count=count)
    encounters = list(
        encounters_for_chart(patient, include_void=show_void)[
            current_page.offset : current_page.offset + current_page.per_page
        ]
    )
    # One query for what the page shows: the documents of its encounters and the
    # documents filed to no encounter, whatever the length of the rest of the record.
    # A sensitive document the user may not read stays with its encounter (its
    # encounter, type, date and status are not secret), listed as "Restricted document".
    by_encounter: dict[int | None, list] = {}
    for document in documents_for_chart(user, patient, encounters=encounters, unfiled=True):
        by_encounter.setdefault(document.encounter_id, []).append(document)
    timeline = [
        TimelineEntry(
            encounter=encounter,
            document_groups=group_documents_by_type(by_encounter.get(encounter.pk, [])),
            open=encounter.status == EncounterStatus.IN_PROGRESS,
        )
        for encounter in encounters
    ]
    if timeline and current_page.number == 1 and not any(t.open for t in timeline):
        timeline[0].open = True
    return Chart(
        patient=patient,
        banner=_banner(user, patient, clinical),
        page=current_page,
        timeline=timeline,
        unlinked=group_documents_by_type(by_encounter.get(None, [])),
        clinical=clinical,
        void_count=void,
        show_void=show_void,
        can_new_encounter=may_manage(user),
        can_new_document=has_permission(user, DocumentsPermission.AUTHOR)
        or has_permission(user, DocumentsPermission.FILE),
    )
