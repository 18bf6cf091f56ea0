"""Major units -> integer cents, exactly.

The contracts allow at most 2 decimals. Whether an amount has more is decided from the number
as written in the JSON (decoded as ``Decimal`` from its literal), never from float arithmetic:
a float tolerance once let ``123456.789`` through as 12345679 cents, since the error it allowed
grew with the amount (issue 14).
"""
from __future__ import annotations

import math
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from typing import Optional, Union

_HUNDRED = Decimal(100)
# 40 digits hold any amount a contract allows (at most 10^7 with 2 decimals) in cents, and far
# more; an amount that does not fit, or scaled to cents would round, raises instead of rounding.
_EXACT = Context(prec=40, traps=[Inexact, InvalidOperation, Overflow])
# A float read elsewhere than from JSON (e.g. computed as 0.1 + 0.2) has no literal: it counts as
# a whole number of cents when within a few units in the last place of one. That tells 2 decimals
# from 3 as long as 0.1 cent is far above the float's resolution, i.e. up to ~1e10 major units.
_FLOAT_ULPS = 8
_FLOAT_RESOLUTION_LIMIT = 1e-3


def to_cents(amount: Union[int, Decimal, float]) -> Optional[int]:
    """Cents of ``amount``, or None when it has more than 2 decimals or is not finite."""
    if isinstance(amount, Decimal):
        return _decimal_cents(amount)
    if isinstance(amount, int):
        return amount * 100
    return _float_cents(amount)


def _decimal_cents(amount: Decimal) -> Optional[int]:
    if not amount.is_finite():  # a quiet NaN would pass the multiplication below
        return None
    try:
        scaled = _EXACT.multiply(amount, _HUNDRED)  # exact, or raises (1.000...0001 with 60k digits)
    except (Inexact, InvalidOperation):  # Overflow is an Inexact
        return None
    magnitude = scaled.adjusted()  # checked first: it keeps the integers below small
    if magnitude > 20 or (magnitude < 0 and scaled):  # beyond any contract, or a fraction of a cent
        return None
    whole, denominator = scaled.as_integer_ratio()
    return whole if denominator == 1 else None  # 10.500 -> 1050, 123456.789 -> None


def _float_cents(amount: float) -> Optional[int]:
    scaled = amount * 100
    if not math.isfinite(scaled):  # before round(), which raises on NaN and infinity
        return None
    tolerance = _FLOAT_ULPS * math.ulp(scaled)
    if tolerance >= _FLOAT_RESOLUTION_LIMIT:  # the float cannot tell cents from tenths of a cent
        return None
    cents = round(scaled)
    return int(cents) if abs(scaled - cents) <= tolerance else None


def amount_as_written(literal: str) -> Decimal:
    """The Decimal of a JSON number's literal (a ``parse_float`` hook). An exponent beyond what a
    Decimal holds (``1e-99999999999999999999``) gives what the number is to the checks: zero, an
    amount below any cent, or an infinity, where ``Decimal()`` would raise."""
    try:
        return Decimal(literal)
    except InvalidOperation:
        mantissa = Decimal(literal.lower().partition("e")[0])
        if not mantissa:
            return mantissa
        sign = int(mantissa.is_signed())
        if "e-" in literal.lower():
            return Decimal((sign, (1,), -999_999_999))
        return Decimal((sign, (), "F"))  # an infinity of the mantissa's sign


def written(amount: Union[int, Decimal, float]) -> str:
    """The amount for a message: as the float repr readers know (``123456.789``), or the literal
    itself when that repr would show another number (``1.0010000000000000000001``)."""
    if isinstance(amount, Decimal) and amount.is_finite():
        shown = repr(float(amount))
        return shown if Decimal(shown) == amount else str(amount)
    return repr(amount)
