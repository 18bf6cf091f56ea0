"""The Kafka shell of the bulk path: read the inputs in batches, write changelog and outputs.

aiokafka in one asyncio loop: ``getmany`` batches in, fire-and-forget sends out (one
flush at the end, before the group's offsets move). If the run dies half-way, run the
rebuild again: it starts over from the wiped state.
"""
from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, List, Optional, Tuple

from tqdm import tqdm

from ..kafka.broker import BROKER_TRAITS
from ..kafka.partitioning import partition_for
from ..ops.clients import client_config
from ..ops.security import aiokafka_config
from ..pipeline import DEAD_LETTER, REKEY, SEGMENT_CHANGES, Pipeline, Record
from ..topics import population_topic_name, rekey_topic_name, source_codes, state_changelog_topic
from ..whatif import current_scorer
from .merge import PartitionMerge
from .population import BulkPopulation
from .rebuild import StateRebuild


@dataclass
class BulkReport:
    events: int = 0
    seconds: float = 0.0
    customers: int = 0
    changelog_records: int = 0
    outputs: Counter = field(default_factory=Counter)  # role -> records written
    outcomes: Counter = field(default_factory=Counter)
    positions: Dict[Tuple[str, int], int] = field(default_factory=dict)  # next offset to read, per input tp

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def lines(self) -> List[str]:
        return [f"bulk: {self.events} events in {self.seconds:.1f} s ({self.rate:,.0f} events/s), "
                f"{self.customers} customers, {self.changelog_records} changelog records",
                "outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())),
                "written: " + ", ".join(f"{k} {v}" for k, v in sorted(self.outputs.items()))]


def _wall_clock_iso() -> str:  # the dead-letter timestamp only (operational, not state)
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _exact_end_offsets(settings) -> bool:
    traits = BROKER_TRAITS.get(settings.broker_kind)
    return traits is None or traits.exact_end_offsets_with_batching


def _producer_config(settings) -> dict:
    if not _exact_end_offsets(settings):
        # tansu answers wrong end offsets after multi-record batches, which breaks Faust's
        # changelog recovery: one record per batch, as the live workers produce there.
        return {"max_batch_size": 1, "linger_ms": 0}
    return {"max_batch_size": 1 << 20, "linger_ms": 20}


