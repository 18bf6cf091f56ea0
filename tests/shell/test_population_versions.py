"""Relative segments are a function of the log (issue 14 item 3), without a broker.

The same log goes through the record seam in different interleavings of its
partitions (one fast partition racing ahead, partitions one after another) and
through two pipelines owning halves of the partitions that exchange their
published cuts late and out of order, with tick records when a waiting partition
can go on. Every run must emit byte-identical segment changes, decided with
population versions (event-time boundaries), and end with the same states.
"""
from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from streams.core.aggregation import PopulationAggregate
from streams.core.snapshots import (DEFAULT_PERIOD_MS, VersionedPopulation, boundaries_passed, cut_snapshot,
                                    snapshot_boundary, version_name)
from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.partitioning import partition_for
from streams.kafka.produce import encode_value
from streams.pipeline import DEFERRED, POPULATION, POPULATION_TICK, SEGMENT_CHANGES, Pipeline, Record
from streams.settings import Settings
from streams.topology import rekey_topic_name, source_codes

POLICIES = Path(__file__).resolve().parents[2] / "deploy" / "policies"
BASE = replace(Settings(), partitions=4)


def settings_for(kind: str) -> Settings:
    return replace(BASE, policy_file=str(POLICIES / f"{kind}.yaml"))


def new_pipeline(settings: Settings) -> Pipeline:
    return Pipeline(settings.engine_config(), settings.edge_rules(), source_codes(settings),
                    population_config=settings.population_config(), partitions=settings.partitions)


def log_of(settings: Settings, events):
    """The records as the broker holds them: one input topic, producer partitioner, offsets from 0."""
    offsets, out = {}, []
    for ev in events:
        key = ev.key.encode()
        p = partition_for(key, settings.partitions)
        offsets[p] = offsets.get(p, -1) + 1
        out.append(Record(settings.topic_orders, p, offsets[p], key, encode_value(ev.value), ev.event_time_ms))
    return out


class Run:
    """Pipelines that own some partitions each, a store, and what they emitted."""

    def __init__(self, settings: Settings, owners):
        self.settings = settings
        self.pipelines = [new_pipeline(settings) for _ in owners]
        self.owner = {p: i for i, parts in enumerate(owners) for p in parts}
        self.store, self.changes, self.cuts = {}, [], []
        self.ticks = 0

    def handle(self, record: Record):
        result = self.pipelines[self.owner[record.partition]].handle(record, self.store.get)
        self.store.update(result.writes)
        self.changes.extend(v for role, _, v in result.outputs if role == SEGMENT_CHANGES)
        self.cuts.extend(v for role, _, v in result.outputs if role == POPULATION)
        return result

    def deliver(self, blobs):
        for pipeline in self.pipelines:
            assert pipeline.receive_population(blobs) == 0

    def tick_releasable(self) -> int:
        """What the shell does: a tick record to each partition that can go on."""
        sent = 0
        for pipeline in self.pipelines:
            for p in pipeline.releasable():
                self.handle(Record(rekey_topic_name(self.settings), p, 10**6 + self.ticks, POPULATION_TICK, b"",
                                   None))
                self.ticks += 1
                sent += 1
        return sent

    def settle(self):
        """Deliver every cut and tick until nothing more can go on (the end of the log)."""
        while True:
            self.deliver(self.cuts)
            if not self.tick_releasable():
                return self

    def feed_all(self, records):
        for record in records:
            self.handle(record)
        return self

    def waiting(self):
        return sorted((r.partition, r.offset) for pl in self.pipelines for q in pl.waiting.values() for r in q)

    def key(self):
        return sorted(self.changes), self.waiting(), sorted(self.store.items())


@pytest.fixture(scope="module")
def events():
    return list(EventGenerator(GeneratorConfig(seed=21, customers=80)).events(limit=1500))


def interleavings(records, partitions):
    """The log in other orders that keep each partition's own order."""
    by_partition = [[r for r in records if r.partition == p] for p in range(partitions)]
    yield "partition after partition", [r for part in by_partition for r in part]
    yield "last partition first", [r for part in reversed(by_partition) for r in part]
    rng = random.Random(7)
    queues, mixed = [list(part) for part in by_partition], []
    while any(queues):  # partition 0 runs ~5x faster than the others
        p = rng.choices(range(partitions), weights=[5] + [1] * (partitions - 1))[0]
        if queues[p]:
            mixed.append(queues[p].pop(0))
    yield "one fast partition", mixed


@pytest.mark.parametrize("kind", ["matrix", "criteria", "rfm"])
def test_the_same_log_gives_byte_identical_changes_at_any_speed_and_worker_count(kind, events):
    settings = settings_for(kind)
    records = log_of(settings, events)
    reference = Run(settings, [range(4)])
    for record in records:
        reference.handle(record)
    reference.settle()
    changes = [json.loads(c) for c in reference.changes]
    versions = {c.get("population_version") for c in changes}
    relative = [c for c in changes if "population_version" in c]
    assert len(relative) > len(changes) / 2, "relative cut-offs decided most changes"
    assert all(v is None or v.endswith("T00:00:00.000Z") for v in versions)  # event-time boundaries (UTC days)
    assert len({c["segment"] for c in changes}) >= 3

    for name, order in interleavings(records, 4):
        run = Run(settings, [range(4)])
        for record in order:
            run.handle(record)
        assert run.settle().key() == reference.key(), name

    # two workers: each sees the other's cuts late (every 37 records, newest first) and gets ticks then
    two = Run(settings, [(0, 1), (2, 3)])
    for i, record in enumerate(records):
        two.handle(record)
        if i % 37 == 36:
            two.deliver(list(reversed(two.cuts)))
            two.tick_releasable()
    assert two.settle().key() == reference.key()
    assert two.ticks > 0


