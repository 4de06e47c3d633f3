"""Validating a population's resources without validating the same element twice.

``fhir.resources`` (through ``fhir_core``) validates every complex element of a
resource — each CodeableConcept, Reference, Quantity, Period… — as a model of its own,
entering Python for each (about forty for an Observation). A population repeats them
endlessly: the same LOINC code, category, unit or patient reference in thousands of
resources. Validating an element depends only on its model and its value (no context of
the resource it sits in is passed down), so the validated element can be kept, keyed by
the model and the element's JSON, and given again when the same value comes back. The
resource's own checks (required elements, one-of-many choices, bindings) still run on
every resource; an element that fails is never kept, so it fails again, with the same
error, every time.

Measured on clinosim resources (3,000 of a type, one process): Observation 0.134 →
0.095 ms, MedicationRequest 0.273 → 0.120, Encounter 0.359 → 0.122, ServiceRequest
0.183 → 0.082, Immunization 0.134 → 0.055.

:func:`install` wraps ``fhir_core.types.FhirBase.fhir_model_validator``, the one door
every nested element goes through; if a later ``fhir_core`` has no such door, nothing
is changed and validation simply takes its time (``installed()`` says which).
"""

from __future__ import annotations

import threading

import orjson

# Validated elements kept at most; the memo is emptied when it is full (a population's
# repeated elements come back within a batch, so little is lost).
MAX_KEPT = 50_000

_kept: dict[tuple, object] = {}
_lock = threading.Lock()
_original = None


def _door():
    try:
        from fhir_core.types import FhirBase
    except ImportError:  # pragma: no cover - a fhir.resources without fhir_core
        return None, None
    found = FhirBase.__dict__.get("fhir_model_validator")
    if not isinstance(found, classmethod):
        return None, None
    return FhirBase, found.__func__


def _remembering(cls, value, model_klass):
    if type(value) is not dict:
        return _original(cls, value, model_klass)
    try:
        text = orjson.dumps(value)
    except TypeError:  # not plain JSON (a value built in Python): validate it as it is
        return _original(cls, value, model_klass)
    if b"null" in text:  # orjson writes NaN and infinities as null too: not a safe key
        return _original(cls, value, model_klass)
    key = (model_klass, text)
    found = _kept.get(key)
    if found is not None:
        return found
    validated = _original(cls, value, model_klass)  # raises when invalid: nothing kept
    if len(_kept) >= MAX_KEPT:
        _kept.clear()
    _kept[key] = validated
    return validated


def install() -> bool:
    """Put the memo in ``fhir_core``'s door (once); True when it is in place."""
    global _original
    with _lock:
        base, original = _door()
        if base is None:
            return False
        if original is _remembering:
            return True
        _original = original
        base.fhir_model_validator = classmethod(_remembering)
        return True


def installed() -> bool:
    base, current = _door()
    return base is not None and current is _remembering


def forget() -> None:
    """Empty the memo (tests compare validation with and without it)."""
    _kept.clear()
