"""Background work of chart completion, run by ``recordroom worker`` (immediately, in
the tests). Arguments are public ids, never patient data."""

from __future__ import annotations

from django_tasks import task


@task()
def analyse_record(encounter_public_id: str, trigger: str = "change") -> dict:
    """Analyse one encounter's record (after a discharge or a document change)."""
    from completion.analysis import analyse_encounter
    from encounters.models import Encounter

    encounter = Encounter.objects.filter(public_id=encounter_public_id).first()
    if encounter is None:
        return {"encounter": encounter_public_id, "skipped": "no such encounter"}
    return analyse_encounter(encounter, trigger=trigger).as_dict()


@task()
def reanalyse_open_records(
    *, facility_id: int | None, since: str, trigger: str, encounter_classes: list | None = None
) -> dict:
    """Re-analyse every open record a rule or policy change may affect (see
    ``completion.rule_actions.affected_encounters``)."""
    import datetime as dt

    from completion.analysis import analyse_encounter
    from completion.rule_actions import affected_encounters

    counts = {"encounters": 0, "opened": 0, "closed": 0, "voided": 0}
    for encounter in affected_encounters(
        facility_id=facility_id,
        since=dt.date.fromisoformat(since),
        encounter_classes=encounter_classes,
    ):
        result = analyse_encounter(encounter, trigger=trigger)
        counts["encounters"] += 1
        counts["opened"] += result.opened
        counts["closed"] += result.closed
        counts["voided"] += result.voided
    return counts
