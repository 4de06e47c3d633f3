"""SMART on FHIR scopes: parsing and comparing them.

A resource scope is ``<context>/<resource type or *>.<permissions>``:

* context ``patient`` (one patient's compartment, the patient chosen at launch),
  ``user`` (whatever the signed-in user may see) or ``system`` (a backend service acting
  as its system account);
* permissions in SMART v1 syntax (``read``, ``write``, ``*``) or SMART v2 syntax (a run of
  ``c r u d s`` in that order: ``rs``, ``cruds``, ``r``…). Read is ``r`` or ``s``; write
  is ``c``, ``u`` or ``d``.

See https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html. Granular v2
scopes with a query (``patient/Observation.rs?category=…``) are not supported: they
parse as unknown, so a request for one is refused as ``invalid_scope`` instead of being
widened to the whole type.

Other scopes RecordRoom knows (``openid``, ``fhirUser``, ``launch/patient``,
``offline_access``) are kept as words; they grant no data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONTEXTS = ("patient", "user", "system")
READ = "read"
WRITE = "write"
MODES = (READ, WRITE)

# Scopes that are not resource scopes but are understood.
LAUNCH_PATIENT = "launch/patient"
NON_RESOURCE_SCOPES = ("openid", "fhirUser", LAUNCH_PATIENT, "offline_access", "online_access")

_RESOURCE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{1,39})\.(?P<perm>[a-z*]+)$"
)
_V2 = re.compile(r"^c?r?u?d?s?$")


@dataclass(frozen=True)
class SmartScope:
    """One resource scope, normalised to the modes it grants."""

    context: str
    resource_type: str  # a FHIR resource type, or "*"
    read: bool
    write: bool
    text: str

    def grants(self, resource_type: str, mode: str) -> bool:
        if self.resource_type not in ("*", resource_type):
            return False
        return self.read if mode == READ else self.write

    def covers(self, other: SmartScope) -> bool:
        """Whether this scope grants everything ``other`` asks (same context)."""
        if self.context != other.context:
            return False
        if self.resource_type != "*" and self.resource_type != other.resource_type:
            return False
        return (self.read or not other.read) and (self.write or not other.write)

    def narrowed(self, *, read: bool, write: bool) -> SmartScope | None:
        """This scope with only the modes also allowed by ``read``/``write`` (None when
        nothing is left)."""
        keep_read, keep_write = self.read and read, self.write and write
        if not (keep_read or keep_write):
            return None
        if (keep_read, keep_write) == (self.read, self.write):
            return self
        return SmartScope(
            self.context,
            self.resource_type,
            keep_read,
            keep_write,
            format_scope(self.context, self.resource_type, keep_read, keep_write),
        )


def format_scope(context: str, resource_type: str, read: bool, write: bool) -> str:
    """The v1 spelling of a scope granting these modes."""
    perm = "*" if read and write else (READ if read else WRITE)
    return f"{context}/{resource_type}.{perm}"


class ScopeSyntaxError(ValueError):
    """A scope RecordRoom does not understand; the message names it."""


def parse_scope(text: str) -> SmartScope | None:
    """The resource scope ``text`` stands for, None for a known non-resource scope, or
    :class:`ScopeSyntaxError`."""
    if text in NON_RESOURCE_SCOPES:
        return None
    match = _RESOURCE.match(text)
    if not match:
        raise ScopeSyntaxError(f"unknown scope {text!r}")
    perm = match["perm"]
    if perm == "read":
        read, write = True, False
    elif perm == "write":
        read, write = False, True
    elif perm == "*":
        read, write = True, True
    elif _V2.match(perm):
        read = "r" in perm or "s" in perm
        write = "c" in perm or "u" in perm or "d" in perm
    else:
        raise ScopeSyntaxError(f"unknown permissions {perm!r} in scope {text!r}")
    return SmartScope(match["context"], match["type"], read, write, text)


def parse_scopes(text: str) -> tuple[list[SmartScope], list[str]]:
    """The resource scopes and the other known words of a space-separated scope
    string. Raises :class:`ScopeSyntaxError` on the first word not understood."""
    resource_scopes: list[SmartScope] = []
    words: list[str] = []
    for word in (text or "").split():
        scope = parse_scope(word)
        if scope is None:
            if word not in words:
                words.append(word)
        elif scope not in resource_scopes:
            resource_scopes.append(scope)
    return resource_scopes, words


def parse_scopes_lenient(text: str) -> list[SmartScope]:
    """The resource scopes of a stored scope string, skipping anything unknown (a
    stored token's scope was validated when it was issued)."""
    result = []
    for word in (text or "").split():
        try:
            scope = parse_scope(word)
        except ScopeSyntaxError:
            continue
        if scope is not None:
            result.append(scope)
    return result


def grants(scopes: list[SmartScope], resource_type: str, mode: str) -> bool:
    return any(scope.grants(resource_type, mode) for scope in scopes)


def within(requested: SmartScope, allowed: list[SmartScope]) -> SmartScope | None:
    """The part of ``requested`` that some scope of ``allowed`` grants (modes are
    narrowed; a wildcard type is not narrowed to a list of types), or None."""
    read = requested.read and any(
        a.context == requested.context
        and a.read
        and a.resource_type in ("*", requested.resource_type)
        for a in allowed
    )
    write = requested.write and any(
        a.context == requested.context
        and a.write
        and a.resource_type in ("*", requested.resource_type)
        for a in allowed
    )
    return requested.narrowed(read=read, write=write)


def scope_string(scopes: list[SmartScope], words: list[str] = ()) -> str:
    return " ".join([*words, *(s.text for s in scopes)])
