"""Forms of the restriction screens: break-the-glass, setting a restriction, reviewing a
break-the-glass access."""

from __future__ import annotations

from django import forms

from patients.models import AccessGrant, Restriction

# The usual reasons for emergency access; the free text says what this emergency is.
BREAK_THE_GLASS_REASONS = [
    ("emergency_care", "Emergency care: the patient needs treatment now"),
    ("covering", "Covering for the patient's treating clinician"),
    ("consult", "Consultation or referral for this patient"),
    ("continuing_care", "Urgent records request for continuing care"),
    ("other", "Other"),
]
MIN_DETAILS = 10


class BreakTheGlassForm(forms.Form):
    reason_code = forms.ChoiceField(
        label="Reason for emergency access",
        choices=[("", "Choose a reason"), *BREAK_THE_GLASS_REASONS],
        error_messages={"required": "Choose the reason for emergency access."},
    )
    details = forms.CharField(
        label="Describe the emergency",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=f"At least {MIN_DETAILS} characters. The privacy officer reviews every access.",
        error_messages={"required": "Describe the emergency."},
    )
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Break-the-glass always asks for your password again.",
        error_messages={"required": "Type your password to confirm."},
    )

    def __init__(self, user, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_details(self):
        details = " ".join(self.cleaned_data["details"].split())
        if len(details) < MIN_DETAILS:
            raise forms.ValidationError(
                f"Describe the emergency in at least {MIN_DETAILS} characters."
            )
        return details

    def clean_password(self):
        value = self.cleaned_data["password"]
        if not self.user.check_password(value):
            raise forms.ValidationError("That is not your password.")
        return value

    @property
    def password_refused(self) -> bool:
        return "password" in self.errors and bool(self.data.get("password"))

    @property
    def reason(self) -> str:
        """The reason as the grant and the audit trail keep it."""
        label = dict(BREAK_THE_GLASS_REASONS)[self.cleaned_data["reason_code"]]
        return f"{label} — {self.cleaned_data['details']}"


# The form needs a non-empty value for "no restriction" (a required field treats "" as
# missing); the view maps it back.
NO_RESTRICTION = "none"
RESTRICTION_CHOICES = [
    (NO_RESTRICTION, "No restriction"),
    (Restriction.VIP.value, "VIP: a person of public interest"),
    (Restriction.EMPLOYEE.value, "Employee: works for this organisation"),
    (Restriction.CONFIDENTIAL.value, "Confidential: at the patient's request or by law"),
]


class RestrictionForm(forms.Form):
    restriction = forms.ChoiceField(
        label="Restriction",
        choices=RESTRICTION_CHOICES,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose a restriction, or no restriction."},
    )
    reason = forms.CharField(
        label="Reason for the change",
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Kept with the new version of the record (at most 300 characters).",
        error_messages={"required": "Say why the restriction changes."},
    )

    def __init__(self, *args, current: str, **kwargs):
        self.current = current or NO_RESTRICTION
        kwargs.setdefault("initial", {"restriction": self.current})
        super().__init__(*args, **kwargs)

    def clean_restriction(self):
        value = self.cleaned_data["restriction"]
        if value == self.current:
            raise forms.ValidationError("The record already has this restriction.")
        return "" if value == NO_RESTRICTION else value


class ReviewForm(forms.Form):
    status = forms.ChoiceField(
        label="Finding",
        choices=[
            (AccessGrant.Review.APPROPRIATE.value, "Appropriate: the access was justified"),
            (AccessGrant.Review.INAPPROPRIATE.value, "Inappropriate: refer for follow-up"),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose appropriate or inappropriate."},
    )
    note = forms.CharField(
        label="Review note",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required when the access was inappropriate: say what was wrong.",
    )

    def clean(self):
        data = super().clean()
        if data.get("status") == AccessGrant.Review.INAPPROPRIATE and not data.get("note"):
            self.add_error("note", "Say what was inappropriate.")
        return data
