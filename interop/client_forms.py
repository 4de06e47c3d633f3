from django import forms

from interop.models import ClientKind


class ClientForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="Shown to users on the consent page.")
    kind = forms.ChoiceField(choices=ClientKind.choices, widget=forms.RadioSelect)
    account = forms.ChoiceField(
        label="System account",
        required=False,
        help_text="System clients act as this account (its roles limit what they see).",
    )
    scopes = forms.CharField(
        max_length=500,
        initial="system/*.read",
        help_text="Space-separated SMART scopes, e.g. system/*.read or user/*.rs patient/*.rs "
        "launch/patient openid fhirUser.",
    )
    redirect_uris = forms.CharField(
        label="Redirect URIs",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="User-facing apps: one per line, https:// (http:// only on 127.0.0.1).",
    )
    public = forms.BooleanField(
        label="Public app (no secret: runs in a browser or on a phone; PKCE protects it)",
        required=False,
    )
    jwks = forms.CharField(
        label="Public keys (JWKS)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='System clients using SMART Backend Services: the JSON {"keys": [...]} of '
        "the public keys (RS384 or ES384, each with a kid) its assertions are signed with. "
        "With keys, the client gets no secret.",
    )

    def __init__(self, *args, account_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [("", "—"), *account_choices]

    def clean_jwks(self):
        import json

        text = self.cleaned_data["jwks"].strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise forms.ValidationError("The keys are not JSON.") from None

    def clean_redirect_uris(self):
        return [
            line.strip() for line in self.cleaned_data["redirect_uris"].splitlines() if line.strip()
        ]


class RevokeForm(forms.Form):
    reason = forms.CharField(
        max_length=300, help_text="Why the client loses access (recorded in the audit trail)."
    )
