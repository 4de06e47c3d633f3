"""Codes of required bindings that ``fhir.resources`` does not check.

``fhir.resources`` validates the shape of a resource, not the value of a ``code``
bound to a required value set: ``Patient.gender = "bogus"`` passes its
``model_validate``. RecordRoom refuses such a resource (FHIR R4: a required binding
must be one of the value set's codes). The allowed codes are those ``fhir.resources``
records on each top-level element (``enum_values``); where it cuts a list short
(ending it with ``"+"``), the R4 value set is completed from :data:`COMPLETE`, and an
element whose list stays incomplete is not checked. Nested elements (``name.use``,
``telecom.system``) are not checked. Cost: a dictionary look-up per top-level element
of a resource, computed once per type.
"""

from __future__ import annotations

from functools import cache

# R4 required value sets that fhir.resources lists only in part.
COMPLETE: dict[tuple[str, str], tuple[str, ...]] = {
    ("Encounter", "status"): (
        "planned",
        "arrived",
        "triaged",
        "in-progress",
        "onleave",
        "finished",
        "cancelled",
        "entered-in-error",
        "unknown",
    ),
    ("Observation", "status"): (
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    ),
    ("DiagnosticReport", "status"): (
        "registered",
        "partial",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "appended",
        "cancelled",
        "entered-in-error",
        "unknown",
    ),
}


@cache
def required_codes(resource_type: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """(element, allowed codes) of the type's top-level coded elements."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return ()
    out = []
    for name, field in model.model_fields.items():
        values = (field.json_schema_extra or {}).get("enum_values") or []
        element = field.alias or name
        if "+" in values:
            values = COMPLETE.get((resource_type, element), ())
        if values:
            out.append((element, frozenset(values)))
    return tuple(out)


def binding_problems(resource: dict) -> list[tuple[str, str]]:
    """(element, message) for each top-level code outside its required value set."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return []
    problems = []
    for element, allowed in required_codes(resource_type):
        value = resource.get(element)
        if value is None:
            continue
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, str) and one not in allowed:
                shown = one if len(one) <= 40 else one[:40] + "…"
                problems.append(
                    (
                        element,
                        f"{shown!r} is not a valid {resource_type}.{element} "
                        f"(one of {', '.join(sorted(allowed))}).",
                    )
                )
    return problems