def test_a_lagging_partition_makes_the_others_wait_instead_of_deciding_differently(events):
    settings = settings_for("rfm")
    records = log_of(settings, events)
    run = Run(settings, [range(4)])
    first_day = snapshot_boundary(records[0].timestamp_ms)
    deferred = 0
    for record in records:
        if record.partition != 3:  # partition 3 has not been read yet
            deferred += run.handle(record).outcome == DEFERRED
    # every other partition cut its first boundary and waits there (its first record needs partition 3)
    pipeline = run.pipelines[0]
    assert deferred == sum(r.partition != 3 for r in records) and pipeline.versions.complete_through is None
    assert {p for p, _ in run.waiting()} == {0, 1, 2} and run.changes == []
    assert pipeline.releasable() == []
    for record in records:
        if record.partition == 3:
            run.handle(record)
    assert pipeline.versions.complete_through >= first_day
    assert sorted(pipeline.releasable()) == [0, 1, 2]
    assert run.settle().key() == Run(settings, [range(4)]).feed_all(records).settle().key()


def test_boundaries_and_cuts_are_pure_functions_of_event_time():
    day = DEFAULT_PERIOD_MS
    assert snapshot_boundary(5 * day + 7) == 5 * day and snapshot_boundary(5 * day) == 5 * day
    assert boundaries_passed(None, 5 * day + 1) == (None, 5 * day)
    assert boundaries_passed(5 * day + 1, 5 * day + 9) is None
    assert boundaries_passed(5 * day + 1, 8 * day) == (6 * day, 8 * day)
    agg = PopulationAggregate()
    cut = cut_snapshot(agg, 2, 5 * day + 1, 8 * day)
    assert (cut.partition, cut.first, cut.last) == (2, 6 * day, 8 * day) and cut.aggregate == agg
    assert cut.aggregate is not agg and cut_snapshot(agg, 2, 5 * day + 1, 5 * day + 2) is None
    assert version_name(8 * day) == "1970-01-09T00:00:00.000Z"

    versions = VersionedPopulation(2, day)
    versions.add(cut)  # partition 2 is not one of these 2 partitions: ignored
    assert versions.passed(2) is None
    versions.add(cut_snapshot(agg, 1, 5 * day + 1, 8 * day))
    assert versions.view(6 * day) is None  # partition 0 has cut nothing
    versions.add(cut_snapshot(agg, 0, None, 7 * day + 5))
    assert versions.complete_through == 7 * day
    assert versions.view(7 * day).version == version_name(7 * day) and versions.view(8 * day) is None


def test_an_idle_partition_declared_by_the_shell_lets_the_others_go_on_with_partial_versions(events):
    settings = settings_for("rfm")
    records = [r for r in log_of(settings, events) if r.partition != 3]  # partition 3 gets nothing
    run = Run(settings, [range(4)]).feed_all(records)
    pipeline = run.pipelines[0]
    assert run.settle().changes == [] and pipeline.lagging() == [3]
    pipeline.versions.declare_idle(pipeline.lagging())
    assert pipeline.lagging() == [] and sorted(pipeline.releasable()) == [0, 1, 2]
    run.settle()
    assert run.waiting() == [] and run.changes
    relative = [json.loads(c)["population_version"] for c in run.changes if b"population_version" in c]
    assert relative and all(v.endswith("T00:00:00.000Z~partial") for v in relative)
    # partition 3 moves again: it leaves the idle set, and versions wait for it again
    first = next(r for r in log_of(settings, events) if r.partition == 3)
    run.handle(replace(first, offset=0))
    assert pipeline.versions.idle == set() and pipeline.versions.passed(3) is not None


def test_a_restart_reads_the_waiting_records_again_and_decides_them_the_same(events):
    """Waiting records are not acknowledged: after a crash the worker reads each partition again from
    its first waiting record (the committed offset), rebuilds from the table and the population topic."""
    settings = settings_for("criteria")
    records = log_of(settings, events)
    reference = Run(settings, [range(4)]).feed_all(records).settle()
    crashed = Run(settings, [range(4)])
    before = crashed.pipelines[0]
    for n, record in enumerate(records, 1):  # crash at the first moment past the middle with records waiting
        crashed.handle(record)
        if n >= len(records) // 2 and before.waiting:
            break
    assert before.waiting, "the crash catches records waiting"
    resume = {p: q[0].offset for p, q in before.waiting.items()}  # committed: everything before them
    done = {p: max((r.offset for r in records[:n] if r.partition == p), default=-1) + 1 for p in range(4)}
    resume = {p: resume.get(p, done[p]) for p in range(4)}
    fresh = new_pipeline(settings)
    fresh.rebuild(lambda k: partition_for(k, settings.partitions), crashed.store.items(), range(4))
    crashed.pipelines = [fresh]
    crashed.deliver(crashed.cuts)  # what the population topic holds
    crashed.feed_all([r for r in records if r.offset >= resume[r.partition]]).settle()
    assert crashed.key() == reference.key()
