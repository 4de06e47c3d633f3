"""HTML input for the master patient index screens: search, registration and
demographic corrections.

The forms check the shape of what was typed; the rules of the index (names without
markup, no birth in the future, well-formed SSNs, 10-digit phones, ZIP codes) live in
``patients.actions.validate_patient_data`` and come back onto the right field through
:meth:`PatientForms.add_action_errors`, so there is one source of truth.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

from django import forms
from django.core import signing
from django.core.exceptions import ValidationError

from patients import matching, search
from patients.actions import (
    AddressData,
    ContactData,
    IdentifierData,
    NameData,
    PatientData,
    TelecomData,
)
from patients.models import (
    AddressUse,
    ContactKind,
    Ethnicity,
    GenderIdentity,
    IdentifierKind,
    LegalAuthority,
    NameUse,
    Race,
    Sex,
    TelecomUse,
)
from recordroom import clock

DATE_INPUT_FORMATS = ["%Y-%m-%d", "%m/%d/%Y"]

# The languages a US hospital most often records (BCP 47), after English and Spanish by
# the Census Bureau's counts; "other" rows can still be typed as a code.
LANGUAGES = [
    ("", "Not recorded"),
    ("en", "English"),
    ("es", "Spanish"),
    ("zh", "Chinese"),
    ("tl", "Tagalog"),
    ("vi", "Vietnamese"),
    ("ar", "Arabic"),
    ("fr", "French"),
    ("ko", "Korean"),
    ("ru", "Russian"),
    ("ht", "Haitian Creole"),
    ("pt", "Portuguese"),
    ("de", "German"),
    ("hi", "Hindi"),
    ("pl", "Polish"),
    ("it", "Italian"),
    ("ja", "Japanese"),
    ("fa", "Persian"),
    ("so", "Somali"),
    ("ase", "American Sign Language"),
]

US_STATES = [
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DE",
    "DC",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "WA",
    "WV",
    "WI",
    "WY",
    "AS",
    "GU",
    "MP",
    "PR",
    "VI",
]
STATE_CHOICES = [("", "—"), *[(s, s) for s in US_STATES]]


def _date_field(label: str, *, required: bool = False, help_text: str = "") -> forms.DateField:
    return forms.DateField(
        label=label,
        required=required,
        input_formats=DATE_INPUT_FORMATS,
        help_text=help_text,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


# --- search -------------------------------------------------------------------------------


class SearchForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        help_text="A name (partial or misspelt is fine: “smith, jo”), MRN, SSN or other "
        "identifier, date of birth (YYYY-MM-DD or MM/DD/YYYY) or phone number.",
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "autofocus": True,
                "autocomplete": "off",
                "spellcheck": "false",
            }
        ),
    )
    family = forms.CharField(label="Family name", required=False, max_length=100)
    given = forms.CharField(label="Given name", required=False, max_length=100)
    birth_date = _date_field("Date of birth")
    phone = forms.CharField(label="Phone", required=False, max_length=40)
    identifier = forms.CharField(label="MRN or identifier", required=False, max_length=40)
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            data["query"] = search.parse_query(
                data.get("q") or "",
                family=data.get("family") or "",
                given=data.get("given") or "",
                birth_date=data.get("birth_date"),
                phone=data.get("phone") or "",
                identifier=data.get("identifier") or "",
            )
        except search.QueryError as error:
            raise ValidationError(str(error)) from None
        if data["query"].is_empty and any(
            data.get(f) for f in ("q", "family", "given", "phone", "identifier")
        ):
            raise ValidationError(
                "Nothing to search for: type a name, an MRN or other identifier, a date of "
                "birth or a phone number."
            )
        return data


# --- registration and correction ------------------------------------------------------------


class PatientForm(forms.Form):
    """The person: legal name, birth, sex and gender, language, race and ethnicity,
    current home address, phones and e-mail, SSN and driver's licence."""

    family = forms.CharField(label="Family name (legal)", max_length=100)
    given = forms.CharField(label="Given name (legal)", max_length=100)
    middle = forms.CharField(label="Middle name", required=False, max_length=100)
    suffix = forms.CharField(
        label="Suffix", required=False, max_length=10, help_text="Jr, Sr, II, III…"
    )
    birth_date = _date_field("Date of birth", required=True)
    sex_at_birth = forms.ChoiceField(
        label="Sex assigned at birth", choices=[("", "Choose…"), *Sex.choices]
    )
    gender_identity = forms.ChoiceField(
        label="Gender identity", choices=GenderIdentity.choices, required=False
    )
    preferred_language = forms.ChoiceField(
        label="Preferred language", choices=LANGUAGES, required=False
    )
    race = forms.ChoiceField(label="Race (optional)", choices=Race.choices, required=False)
    ethnicity = forms.ChoiceField(
        label="Ethnicity (optional)", choices=Ethnicity.choices, required=False
    )
    line1 = forms.CharField(label="Street address", required=False, max_length=200)
    line2 = forms.CharField(label="Apartment, suite", required=False, max_length=200)
    city = forms.CharField(label="City", required=False, max_length=100)
    state = forms.ChoiceField(label="State", choices=STATE_CHOICES, required=False)
    postal_code = forms.CharField(label="ZIP code", required=False, max_length=10)
    phone_home = forms.CharField(label="Home phone", required=False, max_length=40)
    phone_mobile = forms.CharField(label="Mobile phone", required=False, max_length=40)
    phone_work = forms.CharField(label="Work phone", required=False, max_length=40)
    email = forms.CharField(label="E-mail", required=False, max_length=254)
    ssn = forms.CharField(
        label="Social Security number",
        required=False,
        max_length=11,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )
    drivers_license = forms.CharField(
        label="Driver's licence number",
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    drivers_license_state = forms.ChoiceField(
        label="Issued by (state)", choices=STATE_CHOICES, required=False
    )

    GROUPS = [
        ("Legal name", ["family", "given", "middle", "suffix"]),
        (
            "Birth, sex and language",
            [
                "birth_date",
                "sex_at_birth",
                "gender_identity",
                "preferred_language",
                "race",
                "ethnicity",
                "deceased_on",
            ],
        ),
        ("Home address", ["line1", "line2", "city", "state", "postal_code"]),
        ("Phone and e-mail", ["phone_home", "phone_mobile", "phone_work", "email"]),
        ("National identifiers", ["ssn", "drivers_license", "drivers_license_state"]),
    ]

    def groups(self):
        """The fields in labelled groups, for the template."""
        return [
            (label, [self[name] for name in names if name in self.fields])
            for label, names in self.GROUPS
        ]

    def clean(self):
        data = super().clean()
        address = [data.get(f) for f in ("line1", "line2", "city", "state", "postal_code")]
        if any(address):
            for name in ("line1", "city", "state", "postal_code"):
                if not data.get(name):
                    self.add_error(name, "Needed for an address.")
        if data.get("drivers_license") and not data.get("drivers_license_state"):
            self.add_error("drivers_license_state", "Which state issued the licence?")
        return data


NO_FACILITY = "Your account is not attached to a facility: ask the HIM administrator to add one."


class RegistrationForm(PatientForm):
    facility = forms.ModelChoiceField(
        label="Register at", queryset=None, empty_label=None, required=True
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        facilities = user.facilities.order_by("name")
        self.fields["facility"].queryset = facilities
        self.fields["facility"].help_text = "The facility whose MRN the patient receives."
        if not facilities.exists():
            self.fields["facility"].help_text = NO_FACILITY
        self.order_fields(["facility"])

    GROUPS = [("Facility", ["facility"]), *PatientForm.GROUPS]

    def clean(self):
        if not self.fields["facility"].queryset.exists():
            self.errors.pop("facility", None)
            raise ValidationError(NO_FACILITY)
        return super().clean()


class CorrectionForm(PatientForm):
    deceased_on = _date_field("Date of death", help_text="Only when the death is documented.")
    keep_identifiers = forms.TypedMultipleChoiceField(
        label="Identifiers on file",
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Untick one to mark it no longer in use (it is kept in the history).",
    )
    reason = forms.CharField(
        label="Reason for the correction",
        max_length=300,
        help_text="Recorded with the new version, e.g. “legal name change, court order seen”.",
    )
    version = forms.IntegerField(widget=forms.HiddenInput)

    GROUPS = [
        *PatientForm.GROUPS[:-1],
        (
            "National identifiers",
            ["keep_identifiers", "ssn", "drivers_license", "drivers_license_state"],
        ),
        ("Why", ["reason"]),
    ]

    def __init__(self, *args, identifiers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keep_identifiers"].choices = [
            (i.pk, f"{i.get_kind_display()} {i.masked}{' (' + i.issuer + ')' if i.issuer else ''}")
            for i in identifiers
        ]
        self.fields["ssn"].help_text = "Leave blank to keep the SSN on file; a new one replaces it."
        self.fields["drivers_license"].help_text = "Leave blank to keep the licence on file."

    def clean(self):
        data = super().clean()
        born, died = data.get("birth_date"), data.get("deceased_on")
        if born and died and died < born:
            self.add_error("deceased_on", "The date of death is before the date of birth.")
        if died and died > clock.now().date():
            self.add_error("deceased_on", "The date of death is in the future.")
        return data


class OtherNameForm(forms.Form):
    use = forms.ChoiceField(
        label="Kind",
        choices=[
            (NameUse.MAIDEN.value, NameUse.MAIDEN.label),
            (NameUse.OLD.value, NameUse.OLD.label),
            (NameUse.USUAL.value, NameUse.USUAL.label),
            (NameUse.NICKNAME.value, NameUse.NICKNAME.label),
            (NameUse.ANONYMOUS.value, NameUse.ANONYMOUS.label),
        ],
    )
    family = forms.CharField(label="Family name", required=False, max_length=100)
    given = forms.CharField(label="Given name", required=False, max_length=100)
    middle = forms.CharField(label="Middle name", required=False, max_length=100)

    def clean(self):
        data = super().clean()
        if (data.get("given") or data.get("middle")) and not data.get("family"):
            self.add_error("family", "Needed for another name.")
        return data

    @property
    def is_blank(self) -> bool:
        return not self.cleaned_data.get("family")


class OtherAddressForm(forms.Form):
    use = forms.ChoiceField(
        label="Kind",
        choices=[
            (AddressUse.OLD.value, AddressUse.OLD.label),
            (AddressUse.WORK.value, AddressUse.WORK.label),
            (AddressUse.TEMP.value, AddressUse.TEMP.label),
            (AddressUse.HOME.value, "Another home"),
        ],
    )
    line1 = forms.CharField(label="Street address", required=False, max_length=200)
    line2 = forms.CharField(label="Apartment, suite", required=False, max_length=200)
    city = forms.CharField(label="City", required=False, max_length=100)
    state = forms.ChoiceField(label="State", choices=STATE_CHOICES, required=False)
    postal_code = forms.CharField(label="ZIP code", required=False, max_length=10)

    def clean(self):
        data = super().clean()
        if any(data.get(f) for f in ("line1", "line2", "city", "state", "postal_code")):
            for name in ("line1", "city", "state", "postal_code"):
                if not data.get(name):
                    self.add_error(name, "Needed for an address.")
        return data

    @property
    def is_blank(self) -> bool:
        return not self.cleaned_data.get("line1")


OTHER_IDENTIFIER_KINDS = [
    (IdentifierKind.MEMBER_ID.value, IdentifierKind.MEMBER_ID.label),
    (IdentifierKind.MEDICARE.value, IdentifierKind.MEDICARE.label),
    (IdentifierKind.PASSPORT.value, IdentifierKind.PASSPORT.label),
    (IdentifierKind.OTHER.value, IdentifierKind.OTHER.label),
]


class IdentifierForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", choices=OTHER_IDENTIFIER_KINDS)
    value = forms.CharField(label="Number", required=False, max_length=40)
    issuer = forms.CharField(
        label="Issued by", required=False, max_length=100, help_text="Payer, country or system."
    )

    def clean(self):
        data = super().clean()
        if data.get("issuer") and not data.get("value"):
            self.add_error("value", "Type the number, or clear the issuer.")
        member_id = data.get("kind") == IdentifierKind.MEMBER_ID
        if member_id and data.get("value") and not data.get("issuer"):
            self.add_error("issuer", "Which payer issued the member id?")
        if data.get("issuer") and "<" in data["issuer"]:
            self.add_error("issuer", "No markup here.")
        return data

    @property
    def is_blank(self) -> bool:
        return not self.cleaned_data.get("value")


class ContactForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", choices=ContactKind.choices)
    name = forms.CharField(label="Name", required=False, max_length=200)
    relationship = forms.CharField(label="Relationship", required=False, max_length=60)
    phone = forms.CharField(label="Phone", required=False, max_length=40)
    email = forms.EmailField(label="E-mail", required=False)
    authority = forms.ChoiceField(
        label="Legal authority", choices=LegalAuthority.choices, required=False
    )
    valid_from = _date_field("Authority from")
    valid_until = _date_field("Authority until")
    authority_document = forms.FileField(
        label="Proof of authority",
        required=False,
        help_text="PDF, PNG, JPEG or TIFF, at most 10 MB: the court order, power of "
        "attorney or letters testamentary.",
    )

    def clean(self):
        data = super().clean()
        if not data.get("name") and any(
            data.get(f) for f in ("relationship", "phone", "email", "authority")
        ):
            self.add_error("name", "Needed for a contact.")
        if data.get("relationship") and "<" in data["relationship"]:
            self.add_error("relationship", "No markup here.")
        if data.get("phone") and len(matching.normalize_phone(data["phone"])) != 10:
            self.add_error("phone", "A phone number has 10 digits.")
        representative = data.get("kind") == ContactKind.REPRESENTATIVE
        if representative and data.get("name") and not data.get("authority"):
            self.add_error("authority", "A personal representative acts under an authority.")
        if data.get("authority") and data.get("kind") != ContactKind.REPRESENTATIVE:
            self.add_error("kind", "Only a personal representative holds a legal authority.")
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end < start:
            self.add_error("valid_until", "The authority ends before it starts.")
        return data

    @property
    def is_blank(self) -> bool:
        return not self.cleaned_data.get("name")


OtherNameFormSet = forms.formset_factory(OtherNameForm, extra=1, max_num=10, validate_max=True)
OtherAddressFormSet = forms.formset_factory(
    OtherAddressForm, extra=1, max_num=10, validate_max=True
)
IdentifierFormSet = forms.formset_factory(IdentifierForm, extra=2, max_num=10, validate_max=True)
ContactFormSet = forms.formset_factory(ContactForm, extra=2, max_num=10, validate_max=True)


def _phone_use(name: str) -> str:
    return {"phone_home": TelecomUse.HOME, "phone_mobile": TelecomUse.MOBILE}.get(
        name, TelecomUse.WORK
    )


class PatientForms:
    """The patient form and its formsets (other names, previous addresses, other
    identifiers, contacts) as one unit: bound together, validated together, turned into
    one :class:`PatientData`, and given back the action's errors on the right fields."""

    def __init__(
        self,
        data=None,
        files=None,
        *,
        user,
        correction: bool = False,
        identifiers_on_file=(),
        deceased_at: dt.datetime | None = None,
        initial=None,
        initial_sets=None,
    ):
        initial_sets = initial_sets or {}
        if correction:
            self.main = CorrectionForm(data, initial=initial, identifiers=identifiers_on_file)
        else:
            self.main = RegistrationForm(data, initial=initial, user=user)
        self.correcting = correction
        self.deceased_at_on_file = deceased_at
        self.other_names = OtherNameFormSet(data, prefix="names", initial=initial_sets.get("names"))
        self.addresses = OtherAddressFormSet(
            data, prefix="addresses", initial=initial_sets.get("addresses")
        )
        self.identifiers = IdentifierFormSet(
            data, prefix="identifiers", initial=initial_sets.get("identifiers")
        )
        self.contacts = ContactFormSet(
            data, files, prefix="contacts", initial=initial_sets.get("contacts")
        )
        self._targets: dict[str, tuple[forms.Form, str | None]] = {}

    @property
    def formsets(self):
        return [self.other_names, self.addresses, self.identifiers, self.contacts]

    @property
    def is_bound(self) -> bool:
        return self.main.is_bound

    @property
    def has_errors(self) -> bool:
        if not self.is_bound:
            return False
        return bool(self.main.errors) or any(
            formset.non_form_errors() or any(form.errors for form in formset.forms)
            for formset in self.formsets
        )

    def is_valid(self) -> bool:
        valid = self.main.is_valid()
        for formset in self.formsets:
            valid = formset.is_valid() and valid
        return valid

    def _rows(self, formset):
        return [f for f in formset.forms if f.cleaned_data and not f.is_blank]

    def build(self) -> tuple[PatientData, dict, list[int] | None]:
        """The typed person as the actions take it, the uploaded authority documents
        (by contact index), and for a correction the ids of identifiers to keep."""
        d = self.main.cleaned_data
        t = self._targets
        t.clear()
        t["name.family"] = (self.main, "family")
        t["name.given"] = (self.main, "given")
        t["name.middle"] = (self.main, "middle")
        t["name.suffix"] = (self.main, "suffix")
        for key in ("birth_date", "sex_at_birth"):
            t[key] = (self.main, key)
        t["deceased_at"] = (self.main, "deceased_on" if self.correcting else None)
        other_names = []
        for form in self._rows(self.other_names):
            i = len(other_names)
            other_names.append(
                NameData(
                    family=form.cleaned_data["family"],
                    given=form.cleaned_data.get("given", ""),
                    middle=form.cleaned_data.get("middle", ""),
                    use=form.cleaned_data["use"],
                )
            )
            for part in ("family", "given", "middle"):
                t[f"other_names.{i}.{part}"] = (form, part)
            t[f"other_names.{i}.suffix"] = (form, None)
        identifiers = []
        if d.get("ssn"):
            t[f"identifiers.{len(identifiers)}"] = (self.main, "ssn")
            identifiers.append(IdentifierData(kind=IdentifierKind.SSN, value=d["ssn"]))
        if d.get("drivers_license"):
            t[f"identifiers.{len(identifiers)}"] = (self.main, "drivers_license")
            identifiers.append(
                IdentifierData(
                    kind=IdentifierKind.DRIVERS_LICENSE,
                    value=d["drivers_license"],
                    issuer=d.get("drivers_license_state", ""),
                )
            )
        for form in self._rows(self.identifiers):
            t[f"identifiers.{len(identifiers)}"] = (form, "value")
            identifiers.append(
                IdentifierData(
                    kind=form.cleaned_data["kind"],
                    value=form.cleaned_data["value"],
                    issuer=form.cleaned_data.get("issuer", ""),
                )
            )
        addresses = []
        if d.get("line1"):
            for part in ("line1", "state", "postal_code"):
                t[f"addresses.0.{part}"] = (self.main, part)
            addresses.append(
                AddressData(
                    line1=d["line1"],
                    line2=d.get("line2", ""),
                    city=d["city"],
                    state=d["state"],
                    postal_code=d["postal_code"],
                    use=AddressUse.HOME,
                )
            )
        for form in self._rows(self.addresses):
            i = len(addresses)
            for part in ("line1", "state", "postal_code"):
                t[f"addresses.{i}.{part}"] = (form, part)
            c = form.cleaned_data
            addresses.append(
                AddressData(
                    line1=c["line1"],
                    line2=c.get("line2", ""),
                    city=c["city"],
                    state=c["state"],
                    postal_code=c["postal_code"],
                    use=c["use"],
                )
            )
        telecoms = []
        for name in ("phone_home", "phone_mobile", "phone_work"):
            if d.get(name):
                t[f"telecoms.{len(telecoms)}"] = (self.main, name)
                telecoms.append(TelecomData(system="phone", value=d[name], use=_phone_use(name)))
        if d.get("email"):
            t[f"telecoms.{len(telecoms)}"] = (self.main, "email")
            telecoms.append(TelecomData(system="email", value=d["email"], use=TelecomUse.HOME))
        contacts = []
        documents = {}
        for form in self._rows(self.contacts):
            i = len(contacts)
            c = form.cleaned_data
            t[f"contacts.{i}.name"] = (form, "name")
            t[f"contacts.{i}.authority_document"] = (form, "authority_document")
            contacts.append(
                ContactData(
                    kind=c["kind"],
                    name=c["name"],
                    relationship=c.get("relationship", ""),
                    phone=c.get("phone", ""),
                    email=c.get("email", ""),
                    authority=c.get("authority", ""),
                    valid_from=c.get("valid_from"),
                    valid_until=c.get("valid_until"),
                )
            )
            if c.get("authority_document"):
                documents[i] = c["authority_document"]
        deceased = None
        if self.correcting and d.get("deceased_on"):
            on_file = self.deceased_at_on_file
            if on_file and on_file.date() == d["deceased_on"]:
                deceased = on_file  # the recorded time of death stays as it was
            else:
                deceased = dt.datetime.combine(d["deceased_on"], dt.time(12), tzinfo=dt.UTC)
        data = PatientData(
            name=NameData(
                family=d["family"],
                given=d["given"],
                middle=d.get("middle", ""),
                suffix=d.get("suffix", ""),
            ),
            birth_date=d["birth_date"],
            sex_at_birth=d["sex_at_birth"],
            gender_identity=d.get("gender_identity", ""),
            preferred_language=d.get("preferred_language", ""),
            race=d.get("race", ""),
            ethnicity=d.get("ethnicity", ""),
            other_names=other_names,
            identifiers=identifiers,
            addresses=addresses,
            telecoms=telecoms,
            contacts=contacts,
            deceased_at=deceased,
        )
        keep = d.get("keep_identifiers") if self.correcting else None
        return data, documents, keep

    def add_action_errors(self, error: ValidationError) -> None:
        """Put the action's errors (keyed like ``addresses.0.state``) on their fields;
        any without a field go to the top of the form."""
        if not hasattr(error, "error_dict"):
            for message in error.messages:
                self.main.add_error(None, message)
            return
        for key, errors in error.message_dict.items():
            form, field = self._targets.get(key, (None, None))
            if form is None and key.startswith("identifiers"):
                form, field = self.main, None
            if form is None:
                form, field = self.main, None
            for message in errors:
                if field is None or field not in form.fields:
                    label = key.split(".")[0].replace("_", " ")
                    form.add_error(None, f"{label.capitalize()}: {message}")
                else:
                    form.add_error(field, message)


# --- the duplicate check token ---------------------------------------------------------------

_CHECK_SALT = "patients.register.candidates-shown"
TOKEN_MAX_AGE = 30 * 60


def _digest(data: PatientData, facility_id) -> str:
    payload = json.dumps(
        {"data": dataclasses.asdict(data), "facility": facility_id},
        sort_keys=True,
        default=lambda value: value.pk if hasattr(value, "pk") else str(value),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def candidates_token(user, data: PatientData, facility_id, shown: int) -> str:
    """Proof that the likely matches for exactly this data (``shown`` of them) were shown
    to this user."""
    payload = {"u": user.pk, "h": _digest(data, facility_id), "n": shown}
    return signing.dumps(payload, salt=_CHECK_SALT)


def candidates_shown(user, data: PatientData, facility_id, token: str) -> int | None:
    """How many matches the check showed for exactly this data, or None when the token
    is missing, forged, expired, another user's, or for different data."""
    try:
        value = signing.loads(token or "", salt=_CHECK_SALT, max_age=TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(value, dict):
        return None
    if value.get("u") != user.pk or value.get("h") != _digest(data, facility_id):
        return None
    shown = value.get("n")
    return shown if isinstance(shown, int) else None
