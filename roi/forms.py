"""Forms of ROI intake: the request, an attachment, the authorization checklist, its
revocation, the identity check, the extension and the assignment."""

from __future__ import annotations

from django import forms

from documents.models import SensitiveCategory
from roi import authorizations
from roi.models import AttachmentKind, Delivery, Format, RequesterType, Urgency


class RequestForm(forms.Form):
    requester_type = forms.ChoiceField(label="Who is asking", choices=RequesterType.choices)
    requester_name = forms.CharField(label="Requester's name", max_length=200)
    requester_organization = forms.CharField(label="Organization", max_length=200, required=False)
    requester_address = forms.CharField(
        label="Address", widget=forms.Textarea(attrs={"rows": 3}), required=False
    )
    requester_email = forms.EmailField(label="E-mail", required=False)
    requester_phone = forms.CharField(label="Telephone", max_length=40, required=False)
    identity_verified = forms.CharField(
        label="Identity or authority verified by",
        max_length=200,
        required=False,
        help_text="e.g. photo ID seen; provider verified by NPI. Leave empty if not yet.",
    )
    purpose = forms.CharField(label="Purpose", max_length=300, required=False)
    received_on = forms.DateField(
        label="Date received", widget=forms.DateInput(attrs={"type": "date"})
    )
    urgency = forms.ChoiceField(choices=Urgency.choices, initial=Urgency.ROUTINE)
    scope_all = forms.BooleanField(label="All records", required=False)
    date_from = forms.DateField(
        label="From (date of service)",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        label="To (date of service)", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    document_types = forms.CharField(
        label="Document types (LOINC codes, comma-separated)", max_length=200, required=False
    )
    sensitive_categories = forms.MultipleChoiceField(
        label="Specifically asks for",
        choices=SensitiveCategory.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Psychotherapy notes need their own authorization; Part 2 records a Part 2 "
        "consent (or a court order).",
    )
    format = forms.ChoiceField(choices=Format.choices, initial=Format.ELECTRONIC)
    delivery = forms.ChoiceField(choices=Delivery.choices, initial=Delivery.PORTAL)

    encounters = forms.MultipleChoiceField(
        label="Encounters asked for", required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, encounter_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["encounters"].choices = list(encounter_choices)
        if not encounter_choices:
            del self.fields["encounters"]

    def scope(self) -> dict:
        data = self.cleaned_data
        types = [t.strip() for t in (data.get("document_types") or "").split(",") if t.strip()]
        return {
            "all": bool(data.get("scope_all")),
            "date_from": data["date_from"].isoformat() if data.get("date_from") else "",
            "date_to": data["date_to"].isoformat() if data.get("date_to") else "",
            "document_types": types,
            "encounters": list(data.get("encounters") or []),
            "sensitive_categories": list(data.get("sensitive_categories") or []),
        }


class AttachmentForm(forms.Form):
    kind = forms.ChoiceField(label="What it is", choices=AttachmentKind.choices)
    attachment = forms.FileField(label="Scanned document (PDF, PNG, JPEG or TIFF)")


class AuthorizationForm(forms.Form):
    kind = forms.ChoiceField(choices=list(authorizations.KINDS.items()))
    signed_on = forms.DateField(
        label="Signed on", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    expires_on = forms.DateField(
        label="Expires on", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    expiry_event = forms.CharField(label="Or expires at the event", max_length=200, required=False)
    information_described = forms.CharField(
        label="Information described", widget=forms.Textarea(attrs={"rows": 2}), required=False
    )
    discloser = forms.CharField(max_length=200, required=False)
    recipient = forms.CharField(max_length=200, required=False)
    purpose = forms.CharField(max_length=300, required=False)
    signed_by_representative = forms.BooleanField(required=False)
    representative_authority = forms.CharField(max_length=200, required=False)
    revoked_on = forms.DateField(
        label="Revoked on", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    sensitive_categories = forms.MultipleChoiceField(
        label="Sensitive categories it specifically names",
        choices=SensitiveCategory.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for element in authorizations.CHECKLIST:
            self.fields[f"has_{element.key}"] = forms.BooleanField(
                label=f"{element.label} ({element.citation})", required=False
            )

    def checklist(self) -> dict:
        return {
            e.key: bool(self.cleaned_data.get(f"has_{e.key}")) for e in authorizations.CHECKLIST
        }


class IdentityForm(forms.Form):
    identity_verified = forms.CharField(label="Verified by", max_length=200)


class ExtendForm(forms.Form):
    reason = forms.CharField(label="Reason for the delay (goes in the notice)", max_length=300)


class RevokeForm(forms.Form):
    authorization = forms.UUIDField(widget=forms.HiddenInput)
    revoked_on = forms.DateField(label="Revoked on", widget=forms.DateInput(attrs={"type": "date"}))
    how = forms.CharField(label="How it came", max_length=200)
