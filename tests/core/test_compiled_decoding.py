"""The compiled decoder (msgspec Structs, streams/core/contracts.py) decides exactly as the schema
path it replaces (``decode_by_schema``: json.loads + fastjsonschema + jsonschema for the reason).

``decode`` reads a document in one compiled pass when it meets its contract and hands every other
document to ``decode_by_schema``; so the only way to differ is for the compiled pass to accept
what the schema path refuses, or to read a value differently. Here both decoders answer the same
event or the same rejection (reason and message) over generated streams with noise, the malformed
corpus, and hypothesis-written JSON texts (number spellings, escapes, duplicate keys, wrong
types); and the structs restate every bound of schemas/v1.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core import contracts
from streams.core.validation import (INPUT_TYPES, SCHEMA_DIR, EdgeRules, Rejection, decode, decode_by_schema,
                                     parse_time_ms)
from streams.generator import EventGenerator, GeneratorConfig
from streams.generator.malformed import MALFORMED_CASES, make_malformed
from streams.kafka.produce import encode_value

RULES = EdgeRules()
RECORD_TS = parse_time_ms("2025-12-31T00:00:00Z")


def same_decision(raw, record_ts=RECORD_TS):
    compiled = decode(raw, RULES, record_ts)
    schema = decode_by_schema(raw, RULES, record_ts)
    assert compiled == schema, (raw[:300], compiled, schema)
    return compiled


def test_twenty_thousand_generated_documents_with_noise_decide_the_same():
    cfg = GeneratorConfig(seed=11, customers=1000, share_malformed=0.15, share_duplicates=0.05,
                          share_out_of_order=0.05)
    outcomes, compiled_reads = Counter(), 0
    for ev in EventGenerator(cfg).events(limit=20_000):
        raw = encode_value(ev.value)
        result = same_decision(raw, ev.event_time_ms + 1000)
        outcomes[getattr(result, "reason", type(result).__name__)] += 1
        compiled_reads += contracts.read(raw) is not None
    assert sum(outcomes.values()) >= 20_000
    assert {"Order", "Refund", "Interaction", "CustomerProfile"} <= set(outcomes)
    assert sum(outcomes[r] for r in ("malformed_json", "schema_invalid", "invalid_value")) > 1000, outcomes
    # the compiled pass is the one that reads the valid documents (it is not a fallback that never runs)
    accepted = sum(outcomes[k] for k in ("Order", "Refund", "Interaction", "CustomerProfile"))
    assert compiled_reads >= accepted * 0.99, (compiled_reads, accepted)


def test_malformed_corpus_every_case_many_seeds():
    reasons = Counter()
    for seed in range(200):
        rng = random.Random(seed)
        for case in MALFORMED_CASES:
            payload, expected = make_malformed(case, rng)
            reasons[getattr(same_decision(payload), "reason", None)] += 1
    assert len(reasons) >= 8, reasons


@pytest.mark.parametrize("payload", [
    b'{"type":"order","schema_version":1,"event_id":"e","event_time":"2025-03-01T10:00:00Z","customer_id":"c",'
    b'"order_id":"o","amount":NaN,"currency":"EUR"}',
    b'{"type":"order","schema_version":1,"event_id":"e","event_time":"2025-03-01T10:00:00Z","customer_id":"c",'
    b'"order_id":"o","amount":-Infinity,"currency":"EUR"}',
    b'{"type":"order","schema_version":1,"event_id":"e","event_time":"2025-03-01T10:00:00Z","customer_id":"c",'
    b'"order_id":"o","amount":1e999,"currency":"EUR"}',
    b"[" * 30_000 + b"]" * 30_000,
    b'{"type":"order","items":' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    b'{"type":"order","schema_version":1,"event_id":"e","event_time":"2025-03-01T10:00:00Z","customer_id":"c",'
    b'"order_id":"o","amount":' + b"[" * 20_000 + b"]" * 20_000 + b',"currency":"EUR"}',
    b'{"type":"order","schema_version":1,"event_id":"evt-\\ud800-x"}',
    b'{"type":"order","schema_version":1,"event_id":"evt-\xed\xa0\x80-x"}',
    b'\xef\xbb\xbf{"type":"customer","schema_version":1,"event_id":"p","event_time":"2025-03-01T10:00:00Z",'
    b'"customer_id":"c","kind":"signup"}',
    None,
    b"{" + b" " * 70_000 + b"}",
], ids=["NaN", "-Infinity", "1e999", "deep-list", "deep-items", "deep-amount", "escaped-surrogate",
        "encoded-surrogate", "BOM", "tombstone", "too-large"])
def test_edge_cases_of_the_parser_keep_their_reasons(payload):
    result = same_decision(payload)
    assert isinstance(result, Rejection) and result.reason in ("malformed_json", "invalid_value", "too_large")


@pytest.mark.parametrize("literal,cents_or_reason", [
    ("1e99999999999999999999", "invalid_value"), ("-1e99999999999999999999", "invalid_value"),
    ("1e-99999999999999999999", "invalid_value"), ("1.5E-99999999999999999999", "invalid_value"),
    ("0e99999999999999999999999", 0), ("1" + "0" * 5000, "malformed_json"),  # Python's int digit limit
    ("1." + "0" * 5000, 100), ("1." + "0" * 5000 + "1", "invalid_value"),
])
def test_exponents_and_digits_beyond_a_decimal_never_raise(literal, cents_or_reason):
    """Decimal() raises on an exponent beyond its range: reading money as Decimal made decode raise
    on 1e-99999999999999999999 (json.loads reads it as 0.0) until both paths guarded it."""
    raw = (b'{"type":"order","schema_version":1,"event_id":"e","event_time":"2025-03-01T10:00:00Z",'
           b'"customer_id":"c","order_id":"o","amount":' + literal.encode() + b',"currency":"EUR"}')
    result = same_decision(raw)
    assert getattr(result, "reason", getattr(result, "amount_cents", None)) == cents_or_reason


# -- hypothesis: JSON texts written token by token, as a producer other than Python's might ----------

BASES = {
    "order": {"type": "order", "schema_version": 1, "event_id": "e1", "event_time": "2025-03-01T10:00:00Z",
              "customer_id": "c1", "order_id": "o1", "amount": 19.99, "currency": "EUR", "cost_of_goods": 8.5,
              "channel": "web", "items": [{"sku": "A", "quantity": 1, "unit_price": 19.99, "category": "x"}]},
    "refund": {"type": "refund", "schema_version": 1, "event_id": "r1", "event_time": "2025-03-02T10:00:00+01:00",
               "customer_id": "c1", "order_id": "o1", "amount": 5.0, "currency": "EUR", "restocked_cost": 2.0},
    "interaction": {"type": "interaction", "schema_version": 1, "event_id": "i1",
                    "event_time": "2025-03-01T10:00:00Z", "customer_id": "c1", "kind": "nps", "nps_score": 9},
    "customer": {"type": "customer", "schema_version": 1, "event_id": "s1", "event_time": "2025-03-01T10:00:00Z",
                 "customer_id": "c1", "kind": "signup", "acquisition_channel": "organic", "acquisition_cost": 12.5,
                 "currency": "EUR", "attributes": {"reference_customer": True, "ideal_customer_fit": 3}},
}
NUMBER_LITERALS = st.one_of(
    st.sampled_from(["0", "-0", "0.0", "-0.0", "1", "1.0", "1.00", "1e0", "1E+0", "10e-1", "0.1e1", "5", "9", "9.0",
                     "11", "-1", "1.5e2", "1E-2", "1e-3", "10.500", "0.001", "1e7", "1e7.5", "10000000",
                     "10000000.00", "10000000.001", "10000000.01", "123456.789", "123456.78", "1e999", "-1e999",
                     "1e-999", "123456789012345678901234567890", "18446744073709551616", "9223372036854775808",
                     "0.30000000000000004", "1.0000000000000000000000000001", "01", "+1", ".5", "1.", "1e",
                     "1e99999999999999999999", "-1e99999999999999999999", "1e-99999999999999999999",
                     "0e99999999999999999999999", "1" + "0" * 5000, "1." + "0" * 5000 + "1",
                     "-", "0x10", "NaN", "Infinity", "-Infinity", "true", "false", "null", "4.0", "3e0"]),
    st.decimals(min_value=-10**8, max_value=10**8, allow_nan=False, allow_infinity=False, places=3).map(str),
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
STRING_LITERALS = st.one_of(
    st.sampled_from(['"EUR"', '"\\u0045UR"', '"EUR\\n"', '"eur"', '"E\\/R"', '""', '"web"', '"nps"', '"signup"',
                     '"order"', '"refund"', '"2025-03-01T10:00:00Z"', '"2025-03-01T10:00:00.123456789+01:00"',
                     '"2025-03-01T10:00:00Z\\n"', '"2025-02-30T10:00:00Z"', '"\\ud83d\\ude00"', '"\\ud800"',
                     '"x\\u0000y"', '"' + "x" * 129 + '"', '"' + "\U0001F600" * 128 + '"']),
    st.text(max_size=10).map(lambda s: json.dumps(s, ensure_ascii=False)),
    st.text(max_size=10).map(json.dumps),
)
LITERALS = st.one_of(NUMBER_LITERALS, STRING_LITERALS, st.sampled_from(["[]", "{}", "[1]", '{"a":1}', "[[[]]]"]))
FIELDS = sorted({k for b in BASES.values() for k in b} | {"nps_score", "effort_score", "rating", "surprise",
                                                          "service_cost", "logistics_cost", "referred_customer_id",
                                                          "reason", "items", "attributes", "sku", "quantity",
                                                          "unit_price", "category", "big_name", "ideal_customer_fit"})


def _text(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@st.composite
def json_texts(draw):
    """A base event written member by member, with members replaced by raw literals, dropped, duplicated
    or added, inside the top level or the one nested object each contract has."""
    kind = draw(st.sampled_from(INPUT_TYPES))
    members = [(k, _text(v)) for k, v in BASES[kind].items()]
    nested_key = {"order": "items", "customer": "attributes"}.get(kind)
    nested = None
    if nested_key and draw(st.booleans()):
        inner = BASES[kind][nested_key]
        inner = inner[0] if isinstance(inner, list) else inner
        nested = [(k, _text(v)) for k, v in inner.items()]
    for _ in range(draw(st.integers(1, 4))):
        target = nested if nested is not None and draw(st.booleans()) else members
        action = draw(st.sampled_from(["set", "set", "set", "drop", "duplicate"]))
        name = draw(st.sampled_from(FIELDS))
        if action == "drop":
            target[:] = [(k, v) for k, v in target if k != name]
        elif action == "duplicate" and target:
            target.append(target[draw(st.integers(0, len(target) - 1))][:1] + (draw(LITERALS),))
        else:
            target[:] = [(k, v) for k, v in target if k != name] + [(name, draw(LITERALS))]
    if nested is not None:
        body = "{" + ",".join(f'"{k}":{v}' for k, v in nested) + "}"
        body = f"[{body}]" if kind == "order" else body
        members = [(k, v) for k, v in members if k != nested_key] + [(nested_key, body)]
    order = draw(st.permutations(range(len(members))))
    space = draw(st.sampled_from(["", " ", "\n\t"]))
    return ("{" + space + ("," + space).join(f'"{members[i][0]}":{space}{members[i][1]}' for i in order)
            + space + "}").encode("utf-8", "surrogatepass")


@settings(max_examples=3000, deadline=None)
@given(json_texts())
def test_json_texts_decide_the_same(raw):
    same_decision(raw)


@settings(max_examples=500, deadline=None)
@given(json_texts())
def test_what_the_compiled_pass_accepts_the_schema_accepts(raw):
    doc = contracts.read(raw)
    if doc is None:
        return
    assert decode_by_schema(raw, RULES, RECORD_TS, reference=True) == decode(raw, RULES, RECORD_TS)
    # the same document, money aside (the Decimal of its literal, not a float)
    assert _as_floats(msgspec.to_builtins(doc, builtin_types=(Decimal,))) == json.loads(raw)


def _as_floats(value):
    if isinstance(value, dict):
        return {k: _as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_floats(v) for v in value]
    return float(value) if isinstance(value, Decimal) else value


# -- the structs restate the schemas (the contract) -----------------------------------------------

_CHECKS = ("type", "enum", "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "maxItems",
           "required", "additionalProperties")


def _normalised(spec: dict, defs: dict) -> dict:
    if "$ref" in spec:
        spec = defs[spec["$ref"].rsplit("/", 1)[1]]
    out = {k: spec[k] for k in _CHECKS if k in spec}
    if "const" in spec:
        out["enum"] = [spec["const"]]
    if "enum" in out:
        out["enum"] = sorted(out["enum"], key=repr)
    if "required" in out:
        out["required"] = sorted(out["required"])
        if not out["required"]:  # msgspec states an empty list, the schemas leave it out
            del out["required"]
    if "properties" in spec:
        out["properties"] = {k: _normalised(v, defs) for k, v in spec["properties"].items()}
    if "items" in spec:
        out["items"] = _normalised(spec["items"], defs)
    return out


def _money_spec(zero_allowed: bool) -> dict:
    spec = {"type": "number", "minimum": 0, "maximum": contracts.MAX_MONEY}
    return spec if zero_allowed else {**spec, "exclusiveMinimum": 0}


@pytest.mark.parametrize("kind", INPUT_TYPES)
def test_structs_state_every_bound_of_the_schema(kind):
    contract = json.loads((SCHEMA_DIR / "v1" / f"{kind}.schema.json").read_text())
    struct = contracts.CONTRACTS[kind]
    (_,), defs = msgspec.json.schema_components([struct])
    from_struct = _normalised(defs[struct.__name__], defs)
    from_schema = _normalised(contract, {})
    # money is checked in contracts._holds (msgspec keeps the literal only for untyped numbers)
    money = dict(contracts._MONEY[struct])
    if kind == "order":  # an item's unit price too
        assert from_schema["properties"]["items"]["items"]["properties"].pop("unit_price") == _money_spec(True)
        assert from_struct["properties"]["items"]["items"]["properties"].pop("unit_price") == {}
    for name, zero_allowed in money.items():
        assert from_schema["properties"].pop(name) == _money_spec(zero_allowed), name
        assert from_struct["properties"].pop(name) == {}, name
    assert from_struct == from_schema
    # the one rule a struct cannot state: an interaction's kind requires its score
    rules = {r["if"]["properties"]["kind"]["const"]: r["then"]["required"] for r in contract.get("allOf", [])}
    assert rules == ({k: [v] for k, v in contracts._SCORE_REQUIRED_BY_KIND.items()} if kind == "interaction" else {})
