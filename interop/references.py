"""FHIR references: finding them in a resource and rewriting them to RecordRoom's ids.

A reference is any ``reference`` string inside a Reference element, wherever it sits
(``subject``, ``encounter``, ``performer[0].actor``, inside extensions, inside contained
resources). The forms a sender writes:

* ``urn:uuid:…`` / ``urn:oid:…`` — the ``fullUrl`` of another entry of the same bundle;
* ``Type/id`` (or ``Type/id/_history/n``) — relative, to an entry of the bundle or to a
  resource imported before (through :class:`interop.models.SourceKey`) or already in
  RecordRoom (its own id);
* ``http(s)://…/Type/id`` — absolute: an entry's ``fullUrl`` when it matches one;
  otherwise a reference to another server, kept as written;
* ``Type?identifier=system|value`` — conditional, as Synthea writes them for
  Practitioner, Organization and Location;
* ``#id`` — a contained resource: kept as written.

Walking is iterative over plain dicts and lists, so a deep or self-referencing bundle
cannot recurse without end; references are looked up, never followed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs

_RELATIVE = re.compile(
    r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_ABSOLUTE = re.compile(
    r"^https?://.+/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_CONDITIONAL = re.compile(r"^([A-Z][A-Za-z]+)\?(.+)$")


@dataclass(frozen=True)
class ParsedReference:
    kind: str  # "urn", "relative", "absolute", "conditional", "contained", "other"
    resource_type: str = ""
    source_id: str = ""
    system: str = ""
    value: str = ""


def parse_reference(reference: str) -> ParsedReference:
    if reference.startswith("#"):
        return ParsedReference("contained")
    if reference.startswith("urn:"):
        return ParsedReference("urn")
    match = _RELATIVE.match(reference)
    if match:
        return ParsedReference("relative", match.group(1), match.group(2))
    match = _CONDITIONAL.match(reference)
    if match:
        query = parse_qs(match.group(2), keep_blank_values=True)
        identifier = (query.get("identifier") or [""])[0]
        system, _, value = identifier.rpartition("|")
        if value:
            return ParsedReference("conditional", match.group(1), system=system, value=value)
        return ParsedReference("other", match.group(1))
    match = _ABSOLUTE.match(reference)
    if match:
        return ParsedReference("absolute", match.group(1), match.group(2))
    return ParsedReference("other")


def iter_references(resource: dict, root: str) -> Iterator[tuple[dict, str]]:
    """Each Reference element (the dict holding a ``reference`` string) with its
    FHIRPath-like location, e.g. ``Observation.subject`` or ``Claim.item[0].encounter[0]``.
    Contained resources are walked too (their references may point into the bundle)."""
    stack: list[tuple[object, str]] = [(resource, root)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            reference = node.get("reference")
            if isinstance(reference, str):
                yield node, path
            for key, value in node.items():
                if isinstance(value, dict | list):
                    stack.append((value, f"{path}.{key}"))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                if isinstance(value, dict | list):
                    stack.append((value, f"{path}[{index}]"))


def reference_holders(resource: dict) -> list[tuple[dict, str]]:
    """Each Reference element of ``resource`` (the dict holding a ``reference`` string)
    with the element it sits in, named by at most its first two element names:
    ``subject``, ``performer``, ``context.encounter``, ``item.encounter``,
    ``contained.subject``. The import's walk: no full path is built, so it costs little
    on large resources."""
    found: list[tuple[dict, str]] = []
    stack: list[tuple[object, str]] = [
        (value, key) for key, value in resource.items() if isinstance(value, dict | list)
    ]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("reference"), str):
                found.append((node, where))
            deep = "." in where
            for key, value in node.items():
                if isinstance(value, dict | list):
                    stack.append((value, where if deep else f"{where}.{key}"))
        else:
            for value in node:
                if isinstance(value, dict | list):
                    stack.append((value, where))
    found.reverse()
    return found


def rewrite_references(resource: dict, replace: Callable[[str], str | None]) -> int:
    """Replace every reference ``replace`` gives a new value for, in place. Returns how
    many were rewritten."""
    changed = 0
    for holder, _ in iter_references(resource, resource.get("resourceType", "")):
        new = replace(holder["reference"])
        if new is not None and new != holder["reference"]:
            holder["reference"] = new
            changed += 1
    return changed


# Where a resource names its patient and encounter (the first that is present).
PATIENT_ELEMENTS = ("subject", "patient", "beneficiary", "individual")
ENCOUNTER_ELEMENTS = ("encounter", "context")


def first_reference(resource: dict, elements: tuple[str, ...], resource_type: str) -> str | None:
    """The first reference to ``resource_type`` among ``elements`` (a single Reference or
    a list of them), e.g. the patient of an Observation."""
    for element in elements:
        value = resource.get(element)
        candidates = value if isinstance(value, list) else [value]
        for candidate in candidates:
            if isinstance(candidate, dict):
                reference = candidate.get("reference")
                if isinstance(reference, str) and reference.startswith(f"{resource_type}/"):
                    return reference.split("/")[1]
    return None
