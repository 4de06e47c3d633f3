"""HTML input for amendment requests: logging, extension, acceptance, denial, the
statement of disagreement and the rebuttal."""

from __future__ import annotations

from django import forms

from roi.amendments import DENIAL_BASIS_LABELS
from roi.models import StatementKind

DATE = forms.DateInput(attrs={"type": "date"})


class LogAmendmentForm(forms.Form):
    received_on = forms.DateField(label="Date received", widget=DATE)
    documents = forms.MultipleChoiceField(
        label="Documents the patient asks to amend", widget=forms.CheckboxSelectMultiple
    )
    requested_change = forms.CharField(
        label="The change asked for", max_length=10_000, widget=forms.Textarea(attrs={"rows": 4})
    )
    requester_reason = forms.CharField(
        label="The patient's reason",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, documents=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["documents"].choices = [
            (
                str(d.public_id),
                f"{d.title} — {d.doc_type.display}, {d.service_at:%Y-%m-%d}"
                + (" (entered in error)" if d.entered_in_error else ""),
            )
            for d in documents
        ]


class ExtendAmendmentForm(forms.Form):
    reason = forms.CharField(
        label="Reason for the extension",
        max_length=300,
        help_text="Goes into the written notice with the date of the decision.",
    )


class AcceptForm(forms.Form):
    notify = forms.CharField(
        label="Whom to notify",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="People the patient names, and those known to rely on the information.",
    )
    note = forms.CharField(label="Note", required=False, max_length=4000)


class DenyForm(forms.Form):
    basis = forms.ChoiceField(
        label="Basis (45 CFR 164.526(a)(2))",
        choices=[("", "Choose…"), *DENIAL_BASIS_LABELS.items()],
    )
    explanation = forms.CharField(
        label="Explanation for the letter",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    send_with_disclosures = forms.BooleanField(
        label="The patient asks that the request and the denial go with future disclosures",
        required=False,
    )


class SendWithDisclosuresForm(forms.Form):
    send = forms.BooleanField(
        label="Send the request and the denial with future disclosures", required=False
    )


class StatementForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", choices=StatementKind.choices)
    received_on = forms.DateField(label="Date", widget=DATE)
    text = forms.CharField(label="Text", widget=forms.Textarea(attrs={"rows": 4}))
