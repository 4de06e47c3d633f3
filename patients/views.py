"""The master patient index screens: search, registration with its duplicate check,
demographics, corrections, version history and unmasking a national identifier.

Views are thin: every read goes through ``patients.access`` / ``patients.search`` and
every change through ``patients.actions``, which check permissions and audit."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.access import require_permission
from audit.models import Action
from patients import access, search
from patients.actions import (
    do_register_patient_with_documents,
    do_update_demographics,
    mrn_of,
    validate_patient_data,
)
from patients.forms import (
    PatientForms,
    SearchForm,
    candidates_shown,
    candidates_token,
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
    Restriction,
    Sex,
    TelecomSystem,
    TelecomUse,
)
from patients.permissions import PatientsPermission


def search_view(request):
    form = SearchForm(request.GET or None)
    valid = form.is_valid() if request.GET else True
    query = form.cleaned_data["query"] if request.GET and valid else search.ParsedQuery()
    page_number = (form.cleaned_data.get("page") or 1) if request.GET and valid else 1
    page = search.search_patients(request.user, query, page_number)
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "query": params.urlencode(),
        "searched": not query.is_empty,
    }
    if request.htmx:
        # htmx swaps only successful responses: the fragment carries the error itself.
        return render(request, "patients/_search_results.html", context)
    return render(request, "patients/search.html", context, status=200 if valid else 400)


def _render_form(request, forms, status=200):
    return render(request, "patients/register.html", {"forms": forms}, status=status)


def register_view(request):
    """Two steps, so no one registers blind: the form, then the likely matches with
    their reasons, where the technician opens an existing patient or confirms a new one."""
    require_permission(
        request.user, PatientsPermission.REGISTER, action=Action.CREATE, object_type="patient"
    )
    if request.method != "POST":
        return _render_form(request, PatientForms(user=request.user))
    forms = PatientForms(request.POST, request.FILES, user=request.user)
    step = request.POST.get("step", "")
    if not forms.is_valid():
        return _render_form(request, forms, status=400)
    if step == "edit":
        return _render_form(request, forms)
    data, documents, _ = forms.build()
    facility = forms.main.cleaned_data["facility"]
    try:
        validate_patient_data(data)
    except ValidationError as error:
        forms.add_action_errors(error)
        return _render_form(request, forms, status=400)
    shown = candidates_shown(request.user, data, facility.pk, request.POST.get("check", ""))
    reviewed = request.POST.get("reviewed") == "yes"
    if step == "confirm" and shown is not None and (reviewed or shown == 0):
        try:
            patient = do_register_patient_with_documents(
                data,
                facility=facility,
                acting_user=request.user,
                authority_documents=documents,
                reason=f"registered after the duplicate check ({shown} possible matches shown)",
            )
        except ValidationError as error:
            forms.add_action_errors(error)
        else:
            mrn = mrn_of(patient, facility)
            messages.success(request, f"Registered as a new patient with MRN {mrn}.")
            return redirect("patients:demographics", public_id=patient.public_id)
    candidates = search.find_candidates(data, request.user)
    context = {
        "forms": forms,
        "data": data,
        "facility": facility,
        "candidates": candidates,
        "check": candidates_token(request.user, data, facility.pk, len(candidates)),
        "stale": step == "confirm" and shown is None,
        "not_reviewed": step == "confirm" and shown is not None and shown > 0 and not reviewed,
    }
    errors = forms.main.errors or any(f.errors for f in forms.contacts.forms)
    status = 400 if errors or context["not_reviewed"] else 200
    return render(request, "patients/register_check.html", context, status=status)


def demographics_view(request, public_id):
    demographics = access.access_demographics(request.user, public_id)
    return render(request, "patients/demographics.html", {"d": demographics})


def _correction_initial(d) -> tuple[dict, dict]:
    p = d.patient
    initial = {
        "family": p.family_name,
        "given": p.given_name,
        "middle": p.middle_name,
        "suffix": p.suffix,
        "birth_date": p.birth_date,
        "sex_at_birth": p.sex_at_birth,
        "gender_identity": p.gender_identity,
        "preferred_language": p.preferred_language,
        "race": p.race,
        "ethnicity": p.ethnicity,
        "deceased_on": p.deceased_at.date() if p.deceased_at else None,
        "keep_identifiers": [i.pk for i in d.identifiers],
        "version": p.version,
    }
    home = next((a for a in d.addresses if a.use == "home"), None)
    if home:
        initial.update(
            line1=home.line1,
            line2=home.line2,
            city=home.city,
            state=home.state,
            postal_code=home.postal_code,
        )
    for telecom in d.telecoms:
        if telecom.system == TelecomSystem.EMAIL:
            initial.setdefault("email", telecom.value)
        else:
            initial.setdefault(f"phone_{telecom.use}", telecom.value)
    sets = {
        "names": [
            {"use": n.use, "family": n.family, "given": n.given, "middle": n.middle}
            for n in d.other_names
        ],
        "addresses": [
            {
                "use": a.use,
                "line1": a.line1,
                "line2": a.line2,
                "city": a.city,
                "state": a.state,
                "postal_code": a.postal_code,
            }
            for a in d.addresses
            if a is not home
        ],
        "contacts": [
            {
                "kind": c.kind,
                "name": c.name,
                "relationship": c.relationship,
                "phone": c.phone,
                "email": c.email,
                "authority": c.authority,
                "valid_from": c.valid_from,
                "valid_until": c.valid_until,
                "document_on_file": c.authority_document_sha256,
            }
            for c in d.contacts
        ],
    }
    return initial, sets


def edit_demographics_view(request, public_id):
    d = access.access_demographics(request.user, public_id, for_update=True)
    initial, sets = _correction_initial(d)
    forms = PatientForms(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
        user=request.user,
        correction=True,
        identifiers_on_file=d.identifiers,
        deceased_at=d.patient.deceased_at,
        initial=initial,
        initial_sets=sets,
    )
    if request.method == "POST" and forms.is_valid():
        data, documents, keep = forms.build()
        try:
            do_update_demographics(
                d.patient,
                data,
                reason=forms.main.cleaned_data["reason"],
                acting_user=request.user,
                expected_version=forms.main.cleaned_data["version"],
                keep_identifier_ids=keep,
                authority_documents=documents,
            )
        except ValidationError as error:
            forms.add_action_errors(error)
        else:
            messages.success(request, "Demographics corrected; the previous version is kept.")
            return redirect("patients:demographics", public_id=d.patient.public_id)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "patients/edit_demographics.html", {"d": d, "forms": forms}, status=status
    )


def versions_view(request, public_id):
    patient, versions = access.access_patient_versions(request.user, public_id)
    return render(
        request,
        "patients/versions.html",
        {"patient": patient, "history": version_history(versions)},
    )


@require_POST
def reveal_identifier_view(request, public_id, identifier_id):
    patient, identifier, value = access.access_identifier_unmasked(
        request.user, public_id, identifier_id
    )
    if identifier.kind == IdentifierKind.SSN and len(value) == 9:
        value = f"{value[:3]}-{value[3:5]}-{value[5:]}"
    template = "patients/_revealed.html" if request.htmx else "patients/revealed.html"
    response = render(
        request, template, {"patient": patient, "identifier": identifier, "value": value}
    )
    response["Cache-Control"] = "no-store"
    return response


# --- version history: what changed between two versions -----------------------------------

_SCALARS = [
    ("name", "Legal name"),
    ("birth_date", "Date of birth"),
    ("sex_at_birth", "Sex assigned at birth"),
    ("gender_identity", "Gender identity"),
    ("preferred_language", "Preferred language"),
    ("race", "Race"),
    ("ethnicity", "Ethnicity"),
    ("deceased_at", "Date of death"),
    ("restriction", "Restriction"),
]
_LISTS = [
    ("names", "Names"),
    ("addresses", "Addresses"),
    ("telecoms", "Phones and e-mail"),
    ("identifiers", "Identifiers"),
    ("contacts", "Contacts and representatives"),
]
_CHOICES = {
    "sex_at_birth": Sex,
    "gender_identity": GenderIdentity,
    "race": Race,
    "ethnicity": Ethnicity,
    "restriction": Restriction,
}


def _label(choices, value) -> str:
    try:
        return choices(value).label
    except ValueError:
        return str(value)


def _person_name(n: dict) -> str:
    given = " ".join(p for p in (n.get("given"), n.get("middle")) if p)
    return f"{(n.get('family') or '').upper()}, {given} {n.get('suffix') or ''}".strip(" ,")


def _scalar(snapshot: dict, key: str) -> str:
    value = snapshot.get(key)
    if key == "name":
        return _person_name(value or {})
    if key in _CHOICES:
        return _label(_CHOICES[key], value) if value else "—"
    if key == "deceased_at":
        return value[:10] if value else "—"
    return str(value) if value else "—"


def _item(section: str, item: dict) -> str:
    ended = "" if item.get("active", True) else " — no longer in use"
    if section == "names":
        return f"{_label(NameUse, item['use'])}: {_person_name(item)}"
    if section == "addresses":
        line = ", ".join(p for p in (item["line1"], item.get("line2"), item["city"]) if p)
        return f"{_label(AddressUse, item['use'])}: {line} {item['state']} {item['postal_code']}"
    if section == "telecoms":
        what = "e-mail" if item["system"] == TelecomSystem.EMAIL else "phone"
        return f"{_label(TelecomUse, item['use'])} {what}: {item['value']}{ended}"
    if section == "identifiers":
        where = f" ({item['facility']})" if item.get("facility") else ""
        issuer = f" ({item['issuer']})" if item.get("issuer") else ""
        return f"{_label(IdentifierKind, item['kind'])}: {item['value']}{issuer}{where}{ended}"
    authority = f", {_label(LegalAuthority, item['authority'])}" if item.get("authority") else ""
    relation = f" ({item['relationship']})" if item.get("relationship") else ""
    return f"{_label(ContactKind, item['kind'])}: {item['name']}{relation}{authority}{ended}"


@dataclass
class Change:
    field: str
    before: list[str]
    after: list[str]


def diff_snapshots(old: dict | None, new: dict) -> list[Change]:
    """What differs between two versions' snapshots, field by field; for lists (names,
    addresses, …) the entries removed and added."""
    old = old or {}
    changes = []
    for key, label in _SCALARS:
        before, after = _scalar(old, key), _scalar(new, key)
        if before != after:
            changes.append(Change(label, [before] if old else [], [after]))
    for key, label in _LISTS:
        before = Counter(_item(key, i) for i in old.get(key, []))
        after = Counter(_item(key, i) for i in new.get(key, []))
        removed, added = sorted((before - after).elements()), sorted((after - before).elements())
        if removed or added:
            changes.append(Change(label, removed, added))
    return changes


def version_history(versions) -> list[dict]:
    """Each version (newest first) with its changes from the one before it."""
    history = []
    for index, version in enumerate(versions):
        previous = versions[index + 1] if index + 1 < len(versions) else None
        history.append(
            {
                "version": version,
                "changes": diff_snapshots(
                    previous.snapshot if previous else None, version.snapshot
                ),
                "first": previous is None,
            }
        )
    return history
