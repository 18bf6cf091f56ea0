"""Edge validation: raw bytes in, a typed event or a reasoned rejection out.

Every way an input can be wrong maps to one dead-letter reason (the enum in
``schemas/v1/dead_letter.schema.json``), so rejections can be counted by reason
and redriven after a fix. Nothing here raises for bad input.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional, Union

import fastjsonschema
from jsonschema import Draft202012Validator
from msgspec import UNSET

from . import contracts
from .events import DAY_MS, CustomerProfile, Event, Interaction, Order, Refund
from .money import amount_as_written, to_cents, written

# streams/schemas links to the repository's schemas/ (the published contract) and is packaged with it.
SCHEMA_DIR = Path(__file__).parent.parent / "schemas"
INPUT_TYPES = ("order", "refund", "interaction", "customer")
SUPPORTED_VERSIONS = (1,)
_RANGE_CHECKS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
# In major units, at most 2 decimals; decided on the number as written (see money.py).
MONEY_FIELDS = ("amount", "cost_of_goods", "service_cost", "logistics_cost", "restocked_cost", "acquisition_cost")


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # one of the dead_letter schema's reasons
    error: str


@dataclass(frozen=True)
class EdgeRules:
    """Bounds that the schema cannot express or that are deployment choices."""

    accepted_currencies: frozenset = frozenset({"EUR"})
    max_payload_bytes: int = 64 * 1024
    # Event time must lie in [earliest, record time + max_future_skew]; the record
    # (broker) timestamp is part of the log, so this stays deterministic on replay.
    earliest_event_time_ms: int = 946_684_800_000  # 2000-01-01
    max_future_skew_ms: int = DAY_MS


@lru_cache(maxsize=None)
def validator(name: str, version: int = 1) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"v{version}" / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@lru_cache(maxsize=None)
def fast_check(name: str, version: int = 1) -> Callable[[dict], object]:
    """The same schema compiled to Python code (fastjsonschema): ~30x faster than walking it.

    Only its "valid" is trusted: a document it rejects is re-checked by jsonschema (the
    reference), which gives the reason and the message. Where the two disagree
    (fastjsonschema treats ``$`` as the end of the string, so ``"EUR\\n"`` fails its
    ``pattern`` while jsonschema's ``re.search`` passes it) jsonschema's answer stands, so
    decisions and dead-letter reasons are jsonschema's (tests/core/test_fast_validation.py).
    """
    schema = json.loads((SCHEMA_DIR / f"v{version}" / f"{name}.schema.json").read_text())
    return fastjsonschema.compile(schema)


def _passes(kind: str, version: int, doc: dict) -> bool:
    try:
        fast_check(kind, version)(doc)
        return True
    except fastjsonschema.JsonSchemaException:
        return False


def _schema_rejection(doc: dict, kind: str, version: int) -> Optional[Rejection]:
    """jsonschema's verdict: the first error (by path) as a rejection, or None when valid."""
    errors = sorted(validator(kind, version).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "(root)"
    # Money out of range is well-formed but impossible: the more useful reason for whoever fixes it.
    reason = "invalid_value" if first.validator in _RANGE_CHECKS and first.instance.__class__ in (int, float) \
        else "schema_invalid"
    return Rejection(reason, f"{where}: {first.message}"[:500])


def _reject_constant(name: str) -> float:
    # Python's json accepts NaN and +-Infinity, which RFC 8259 does not; many producers (Python's
    # own json.dumps among them) emit them. NaN also slips past the schema's minimum/maximum,
    # since every comparison with it is false.
    raise ValueError(f"{name} is not a JSON number (RFC 8259)")


def parse_time_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


_EPOCH = datetime(1970, 1, 1)
# Below 2^32 s (year 2106) ms / 1000 is within a quarter microsecond of the exact time, so the float
# path below rounds to the exact millisecond and integer arithmetic gives the same text, 3-4x cheaper.
_EXACT_FLOAT_LIMIT_MS = 2 ** 32 * 1000


def format_time_ms(ms: int) -> str:
    if 0 <= ms < _EXACT_FLOAT_LIMIT_MS:
        return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds") + "Z"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_ESCAPED_SURROGATE = re.compile(r"\\[uU][dD][89a-fA-F]")


def decode(raw: bytes, rules: EdgeRules = EdgeRules(), record_time_ms: Optional[int] = None,
           reference: bool = False) -> Union[Event, Rejection]:
    """Bytes -> event or rejection.

    A document that meets its contract is read in one compiled pass (``contracts.read``, msgspec);
    any other goes ``decode_by_schema``, which names the reason. So the compiled pass decides
    nothing alone, and every decision and reason is the schema path's: ``reference=True`` asks
    jsonschema about every document, and the three are tested to agree
    (tests/core/test_compiled_decoding.py)."""
    if not reference and raw is not None and len(raw) <= rules.max_payload_bytes:
        document = contracts.read(raw)
        if document is not None:
            return _semantic(document, rules, record_time_ms)
    return decode_by_schema(raw, rules, record_time_ms, reference)


def decode_by_schema(raw: bytes, rules: EdgeRules = EdgeRules(), record_time_ms: Optional[int] = None,
                     reference: bool = False) -> Union[Event, Rejection]:
    """json.loads + the schema check (compiled by fastjsonschema, explained by jsonschema): the
    reference that gives each rejection its reason. ``reference=True`` asks jsonschema about every
    document instead of only those the compiled check rejects (the fast path is tested against it)."""
    if raw is None:
        return Rejection("malformed_json", "empty record (tombstone) on an event topic")
    if len(raw) > rules.max_payload_bytes:
        return Rejection("too_large", f"payload of {len(raw)} bytes exceeds {rules.max_payload_bytes}")
    try:
        # Strict UTF-8 first: json.loads(bytes) lets encoded surrogates (b"\xed\xa0\x80") through,
        # and a lone surrogate in an id cannot be hashed or re-encoded downstream.
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        doc = json.loads(text, parse_constant=_reject_constant)
        if _ESCAPED_SURROGATE.search(text):  # an escaped surrogate ("\\udc80") must be half of a valid pair
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except RecursionError:  # 64 KiB of "[" nests deeper than the parser's recursion limit
        return Rejection("malformed_json", "not JSON this engine reads: nested too deeply")
    except (UnicodeError, ValueError) as exc:
        return Rejection("malformed_json", f"not JSON: {exc}"[:500])
    if not isinstance(doc, dict):
        return Rejection("schema_invalid", f"expected a JSON object, got {type(doc).__name__}")
    kind = doc.get("type")
    if kind not in INPUT_TYPES:
        return Rejection("unknown_type", f"unknown event type {kind!r}"[:200])
    version = doc.get("schema_version")
    if version not in SUPPORTED_VERSIONS:
        return Rejection("unsupported_schema_version", f"{kind} schema_version {version!r} is not supported"[:200])
    if reference or not _passes(kind, version, doc):
        rejection = _schema_rejection(doc, kind, version)
        if rejection is not None:
            return rejection
    return _semantic(contracts.from_checked(_with_money_as_written(doc, text)), rules, record_time_ms)


def _with_money_as_written(doc: dict, text: str) -> dict:
    """``doc`` with its money fields as Decimals of their literals (the schema ran on floats, so
    its messages name the numbers as they always did). The text already parsed, so this does too."""
    if not any(field in doc for field in MONEY_FIELDS):
        return doc
    exact = json.loads(text, parse_float=amount_as_written)
    return {**doc, **{field: exact[field] for field in MONEY_FIELDS if field in doc}}


def _semantic(doc: contracts.Document, rules: EdgeRules, record_time_ms: Optional[int]) -> Union[Event, Rejection]:
    """The checks a schema cannot state, in this order: event time, currency, money (exact cents),
    refund against its restocked cost. Absent optional fields are UNSET, and None in the event."""
    try:
        t = parse_time_ms(doc.event_time)
    except ValueError as exc:
        return Rejection("schema_invalid", f"event_time: {exc}")
    if t < rules.earliest_event_time_ms:
        return Rejection("event_time_out_of_range", f"event_time {doc.event_time} is before the earliest accepted time")
    if record_time_ms is not None and t > record_time_ms + rules.max_future_skew_ms:
        return Rejection("event_time_out_of_range", f"event_time {doc.event_time} is in the future of its record time")
    kind = doc.__class__
    if kind is contracts.InteractionDocument:
        return Interaction(doc.event_id, t, doc.customer_id, doc.kind,
                           None if doc.nps_score is UNSET else doc.nps_score,
                           None if doc.effort_score is UNSET else doc.effort_score,
                           None if doc.rating is UNSET else doc.rating)
    currency = doc.currency
    if currency is not UNSET and currency not in rules.accepted_currencies:
        return Rejection("unsupported_currency", f"currency {currency} is not accepted")
    if kind is contracts.OrderDocument:
        amount = _cents("amount", doc.amount)
        if amount.__class__ is Rejection:
            return amount
        cost = 0
        for field, value in (("cost_of_goods", doc.cost_of_goods), ("service_cost", doc.service_cost),
                             ("logistics_cost", doc.logistics_cost)):
            if value is not UNSET:
                cents = _cents(field, value)
                if cents.__class__ is Rejection:
                    return cents
                cost += cents
        return Order(doc.event_id, t, doc.customer_id, doc.order_id, amount, cost,
                     None if doc.channel is UNSET else doc.channel)
    if kind is contracts.RefundDocument:
        amount = _cents("amount", doc.amount)
        if amount.__class__ is Rejection:
            return amount
        restocked = 0 if doc.restocked_cost is UNSET else _cents("restocked_cost", doc.restocked_cost)
        if restocked.__class__ is Rejection:
            return restocked
        if restocked > amount:
            return Rejection("invalid_value", "restocked_cost exceeds the refunded amount")
        return Refund(doc.event_id, t, doc.customer_id, doc.order_id, amount, restocked)
    acquisition_cost = None if doc.acquisition_cost is UNSET else _cents("acquisition_cost", doc.acquisition_cost)
    if acquisition_cost.__class__ is Rejection:
        return acquisition_cost
    attrs = _NO_ATTRIBUTES if doc.attributes is UNSET else doc.attributes
    return CustomerProfile(doc.event_id, t, doc.customer_id, doc.kind,
                           None if doc.acquisition_channel is UNSET else doc.acquisition_channel, acquisition_cost,
                           None if attrs.reference_customer is UNSET else attrs.reference_customer,
                           None if attrs.strategic_account is UNSET else attrs.strategic_account,
                           None if attrs.big_name is UNSET else attrs.big_name,
                           None if attrs.ideal_customer_fit is UNSET else attrs.ideal_customer_fit)


_NO_ATTRIBUTES = contracts.CustomerAttributes()


def _cents(field: str, amount) -> Union[int, Rejection]:
    cents = to_cents(amount)
    if cents is None:
        return Rejection("invalid_value", f"{field} {written(amount)} has more than 2 decimals")
    return cents
