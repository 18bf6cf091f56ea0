"""Bulk rebuild vs a raw aiokafka read of the same input log, in one run (issue 13, item 2).

    .venv/bin/python bench/bulk.py --restore           # starts a single-node Apache Kafka (make bench-bulk)
    .venv/bin/python bench/bulk.py --bootstrap 127.0.0.1:9092 --kind external      # a broker already running
    .venv/bin/python bench/bulk.py --broker tansu      # an embedded tansu broker (slow changelog writes)

Generates a realistic mix (the project's generator: signups, orders, refunds, interactions,
1 % duplicates, 0.2 % malformed) for ``--customers`` customers into the three input topics,
then measures on the same broker, one after the other:
  raw   an aiokafka consumer reading every input record with getmany (no processing);
  bulk  streams.bulk.run.run_bulk: the same records through the pure core, changelog and
        outputs written (progress bar on stderr);
  restore (--restore) bench/restore.py on the same broker: the live state rebuilt from the
        changelog the bulk run wrote, beside a raw read of that changelog.
Figures are printed beside each other with their ratio; only ratios within one run compare.
Not part of the pytest suite.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import Broker  # noqa: E402
from streams.bulk.run import run_bulk  # noqa: E402
from streams.generator import EventGenerator, GeneratorConfig  # noqa: E402
from streams.kafka.admin import ensure_topics  # noqa: E402
from streams.kafka.produce import encode_value  # noqa: E402
from streams.pipeline import Pipeline, Result  # noqa: E402
from streams.runtime import tune_garbage_collector  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topics import state_changelog_topic, topic_specs  # noqa: E402


def settings_for(bootstrap: str, kind: str, partitions: int, prefix: str = "") -> Settings:
    prefix = prefix or f"bulk{uuid.uuid4().hex[:6]}."
    return replace(Settings(), broker=f"kafka://{bootstrap}", broker_kind=kind, app_id=f"{prefix}app",
                   partitions=partitions, topic_orders=f"{prefix}orders", topic_interactions=f"{prefix}interactions",
                   topic_customers=f"{prefix}customers", topic_segment_changes=f"{prefix}segment-changes",
                   topic_dead_letter=f"{prefix}dead-letter", topic_model_parameters=f"{prefix}model-parameters")


async def produce(settings: Settings, events) -> int:
    from aiokafka import AIOKafkaProducer

    topics = {"orders": settings.topic_orders, "interactions": settings.topic_interactions,
              "customers": settings.topic_customers}
    prod = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, linger_ms=50, max_batch_size=1 << 20, acks=1)
    await prod.start()
    n = 0
    try:
        for ev in events:
            await prod.send(topics[ev.topic_role], key=ev.key.encode(), value=encode_value(ev.value),
                            timestamp_ms=ev.event_time_ms)
            n += 1
        await prod.flush()
    finally:
        await prod.stop()
    return n


async def raw_read(settings: Settings, topics, expected: int = 0) -> float:
    """Seconds for an aiokafka consumer to read ``topics`` to their end offsets (getmany)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 << 20,
                                fetch_max_bytes=32 << 20)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        started = time.perf_counter()
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:  # end offsets, not a record count: a count that is never reached hangs
            await consumer.getmany(*pending, timeout_ms=500, max_records=20_000)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return time.perf_counter() - started
    finally:
        await consumer.stop()


class StoreOnly(Pipeline):
    """The bulk shell's ceiling: every record becomes its customer's state, nothing else."""

    def __init__(self, settings):
        super().__init__(settings.engine_config(), settings.edge_rules(), {})

    def handle(self, record, load):
        return Result("applied", writes={record.key: record.value})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", help="an existing broker (default: start one of --broker)")
    p.add_argument("--broker", default="kafka", choices=("kafka", "tansu"),
                   help="the broker started when no --bootstrap is given (default: single-node Apache Kafka)")
    p.add_argument("--restore", action="store_true",
                   help="then time the restore from the changelog written (bench/restore.py --skip-faust)")
    p.add_argument("--kind", default="external", help="broker kind of --bootstrap: external, tansu, rdkafka-mock")
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--events", type=int, default=2_200_000, help="events generated (2.2M reach ~1M customers)")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--profile", action="store_true", help="cProfile the bulk run (slower), print the top")
    p.add_argument("--shell-only", action="store_true",
                   help="also run the bulk shell with a core that only stores the raw value (its ceiling)")
    a = p.parse_args(argv)
    tune_garbage_collector()  # as `clvstream rebuild` runs (streams/worker.py)
    broker, work = None, None
    try:
        if a.bootstrap is None:  # the bench's own broker, stopped in the finally
            work = Path(tempfile.mkdtemp(prefix="clv-bulk-"))
            broker = Broker(a.broker, work / "broker.log")
            broker.start()
            a.bootstrap, a.kind = broker.bootstrap, ("external" if a.broker == "kafka" else "tansu")
        settings = settings_for(a.bootstrap, a.kind, a.partitions)
        ensure_topics(settings.bootstrap, topic_specs(settings))
        gen = EventGenerator(GeneratorConfig(seed=13, customers=a.customers, share_duplicates=0.01,
                                             share_malformed=0.002))
        t = time.perf_counter()
        n = asyncio.run(produce(settings, gen.events(limit=a.events)))
        print(f"produced  {n:,} events in {time.perf_counter() - t:.1f} s ({a.partitions} partitions, "
              f"{a.kind} at {a.bootstrap})", flush=True)
        inputs = [settings.topic_orders, settings.topic_interactions, settings.topic_customers]
        raw_s = asyncio.run(raw_read(settings, inputs, n))
        print(f"raw read  {n / raw_s:>10,.0f} events/s ({raw_s:.1f} s)", flush=True)
        prof = cProfile.Profile() if a.profile else None
        if prof:
            prof.enable()
        report = asyncio.run(run_bulk(settings))
        if prof:
            prof.disable()
        print(f"bulk      {report.rate:>10,.0f} events/s ({report.seconds:.1f} s) = "
              f"{report.rate / (n / raw_s):.1%} of the raw read; {report.customers:,} customers, "
              f"{report.changelog_records:,} changelog records", flush=True)
        print("\n".join(report.lines()))
        if a.shell_only:
            shell = settings_for(a.bootstrap, a.kind, a.partitions)
            shell = replace(shell, topic_orders=settings.topic_orders, topic_interactions=settings.topic_interactions,
                            topic_customers=settings.topic_customers)
            ensure_topics(shell.bootstrap, topic_specs(shell))
            ceiling = asyncio.run(run_bulk(shell, pipeline=StoreOnly(shell), progress=False))
            print(f"shell     {ceiling.rate:>10,.0f} events/s ({ceiling.seconds:.1f} s) = "
                  f"{ceiling.rate / (n / raw_s):.1%} of the raw read (core replaced by a store write)", flush=True)
        raw_cl = asyncio.run(raw_read(settings, [state_changelog_topic(settings.app_id)], report.changelog_records))
        print(f"changelog raw read {report.changelog_records / raw_cl:,.0f} records/s ({raw_cl:.1f} s)")
        if prof:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        prefix = settings.app_id[:-3]
        if a.restore:
            from bench import restore

            restore.main(["--bootstrap", a.bootstrap, "--kind", a.kind, "--prefix", prefix,
                          "--partitions", str(a.partitions), "--skip-faust"])
        elif broker is None:
            print(f"settings  {settings.app_id} (topics kept on the broker: bench/restore.py --prefix {prefix})")
    finally:
        if broker is not None:
            broker.stop()
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
