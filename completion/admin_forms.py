"""Forms of the administrators' screens: a completion rule (with one typed field per
parameter its kind reads, from ``completion.rules.PARAMETERS``, never raw JSON),
retiring a rule, and the completion policy."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms

from completion.models import RuleKind
from encounters.models import EncounterClass

PARAM_PREFIX = "param_"
ALL = ""
_SPLIT = re.compile(r"[\n,]+")


def _list_text(value) -> str:
    return ", ".join(str(v) for v in value or [])


def _parameter_field(spec) -> forms.Field:
    common = {"help_text": spec.help, "label": ""}
    if spec.type == "int":
        return forms.IntegerField(min_value=spec.low, max_value=spec.high, **common)
    if spec.type == "optional_int":
        return forms.IntegerField(min_value=spec.low, max_value=spec.high, required=False, **common)
    if spec.type == "bool":
        return forms.BooleanField(required=False, **common)
    if spec.type == "choice":
        return forms.ChoiceField(choices=[(c, c.capitalize()) for c in spec.choices], **common)
    if spec.type == "url":
        return forms.CharField(max_length=200, **common)
    # codes and words: a list, typed as text separated by commas or lines
    return forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        **{**common, "help_text": f"{spec.help} Separate entries with commas or new lines."},
    )


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


class RuleForm(forms.Form):
    """A rule version. ``kind`` fixes the parameter fields; ``facilities`` are the
    facilities the user may scope a rule to; ``document_types`` the active types."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    citation = forms.CharField(
        max_length=120, required=False, help_text="The regulation or bylaw, e.g. 42 CFR 482.24(c)."
    )
    encounter_classes = forms.MultipleChoiceField(
        choices=EncounterClass.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Encounter classes it applies to",
        error_messages={"required": "Choose at least one encounter class."},
    )
    facility = forms.ChoiceField(
        required=False, help_text="A facility's own version wins over the one for all."
    )
    document_type = forms.ChoiceField(required=False, label="Document type")
    effective_from = forms.DateField(
        label="Effective from",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The first day (admission date) the new version applies.",
    )
    reason = forms.CharField(
        max_length=300, min_length=5, help_text="Why the rule changes: kept with the version."
    )

    def __init__(
        self, *args, kind: str, facilities, document_types, allow_all: bool = True, **kwargs
    ):
        from completion.rules import KINDS_WITH_DOCUMENT_TYPE, PARAMETERS

        super().__init__(*args, **kwargs)
        self.kind = kind
        self.fields["facility"].choices = ([(ALL, "All facilities")] if allow_all else []) + [
            (str(f.public_id), f.name) for f in facilities
        ]
        if kind in KINDS_WITH_DOCUMENT_TYPE:
            self.fields["document_type"].choices = [(ALL, "Choose a document type")] + [
                (t.loinc_code, f"{t.display} ({t.loinc_code})") for t in document_types
            ]
            self.fields["document_type"].required = True
            self.fields["document_type"].help_text = "The document the rule looks for."
        else:
            del self.fields["document_type"]
        self.specs = PARAMETERS.get(kind, {})
        for name, spec in self.specs.items():
            field = _parameter_field(spec)
            field.label = _label(name)
            self.fields[PARAM_PREFIX + name] = field
            if name not in self.initial.get("parameters", {}) and PARAM_PREFIX + name not in (
                self.initial
            ):
                self.initial[PARAM_PREFIX + name] = (
                    _list_text(spec.default) if spec.type in ("codes", "words") else spec.default
                )
        for name, value in self.initial.pop("parameters", {}).items():
            spec = self.specs.get(name)
            if spec is not None:
                self.initial[PARAM_PREFIX + name] = (
                    _list_text(value) if spec.type in ("codes", "words") else value
                )
        self.order_fields(
            ["name", "description", "citation", "encounter_classes", "facility", "document_type"]
            + [PARAM_PREFIX + n for n in self.specs]
            + ["effective_from", "reason"]
        )

    @property
    def parameter_fields(self):
        return [self[PARAM_PREFIX + name] for name in self.specs]

    @property
    def rule_fields(self):
        names = ["name", "description", "citation", "encounter_classes", "facility"]
        if "document_type" in self.fields:
            names.append("document_type")
        return [self[n] for n in names]

    def parameters(self) -> dict:
        """The parameters as the rule stores them (lists as lists)."""
        result = {}
        for name, spec in self.specs.items():
            value = self.cleaned_data.get(PARAM_PREFIX + name)
            if spec.type in ("codes", "words"):
                value = [" ".join(v.split()) for v in _SPLIT.split(value or "") if v.strip()]
            result[name] = value
        return result

    def error_for_parameter(self, message: str) -> None:
        """Put an action's message about a parameter on that parameter's field."""
        for name in self.specs:
            if message.startswith((name + " ", name + ":", f"'{name}'")):
                self.add_error(PARAM_PREFIX + name, message)
                return
        self.add_error(None, message)


