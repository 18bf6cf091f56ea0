"""The record-level seam, without a broker: what the agent will write and send."""
import base64
import json

from streams.core.engine import EngineConfig
from streams.core.validation import EdgeRules, parse_time_ms
from streams.pipeline import DEAD_LETTER, REKEY, SEGMENT_CHANGES, Pipeline, Record

CODES = {"clv.orders": "o", "clv.interactions": "i", "clv.customers": "c"}


def order_bytes(eid, day, cid="c1", amount=100.0):
    return json.dumps({"type": "order", "schema_version": 1, "event_id": eid,
                       "event_time": f"2025-01-{day:02d}T12:00:00Z", "customer_id": cid, "order_id": eid,
                       "amount": amount, "currency": "EUR"}).encode()


def rec(value, offset, key=b"c1", partition=0, topic="clv.orders"):
    return Record(topic, partition, offset, key, value, parse_time_ms("2025-02-01T00:00:00Z"))


class Store(dict):
    def apply(self, result):
        self.update(result.writes)


def test_valid_record_writes_state_and_emits_change():
    p, store = Pipeline(EngineConfig(), EdgeRules(), CODES), Store()
    result = p.handle(rec(order_bytes("e1", 1), 0), store.get)
    store.apply(result)
    assert result.outcome == "applied" and list(store) == [b"c1"]
    (role, key, value), = result.outputs
    change = json.loads(value)
    assert role == SEGMENT_CHANGES and key == b"c1" and change["sequence"] == 1


def test_redelivered_offset_and_duplicate_id_change_nothing():
    p, store = Pipeline(EngineConfig(), EdgeRules(), CODES), Store()
    store.apply(p.handle(rec(order_bytes("e1", 1), 5), store.get))
    again = p.handle(rec(order_bytes("e1", 1), 5), store.get)
    assert again.outcome == "redelivered" and not again.outputs
    dup = p.handle(rec(order_bytes("e1", 1), 6), store.get)  # same event re-sent by a producer
    assert dup.outcome == "duplicate" and not dup.outputs


def test_invalid_record_goes_to_dead_letter_with_original_bytes():
    p = Pipeline(EngineConfig(), EdgeRules(), CODES)
    result = p.handle(rec(b"{oops", 7), {}.get)
    assert result.outcome == "invalid" and result.reason == "malformed_json" and not result.writes
    (role, key, value), = result.outputs
    envelope = json.loads(value)
    assert role == DEAD_LETTER and envelope["reason"] == "malformed_json"
    assert base64.b64decode(envelope["original_base64"]) == b"{oops"
    assert envelope["source"] == {"topic": "clv.orders", "partition": 0, "offset": 7,
                                  "timestamp_ms": parse_time_ms("2025-02-01T00:00:00Z")}


def test_late_event_is_dead_lettered_as_late():
    p, store = Pipeline(EngineConfig(), EdgeRules(), CODES), Store()
    store.apply(p.handle(rec(order_bytes("e1", 20), 0), store.get))
    result = p.handle(rec(order_bytes("e2", 1), 1), store.get)
    assert result.outcome == "late" and result.outputs[0][0] == DEAD_LETTER
    assert json.loads(result.outputs[0][2])["reason"] == "late"


def test_wrongly_keyed_record_is_rekeyed_not_applied():
    p = Pipeline(EngineConfig(), EdgeRules(), CODES)
    result = p.handle(rec(order_bytes("e1", 1), 0, key=b"wrong"), {}.get)
    assert result.outcome == "rekeyed" and not result.writes
    assert result.outputs == [(REKEY, b"c1", order_bytes("e1", 1))]


def test_silent_customer_is_reviewed_when_partition_time_passes():
    p, store = Pipeline(EngineConfig(), EdgeRules(), CODES), Store()
    for n, day in enumerate((1, 5)):
        store.apply(p.handle(rec(order_bytes(f"a{n}", day, amount=10), n), store.get))
    # another customer on the same partition moves event time 200 days on
    later = json.dumps({"type": "interaction", "schema_version": 1, "event_id": "x", "customer_id": "c2",
                        "event_time": "2025-07-30T00:00:00Z", "kind": "service_contact"}).encode()
    result = p.handle(Record("clv.interactions", 0, 0, b"c2", later, parse_time_ms("2025-07-30T00:00:01Z")),
                      store.get)
    store.apply(result)
    moved = [c for c in result.changes if c["customer_id"] == "c1"]
    assert len(moved) == 1 and moved[0]["cause"]["type"] == "review"
    assert moved[0]["segment"].endswith("Low Loyalty")


def test_rebuild_restores_review_schedule():
    p, store = Pipeline(EngineConfig(), EdgeRules(), CODES), Store()
    for n, day in enumerate((1, 5)):
        store.apply(p.handle(rec(order_bytes(f"a{n}", day, amount=10), n), store.get))
    fresh = Pipeline(EngineConfig(), EdgeRules(), CODES)
    assert fresh.rebuild(lambda key: 0, store.items(), [0]) == 1
    assert fresh.reviews[0] == p.reviews[0]


def test_pipeline_passes_its_population_view_and_returns_each_customers_metrics():
    from dataclasses import replace as dc_replace

    from streams.core.exact_population import ExactPopulation
    from streams.core.policies import MatrixPolicy

    policy = MatrixPolicy(value_metric="historical_revenue", high_value_top_share=0.5, min_population=2)
    p, store = Pipeline(dc_replace(EngineConfig(), policy=policy), EdgeRules(), CODES), Store()
    assert p.population is None  # until a population view is wired in: the policy's fallback cut-offs
    first = p.handle(rec(order_bytes("e1", 1, amount=300.0), 0), store.get)
    store.apply(first)
    assert first.metrics == {"c1": {"value": 300.0}} and "population_version" not in first.changes[0]
    p.population = ExactPopulation.of({"a": {"value": 100.0}, "b": {"value": 200.0}}, version="snap-9")
    second = p.handle(rec(order_bytes("e2", 2, amount=10.0), 1), store.get)
    change, = second.changes
    assert change["segment"].startswith("High Value") and change["population_version"] == "snap-9"
    assert second.metrics == {"c1": {"value": 310.0}}
