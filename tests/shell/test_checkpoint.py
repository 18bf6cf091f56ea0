"""The checkpointed path (one cache of decoded states per batch, settled at the checkpoint) against
the per-event path (decode, process, encode and write per record) over the same log: the same
state bytes at every checkpoint and the same outputs (segment changes, dead letters, rekeys)
in the same order. No broker: the shell only carries these writes and outputs out."""
from __future__ import annotations

from dataclasses import replace
from typing import Dict, List

import pytest

from streams.core.validation import EdgeRules
from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.partitioning import partition_for
from streams.kafka.produce import encode_value
from streams.pipeline import Pipeline, Record, StateCache
from streams.settings import Settings
from streams.topology import source_codes

PARTITIONS = 4


def log(seed: int, limit: int, customers: int = 300, **config) -> List[Record]:
    """The records of ONE merged input topic, with a share of records keyed by another customer (rekeyed)."""
    settings = Settings()
    offsets: Dict[int, int] = {}
    out = []
    for i, ev in enumerate(EventGenerator(GeneratorConfig(seed=seed, customers=customers, **config)).events(limit=limit)):
        key = ev.key.encode()
        if i % 97 == 5:
            key = b"someone-else"  # a producer keyed it otherwise: rekeyed, no state write
        p = partition_for(key, PARTITIONS)
        offsets[p] = offsets.get(p, -1) + 1
        out.append(Record(settings.topic_orders, p, offsets[p], key, encode_value(ev.value), ev.event_time_ms))
    return out


def pipeline() -> Pipeline:
    settings = replace(Settings(), partitions=PARTITIONS)
    return Pipeline(settings.engine_config(), settings.edge_rules(), source_codes(settings),
                    population_config=settings.population_config())


def per_event(records: List[Record], store: Dict[bytes, bytes], p: Pipeline) -> list:
    outputs = []
    for r in records:
        result = p.handle(r, store.get)
        store.update(result.writes)
        outputs.extend(result.outputs)
    return outputs


@pytest.mark.parametrize("batch", [1, 7, 250, 5000])
def test_checkpointed_path_gives_the_per_event_states_and_outputs(batch):
    records = log(seed=41, limit=4000, share_duplicates=0.03, share_out_of_order=0.05, share_malformed=0.03)
    old_store, new_store = {}, {}
    old, new = pipeline(), pipeline()
    old_outputs, new_outputs = [], []
    checkpoints = 0
    for start in range(0, len(records), batch):
        chunk = records[start:start + batch]
        old_outputs += per_event(chunk, old_store, old)
        states = StateCache(new_store.get)
        results = new.handle_batch(chunk, states)
        assert all(not r.writes for r in results)  # writes wait for the checkpoint
        new_outputs += [o for r in results for o in r.outputs]
        new_store.update(states.settle())
        checkpoints += 1
        assert new_store == old_store, f"state bytes differ after checkpoint {checkpoints}"
    assert new_outputs == old_outputs
    roles = {role for role, _, _ in new_outputs}
    assert roles == {"segment_changes", "dead_letter", "rekey"}  # the log exercises every output
    assert new.population_summary() == old.population_summary()
    assert {p: sorted(h) for p, h in new.reviews.items()} == {p: sorted(h) for p, h in old.reviews.items()}


def test_each_customer_is_decoded_once_and_encoded_once_per_checkpoint(monkeypatch):
    from streams.core import codec

    records = log(seed=42, limit=1500)
    store: Dict[bytes, bytes] = {}
    per_event(records[:1000], store, pipeline())
    calls = {"decode": 0, "encode": 0}
    for name in calls:
        real = getattr(codec, name)

        def counted(x, real=real, name=name):
            calls[name] += 1
            return real(x)
        monkeypatch.setattr(codec, name, counted)
    p = pipeline()
    p.rebuild(lambda k: partition_for(k, PARTITIONS), [], range(PARTITIONS))
    states = StateCache(store.get)
    p.handle_batch(records[1000:], states)
    touched = len(states.states)
    changed = len(states.changed)
    settled = states.settle_by_partition()
    assert calls["decode"] <= touched < len(records[1000:])
    assert calls["encode"] == changed == sum(len(w) for w in settled.values())
    assert all(partition_for(k, PARTITIONS) == p for p, w in settled.items() for k in w)


def test_a_crash_mid_checkpoint_replays_to_the_same_changes():
    """kill -9 after SOME of a checkpoint's states reached the changelog (a prefix per partition, as the
    producer delivers them in order): a restarted worker rebuilds from that table, the records since
    the last commit are redelivered, and every change it emits again is the change already emitted
    under that (customer_id, sequence); the states end as if nothing had happened."""
    # few customers over a long stretch of event time: silent customers' reviews fire (cross-customer)
    records = log(seed=43, limit=3000, customers=60, arrival_per_day=0.5, share_duplicates=0.02,
                  share_out_of_order=0.05)
    cut = 1800  # the checkpoint [1200, 1800) crashes after its outputs were flushed
    reference, ref_store = pipeline(), {}
    ref_outputs = per_event(records, ref_store, reference)
    want = {}
    assert sum(b'"type":"review"' in value for role, _, value in ref_outputs) > 50
    for role, key, value in ref_outputs:
        if role == "segment_changes":
            change = __import__("json").loads(value)
            want[(change["customer_id"], change["sequence"])] = value

    def partition_of(key):
        return partition_for(key, PARTITIONS)

    for persisted_share in (0.0, 0.3, 0.7, 1.0):
        first, store = pipeline(), {}
        per_event(records[:1200], store, first)  # committed
        states = StateCache(store.get)
        first.handle_batch(records[1200:cut], states)
        by_partition = states.settle_by_partition()
        for writes in by_partition.values():  # a prefix of each changelog partition survives the crash
            items = list(writes.items())
            store.update(items[:round(len(items) * persisted_share)])
        again = pipeline()
        again.rebuild(partition_of, list(store.items()), range(PARTITIONS))
        outputs = []
        for start in range(1200, len(records), 333):  # redelivered from the last commit, then new records
            states = StateCache(store.get)
            outputs += [o for r in again.handle_batch(records[start:start + 333], states) for o in r.outputs]
            store.update(states.settle())
        for role, key, value in outputs:
            if role == "segment_changes":
                change = __import__("json").loads(value)
                assert want[(change["customer_id"], change["sequence"])] == value, (persisted_share, change)
        assert store == ref_store, persisted_share
