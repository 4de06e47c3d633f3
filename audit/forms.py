from django import forms

from audit.models import Action, Outcome


class TrailSearchForm(forms.Form):
    username = forms.CharField(required=False, max_length=150, label="User name")
    patient_id = forms.UUIDField(required=False, label="Patient id")
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *Action.choices])
    outcome = forms.ChoiceField(required=False, choices=[("", "Any outcome"), *Outcome.choices])
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data
