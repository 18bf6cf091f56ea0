"""Shortcuts in Pipeline's population recount against the full computation they skip.

- A duplicate, late or redelivered record skips the recount: the full one would have found the
  customer's contribution unchanged (apply() moves at most the source position) and nothing assessed.
- ``StateCache.counted`` stands in for ``contribution_of`` of a state the batch has counted already.
"""
from __future__ import annotations

import json
import zlib
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.aggregation import PopulationAggregate, contribution_of
from streams.core import codec
from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.produce import encode_value
from streams.pipeline import Pipeline, Record, StateCache
from streams.settings import Settings
from streams.topology import source_codes

SETTINGS = Settings()
NO_FIGURE_MOVES = ("duplicate", "late", "redelivered")


class CheckedPipeline(Pipeline):
    """Checks each shortcut against the full computation where it is taken."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = Counter()

    def _handle(self, record, states):
        key = json.loads(record.value)["customer_id"].encode()
        state = states.get(key)
        before = None if state is None else contribution_of(state, self.population_config)
        # every contribution the batch remembers is that of its state as it is now (the reviews this
        # record fires read them too)
        for cached, counted in states.counted.items():
            assert counted == contribution_of(states.states[cached], self.population_config)
        self.seen["cached" if key in states.counted else "computed"] += 1
        changed = set(self.population_changed)
        figures = {p: a.to_list() for p, a in self.aggregates.items()}
        result = super()._handle(record, states)
        if result is not None and result.outcome in NO_FIGURE_MOVES:
            after = states.get(key)
            # what the skipped recount would have computed: the same contribution, nothing assessed
            assert contribution_of(after, self.population_config) == before
            assert self.population_changed == changed
            assert {p: a.to_list() for p, a in self.aggregates.items() if p in figures} == figures
            assert record.partition in self.aggregates  # created as the recount created it
            self.seen[result.outcome] += 1
        return result


def _records(seed: int, n: int):
    config = GeneratorConfig(seed=seed, customers=60, share_duplicates=0.1, share_out_of_order=0.1)
    topics = (SETTINGS.topic_orders, SETTINGS.topic_interactions, SETTINGS.topic_customers)
    out = []
    for i, ev in enumerate(EventGenerator(config).events(limit=n)):
        key = ev.key.encode()
        out.append(Record(topics[i % 3], zlib.crc32(key) % 2, i, key, encode_value(ev.value), ev.event_time_ms))
        if i % 17 == 5:  # a redelivery of an earlier record of the same source
            out.append(out[max(0, len(out) - 7)])
    return out


def _run(pipeline, records, batch):
    store = {}
    outputs = []
    for i in range(0, len(records), batch):
        states = StateCache(store.get)
        for r in pipeline.handle_batch(records[i:i + batch], states):
            outputs.append((r.outcome, r.reason, r.outputs, r.metrics))
        store.update(states.settle())
    return store, outputs, {p: a.to_list() for p, a in pipeline.aggregates.items()}


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([1, 7, 200]))
def test_skipped_and_cached_recounts_equal_the_full_ones(seed, batch):
    records = _records(seed, 900)
    checked = CheckedPipeline(SETTINGS.engine_config(), SETTINGS.edge_rules(), source_codes(SETTINGS))
    store, outputs, figures = _run(checked, records, batch)
    assert checked.seen["duplicate"] + checked.seen["redelivered"] > 0 and checked.seen["computed"] > 0
    if batch > 1:
        assert checked.seen["cached"] > 0
    # the same outputs, states and figures as record by record (nothing cached across records), and
    # figures equal to a recount of the table
    plain = Pipeline(SETTINGS.engine_config(), SETTINGS.edge_rules(), source_codes(SETTINGS))
    assert _run(plain, records, 1) == (store, outputs, figures)
    for p, agg in checked.aggregates.items():
        states = [codec.decode(blob) for key, blob in store.items() if zlib.crc32(key) % 2 == p]
        assert agg == PopulationAggregate.of(states, checked.population_config)