async def run_bulk(settings, *, progress: bool = True, max_records: int = 20_000, out=sys.stderr,
                   pipeline: Optional[Pipeline] = None) -> BulkReport:
    """Rebuild the customer state from the start of the inputs into an empty changelog.

    Expects what ``streams.ops.offsets.rebuild`` leaves: wiped local state, empty changelog
    and rekey topics, no worker running. Does not move the group's offsets (the caller does,
    to ``report.positions``).
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    codes = source_codes(settings)
    rekey = rekey_topic_name(settings)
    inputs = [t for t in codes if t != rekey]  # recreated empty by the rebuild: written below
    rank = {t: i for i, t in enumerate(codes)}
    if pipeline is None:
        pipeline = Pipeline(settings.engine_config(), settings.edge_rules(), codes,
                            scorer=current_scorer(settings, **client_config(settings)), replay=True,
                            clock=_wall_clock_iso, population_config=settings.population_config(),
                            partitions=settings.partitions, population_period_ms=settings.population_period_ms())
    partitions = settings.partitions
    partition_of = lambda key: partition_for(key, partitions)  # noqa: E731
    population = BulkPopulation(pipeline)
    population.start(partition_of, range(partitions))
    state = StateRebuild(pipeline, partition_of, rekey, log=lambda line: print(line, file=out))
    changelog = state_changelog_topic(settings.app_id)
    role_topic = {SEGMENT_CHANGES: settings.topic_segment_changes, DEAD_LETTER: settings.topic_dead_letter,
                  REKEY: rekey}
    report = BulkReport()
    security = aiokafka_config(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 << 20,
                                fetch_max_bytes=32 << 20, **security)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", **_producer_config(settings),
                                **security)
    await consumer.start()
    await producer.start()
    sent: List[asyncio.Future] = []
    one_per_batch = not _exact_end_offsets(settings)
    output_partitions: Dict[str, int] = {}

    async def send(topic: str, key: bytes, value: bytes, partition: Optional[int] = None) -> None:
        sent.append(await producer.send(topic, key=key, value=value, partition=partition))

    async def send_all(topic: str, partition: int, records: List[Tuple[bytes, bytes]]) -> None:
        """Records of one partition in order, in as few produce batches as fit (a send per record
        costs more than the core's work on it)."""
        if one_per_batch:
            for key, value in records:
                await send(topic, key, value, partition)
            return
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full
                sent.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        if batch.record_count():
            sent.append(await producer.send_batch(batch, topic, partition=partition))

    async def write_batch() -> None:
        for p, writes in sorted(state.take_changelog().items()):
            await send_all(changelog, p, list(writes.items()))  # Faust's table: the event's partition
            report.changelog_records += len(writes)
        by_partition: Dict[Tuple[str, int], List[Tuple[bytes, bytes]]] = {}
        for role, key, value in state.take_outputs():
            topic = role_topic[role]
            if topic not in output_partitions:
                output_partitions[topic] = len(await producer.partitions_for(topic))
            # keyed by customer: where the producer's default partitioner would put it
            by_partition.setdefault((topic, partition_for(key, output_partitions[topic])), []).append((key, value))
            report.outputs[role] += 1
        for (topic, p), records in sorted(by_partition.items()):
            await send_all(topic, p, records)
        done = [f for f in sent if f.done()]
        for f in done:
            f.result()  # a failed send fails the rebuild
        sent[:] = [f for f in sent if not f.done()]

    started = time.perf_counter()
    bar = None
    try:
        tps = [TopicPartition(t, p) for t in inputs for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        exact = _exact_end_offsets(settings)
        merge = PartitionMerge([(tp.topic, tp.partition) for tp in tps], rank)
        positions = {(tp.topic, tp.partition): begins[tp] for tp in tps}
        open_tps = set(tps)
        for tp in tps:
            if ends[tp] <= begins[tp] and exact:
                merge.finish((tp.topic, tp.partition))
                open_tps.discard(tp)
        bar = tqdm(total=sum(ends[tp] - begins[tp] for tp in tps), unit="ev", desc="rebuild", file=out,
                   dynamic_ncols=True, disable=not progress, mininterval=0.5)
        while open_tps:
            batch = await consumer.getmany(*open_tps, timeout_ms=500, max_records=max_records)
            fetched = 0
            for tp, msgs in batch.items():
                records = [Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)
                           for m in msgs if not exact or m.offset < ends[tp]]
                if records:
                    merge.add((tp.topic, tp.partition), records)
                    positions[(tp.topic, tp.partition)] = records[-1].offset + 1
                    fetched += len(records)
            for tp in list(open_tps):
                # exact brokers: stop at the end offsets taken at the start. tansu under-reports them
                # after multi-record batches: go on past them until a fetch brings nothing more.
                if positions[(tp.topic, tp.partition)] >= ends[tp] and (exact or not fetched):
                    merge.finish((tp.topic, tp.partition))
                    open_tps.discard(tp)
            for record in merge.ready():
                population.before(record)
                state.apply(record)
                report.events += 1
            if fetched:
                bar.total = max(bar.total, report.events + merge.pending)
            bar.update(report.events - bar.n)
            await write_batch()
        for record in merge.ready():  # everything is finished now: the rest is in order
            population.before(record)
            state.apply(record)
            report.events += 1
        # Rekeyed events, as the live workers would read them back from the rekey topic.
        rekeyed = state.held_rekeys()
        for item in rekeyed:
            r = item.record
            await send(rekey, r.key, item.value, r.partition)
            report.outputs[REKEY] += 1
            population.before(r)
            state.apply(r)
            positions[(rekey, r.partition)] = r.offset + 1
        state.settle()  # relative policies: what waited for another partition's cut is decided now
        await write_batch()
        bar.update(report.events - bar.n)
        for p, blob in population.published().items():
            await send(population_topic_name(settings), str(p).encode(), blob, 0)
        await producer.flush()
        for f in sent:
            f.result()
        report.positions = positions
    finally:
        if bar is not None:
            bar.close()
        await consumer.stop()
        await producer.stop()
    report.seconds = time.perf_counter() - started
    report.customers = len(state.store)
    report.outcomes = state.outcomes
    return report


def commit_positions(settings, report: BulkReport) -> None:
    """Move the group's input offsets to where the bulk run read up to (the group is stopped)."""
    from kafka import TopicPartition

    from ..ops.offsets import ResetPlan, apply_reset

    reset = ResetPlan(settings.app_id, {TopicPartition(t, p): (None, offset)
                                         for (t, p), offset in sorted(report.positions.items())})
    apply_reset(settings, reset, force=True)  # the caller checked that the group is stopped


async def run_bulk_and_commit(settings, **kw) -> BulkReport:
    """For callers already in an event loop (the Faust CLI runs commands in one)."""
    report = await run_bulk(settings, **kw)
    await asyncio.get_running_loop().run_in_executor(None, commit_positions, settings, report)
    return report


def rebuild(settings, **kw) -> BulkReport:
    """Run the bulk rebuild, then move the group's input offsets to where it read up to."""
    report = asyncio.run(run_bulk(settings, **kw))
    commit_positions(settings, report)
    return report
