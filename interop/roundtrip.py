"""Round-trip proof: is everything a sender wrote still there when RecordRoom serves
the resource back?

:func:`compare` walks the resource as sent and finds each element in the resource as
served: every element of the input must be present with an equal value (the output may
add elements: RecordRoom's id, meta, the MRN). Ids and references are compared after
mapping the sender's ids to RecordRoom's (:class:`IdMap`, from ``SourceKey`` and the
bundle's ``fullUrl``s); ``meta.versionId`` and ``meta.lastUpdated`` are RecordRoom's and
ignored. Values are compared as FHIR means them: numbers by value (``1`` = ``1.0``),
instants by the moment they name, base64 without line breaks.

Used by tests/test_fhir_roundtrip.py and by the import benchmark.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_RELATIVE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/.*)?$")
_ABSOLUTE = re.compile(r"^https?://.+/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/.*)?$")
_CONDITIONAL = re.compile(r"^([A-Z][A-Za-z]+)\?")
IGNORED = {("meta", "versionId"), ("meta", "lastUpdated")}


@dataclass(frozen=True)
class Difference:
    path: str
    sent: Any
    served: Any
    why: str

    def __str__(self) -> str:
        return f"{self.path}: {self.why} (sent {self.sent!r:.120}, served {self.served!r:.120})"


@dataclass
class IdMap:
    """Sender ids → RecordRoom ids: ``(type, sender id) -> RecordRoom id``, and the
    bundle's ``fullUrl``s → ``(type, sender id)``."""

    ids: dict[tuple[str, str], str] = field(default_factory=dict)
    full_urls: dict[str, tuple[str, str]] = field(default_factory=dict)

    def target(self, resource_type: str, sender_id: str) -> str | None:
        return self.ids.get((resource_type, sender_id))

    def reference(self, reference: str) -> tuple[str, str | None] | None:
        """(type, RecordRoom id or None when unknown) a sent reference should become;
        None when the reference is not one RecordRoom rewrites (contained, external)."""
        if reference in self.full_urls:
            resource_type, sender_id = self.full_urls[reference]
            return resource_type, self.target(resource_type, sender_id)
        for pattern in (_RELATIVE, _ABSOLUTE):
            match = pattern.match(reference)
            if match:
                resource_type, sender_id = match.group(1), match.group(2)
                return resource_type, self.target(resource_type, sender_id)
        match = _CONDITIONAL.match(reference)
        if match:
            return match.group(1), None
        return None

    def add_bundle(self, bundle: dict) -> None:
        for entry in bundle.get("entry") or []:
            resource = entry.get("resource") or {}
            full_url = entry.get("fullUrl")
            if full_url and resource.get("resourceType"):
                sender_id = resource.get("id") or full_url.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
                self.full_urls[full_url] = (resource["resourceType"], sender_id)


def id_map_from_source_keys(namespaces: list[str] | None = None) -> IdMap:
    """Every SourceKey (of these namespaces) as an IdMap."""
    from interop.models import SourceKey

    keys = SourceKey.objects.all()
    if namespaces:
        keys = keys.filter(namespace__in=namespaces)
    mapping = IdMap()
    for resource_type, source_id, fhir_id in keys.values_list(
        "resource_type", "source_id", "fhir_id"
    ).iterator(chunk_size=5000):
        mapping.ids[(resource_type, source_id)] = fhir_id
    return mapping


def _number(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _moment(value) -> dt.datetime | None:
    if not isinstance(value, str) or not _DATETIME.match(value):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _same_scalar(key: str, sent, served) -> bool:
    if sent == served:
        return True
    a, b = _number(sent), _number(served)
    if a is not None and b is not None:
        return a == b
    ma, mb = _moment(sent), _moment(served)
    if ma is not None and mb is not None:
        return ma == mb
    if key == "data" and isinstance(sent, str) and isinstance(served, str):
        return re.sub(r"\s", "", sent) == re.sub(r"\s", "", served)
    return False


def compare(sent: dict, served: dict, ids: IdMap | None = None) -> list[Difference]:
    """What of ``sent`` is missing or different in ``served`` (empty: nothing lost)."""
    ids = ids or IdMap()
    differences: list[Difference] = []
    resource_type = sent.get("resourceType", "")
    _walk(sent, served, resource_type, (), ids, differences, top=True)
    return differences


def _walk(sent, served, path: str, keys: tuple, ids: IdMap, out: list, top: bool = False):
    if isinstance(sent, dict):
        if not isinstance(served, dict):
            out.append(Difference(path, sent, served, "an object was expected"))
            return
        for key, value in sent.items():
            here = f"{path}.{key}"
            if (keys[-1:] + (key,)) in IGNORED:
                continue
            if top and key == "id":
                continue  # RecordRoom assigns its own id (checked through the IdMap)
            if key == "reference" and isinstance(value, str):
                _reference(value, served.get(key), here, ids, out)
                continue
            if key not in served:
                out.append(Difference(here, value, None, "missing"))
                continue
            _walk(value, served[key], here, keys + (key,), ids, out)
        return
    if isinstance(sent, list):
        if not isinstance(served, list):
            out.append(Difference(path, sent, served, "a list was expected"))
            return
        if len(served) < len(sent):
            out.append(Difference(path, len(sent), len(served), "items missing"))
        for index, item in enumerate(sent[: len(served)]):
            _walk(item, served[index], f"{path}[{index}]", keys, ids, out)
        return
    if not _same_scalar(keys[-1] if keys else "", sent, served):
        out.append(Difference(path, sent, served, "different value"))


def _reference(sent: str, served, path: str, ids: IdMap, out: list) -> None:
    if sent == served:
        return
    if not isinstance(served, str):
        out.append(Difference(path, sent, served, "reference missing"))
        return
    expected = ids.reference(sent)
    if expected is None:
        out.append(Difference(path, sent, served, "reference changed"))
        return
    resource_type, target = expected
    match = _RELATIVE.match(served)
    if not match or match.group(1) != resource_type:
        out.append(Difference(path, sent, served, f"reference should point to a {resource_type}"))
        return
    if target is not None and match.group(2) != target:
        out.append(Difference(path, sent, served, f"reference should be {resource_type}/{target}"))
