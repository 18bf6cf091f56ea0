"""Bad payloads, each with exactly one defect and the dead-letter reason it
should earn.

Classification contract (what a correct ingest does, in this order):

====================================  ==============================
defect                                expected reason
====================================  ==============================
payload > 64 KiB (even if valid)      ``too_large``
invalid UTF-8 / not parseable JSON    ``malformed_json``
(incl. NaN/Infinity literals, deep nesting)
JSON but not an object (list, 42...)  ``schema_invalid``
``type`` not one of the 4 contracts   ``unknown_type``
``schema_version`` != 1               ``unsupported_schema_version``
wrong JSON types, missing required    ``schema_invalid``
money < 0 (refund amount <= 0),       ``invalid_value``
money > 10,000,000, > 2 decimals
well-formed currency not accepted     ``unsupported_currency``
event_time in year 1970 / 2999        ``event_time_out_of_range``
====================================  ==============================

Negative and huge amounts also break the schema's ``minimum``/``maximum``;
they are classed ``invalid_value`` because that is the more useful reason.
"""

from __future__ import annotations

import json
import random
from typing import Any, Callable

__all__ = [
    "MALFORMED_CASES",
    "MAX_PAYLOAD_BYTES",
    "MONEY_FIELDS",
    "REJECTION_CLASSES",
    "make_malformed",
    "malformed_payload",
    "sample_order",
]

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_AMOUNT = 10_000_000
REJECTION_CLASSES = (
    "malformed_json",
    "schema_invalid",
    "unknown_type",
    "unsupported_schema_version",
    "unsupported_currency",
    "invalid_value",
    "too_large",
    "event_time_out_of_range",
)
#: money fields per event type (major units, at most 2 decimals)
MONEY_FIELDS = {
    "order": ("amount", "cost_of_goods", "service_cost", "logistics_cost"),
    "refund": ("amount", "restocked_cost"),
    "customer": ("acquisition_cost",),
    "interaction": (),
}
_REQUIRED = {
    "order": ("event_id", "event_time", "customer_id", "order_id", "amount", "currency"),
    "refund": ("event_id", "event_time", "customer_id", "order_id", "amount", "currency"),
    "customer": ("event_id", "event_time", "customer_id", "kind"),
    "interaction": ("event_id", "event_time", "customer_id", "kind"),
}
_UNACCEPTED_CURRENCIES = ("XYZ", "JPY", "QQQ", "USD")


def sample_order(rng: random.Random, currency: str = "EUR") -> dict[str, Any]:
    """A small valid order event (used when no base event is given)."""
    n = rng.randrange(1, 10**6)
    unit = rng.randrange(100, 20000)
    qty = rng.randint(1, 3)
    return {
        "type": "order",
        "schema_version": 1,
        "event_id": f"evt-bad-{n}",
        "event_time": f"2025-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T12:{rng.randint(10, 59)}:00Z",
        "customer_id": f"cust-{rng.randrange(1, 10**6):06d}",
        "order_id": f"ord-bad-{n}",
        "amount": unit * qty / 100,
        "currency": currency,
        "cost_of_goods": round(unit * qty * 0.55) / 100,
        "channel": "web",
        "items": [{"sku": f"SKU-{n % 9973}", "quantity": qty, "unit_price": unit / 100}],
    }


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _money_base(base: dict[str, Any], rng: random.Random, currency: str) -> dict[str, Any]:
    if base.get("type") in ("order", "refund") and "amount" in base:
        return base
    return _like(sample_order(rng, currency), base)


