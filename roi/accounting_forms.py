"""HTML input for the accounting of disclosures: a disclosure entered by hand, a
suspension, a patient's request for an accounting, its extension and its answer."""

from __future__ import annotations

from django import forms

from roi.accounting import BASIS_CHOICES
from roi.models import RequesterType

DATE = forms.DateInput(attrs={"type": "date"})


class DisclosureForm(forms.Form):
    disclosed_on = forms.DateField(label="Date of the disclosure", widget=DATE)
    recipient_name = forms.CharField(label="Recipient", max_length=200)
    recipient_address = forms.CharField(
        label="Recipient's address",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    description = forms.CharField(
        label="What was disclosed", max_length=4000, widget=forms.Textarea(attrs={"rows": 3})
    )
    purpose = forms.CharField(label="Purpose", max_length=300)
    basis = forms.ChoiceField(
        label="Basis",
        choices=[("", "Choose…"), *BASIS_CHOICES],
        help_text="Decides whether the disclosure enters the patient's accounting.",
    )
    requester_type = forms.ChoiceField(
        label="Requester type",
        required=False,
        choices=[("", "—"), *RequesterType.choices],
    )


class SuspendForm(forms.Form):
    agency = forms.CharField(label="Agency or official", max_length=200)
    until = forms.DateField(label="Suspended until (inclusive)", widget=DATE)
    oral = forms.BooleanField(
        label="Asked orally (at most 30 days)",
        required=False,
    )
    reason = forms.CharField(label="Reason given", required=False, max_length=300)


class AccountingRequestForm(forms.Form):
    received_on = forms.DateField(label="Date received", widget=DATE)
    period_from = forms.DateField(
        label="Period from",
        required=False,
        widget=DATE,
        help_text="Leave empty for the full period the policy allows (six years).",
    )
    period_to = forms.DateField(
        label="Period to",
        required=False,
        widget=DATE,
        help_text="Leave empty for the date received.",
    )


class ExtendForm(forms.Form):
    reason = forms.CharField(
        label="Reason for the extension",
        max_length=300,
        help_text="Goes into the written notice with the new due date.",
    )


class AnswerForm(forms.Form):
    summarize = forms.BooleanField(
        label="Summarize repeated disclosures to one recipient for one purpose",
        required=False,
        initial=True,
    )
