"""Medical record numbers: a facility's prefix, a zero-padded sequence and a check
digit, assigned from a counter that only increases (an MRN is never reused)."""

from __future__ import annotations

from accounts.models import CheckDigit, Facility


def luhn_digit(digits: str) -> str:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def mod11_digit(digits: str) -> str:
    """ISO 7064 MOD 11-2 (the check character may be X)."""
    total = 0
    for char in digits:
        total = (total + int(char)) * 2
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def format_mrn(facility: Facility, number: int) -> str:
    body = str(number).zfill(facility.mrn_digits)
    if facility.mrn_check_digit == CheckDigit.LUHN:
        body += luhn_digit(body)
    elif facility.mrn_check_digit == CheckDigit.MOD11:
        body += mod11_digit(body)
    return f"{facility.mrn_prefix}{body}"


def is_valid_mrn(facility: Facility, mrn: str) -> bool:
    mrn = mrn.strip().upper()
    if not mrn.startswith(facility.mrn_prefix.upper()):
        return False
    body = mrn[len(facility.mrn_prefix) :]
    if facility.mrn_check_digit == CheckDigit.NONE:
        return body.isdigit()
    digits, check = body[:-1], body[-1:]
    if not digits.isdigit() or len(digits) < 1:
        return False
    expected = (
        luhn_digit(digits) if facility.mrn_check_digit == CheckDigit.LUHN else mod11_digit(digits)
    )
    return check == expected


def next_mrn(facility: Facility) -> str:
    """Take the facility's next MRN. Call inside a transaction: the counter row is locked."""
    locked = Facility.objects.select_for_update().get(pk=facility.pk)
    number = locked.mrn_next
    Facility.objects.filter(pk=facility.pk).update(mrn_next=number + 1)
    return format_mrn(locked, number)
