"""The pure core's every output, byte for byte, against a golden trace recorded before the
core was made cheaper per event (issue 13 item 3): a faster core must decide exactly as the
reference did.

Each scenario runs the generator's realistic stream with its transport noise (duplicates,
out-of-order and malformed events), records keyed by another customer (rekeyed), a tight
lateness (late events), redeliveries after a simulated crash, a rebuild of the review heaps
from the table mid-stream, and, for relative policies, population versions with tick records.
Everything the core hands the shell is folded into a running digest: outcome, dead-letter
reason, event type, outputs (role, key, value bytes), population metrics, state writes (the
codec's bytes), the published partition figures, then the final table, summary and review
heaps. The golden file holds the digest every 250 records (to say where a divergence starts)
and at the end, per scenario.

The golden file is written by ``python tests/shell/test_core_trace.py --write`` and must only
be rewritten from a commit whose behaviour is the reference (it was recorded at 3fbddd5, main
before the core-speed work); a change in behaviour is a failure here, never a reason to rewrite.
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Dict, List

import pytest

from streams.core.prediction import ModelScorer
from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.partitioning import partition_for
from streams.kafka.produce import encode_value
from streams.models.params import BgNbdParams, GammaGammaParams, ModelParameters
from streams.pipeline import POPULATION_TICK, Pipeline, Record, StateCache
from streams.settings import Settings
from streams.topology import rekey_topic_name, source_codes

GOLDEN = Path(__file__).with_name("golden") / "core_trace.json"
POLICIES = Path(__file__).resolve().parents[2] / "deploy" / "policies"
PARTITIONS = 4
CDNOW = ModelParameters("cdnow", "weeks", BgNbdParams(0.243, 4.414, 0.793, 2.426), GammaGammaParams(6.25, 3.74, 15.44))
EVERY = 250

# name -> (policy file or None for the default matrix, versioned populations, model scorer, batch size or None)
SCENARIOS = {
    "matrix-default": (None, False, False, None),
    "matrix-default-batched": (None, False, False, 250),
    "matrix-default-model": (None, False, True, None),
    "matrix-top20-versioned": ("matrix", True, False, None),
    "matrix-top20-global-view-model": ("matrix", False, True, None),
    "criteria-versioned": ("criteria", True, False, None),
    "criteria-versioned-batched": ("criteria", True, False, 250),
    "rfm-versioned": ("rfm", True, False, None),
    "rfm-versioned-model": ("rfm", True, True, None),
    "rfm-global-view": ("rfm", False, False, None),
}


def settings_for(policy) -> Settings:
    # a lateness of one day: some of the generator's out-of-order events (held back up to 3 days) are late
    base = replace(Settings(), partitions=PARTITIONS, lateness_days=1.0)
    return base if policy is None else replace(base, policy_file=str(POLICIES / f"{policy}.yaml"))


def records_of(settings: Settings, limit: int = 3000) -> List[Record]:
    config = GeneratorConfig(seed=13, customers=250, share_duplicates=0.03, share_out_of_order=0.06,
                             max_disorder_seconds=3 * 86_400, share_malformed=0.03)
    offsets: Dict[int, int] = {}
    out = []
    for i, ev in enumerate(EventGenerator(config).events(limit=limit)):
        key = ev.key.encode() if isinstance(ev.key, str) else (ev.key or b"")
        if i % 89 == 11:
            key = b"someone-else"  # a producer keyed it otherwise: rekeyed
        p = partition_for(key, PARTITIONS)
        offsets[p] = offsets.get(p, -1) + 1
        value = ev.value if isinstance(ev.value, bytes) else encode_value(ev.value)
        out.append(Record(settings.topic_orders, p, offsets[p], key, value, ev.event_time_ms))
    return out


class Trace:
    def __init__(self):
        self.digest = hashlib.sha256()
        self.marks: List[str] = []
        self.outcomes: Counter = Counter()

    def add(self, *parts) -> None:
        self.digest.update(repr(parts).encode())
        self.digest.update(b"\n")

    def result(self, result) -> None:
        self.outcomes[result.outcome] += 1
        for _, r in result.released:
            self.outcomes[r.outcome] += 1
        self.add("result", result.outcome, result.reason, result.event_type, result.event_time_ms,
                 result.outputs, sorted(result.writes.items()),
                 sorted((k, sorted(v.items())) for k, v in result.metrics.items()),
                 [(rec.partition, rec.offset, r.outcome) for rec, r in result.released])

    def mark(self) -> None:
        self.marks.append(self.digest.copy().hexdigest()[:16])


def new_pipeline(settings: Settings, versioned: bool, model: bool) -> Pipeline:
    return Pipeline(settings.engine_config(), settings.edge_rules(), source_codes(settings),
                    scorer=ModelScorer(CDNOW, settings.prediction_config()) if model else None,
                    population_config=settings.population_config(),
                    partitions=PARTITIONS if versioned else None)


def run(name: str) -> dict:
    policy, versioned, model, batch = SCENARIOS[name]
    settings = settings_for(policy)
    records = records_of(settings)
    trace = Trace()
    store: Dict[bytes, bytes] = {}
    pipeline = new_pipeline(settings, versioned, model)
    pipeline.rebuild(lambda k: partition_for(k, PARTITIONS), [], range(PARTITIONS))
    rekey = rekey_topic_name(settings)
    ticks = 0
    pending: List[Record] = []

    def apply(chunk: List[Record], trace_settle: bool) -> None:
        """Per event or as one batch, as the trace's mode says; the batch's settled writes traced if asked."""
        if batch is None:
            for record in chunk:
                result = pipeline.handle(record, store.get)
                store.update(result.writes)
                trace.result(result)
        else:
            states = StateCache(store.get)
            for result in pipeline.handle_batch(chunk, states):
                trace.result(result)
            writes = states.settle()
            if trace_settle:
                trace.add("settle", sorted(writes.items()))
            store.update(writes)

    def feed(chunk: List[Record]) -> None:
        nonlocal ticks
        apply(chunk, trace_settle=True)
        if versioned:
            for p in pipeline.releasable():  # what the shell does: a tick to each partition that can go on
                ticks += 1
                apply([Record(rekey, p, 10**6 + ticks, POPULATION_TICK, b"", None)], trace_settle=False)

    step = batch or 50
    for n in range(0, len(records), step):
        chunk = records[n:n + step]
        feed(chunk)
        pending += chunk
        updates = pipeline.population_updates()
        trace.add("population", sorted(updates.items()))
        if not versioned:  # the global view decides relative policies without versions
            assert pipeline.receive_population(list(updates.values())) == 0
        done = n + len(chunk)
        if done % 1000 == 0:
            # a crash: the last 30 records come again (redelivered), then a rebalance rebuilds from the table
            feed(pending[-30:])
            fresh = new_pipeline(settings, versioned, model)
            trace.add("rebuild", fresh.rebuild(lambda k: partition_for(k, PARTITIONS), sorted(store.items()),
                                               range(PARTITIONS)))
            if versioned:
                fresh.versions = pipeline.versions  # what the population topic holds
                fresh.waiting = pipeline.waiting
            fresh.receive_population(list(pipeline.population_updates().values()))
            fresh.published, fresh.population = pipeline.published, pipeline.population
            pipeline = fresh
        if done % EVERY == 0:
            trace.mark()
    if versioned:
        result = pipeline.settle(store.get)
        store.update(result.writes)
        trace.result(result)
    trace.add("store", sorted(store.items()))
    trace.add("summary", pipeline.population_summary())
    trace.add("reviews", {p: sorted(h) for p, h in pipeline.reviews.items()})
    trace.add("updates", sorted(pipeline.population_updates().items()))
    trace.mark()
    return {"marks": trace.marks, "outcomes": dict(sorted(trace.outcomes.items())), "states": len(store)}


def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_core_gives_the_reference_trace(name):
    expected = golden()[name]
    got = run(name)
    assert got["outcomes"] == expected["outcomes"]
    first = next((i for i, (a, b) in enumerate(zip(got["marks"], expected["marks"])) if a != b), None)
    assert first is None, f"{name}: the trace differs from the reference from record ~{first * EVERY} on"
    assert got == expected


def test_the_scenarios_exercise_every_outcome():
    seen = Counter()
    for trace in golden().values():
        seen.update(trace["outcomes"])
    assert {"applied", "duplicate", "late", "redelivered", "invalid", "rekeyed", "deferred", "tick"} <= set(seen)


if __name__ == "__main__" and "--write" in sys.argv:
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps({name: run(name) for name in sorted(SCENARIOS)}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
