"""Patients arriving through an interface (FHIR import): the master patient index's
side of it.

A received Patient is matched first on the sender's identifiers, then registered at the
import's facility (an MRN is assigned there). The rows written are those
``patients.actions.do_register_patient`` / ``do_update_demographics`` write — the same
helpers, the same version snapshots — but without the registration screen's rules on
how a name is typed: what another system recorded (a name with digits, as Synthea
writes them, or with markup) is kept as text, exactly as received, and shown escaped.

The caller (``interop.importer``) has checked the import permission, holds the unit's
transaction and writes one audit event for the whole unit.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from patients import matching
from patients.actions import (
    AddressData,
    IdentifierData,
    NameData,
    PatientData,
    TelecomData,
    _update_addresses,
    _update_identifiers,
    _update_names,
    _update_telecoms,
    _write_new_patient,
    _write_version,
    add_mrn,
)
from patients.models import (
    ENCRYPTED_KINDS,
    Ethnicity,
    IdentifierKind,
    NameUse,
    Patient,
    PatientIdentifier,
    Race,
    Sex,
)
from recordroom import crypto

_US_STATES = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA",
    "colorado": "CO", "connecticut": "CT", "delaware": "DE", "district of columbia": "DC",
    "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID", "illinois": "IL",
    "indiana": "IN", "iowa": "IA", "kansas": "KS", "kentucky": "KY", "louisiana": "LA",
    "maine": "ME", "maryland": "MD", "massachusetts": "MA", "michigan": "MI",
    "minnesota": "MN", "mississippi": "MS", "missouri": "MO", "montana": "MT",
    "nebraska": "NE", "nevada": "NV", "new hampshire": "NH", "new jersey": "NJ",
    "new mexico": "NM", "new york": "NY", "north carolina": "NC", "north dakota": "ND",
    "ohio": "OH", "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA",
    "rhode island": "RI", "south carolina": "SC", "south dakota": "SD", "tennessee": "TN",
    "texas": "TX", "utah": "UT", "vermont": "VT", "virginia": "VA", "washington": "WA",
    "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY", "puerto rico": "PR",
    "guam": "GU", "virgin islands": "VI", "american samoa": "AS",
}  # fmt: skip

# v2-0203 identifier type codes → RecordRoom's kinds. A sender's MRN is another
# system's number: it is kept as "other" with the sender's system as issuer, since MRNs
# of kind MR are the ones RecordRoom assigns.
_IDENTIFIER_KINDS = {
    "SS": IdentifierKind.SSN,
    "SB": IdentifierKind.SSN,
    "DL": IdentifierKind.DRIVERS_LICENSE,
    "PPN": IdentifierKind.PASSPORT,
    "MB": IdentifierKind.MEMBER_ID,
    "MC": IdentifierKind.MEDICARE,
}
_SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
_US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
_ADDRESS_USES = {"home", "work", "temp", "old"}
_TELECOM_USES = {"home": "home", "mobile": "mobile", "work": "work", "temp": "home", "old": "home"}
_NAME_USES = {u.value for u in NameUse}


class PatientMappingError(ValueError):
    """The Patient cannot enter the MPI: ``element`` is what is missing or wrong."""

    def __init__(self, element: str, message: str) -> None:
        super().__init__(message)
        self.element = element
        self.message = message


def _text(value, limit: int) -> str:
    return str(value or "").strip()[:limit]


def _name(entry: dict, use: str) -> NameData:
    given = [str(g) for g in entry.get("given") or [] if g]
    if not given and entry.get("text") and not entry.get("family"):
        given = [str(entry["text"])]
    suffix = [str(s) for s in entry.get("suffix") or [] if s]
    return NameData(
        family=_text(entry.get("family"), 100),
        given=_text(given[0] if given else "", 100),
        middle=_text(" ".join(given[1:]), 100),
        suffix=_text(suffix[0] if suffix else "", 20),
        use=use,
    )


def _names(resource: dict) -> tuple[NameData, list[NameData]]:
    entries = [n for n in resource.get("name") or [] if isinstance(n, dict)]
    entries = [n for n in entries if n.get("family") or n.get("given") or n.get("text")]
    if not entries:
        raise PatientMappingError("Patient.name", "RecordRoom's patient index needs a name.")
    official = next((n for n in entries if n.get("use") == "official"), None)
    official = official or next((n for n in entries if n.get("use") in (None, "usual")), None)
    official = official or entries[0]
    others = []
    for entry in entries:
        if entry is official:
            continue
        use = entry.get("use") or NameUse.USUAL
        others.append(_name(entry, use if use in _NAME_USES else NameUse.USUAL))
    return _name(official, NameUse.OFFICIAL), others


def _extension(resource: dict, url: str) -> dict | None:
    return next(
        (e for e in resource.get("extension") or [] if isinstance(e, dict) and e.get("url") == url),
        None,
    )


def _omb(resource: dict, url: str, allowed: set[str]) -> str:
    extension = _extension(resource, url)
    for part in (extension or {}).get("extension") or []:
        if part.get("url") == "ombCategory":
            code = (part.get("valueCoding") or {}).get("code", "")
            if code in allowed:
                return code
    return ""


def _sex(resource: dict) -> str:
    birth_sex = _extension(resource, _US_CORE + "us-core-birthsex")
    code = (birth_sex or {}).get("valueCode", "")
    if code in Sex.values:
        return code
    return {"female": Sex.FEMALE, "male": Sex.MALE}.get(resource.get("gender", ""), Sex.UNKNOWN)


def _identifiers(resource: dict) -> list[IdentifierData]:
    result: list[IdentifierData] = []
    seen = set()
    for ident in resource.get("identifier") or []:
        value = str(ident.get("value") or "").strip()
        if not value:
            continue
        codes = [c.get("code", "") for c in (ident.get("type") or {}).get("coding") or []]
        kind = next((_IDENTIFIER_KINDS[c] for c in codes if c in _IDENTIFIER_KINDS), None)
        system = str(ident.get("system") or "")
        if kind is None and system == _SSN_SYSTEM:
            kind = IdentifierKind.SSN
        kind = kind or IdentifierKind.OTHER
        issuer = system[:100]
        normalized = matching.normalize_identifier(value)
        if not normalized or len(normalized) > 64:
            continue
        key = (kind, issuer, normalized)
        if key in seen:
            continue
        seen.add(key)
        result.append(IdentifierData(kind=kind, value=value, issuer=issuer))
    return result


def _addresses(resource: dict) -> list[AddressData]:
    result = []
    for address in resource.get("address") or []:
        lines = [str(line) for line in address.get("line") or [] if line]
        state = _text(address.get("state"), 100)
        state = _US_STATES.get(state.lower(), state.upper() if len(state) == 2 else "")
        country = _text(address.get("country"), 10).upper()
        use = address.get("use") if address.get("use") in _ADDRESS_USES else "home"
        if not (lines or address.get("city") or address.get("postalCode")):
            continue
        result.append(
            AddressData(
                line1=_text(lines[0] if lines else "", 200),
                line2=_text(" ".join(lines[1:]), 200),
                city=_text(address.get("city"), 100),
                state=state,
                postal_code=_text(address.get("postalCode"), 10),
                country=country if len(country) == 2 else ("US" if country in ("USA", "") else ""),
                use=use,
            )
        )
    return result


def _telecoms(resource: dict) -> list[TelecomData]:
    result = []
    for telecom in resource.get("telecom") or []:
        system, value = telecom.get("system"), _text(telecom.get("value"), 254)
        if system not in ("phone", "email") or not value:
            continue
        result.append(
            TelecomData(
                system=system, value=value, use=_TELECOM_USES.get(telecom.get("use"), "home")
            )
        )
    return result


def _language(resource: dict) -> str:
    for communication in resource.get("communication") or []:
        for coding in (communication.get("language") or {}).get("coding") or []:
            if coding.get("code"):
                return str(coding["code"])[:35]
    return ""


def _deceased(resource: dict) -> dt.datetime | None:
    value = resource.get("deceasedDateTime")
    if not value:
        return None
    try:
        if len(value) == 10:
            return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def patient_data_from_fhir(resource: dict) -> PatientData:
    """The demographics RecordRoom indexes, read from a FHIR Patient. Raises
    :class:`PatientMappingError` when the index cannot hold it (no name, no birth date)."""
    name, others = _names(resource)
    birth = resource.get("birthDate")
    if not birth:
        raise PatientMappingError(
            "Patient.birthDate", "RecordRoom's patient index needs the date of birth."
        )
    try:
        birth_date = dt.date.fromisoformat(str(birth)[:10])
    except ValueError:
        # A partial date (a year, a year-month) is allowed by FHIR; the index needs a day.
        raise PatientMappingError(
            "Patient.birthDate", "RecordRoom's patient index needs a full date of birth."
        ) from None
    return PatientData(
        name=name,
        birth_date=birth_date,
        sex_at_birth=_sex(resource),
        preferred_language=_language(resource),
        race=_omb(resource, _US_CORE + "us-core-race", set(Race.values) - {""}),
        ethnicity=_omb(resource, _US_CORE + "us-core-ethnicity", set(Ethnicity.values) - {""}),
        other_names=others,
        identifiers=_identifiers(resource),
        addresses=_addresses(resource),
        telecoms=_telecoms(resource),
        deceased_at=_deceased(resource),
    )


def find_patient(data: PatientData) -> Patient | None:
    """The person the sender's identifiers name, if the index knows them: an exact match
    on a non-secret identifier from the same issuer, or an exact SSN (keyed hash) with the
    same date of birth. A merged record resolves to its survivor."""
    return find_patients([data])[0]


def find_patients(people: list[PatientData]) -> list[Patient | None]:
    """:func:`find_patient` for each of several people (an import batch's), with one
    query per identifier kind and issuer for all of them instead of one per identifier:
    each person's identifiers are tried in order, the oldest identifier row wins."""
    plain: dict[tuple, set[str]] = defaultdict(set)
    hashed: dict[str, set[str]] = defaultdict(set)
    wanted: list[list[tuple]] = []
    for data in people:
        mine: list[tuple] = []
        for ident in data.identifiers:
            value = matching.normalize_identifier(ident.value)
            if ident.kind in ENCRYPTED_KINDS:
                if ident.kind != IdentifierKind.SSN:
                    continue
                key = (ident.kind, crypto.blind_index(ident.kind, value))
                hashed[ident.kind].add(key[1])
                mine.append(("hash", key))
            else:
                key = (ident.kind, ident.issuer.strip(), value)
                plain[key[:2]].add(value)
                mine.append(("plain", key))
        wanted.append(mine)
    found: dict[tuple, list[PatientIdentifier]] = defaultdict(list)
    for (kind, issuer), values in plain.items():
        for chunk in _chunks(sorted(values)):
            for row in PatientIdentifier.objects.filter(
                kind=kind, issuer=issuer, value__in=chunk, active=True
            ).select_related("patient"):
                found[("plain", (kind, issuer, row.value))].append(row)
    for kind, hashes in hashed.items():
        for chunk in _chunks(sorted(hashes)):
            for row in PatientIdentifier.objects.filter(
                kind=kind, value_hash__in=chunk, active=True
            ).select_related("patient"):
                found[("hash", (kind, row.value_hash))].append(row)
    matches: list[Patient | None] = []
    for data, mine in zip(people, wanted, strict=True):
        patient = None
        for how, key in mine:
            rows = found.get((how, key), [])
            if how == "hash":  # an SSN names the person only with the same date of birth
                rows = [r for r in rows if r.patient.birth_date == data.birth_date]
            if rows:
                patient = min(rows, key=lambda r: r.pk).patient
                break
        matches.append(_survivor(patient) if patient is not None else None)
    return matches


def _chunks(values: list, size: int = 500):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _survivor(patient: Patient) -> Patient:
    """The record a merged record now lives in (itself when not merged)."""
    seen = set()
    while patient.merged_into_id and patient.pk not in seen:
        seen.add(patient.pk)
        patient = Patient.objects.get(pk=patient.merged_into_id)
    return patient


def ensure_mrn(patient: Patient, facility, now) -> None:
    """Give a matched patient an MRN at the import's facility if they have none there."""
    if not PatientIdentifier.objects.filter(
        patient=patient, kind=IdentifierKind.MRN, facility=facility, active=True
    ).exists():
        add_mrn(patient, facility, now)


def register_imported_patient(
    data: PatientData, *, public_id, facility, acting_user, now, reason: str
) -> Patient:
    """Register the person at ``facility`` with RecordRoom's id ``public_id``: the rows
    and version 1 that ``do_register_patient`` writes. Inside the caller's transaction."""
    return _write_new_patient(
        data,
        facility=facility,
        acting_user=acting_user,
        now=now,
        reason=reason,
        public_id=public_id,
    )


def update_imported_patient(
    patient: Patient, data: PatientData, *, acting_user, now, reason: str
) -> list[str]:
    """Bring the index up to what the sender now says, as ``do_update_demographics``
    does (old names and addresses kept as previous ones, identifiers deactivated, a new
    version), but only when something differs. Identifiers RecordRoom holds from other
    sources are kept. Returns what changed (empty: nothing written)."""
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    changes: list[str] = []
    scalars = {
        "family_name": data.name.family,
        "given_name": data.name.given,
        "middle_name": data.name.middle,
        "suffix": data.name.suffix,
        "birth_date": data.birth_date,
        "sex_at_birth": data.sex_at_birth,
        "preferred_language": data.preferred_language,
        "race": data.race,
        "ethnicity": data.ethnicity,
        "deceased_at": data.deceased_at,
    }
    for name, value in scalars.items():
        if getattr(locked, name) != value:
            setattr(locked, name, value)
            if name not in ("family_name", "given_name", "middle_name", "suffix"):
                changes.append(name)
    today = now.date()
    _update_names(locked, data, today, changes)
    _update_addresses(locked, data, today, changes)
    _update_telecoms(locked, data, changes)
    # Identifiers from other senders (and the MRNs) stay: only this sender's own set is
    # brought up to date.
    issuers = {i.issuer.strip() for i in data.identifiers}
    keep = set(
        locked.identifiers.filter(active=True)
        .exclude(issuer__in=issuers)
        .values_list("pk", flat=True)
    )
    _update_identifiers(locked, data, keep, now, changes)
    if not changes:
        return []
    locked.version += 1
    locked.updated_at = now
    locked.save()
    _write_version(locked, acting_user=acting_user, reason=reason, now=now)
    for field in ("version", "updated_at", *scalars):
        setattr(patient, field, getattr(locked, field))
    return sorted(set(changes))