def _like(sample: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Keep the base event's time and customer so the money defect is the only one
    (a random time could also be "in the future" of the record carrying it)."""
    for field in ("event_time", "customer_id"):
        if field in base:
            sample[field] = base[field]
    return sample


# ---- one function per case: (rng, base, currency) -> (bytes, reason) ----


def _invalid_json(rng, base, currency):
    text = _dump(base)
    variant = rng.randrange(7)
    if variant == 0:  # truncated (any proper prefix of an object is invalid)
        return text[: rng.randint(1, len(text) - 1)], "malformed_json"
    if variant == 1:
        return text[:-1] + b",}", "malformed_json"  # trailing comma
    if variant == 2:
        return text.replace(b'"', b"'"), "malformed_json"  # single quotes
    if variant == 3:
        return b"{type: order, amount: 12.5}", "malformed_json"
    if variant == 4:  # what Python's json.dumps writes for float("nan") / float("inf"): not JSON
        obj = dict(_money_base(base, rng, currency))
        fields = [f for f in MONEY_FIELDS[obj["type"]] if f in obj]
        obj[fields[rng.randrange(len(fields))]] = (float("nan"), float("inf"), float("-inf"))[rng.randrange(3)]
        return _dump(obj), "malformed_json"
    if variant == 5:  # deeper than a recursive-descent parser goes, well under the size limit
        depth = rng.randint(20_000, 30_000)
        return b'{"type":"order","items":' + b"[" * depth + b"]" * depth + b"}", "malformed_json"
    return b"not json at all", "malformed_json"


def _non_object(rng, base, currency):
    choices = [[base], 42, "order", None, True, [], 12.5]
    return _dump(choices[rng.randrange(len(choices))]), "schema_invalid"


def _invalid_utf8(rng, base, currency):
    bad = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe2\x82")[rng.randrange(5)]
    obj = dict(base)
    obj["event_id"] = "@@BAD@@"
    return _dump(obj).replace(b"@@BAD@@", b"evt-" + bad + b"-x"), "malformed_json"


def _wrong_types(rng, base, currency):
    obj = dict(base)
    options: list[Callable[[], None]] = [
        lambda: obj.__setitem__("customer_id", rng.randrange(1, 10**6)),
        lambda: obj.__setitem__("event_id", None),
        lambda: obj.__setitem__("event_id", [obj["event_id"]]),
    ]
    if "amount" in obj:
        options.append(lambda: obj.__setitem__("amount", f"{obj['amount']:.2f}"))
    if obj.get("items"):
        def _qty_str() -> None:
            items = [dict(it) for it in obj["items"]]
            items[0]["quantity"] = str(items[0]["quantity"])
            obj["items"] = items
        options.append(_qty_str)
    if obj.get("kind") == "nps":
        options.append(lambda: obj.__setitem__("nps_score", str(obj["nps_score"])))
    options[rng.randrange(len(options))]()
    return _dump(obj), "schema_invalid"


def _missing_required(rng, base, currency):
    obj = dict(base)
    fields = _REQUIRED[obj["type"]]
    del obj[fields[rng.randrange(len(fields))]]
    return _dump(obj), "schema_invalid"


def _negative_amount(rng, base, currency):
    obj = dict(_money_base(base, rng, currency))
    if obj["type"] == "refund" and rng.random() < 0.3:
        obj["amount"] = 0  # refunds must be > 0
    elif obj["type"] == "order" and "cost_of_goods" in obj and rng.random() < 0.3:
        obj["cost_of_goods"] = -abs(obj["cost_of_goods"]) - 0.01
    else:
        obj["amount"] = -abs(obj["amount"]) - 0.01
    return _dump(obj), "invalid_value"


def _huge_amount(rng, base, currency):
    obj = dict(_money_base(base, rng, currency))
    obj["amount"] = (MAX_AMOUNT + 0.01, 12_345_678.9, 1e9, 1e15, 99_999_999_999.99)[rng.randrange(5)]
    return _dump(obj), "invalid_value"


def _too_many_decimals(rng, base, currency):
    obj = dict(_money_base(base, rng, currency))
    field = "amount"
    if obj["type"] == "order" and "cost_of_goods" in obj and rng.random() < 0.3:
        field = "cost_of_goods"
    cents = round(obj[field] * 100)
    obj[field] = (cents * 10 + rng.randint(1, 9)) / 1000  # e.g. 12.345
    return _dump(obj), "invalid_value"


def _unknown_currency(rng, base, currency):
    obj = dict(base) if "currency" in base else dict(_money_base(base, rng, currency))
    choices = [c for c in _UNACCEPTED_CURRENCIES if c != currency][:2]  # XYZ / JPY
    obj["currency"] = choices[rng.randrange(len(choices))]
    return _dump(obj), "unsupported_currency"


def _unknown_type(rng, base, currency):
    obj = dict(base)
    obj["type"] = ("shipment", "page_view", "Order", "orders", "wishlist")[rng.randrange(5)]
    return _dump(obj), "unknown_type"


def _unsupported_version(rng, base, currency):
    obj = dict(base)
    obj["schema_version"] = (2, 3, 0, 99)[rng.randrange(4)]
    return _dump(obj), "unsupported_schema_version"


def _future_time(rng, base, currency):
    obj = dict(base)
    obj["event_time"] = f"2999-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T12:00:00Z"
    return _dump(obj), "event_time_out_of_range"


def _ancient_time(rng, base, currency):
    obj = dict(base)
    obj["event_time"] = ("1970-01-01T00:00:00Z", "1970-01-01T00:00:01.500+00:00", "1970-06-15T08:30:00Z")[
        rng.randrange(3)
    ]
    return _dump(obj), "event_time_out_of_range"


def _oversized(rng, base, currency):
    if rng.random() < 0.5:
        # A valid event padded with insignificant whitespace: size is the
        # only defect.
        text = _dump(base)
        pad = MAX_PAYLOAD_BYTES + rng.randint(1, 4096)
        return text[:-1] + b" " * pad + b"}", "too_large"
    # A schema-valid order with the maximum 500 long-named items.
    obj = _like(dict(sample_order(rng, currency)), base)
    unit = 1
    obj["items"] = [
        {"sku": f"SKU-{i:04d}-" + "x" * 55, "quantity": 1, "unit_price": unit / 100, "category": "c" * 64}
        for i in range(500)
    ]
    obj["amount"] = 500 * unit / 100
    obj["cost_of_goods"] = 2.5
    return _dump(obj), "too_large"


_CASES: dict[str, Callable[[random.Random, dict, str], tuple[bytes, str]]] = {
    "invalid_json": _invalid_json,
    "non_object_json": _non_object,
    "invalid_utf8": _invalid_utf8,
    "wrong_types": _wrong_types,
    "missing_required": _missing_required,
    "negative_amount": _negative_amount,
    "huge_amount": _huge_amount,
    "too_many_decimals": _too_many_decimals,
    "unknown_currency": _unknown_currency,
    "unknown_type": _unknown_type,
    "unsupported_schema_version": _unsupported_version,
    "future_event_time": _future_time,
    "ancient_event_time": _ancient_time,
    "oversized": _oversized,
}
MALFORMED_CASES: tuple[str, ...] = tuple(_CASES)


def make_malformed(
    case: str,
    rng: random.Random,
    base: dict[str, Any] | None = None,
    currency: str = "EUR",
) -> tuple[bytes, str]:
    """Build one bad payload of the named ``case`` from a valid ``base`` event
    (a fresh sample order if None).  Returns ``(payload, expected_reason)``."""
    if base is None:
        base = sample_order(rng, currency)
    return _CASES[case](rng, base, currency)


def malformed_payload(
    rng: random.Random,
    base: dict[str, Any] | None = None,
    currency: str = "EUR",
) -> tuple[bytes, str]:
    """One bad payload of a random case and the dead-letter reason expected."""
    return make_malformed(MALFORMED_CASES[rng.randrange(len(MALFORMED_CASES))], rng, base, currency)
