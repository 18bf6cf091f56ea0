"""Money is exact at the edge: whether an amount has at most 2 decimals is decided from the
number as written in the JSON, never from float arithmetic (issue 14, item 1).

Before, ``to_cents`` tolerated an error of 1e-6 x |amount|, so ``"amount": 123456.789`` became
12345679 cents. These properties run over every money field of every event type, at magnitudes
up to each schema's maximum, in plain, trailing-zero and exponent notation.
"""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streams.core.validation import SCHEMA_DIR, Rejection, decode, parse_time_ms, to_cents
from streams.generator.malformed import MONEY_FIELDS

RECORD_TS = parse_time_ms("2025-03-01T10:00:01Z")
BASES = {
    "order": {"type": "order", "schema_version": 1, "event_id": "e1", "event_time": "2025-03-01T10:00:00Z",
              "customer_id": "c1", "order_id": "o1", "amount": 19.99, "currency": "EUR"},
    # the largest refund, so that any restocked_cost within the schema's maximum is not above it
    "refund": {"type": "refund", "schema_version": 1, "event_id": "r1", "event_time": "2025-03-01T10:00:00Z",
               "customer_id": "c1", "order_id": "o1", "amount": 10_000_000, "currency": "EUR"},
    "customer": {"type": "customer", "schema_version": 1, "event_id": "p1", "event_time": "2025-03-01T10:00:00Z",
                 "customer_id": "c1", "kind": "signup"},
}
CASES = [(kind, field) for kind, fields in MONEY_FIELDS.items() for field in fields]


def schema_bounds(kind: str, field: str) -> tuple[int, int]:
    """(lowest, highest) accepted cents of a field, read from its schema (the contract)."""
    spec = json.loads((SCHEMA_DIR / "v1" / f"{kind}.schema.json").read_text())["properties"][field]
    low = int(Decimal(str(spec.get("minimum", 0))) * 100) + (1 if "exclusiveMinimum" in spec else 0)
    return low, int(Decimal(str(spec["maximum"])) * 100)


def payload(kind: str, field: str, literal: str) -> bytes:
    """The base event with ``field`` written exactly as ``literal`` (json.dumps would re-spell it)."""
    doc = {**BASES[kind], field: "@MONEY@"}
    return json.dumps(doc).encode().replace(b'"@MONEY@"', literal.encode())


def cents_read(event, field: str) -> int:
    if field == "amount":
        return event.amount_cents
    if field == "restocked_cost":
        return event.restocked_cost_cents
    if field == "acquisition_cost":
        return event.acquisition_cost_cents
    return event.cost_cents  # the one cost field of the order


@st.composite
def spellings(draw, cents: int) -> str:
    """Ways a JSON producer may write ``cents / 100``: all denote the same number."""
    whole, frac = divmod(cents, 100)
    zeros = draw(st.integers(0, 4))
    shift = draw(st.integers(0, 6))
    form = draw(st.sampled_from(["plain", "padded", "integer", "exponent", "scientific"]))
    if form == "integer" and frac == 0:
        return str(whole)
    if form == "padded":  # trailing zeros, as in 10.500
        return f"{whole}.{frac:02d}" + "0" * zeros
    if form == "exponent":  # 1999e-2, 19990e-3, ...
        return f"{cents * 10 ** shift}{draw(st.sampled_from(['e', 'E']))}-{2 + shift}"
    if form == "scientific":  # 1.999E+1, 1.5e2
        digits = str(cents).rstrip("0") or "0"
        exponent = len(str(cents)) - 1 - 2
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        sign = "+" if exponent >= 0 and draw(st.booleans()) else ""
        return f"{mantissa}{draw(st.sampled_from(['e', 'E']))}{sign}{exponent}"
    return f"{whole}.{frac:02d}"


