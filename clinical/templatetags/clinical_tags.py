"""Showing clinical values as a chart reads them."""

from __future__ import annotations

import decimal

from django import template

register = template.Library()


@register.filter
def quantity(value) -> str:
    """A stored decimal without the trailing zeros of its six fixed places: 182.500000 → 182.5."""
    if value is None or value == "":
        return ""
    number = decimal.Decimal(str(value)).normalize()
    return format(number, "f")


@register.simple_tag
def reference_range(entry) -> str:
    low, high = quantity(entry.reference_low), quantity(entry.reference_high)
    if low and high:
        return f"{low}–{high}"
    if low:
        return f"≥ {low}"
    if high:
        return f"≤ {high}"
    return ""
