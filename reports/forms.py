"""The dashboard's filters (from the query string, so a view can be bookmarked) and the
bed-count form."""

from __future__ import annotations

import datetime as dt
import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from reports.tables import Filters

MAX_RANGE_DAYS = 3 * 366
SERVICE_PATTERN = re.compile(r"^[\w .,&/()'-]{1,60}$")
POPULATIONS = [
    ("", "Adults and children (newborns apart)"),
    ("newborn", "Newborns"),
    ("all", "Everyone (totals)"),
]


def default_range(today: dt.date) -> tuple[dt.date, dt.date]:
    """Twelve calendar months ending with the current one (to today)."""
    year, month = today.year, today.month - 11
    if month < 1:
        year, month = year - 1, month + 12
    return dt.date(year, month, 1), today


class FilterForm(forms.Form):
    start = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    facility = forms.ChoiceField(label="Facility", required=False)
    service = forms.CharField(
        label="Service",
        required=False,
        max_length=60,
        help_text="e.g. medicine, surgery; empty for every service.",
    )
    population = forms.ChoiceField(label="Population", required=False, choices=POPULATIONS)

    def __init__(self, *args, facilities, today: dt.date | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.facilities = list(facilities)
        self.today = today or timezone.localdate()
        self.fields["facility"].choices = [
            ("", "All my facilities"),
            *[(str(f.public_id), f.name) for f in self.facilities],
        ]

    def clean_service(self) -> str:
        service = (self.cleaned_data.get("service") or "").strip()
        if service and not SERVICE_PATTERN.match(service):
            raise ValidationError("Give a service name: letters, digits, spaces and - . , & / ( ).")
        return service

    def clean(self):
        data = super().clean()
        if "start" in self.errors or "end" in self.errors:
            return data
        end = data.get("end") or self.today
        start = data.get("start") or default_range(end)[0]
        if end < start:
            raise ValidationError("The end of the range is before its start.")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise ValidationError("Choose a range of at most three years.")
        data["start"], data["end"] = start, end
        return data

    def filters(self) -> Filters:
        data = self.cleaned_data
        chosen = data.get("facility") or ""
        facility = next((f for f in self.facilities if str(f.public_id) == chosen), None)
        return Filters(
            start=data["start"],
            end=data["end"],
            facility=facility,
            service=data.get("service") or "",
            population=data.get("population") or "",
        )


class BedCapacityForm(forms.Form):
    facility = forms.ChoiceField(label="Facility")
    unit = forms.CharField(label="Unit", max_length=40, help_text="e.g. 4 West, ICU, Nursery.")
    beds = forms.IntegerField(
        label="Staffed beds", min_value=0, max_value=5000, help_text="0 closes the unit."
    )
    newborn = forms.BooleanField(label="Newborn bassinets (a nursery)", required=False)
    effective_from = forms.DateField(
        label="In force from", widget=forms.DateInput(attrs={"type": "date"})
    )
    reason = forms.CharField(label="Reason for the change", max_length=300)

    def __init__(self, *args, facilities, **kwargs):
        super().__init__(*args, **kwargs)
        self.facilities = list(facilities)
        self.fields["facility"].choices = [(str(f.public_id), f.name) for f in self.facilities]

    def clean_unit(self) -> str:
        unit = " ".join((self.cleaned_data.get("unit") or "").split())
        if not unit:
            raise ValidationError("Name the unit.")
        return unit

    def action_kwargs(self) -> dict:
        data = self.cleaned_data
        facility = next(f for f in self.facilities if str(f.public_id) == data["facility"])
        return {
            "facility": facility,
            "unit": data["unit"],
            "beds": data["beds"],
            "newborn": bool(data.get("newborn")),
            "effective_from": data["effective_from"],
            "reason": data["reason"].strip(),
        }