@st.composite
def exact_amounts(draw):
    kind, field = draw(st.sampled_from(CASES))
    low, high = schema_bounds(kind, field)
    magnitude = draw(st.sampled_from([100, 10_000, 10**6, 10**8, high]))  # small to the schema's maximum
    cents = draw(st.integers(low, min(high, magnitude)))
    return kind, field, cents, draw(spellings(cents))


@st.composite
def over_precise_amounts(draw):
    """At least 3 significant decimals (the last one non-zero), within the schema's range."""
    kind, field = draw(st.sampled_from(CASES))
    decimals = draw(st.integers(3, 8))
    scale = 10 ** decimals
    magnitude = draw(st.sampled_from([1, 100, 10**5, 10**7]))
    units = draw(st.integers(1, magnitude * scale - 1).filter(lambda n: n % (scale // 100) != 0))
    value = Decimal(units).scaleb(-decimals)
    literal = draw(st.sampled_from([format(value, "f"), format(value, "f") + "00", format(value, "E")]))
    return kind, field, value, literal


@settings(max_examples=1500, deadline=None)
@given(exact_amounts())
@example(("order", "amount", 12345678, "123456.78"))
@example(("order", "amount", 15000, "1.5e2"))
@example(("order", "service_cost", 1, "1E-2"))
@example(("customer", "acquisition_cost", 1050, "10.500"))
@example(("refund", "amount", 1_000_000_000, "10000000"))
@example(("refund", "restocked_cost", 999_999_999, "9999999.99"))
def test_up_to_two_decimals_are_accepted_as_exact_cents(case):
    kind, field, cents, literal = case
    event = decode(payload(kind, field, literal), record_time_ms=RECORD_TS)
    assert not isinstance(event, Rejection), (literal, event)
    assert cents_read(event, field) == cents, literal


@settings(max_examples=1500, deadline=None)
@given(over_precise_amounts())
@example(("order", "amount", Decimal("123456.789"), "123456.789"))
@example(("order", "logistics_cost", Decimal("9999999.999"), "9999999.999"))
@example(("refund", "amount", Decimal("0.001"), "1E-3"))
@example(("customer", "acquisition_cost", Decimal("0.30000000000000004"), "0.30000000000000004"))
@example(("order", "cost_of_goods", Decimal("1.0000000000000000000000000001"), "1.0000000000000000000000000001"))
def test_three_or_more_decimals_are_invalid_values(case):
    kind, field, value, literal = case
    result = decode(payload(kind, field, literal), record_time_ms=RECORD_TS)
    assert isinstance(result, Rejection), (literal, result)
    assert result.reason == "invalid_value"
    assert result.error.startswith(f"{field} ") and result.error.endswith(" has more than 2 decimals")


@pytest.mark.parametrize("literal,error", [
    ("123456.789", "amount 123456.789 has more than 2 decimals"),  # the text of today's reason, unchanged
    ("1.001", "amount 1.001 has more than 2 decimals"),
    ("1.0010000000000000000001", "amount 1.0010000000000000000001 has more than 2 decimals"),  # as written
])
def test_the_reason_names_the_amount_as_written(literal, error):
    result = decode(payload("order", "amount", literal), record_time_ms=RECORD_TS)
    assert result == Rejection("invalid_value", error)


def test_to_cents_is_exact_for_numbers_as_written():
    assert to_cents(Decimal("123456.789")) is None and to_cents(Decimal("10.500")) == 1050
    assert to_cents(Decimal("1.5e2")) == 15000 and to_cents(Decimal("1E-2")) == 1 and to_cents(7) == 700
    assert to_cents(Decimal("1e-999999999")) is None and to_cents(Decimal("1e999999999")) is None
    assert to_cents(Decimal("NaN")) is None and to_cents(Decimal("-Infinity")) is None
    # A float has no literal: it passes only within float rounding of a whole cent (was 1e-6 x |amount|).
    assert to_cents(123456.789) is None and to_cents(9999999.999) is None and to_cents(0.1 + 0.2) == 30
