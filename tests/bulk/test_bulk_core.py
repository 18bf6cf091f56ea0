"""The pure half of the bulk path: a deterministic order whatever the fetch batches, and the
same state as the pipeline applied record by record in that order."""
from __future__ import annotations

import random
from typing import Dict, List, Tuple

from streams.bulk.merge import PartitionMerge
from streams.bulk.rebuild import StateRebuild
from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.partitioning import partition_for
from streams.kafka.produce import encode_value
from streams.pipeline import Pipeline, Record
from streams.settings import Settings
from streams.topics import rekey_topic_name, source_codes

SETTINGS = Settings()
PARTITIONS = 4


def logs(limit: int = 3000, seed: int = 5, single_topic: bool = False,
         misrouted: int = 0) -> Dict[Tuple[str, int], List[Record]]:
    """Generated events as the broker would hold them: per topic-partition, offsets from 0."""
    topics = {"orders": SETTINGS.topic_orders, "interactions": SETTINGS.topic_interactions,
              "customers": SETTINGS.topic_customers}
    if single_topic:
        topics = dict.fromkeys(topics, SETTINGS.topic_orders)
    out: Dict[Tuple[str, int], List[Record]] = {}
    gen = EventGenerator(GeneratorConfig(seed=seed, customers=200, share_duplicates=0.02, share_malformed=0.01,
                                         share_out_of_order=0.05))
    for i, ev in enumerate(gen.events(limit=limit)):
        topic, key = topics[ev.topic_role], ev.key.encode()
        if i < misrouted:
            key = b"not-the-customer-" + key  # a producer keying by something else: rekeyed
        tp = (topic, partition_for(key, PARTITIONS))
        records = out.setdefault(tp, [])
        records.append(Record(topic, tp[1], len(records), key, encode_value(ev.value), ev.event_time_ms))
    return out


def merged(per_tp, seed: int) -> List[Record]:
    """Feed the merge in random fetch batches, partitions in random order, like getmany does."""
    rank = {t: i for i, t in enumerate(source_codes(SETTINGS))}
    merge = PartitionMerge(per_tp, rank)
    cursors = {tp: 0 for tp in per_tp}
    rng = random.Random(seed)
    order: List[Record] = []
    while any(cursors[tp] < len(rs) for tp, rs in per_tp.items()):
        for tp in rng.sample(sorted(per_tp), k=rng.randint(1, len(per_tp))):
            n = rng.choice([0, 1, 7, 50, 400])
            chunk = per_tp[tp][cursors[tp]:cursors[tp] + n]
            merge.add(tp, chunk)
            cursors[tp] += len(chunk)
            if cursors[tp] == len(per_tp[tp]):
                merge.finish(tp)
        order.extend(merge.ready())
    order.extend(merge.ready())
    assert merge.pending == 0
    return order


def pipeline() -> Pipeline:
    return Pipeline(SETTINGS.engine_config(), SETTINGS.edge_rules(), source_codes(SETTINGS), replay=True,
                    population_config=SETTINGS.population_config())


def test_the_order_does_not_depend_on_how_fetches_interleave():
    per_tp = logs()
    first = merged(per_tp, seed=1)
    assert len(first) == sum(map(len, per_tp.values()))
    def per_group(order):  # partition numbers are independent: only the order within one matters
        groups: Dict[int, list] = {}
        for r in order:
            groups.setdefault(r.partition, []).append((r.topic, r.offset))
        return groups

    for seed in (2, 3, 4):
        assert per_group(merged(per_tp, seed)) == per_group(first)


def test_each_topic_partition_keeps_its_offset_order():
    last: Dict[Tuple[str, int], int] = {}
    for r in merged(logs(), seed=9):
        assert r.offset == last.get((r.topic, r.partition), -1) + 1
        last[(r.topic, r.partition)] = r.offset


def test_a_group_waits_for_a_topic_that_may_still_deliver():
    a, b = ("a", 0), ("b", 0)
    merge = PartitionMerge([a, b], {"a": 0, "b": 1})
    merge.add(a, [Record("a", 0, 0, b"k", b"v", 10), Record("a", 0, 1, b"k", b"v", 30)])
    assert list(merge.ready()) == []  # b may still bring something older than 10
    merge.add(b, [Record("b", 0, 0, b"k", b"v", 20)])
    assert [(r.topic, r.offset) for r in merge.ready()] == [("a", 0), ("b", 0)]  # a@30 waits for b again
    merge.finish(b)
    assert [(r.topic, r.offset) for r in merge.ready()] == [("a", 1)]


def test_bulk_state_equals_the_pipeline_record_by_record():
    """Single merged topic (one ordered log, as the live worker sees it): same bytes per customer."""
    per_tp = logs(single_topic=True)
    expected, store = pipeline(), {}
    for tp in sorted(per_tp):
        for r in per_tp[tp]:
            store.update(expected.handle(r, store.get).writes)
    bulk = StateRebuild(pipeline(), lambda k: partition_for(k, PARTITIONS), rekey_topic_name(SETTINGS))
    bulk.apply_all(merged(per_tp, seed=3))
    changelog: Dict[bytes, bytes] = {}
    for p, writes in bulk.take_changelog().items():
        for key, value in writes.items():
            assert partition_for(key, PARTITIONS) == p  # Faust's table: the customer's input partition
            changelog[key] = value
    assert bulk.store == store
    assert changelog == store


def test_rekeyed_events_are_applied_after_the_input_pass_reproducibly():
    per_tp = logs(misrouted=40)
    states = []
    for seed in (1, 2):
        bulk = StateRebuild(pipeline(), lambda k: partition_for(k, PARTITIONS), rekey_topic_name(SETTINGS))
        bulk.apply_all(merged(per_tp, seed))
        held = bulk.held_rekeys()
        assert len(held) == bulk.outcomes["rekeyed"] > 30  # of 40 misrouted, a few were malformed
        assert all(h.record.topic == rekey_topic_name(SETTINGS) for h in held)
        for p in {h.record.partition for h in held}:  # offsets of the recreated rekey topic, from 0
            assert [h.record.offset for h in held if h.record.partition == p] == \
                   list(range(sum(h.record.partition == p for h in held)))
        bulk.apply_all(h.record for h in held)
        assert bulk.outcomes["rekeyed"] == len(held)  # it comes back under the customer's key
        states.append(bulk.store)
    assert states[0] == states[1]
