"""HTML input for the encounter screens. The rules live in encounters.actions; these
forms only read what was typed, and carry the actions' errors back to their fields."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from encounters.actions import CORRECTABLE_FIELDS
from encounters.models import AdmitSource, Disposition, EncounterClass, EncounterStatus

_MINUTE = "%Y-%m-%dT%H:%M"


class MomentField(forms.DateTimeField):
    """A date and time to the minute, typed in the facility's local time."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format=_MINUTE)

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "error_messages",
            {"invalid": "Enter a date and time, e.g. 2025-03-14 09:30."},
        )
        super().__init__(**kwargs)


def add_action_errors(form: forms.Form, error: ValidationError) -> None:
    """Put an action's errors (keyed by its field names) on the form's fields, or at the
    top of the form for the rest."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for key, messages in error.message_dict.items():
        target = key if key in form.fields else None
        for message in messages:
            form.add_error(target, message)


def _clinician_choices(clinicians) -> list[tuple[str, str]]:
    return [("", "— none —")] + [
        (str(c.public_id), f"{c.display_name}{f' (NPI {c.npi})' if c.npi else ''}")
        for c in clinicians
    ]


class _AttendingMixin:
    def _setup_attending(self, clinicians) -> None:
        self._clinicians = {str(c.public_id): c for c in clinicians}
        self.fields["attending"].choices = _clinician_choices(clinicians)

    def clean_attending(self):
        value = self.cleaned_data.get("attending") or ""
        return self._clinicians.get(value)


class EncounterForm(_AttendingMixin, forms.Form):
    facility = forms.ChoiceField()
    encounter_class = forms.ChoiceField(label="Class", choices=EncounterClass.choices)
    status = forms.ChoiceField(
        choices=[
            (EncounterStatus.IN_PROGRESS, "In progress: the patient has arrived or is admitted"),
            (EncounterStatus.PLANNED, "Planned: pre-registered for a later date"),
        ],
        initial=EncounterStatus.IN_PROGRESS,
    )
    started_at = MomentField(label="Admitted / arrived (expected, if planned)")
    visit_number = forms.CharField(
        required=False,
        max_length=32,
        help_text="Leave blank and the facility's next number is assigned.",
    )
    attending = forms.ChoiceField(required=False)
    service = forms.CharField(required=False, max_length=60, help_text="e.g. medicine, surgery")
    admit_source = forms.ChoiceField(required=False, choices=AdmitSource.choices)
    unit = forms.CharField(required=False, max_length=40)
    bed = forms.CharField(required=False, max_length=20)
    reason = forms.CharField(label="Reason for visit", required=False, max_length=200)

    def __init__(self, *args, facilities, clinicians, **kwargs):
        super().__init__(*args, **kwargs)
        self._facilities = {str(f.public_id): f for f in facilities}
        self.fields["facility"].choices = [(str(f.public_id), f.name) for f in facilities]
        if len(facilities) == 1:
            self.fields["facility"].initial = str(facilities[0].public_id)
        self._setup_attending(clinicians)

    def clean_facility(self):
        return self._facilities[self.cleaned_data["facility"]]

    def action_kwargs(self) -> dict:
        return dict(self.cleaned_data)


class StartForm(forms.Form):
    started_at = MomentField(label="Arrived / admitted at")
    unit = forms.CharField(required=False, max_length=40, help_text="Blank keeps the booked unit.")
    bed = forms.CharField(required=False, max_length=20)


class TransferForm(forms.Form):
    unit = forms.CharField(max_length=40, label="To unit")
    bed = forms.CharField(required=False, max_length=20, label="To bed")
    at = MomentField(label="Transferred at")


class DischargeForm(forms.Form):
    ended_at = MomentField(label="Discharged / left at")
    disposition = forms.ChoiceField(
        required=False,
        choices=Disposition.choices,
        help_text="Required for inpatients.",
    )


class CancelDischargeForm(forms.Form):
    reason = forms.CharField(max_length=250, help_text="Why the discharge did not happen.")


class CancelForm(forms.Form):
    status = forms.ChoiceField(
        label="Mark as",
        choices=[
            (EncounterStatus.CANCELLED, "Cancelled: the visit or admission did not take place"),
            (
                EncounterStatus.ENTERED_IN_ERROR,
                "Entered in error: registered by mistake (e.g. on the wrong patient)",
            ),
        ],
    )
    reason = forms.CharField(max_length=250)


class CorrectForm(_AttendingMixin, forms.Form):
    """Every correctable field, shown with the values as recorded."""

    visit_number = forms.CharField(max_length=32)
    encounter_class = forms.ChoiceField(label="Class", choices=EncounterClass.choices)
    started_at = MomentField(label="Admitted / arrived")
    ended_at = MomentField(label="Discharged / left", required=False)
    disposition = forms.ChoiceField(required=False, choices=Disposition.choices)
    attending = forms.ChoiceField(required=False)
    service = forms.CharField(required=False, max_length=60)
    admit_source = forms.ChoiceField(required=False, choices=AdmitSource.choices)
    unit = forms.CharField(
        required=False, max_length=40, help_text="Corrects the current location."
    )
    bed = forms.CharField(required=False, max_length=20)
    reason = forms.CharField(label="Reason for visit", required=False, max_length=200)
    correction_reason = forms.CharField(
        label="Why is this corrected?", max_length=250, help_text="Kept with the new version."
    )

    def __init__(self, *args, encounter, clinicians, **kwargs):
        self.encounter = encounter
        initial = {key: getattr(encounter, key) for key in CORRECTABLE_FIELDS}
        initial["attending"] = str(encounter.attending.public_id) if encounter.attending else ""
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        attending = [encounter.attending] if encounter.attending else []
        self._setup_attending(attending + [c for c in clinicians if c.pk != encounter.attending_id])
        if encounter.status != EncounterStatus.FINISHED:
            # Only a discharge has a time and a disposition to correct.
            del self.fields["ended_at"]
            del self.fields["disposition"]

    def changes(self) -> dict:
        """The fields whose typed value differs from the record. Times are typed to the
        minute, so a time equal to the recorded one to the minute is no change."""
        changes = {}
        for key in CORRECTABLE_FIELDS:
            if key not in self.cleaned_data:
                continue
            value = self.cleaned_data[key]
            recorded = getattr(self.encounter, key)
            if (
                isinstance(recorded, dt.datetime)
                and isinstance(value, dt.datetime)
                and _to_minute(recorded) == _to_minute(value)
            ):
                continue
            if key == "attending":
                if (value.pk if value else None) == self.encounter.attending_id:
                    continue
            elif (value or "") == (recorded or ""):
                continue
            changes[key] = value
        return changes


def _to_minute(moment: dt.datetime) -> dt.datetime:
    return timezone.localtime(moment).replace(second=0, microsecond=0)
