"""Forms of the import-errors screen."""

from django import forms

from interop.importer import max_bundle_bytes


class ReplayForm(forms.Form):
    raw = forms.CharField(
        label="Corrected JSON",
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "mono"}),
        help_text="Correct the unit as received, then replay it. Leave it as it is to replay unchanged.",
        strip=False,
    )

    def clean_raw(self):
        raw = self.cleaned_data["raw"]
        if len(raw.encode("utf-8")) > max_bundle_bytes("api"):
            raise forms.ValidationError("The corrected unit is larger than the import limit.")
        return raw


class DismissForm(forms.Form):
    reason = forms.CharField(
        label="Why is it dismissed?",
        min_length=5,
        max_length=250,
        help_text="For example: a duplicate of a unit already imported; test data.",
    )
