"""The compiled schema check (fastjsonschema) decides exactly as jsonschema does.

``decode`` trusts the compiled check only when it says "valid" and asks jsonschema
otherwise; ``decode(..., reference=True)`` asks jsonschema always. Over the
generator's malformed corpus, generated streams and hypothesis-mutated documents
both must return the same event or the same rejection (reason and message).
"""
import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.validation import INPUT_TYPES, EdgeRules, _schema_rejection, decode, fast_check, parse_time_ms
from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.produce import encode_value
from streams.generator.malformed import MALFORMED_CASES, make_malformed

RULES = EdgeRules()
RECORD_TS = parse_time_ms("2025-12-31T00:00:00Z")  # after every sample_order time


def same_decision(raw, record_ts=RECORD_TS):
    fast = decode(raw, RULES, record_ts)
    ref = decode(raw, RULES, record_ts, reference=True)
    assert fast == ref, (raw, fast, ref)
    return fast


def test_malformed_corpus_every_case_many_seeds():
    reasons = set()
    for seed in range(60):
        rng = random.Random(seed)
        for case in MALFORMED_CASES:
            payload, expected = make_malformed(case, rng)
            result = same_decision(payload)
            reasons.add(getattr(result, "reason", None))
    # Agreement is the point here; (the corpus' "invalid_utf8" case with an encoded lone surrogate
    # is accepted by json.loads on both paths: a finding for the edge, not for this check).
    assert len(reasons) >= 8


def test_generated_stream_with_noise_decides_the_same():
    cfg = GeneratorConfig(seed=3, customers=200, share_malformed=0.2, share_duplicates=0.05, share_out_of_order=0.05)
    kinds = set()
    for ev in EventGenerator(cfg).events(limit=3000):
        raw = ev.value if isinstance(ev.value, bytes) else encode_value(ev.value)
        result = same_decision(raw, ev.event_time_ms + 1000)
        kinds.add(type(result).__name__)
    assert {"Order", "Rejection", "CustomerProfile"} <= kinds


# -- hypothesis: valid documents with one or more fields replaced, removed or added ------------

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                         st.sampled_from(["EUR", "EUR\n", "eur", "2025-03-01T10:00:00Z", "2025-03-01T10:00:00Z\n",
                                          "2025-03-01T10:00:00.123+01:00", "２０２５-03-01T10:00:00Z", "", "web",
                                          "signup", "nps", 1, 1.0, 0, -0.0, 10_000_000, 10_000_000.01, 5, 11]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                 st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=3)), max_leaves=6)
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
FIELD_NAMES = sorted({k for b in BASES.values() for k in b} | {"nps_score", "effort_score", "rating", "surprise"})


@st.composite
def mutated_documents(draw):
    kind = draw(st.sampled_from(INPUT_TYPES))
    doc = json.loads(json.dumps(BASES[kind]))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["set", "drop", "set_nested"]))
        name = draw(st.sampled_from(FIELD_NAMES))
        if action == "drop":
            doc.pop(name, None)
        elif action == "set":
            doc[name] = draw(JSON_VALUES)
        else:  # inside the one nested object / array element each contract has
            items = doc.get("items")
            target = (items[0] if isinstance(items, list) and items else None) if kind == "order" \
                else doc.get("attributes")
            if isinstance(target, dict):
                key = draw(st.sampled_from(["sku", "quantity", "unit_price", "category", "reference_customer",
                                            "strategic_account", "big_name", "ideal_customer_fit", "other"]))
                target[key] = draw(JSON_VALUES)
    return doc


@settings(max_examples=1500, deadline=None)
@given(mutated_documents())
def test_mutated_documents_decide_the_same(doc):
    same_decision(json.dumps(doc).encode())


@settings(max_examples=1500, deadline=None)
@given(mutated_documents())
def test_compiled_check_never_accepts_what_jsonschema_rejects(doc):
    kind = doc.get("type")
    if kind not in INPUT_TYPES:
        return
    try:
        fast_check(kind)(doc)
    except Exception:  # noqa: BLE001 - rejected: decode asks jsonschema then
        return
    assert _schema_rejection(doc, kind, 1) is None, doc
