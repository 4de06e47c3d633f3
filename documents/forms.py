"""HTML input for the document screens. Forms parse and present; the rules (who may,
what is valid, what the record keeps) live in documents.actions, whose errors the views
put back on these forms."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from documents.actions import late_entry_hours
from documents.integrity import max_upload_bytes
from documents.models import DocumentSource, SensitiveCategory, VersionKind
from recordroom import clock

_BODY_WIDGET = forms.Textarea(
    attrs={"rows": 18, "class": "document-body-input", "spellcheck": "true"}
)


def _upload_help() -> str:
    return (
        f"PDF, PNG, JPEG or TIFF, at most {max_upload_bytes() // (1024 * 1024)} MB. "
        "Checked by its content, kept with its SHA-256."
    )


class DocumentTypeChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.display} ({obj.loinc_code})"


class EncounterChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return (
            f"{obj.visit_number} · {obj.get_encounter_class_display()} · {obj.started_at:%Y-%m-%d}"
        )


class NewDocumentForm(forms.Form):
    source = forms.ChoiceField(label="Source", choices=DocumentSource.choices)
    doc_type = DocumentTypeChoice(label="Document type", queryset=None, empty_label="Choose…")
    title = forms.CharField(label="Title", max_length=200)
    encounter = EncounterChoice(
        label="Encounter", queryset=None, required=False, empty_label="Not tied to an encounter"
    )
    service_at = forms.DateTimeField(
        label="Date and time of service",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="When the care it records happened.",
    )
    late_entry = forms.BooleanField(
        label="Late entry (documenting care after the fact)",
        required=False,
    )
    sensitivity = forms.MultipleChoiceField(
        label="Sensitive categories",
        choices=SensitiveCategory.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Content in these categories is shown only to those allowed to read it.",
    )
    body = forms.CharField(label="Text", required=False, widget=_BODY_WIDGET, strip=False)
    attachment = forms.FileField(label="File", required=False)

    def __init__(self, *args, sources, doc_types, encounters, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [
            (value, label) for value, label in DocumentSource.choices if value in sources
        ]
        if len(sources) == 1:
            self.fields["source"].initial = sources[0]
        self.fields["doc_type"].queryset = doc_types
        self.fields["encounter"].queryset = encounters
        self.fields["service_at"].initial = clock.now().replace(second=0, microsecond=0)
        self.fields["attachment"].help_text = _upload_help()
        self.fields["late_entry"].help_text = (
            f"Marked anyway when entered more than {late_entry_hours()} hours after the date "
            "of service."
        )


class ReviseDraftForm(forms.Form):
    body = forms.CharField(label="Text", required=False, widget=_BODY_WIDGET, strip=False)
    attachment = forms.FileField(
        label="Replace the file", required=False, help_text="Leave empty to keep the current file."
    )


class SignForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Signing authenticates this version as yours, with the date and time.",
    )


class AmendForm(forms.Form):
    kind = forms.ChoiceField(
        label="Kind of change",
        choices=[
            (VersionKind.AMENDMENT, "Amendment (adds or clarifies)"),
            (VersionKind.CORRECTION, "Correction (fixes an error)"),
        ],
        widget=forms.RadioSelect,
        initial=VersionKind.AMENDMENT,
    )
    reason = forms.CharField(label="Reason", max_length=300)
    body = forms.CharField(label="Text", required=False, widget=_BODY_WIDGET, strip=False)
    attachment = forms.FileField(
        label="Replace the file", required=False, help_text="Leave empty to keep the current file."
    )


class AddendumForm(forms.Form):
    body = forms.CharField(label="Addendum", widget=_BODY_WIDGET, strip=False)
    late_entry = forms.BooleanField(
        label="Late entry (documenting care after the fact)", required=False
    )


class EnteredInErrorForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=300,
        help_text="For example: filed to the wrong patient; duplicate of another document.",
    )


def apply_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put an action's ValidationError on the form: on the field it names, or on top."""
    if hasattr(exc, "error_dict"):
        for key, errors in exc.error_dict.items():
            form.add_error(key if key in form.fields else None, errors)
    else:
        form.add_error(None, exc)
