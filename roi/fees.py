"""Fees for a release, by the fee schedule in force (``roi.FeeSchedule``, versioned data).

A schedule applies to a set of requester types from ``effective_from`` to
``effective_to`` (for a state when ``state`` is set: the policy's
``parameters["fee_state"]`` picks it, else the schedules without a state). Its
``parameters["method"]`` says how the fee is computed:

- ``none``: no charge (providers for continuing care, public health, …);
- ``cost``: the patient's own copy (164.524(c)(4)): the labour of copying
  (``labour_per_hour`` at ``pages_per_hour``), ``supplies_per_page`` for paper,
  ``media`` for a CD/USB, ``postage`` for mail; never a search or retrieval fee. With
  ``flat_fee_electronic`` set (at most $6.50), an electronic copy costs that flat fee
  instead;
- ``per_page``: third parties (state-style caps): ``first_pages`` pages at
  ``first_pages_price`` each, the rest at ``per_page``, plus ``postage`` for mail.

:func:`invoice` writes the lines as :class:`roi.models.InvoiceLine` rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q

from recordroom import clock
from roi.models import Delivery, FeeSchedule, Format, InvoiceLine, RoiRequest

CENT = Decimal("0.01")
FLAT_FEE_CAP = Decimal("6.50")  # HHS guidance; a schedule above it is refused (see clean)


@dataclass
class Line:
    description: str
    quantity: Decimal
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(CENT, rounding=ROUND_HALF_UP)


def _money(parameters: dict, key: str) -> Decimal:
    value = parameters.get(key)
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def schedule_for(
    request: RoiRequest, on: dt.date | None = None, state: str = ""
) -> FeeSchedule | None:
    """The schedule for the request's requester type in force on ``on`` (the date of
    receipt by default), the state's before the one without a state."""
    on = on or request.received_on
    current = FeeSchedule.objects.filter(effective_from__lte=on).filter(
        Q(effective_to__isnull=True) | Q(effective_to__gte=on)
    )
    candidates = [
        s
        for s in current.order_by("-effective_from", "-pk")
        if request.requester_type in (s.requester_types or [])
    ]
    for wanted in [state, ""] if state else [""]:
        for schedule in candidates:
            if schedule.state == wanted:
                return schedule
    return None


def validate_parameters(parameters: dict) -> list[str]:
    """Problems with a schedule's parameters (empty when usable)."""
    problems = []
    method = parameters.get("method")
    if method not in ("none", "cost", "per_page"):
        problems.append("The method must be none, cost or per_page.")
    for key, value in parameters.items():
        if key == "method" or isinstance(value, bool):
            continue
        try:
            if Decimal(str(value)) < 0:
                problems.append(f"{key} cannot be negative.")
        except ArithmeticError:
            problems.append(f"{key} is not a number.")
    if method == "cost" and _money(parameters, "flat_fee_electronic") > FLAT_FEE_CAP:
        problems.append("The flat fee for an electronic copy is at most $6.50.")
    return problems


def calculate(request: RoiRequest, schedule: FeeSchedule | None, *, pages: int) -> list[Line]:
    """The invoice lines for ``pages`` released pages (nothing without a schedule)."""
    if schedule is None:
        return []
    p = schedule.parameters or {}
    method = p.get("method", "none")
    electronic = request.format == Format.ELECTRONIC
    lines: list[Line] = []
    if method == "cost":
        flat = _money(p, "flat_fee_electronic")
        if electronic and flat > 0:
            lines.append(Line("Electronic copy (flat fee)", Decimal(1), min(flat, FLAT_FEE_CAP)))
        else:
            per_hour = _money(p, "pages_per_hour") or Decimal(1)
            labour = _money(p, "labour_per_hour")
            if labour and pages:
                hours = (Decimal(pages) / per_hour).quantize(CENT, rounding=ROUND_HALF_UP)
                lines.append(Line("Labour for copying (hours)", hours, labour))
            if not electronic and _money(p, "supplies_per_page") and pages:
                lines.append(
                    Line("Paper and toner (pages)", Decimal(pages), _money(p, "supplies_per_page"))
                )
            if request.delivery == Delivery.MEDIA and _money(p, "media"):
                lines.append(Line("Portable media", Decimal(1), _money(p, "media")))
    elif method == "per_page" and pages:
        first = int(_money(p, "first_pages"))
        first_count = min(pages, first)
        if first_count:
            lines.append(
                Line(f"Pages 1-{first_count}", Decimal(first_count), _money(p, "first_pages_price"))
            )
        if pages > first_count:
            lines.append(
                Line(
                    f"Pages {first_count + 1}-{pages}",
                    Decimal(pages - first_count),
                    _money(p, "per_page"),
                )
            )
        if _money(p, "base_fee"):
            lines.append(Line("Base fee", Decimal(1), _money(p, "base_fee")))
    if method != "none" and request.delivery == Delivery.MAIL and _money(p, "postage"):
        lines.append(Line("Postage", Decimal(1), _money(p, "postage")))
    return [line for line in lines if line.amount > 0]


def invoice(request: RoiRequest, *, pages: int, state: str = "") -> list[InvoiceLine]:
    """Write the request's invoice lines for ``pages`` pages (in the caller's
    transaction); none when the request is already invoiced."""
    if InvoiceLine.objects.filter(request=request).exists():
        return []
    schedule = schedule_for(request, state=state)
    now = clock.now()
    rows = [
        InvoiceLine(
            request=request,
            fee_schedule=schedule,
            description=line.description,
            quantity=line.quantity,
            unit_price=line.unit_price,
            amount=line.amount,
            created_at=now,
        )
        for line in calculate(request, schedule, pages=pages)
    ]
    return InvoiceLine.objects.bulk_create(rows)


def total(lines) -> Decimal:
    return sum((line.amount for line in lines), Decimal(0))