class RuleAddForm(RuleForm):
    code = forms.SlugField(
        max_length=60,
        help_text="A short stable name (letters, digits, hyphens), kept across versions.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_fields(["code", *[n for n in self.fields if n != "code"]])
        self.fields["effective_from"].help_text = "The first day (admission date) it applies."
        self.fields["reason"].help_text = "Why the rule is added: kept with it."

    @property
    def rule_fields(self):
        return [self["code"], *super().rule_fields]


class RuleKindForm(forms.Form):
    kind = forms.ChoiceField(choices=RuleKind.choices, label="What the rule checks")


class RetireRuleForm(forms.Form):
    last_day = forms.DateField(
        label="Last day it applies",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    reason = forms.CharField(max_length=300, min_length=5)


class PolicyForm(forms.Form):
    completion_days = forms.IntegerField(
        min_value=1,
        max_value=365,
        label="Days to complete a record after discharge",
        help_text="The medical staff bylaws' limit; a record still incomplete after it is delinquent.",
    )
    verbal_order_hours = forms.IntegerField(
        min_value=1,
        max_value=720,
        label="Hours to authenticate a verbal or telephone order",
        help_text="The state's limit.",
    )
    delinquency_alert_percent = forms.DecimalField(
        min_value=Decimal("0.01"),
        max_value=1000,
        max_digits=6,
        decimal_places=2,
        label="Delinquency rate alert (%)",
        help_text="Delinquent records ÷ average monthly discharges × 100 above which the "
        "rate is flagged (the Joint Commission's former 50 %).",
    )
    suspension_days = forms.IntegerField(
        min_value=0,
        max_value=365,
        label="Days delinquent before a clinician is listed for suspension",
    )
    reminder_days = forms.CharField(
        max_length=100,
        required=False,
        label="Reminder days",
        help_text="Days before a record becomes delinquent when clinicians are reminded, "
        "e.g. 7, 3, 1. Empty: no reminders.",
    )
    effective_from = forms.DateField(
        label="Effective from",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Records discharged from this day are governed by the new policy.",
    )
    reason = forms.CharField(max_length=300, min_length=5)

    def clean_reminder_days(self) -> list[int]:
        text = self.cleaned_data.get("reminder_days") or ""
        days = []
        for part in _SPLIT.split(text.replace(";", ",")):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit():
                raise forms.ValidationError(f"{part[:10]!r} is not a whole number of days.")
            number = int(part)
            if not 0 <= number <= 365:
                raise forms.ValidationError("Reminder days are between 0 and 365.")
            if number not in days:
                days.append(number)
        return sorted(days, reverse=True)

    def clean(self):
        data = super().clean()
        completion = data.get("completion_days")
        days = data.get("reminder_days") or []
        if completion and any(d >= completion for d in days):
            self.add_error(
                "reminder_days",
                f"A reminder must come before delinquency: fewer than {completion} days.",
            )
        return data
