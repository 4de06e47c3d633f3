"""Signal receivers: re-analyse a record when its encounter, one of its documents, or
one of its diagnoses or procedures changes.

The signals are sent inside the changing action's transaction; the receivers only
schedule :func:`completion.tasks.analyse_record` with ``transaction.on_commit``, so an
action never fails or waits because of the analysis, and a rolled-back change
schedules nothing. Importers that write encounters, documents or clinical entries
by other means call :func:`schedule_analysis` themselves.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from clinical.models import CODED_SOURCE
from clinical.signals import clinical_entry_changed
from documents.signals import document_changed
from encounters.signals import encounter_changed

# Encounter changes that can change what the record lacks. Registration, check-in and
# transfers cannot: nothing is due from them until time passes (the daily
# `recordroom completion analyse --all-open` catches deadlines passing).
ENCOUNTER_CHANGES = {
    "discharged",
    "discharge_cancelled",
    "corrected",
    "cancelled",
    "entered_in_error",
}


def schedule_analysis(encounter, *, trigger: str) -> None:
    """Analyse ``encounter``'s record once the current transaction commits."""
    if encounter is None:
        return
    public_id = str(encounter.public_id)

    def enqueue() -> None:
        from completion.tasks import analyse_record

        analyse_record.enqueue(public_id, trigger)

    transaction.on_commit(enqueue)


@receiver(encounter_changed, dispatch_uid="completion.encounter_changed")
def on_encounter_changed(sender, *, encounter, change, **kwargs) -> None:
    if change in ENCOUNTER_CHANGES:
        schedule_analysis(encounter, trigger=f"encounter {change}")


@receiver(document_changed, dispatch_uid="completion.document_changed")
def on_document_changed(sender, *, document, change, **kwargs) -> None:
    if document.encounter_id is not None:
        schedule_analysis(document.encounter, trigger=f"document {change}")


@receiver(clinical_entry_changed, dispatch_uid="completion.clinical_entry")
def on_clinical_entry_changed(sender, *, entry, change, **kwargs) -> None:
    """A diagnosis or procedure recorded, corrected or entered in error (the final
    diagnosis, H&P-before-surgery and operative report rules read them)."""
    if entry.source == CODED_SOURCE:
        return  # the coder's final codes: no completion rule reads them
    if entry.encounter_id is not None and entry.resource_type in ("Condition", "Procedure"):
        schedule_analysis(entry.encounter, trigger=f"{entry.resource_type.lower()} saved")
