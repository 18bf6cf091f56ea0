"""clvstream benchmark suite: every figure beside a baseline measured in the same run.

    .venv/bin/python bench/run.py                 # sections 1-4, default sizes (~4-6 min on 2 cores)
    .venv/bin/python bench/run.py --quick         # small sizes, < 2 min
    .venv/bin/python bench/run.py --sections 1,3  # a subset
    .venv/bin/python bench/run.py --scaling       # + section 5: 10k, 100k and 1M customers (~13 min more)

Sections: 1 core in process (Pipeline.handle vs validation.decode vs json.loads, cProfile);
2 end to end (one worker subprocess vs raw aiokafka / kafka-python consumers and a naive Faust agent);
3 latency event -> segment change at a fixed rate vs produce -> consume of the raw topic;
4 state size and recovery (data dir wiped) vs a raw read of the changelog; 5 scaling (seeded state, 10k-1M).
Sections 2-5 run on a single-node Apache Kafka (`make kafka` fetches it) or, with --broker tansu, on the
embedded tansu broker. Not part of the pytest suite. See bench/README.md.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py
from _common import (  # noqa: E402
    ROOT,
    BROKER_DESCRIPTIONS,
    BROKERS,
    Broker,
    Row,
    AioObserver,
    TopicObserver,
    WorkerProc,
    bench_settings,
    cause_id,
    changelog_topic,
    cpu_seconds,
    create_topics,
    loadavg,
    partition_of,
    dir_bytes,
    machine_lines,
    POLL_INTERVAL_S,
    metrics_count,
    metrics_sums,
    percentile,
    print_table,
    probe_event,
    raw_read_aiokafka,
    raw_read_kafka_python,
    records_for,
    rmtree,
    section,
    start_broker,
    watch_metrics,
)

import logging  # noqa: E402

from streams.core import codec  # noqa: E402
from streams.core.validation import decode  # noqa: E402
from streams.generator import EventGenerator, GeneratorConfig  # noqa: E402
from streams.kafka.admin import TopicSpec, ensure_topics  # noqa: E402
from streams.demo import stop_process  # noqa: E402
from streams.kafka.broker import free_port  # noqa: E402
from streams.kafka.produce import encode_value, producer, send_events  # noqa: E402
from streams.kafka.read import read_to_end  # noqa: E402
from streams.pipeline import Pipeline, StateCache  # noqa: E402
from streams.runtime import tune_garbage_collector  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topology import source_codes  # noqa: E402


# ============================================================================ configuration

@dataclass
class Config:
    core_events: int
    e2e_events: int
    customers: int
    partitions: int
    store: str
    profile_events: int
    rate: Optional[float]
    rate_cap: float
    default_rate: float
    latency_seconds: float
    seed: int
    sections: List[int]
    scaling: bool
    scaling_events: int
    scaling_sizes: List[int]
    keep: bool
    json_path: Optional[str]
    per_event: bool = False
    broker: str = "kafka"
    exactly_once: bool = False
    two_processes: bool = False


def parse_args(argv=None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--events", type=int, help="events of sections 1 and 2 (default 100000 and 50000; quick 10000/5000)")
    p.add_argument("--customers", type=int, help="initial customer cohort of the generator (default 10000; quick 1000)")
    p.add_argument("--partitions", type=int, default=4, help="partitions of the input topic and the table (4)")
    p.add_argument("--store", default="rocksdb://", help="worker table store: rocksdb:// or memory://")
    p.add_argument("--profile-events", type=int, help="records run under cProfile in section 1 (20000; quick 5000)")
    p.add_argument("--rate", type=float, help="latency produce rate, events/s (default: half of section 2's "
                                              "throughput, capped by --rate-cap; 500 without section 2)")
    p.add_argument("--rate-cap", type=float, default=1000.0)
    p.add_argument("--latency-seconds", type=float, help="duration of each latency run (20; quick 6)")
    p.add_argument("--sections", default="1,2,3,4", help="comma list of 1,2,3,4 (5 = --scaling)")
    p.add_argument("--quick", action="store_true", help="small sizes: the whole run in < 2 minutes")
    p.add_argument("--scaling", action="store_true", help="section 5: throughput, recovery and state size at "
                                                          "10k, 100k and 1M customers (~15-20 min on 2 cores)")
    p.add_argument("--big", action="store_true", help="old alias of --scaling (1M is now part of it)")
    p.add_argument("--scaling-events", type=int, default=20_000,
                   help="events the worker processes at each scaling size, after the seeded state (20000)")
    p.add_argument("--scaling-sizes", help="comma list of customer counts for --scaling (10000,100000,1000000)")
    p.add_argument("--broker", choices=BROKERS, default="kafka",
                   help="broker of sections 2-5: kafka (single-node Apache Kafka, default) or tansu (embedded)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--per-event", action="store_true", help="section 2 also runs the per-event live path "
                                                            "(CLV_LIVE_PATH=per-event) on the same topic")
    p.add_argument("--exactly-once", action="store_true", help="section 2 also runs the worker with "
                                                               "CLV_PROCESSING_GUARANTEE=exactly_once on the same topic")
    p.add_argument("--two-processes", action="store_true", help="section 2 also runs two worker processes in "
                                                                 "one consumer group on the same topic (issue 13, item 5)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, state) for inspection")
    p.add_argument("--json", dest="json_path", help="also write all figures to this JSON file")
    a = p.parse_args(argv)
    sections = sorted({int(s) for s in a.sections.split(",") if s.strip()})
    if a.big:
        a.scaling = True
    if 5 in sections:
        a.scaling = True
        sections.remove(5)
    if any(s not in (1, 2, 3, 4) for s in sections):
        p.error("--sections takes 1,2,3,4 (and 5 for scaling)")
    q = a.quick
    return Config(core_events=a.events or (10_000 if q else 100_000), e2e_events=a.events or (5_000 if q else 50_000),
                  customers=a.customers or (1_000 if q else 10_000), partitions=a.partitions, store=a.store,
                  profile_events=a.profile_events or (5_000 if q else 20_000), rate=a.rate,
                  rate_cap=a.rate_cap if not q else min(a.rate_cap, 500.0), default_rate=500.0,
                  latency_seconds=a.latency_seconds or (6.0 if q else 20.0), seed=a.seed, sections=sections,
                  scaling=a.scaling, scaling_events=a.scaling_events,
                  scaling_sizes=([int(x) for x in a.scaling_sizes.split(",")] if a.scaling_sizes else
                                 [10_000, 100_000, 1_000_000]),
                  keep=a.keep, json_path=a.json_path, per_event=a.per_event,
                  broker=a.broker, exactly_once=a.exactly_once,
                  two_processes=a.two_processes)


class Cleanup:
    """Stops workers and brokers (reverse order) whatever happens."""

    def __init__(self):
        self.actions: List[Callable[[], None]] = []

    def add(self, action: Callable[[], None]) -> None:
        self.actions.append(action)

    def run(self) -> None:
        while self.actions:
            action = self.actions.pop()
            try:
                action()
            except BaseException as exc:  # noqa: BLE001 - clean up the rest regardless
                print(f"  (clean-up: {type(exc).__name__}: {exc})", file=sys.stderr)


def generate(seed: int, customers: int, limit: int):
    return list(EventGenerator(GeneratorConfig(seed=seed, customers=customers)).events(limit=limit))


# ============================================================================ 1. core

def _short(func_key) -> str:
    filename, line, name = func_key
    if filename == "~":
        return name
    path = filename
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{line}({name})"


def section_core(cfg: Config, results: dict) -> None:
    section("1. Core, in process: Pipeline.handle over generated records (dict as the state store)")
    tune_garbage_collector()  # as in the worker's process (streams/runtime.py)
    t = time.perf_counter()
    events = generate(cfg.seed, cfg.customers, cfg.core_events)
    settings = Settings()
    topic = settings.topic_orders
    records = records_for(events, topic, cfg.partitions)
    gen_s = time.perf_counter() - t
    codes = source_codes(settings)
    n = len(records)

    def run_pipeline(recs) -> tuple:
        pipeline = Pipeline(settings.engine_config(), settings.edge_rules(), codes)
        store: Dict[bytes, bytes] = {}
        outcomes, changes = Counter(), 0
        get, update, handle = store.get, store.update, pipeline.handle
        for r in recs:
            res = handle(r, get)
            update(res.writes)
            outcomes[res.outcome] += 1
            changes += len(res.changes)
        return store, outcomes, changes

    def run_batched(recs, size: int = 1000) -> Dict[bytes, bytes]:
        """The checkpointed live path's core: 1000-record batches through one cache of decoded states."""
        pipeline = Pipeline(settings.engine_config(), settings.edge_rules(), codes)
        store: Dict[bytes, bytes] = {}
        for i in range(0, len(recs), size):
            states = StateCache(store.get)
            pipeline.handle_batch(recs[i:i + size], states)
            store.update(states.settle())
        return store

    gc.collect()
    t = time.perf_counter()
    store, outcomes, changes = run_pipeline(records)
    pipe_s = time.perf_counter() - t
    gc.collect()
    t = time.perf_counter()
    batched_store = run_batched(records)
    batch_s = time.perf_counter() - t
    if batched_store != store:
        print("  !! the checkpointed core's states differ from Pipeline.handle's", flush=True)

    rules = settings.edge_rules()
    gc.collect()
    t = time.perf_counter()
    for r in records:
        decode(r.value, rules, r.timestamp_ms)
    decode_s = time.perf_counter() - t

    gc.collect()
    t = time.perf_counter()
    loads = json.loads
    for r in records:
        loads(r.value)
    loads_s = time.perf_counter() - t

    state_sizes = sorted(len(v) for v in store.values())
    mean_payload = sum(len(r.value) for r in records) / n
    print(f"  params: {n:,} records ({mean_payload:.0f} B JSON on average, generated in {gen_s:.1f} s), "
          f"seed {cfg.seed}, {cfg.customers:,} initial customers -> {len(store):,} customers in state, "
          f"{cfg.partitions} partitions")
    print(f"          outcomes {dict(outcomes)}, {changes:,} segment changes; "
          f"state bytes/customer mean {sum(state_sizes) / len(state_sizes):.0f}, "
          f"p95 {percentile(state_sizes, 95)}")
    rows = [Row("events/s Pipeline.handle_batch (1000-record checkpoints) vs Pipeline.handle per record",
                n / batch_s, n / pipe_s, "/s", "handle"),
            Row("us/event Pipeline.handle_batch vs validation.decode (target <= 50 us)", batch_s / n * 1e6,
                decode_s / n * 1e6, "us", "decode", higher_is_better=False),
            Row("events/s Pipeline.handle vs validation.decode (json.loads + compiled schema)", n / pipe_s,
                n / decode_s, "/s", "decode"),
            Row("events/s Pipeline.handle vs json.loads only", n / pipe_s, n / loads_s, "/s", "json.loads"),
            Row("us/event Pipeline.handle vs validation.decode", pipe_s / n * 1e6, decode_s / n * 1e6, "us",
                "decode", higher_is_better=False)]
    print_table(rows)
    results["core"] = dict(events=n, customers=len(store), pipeline_eps=n / pipe_s, batched_eps=n / batch_s,
                           decode_eps=n / decode_s,
                           loads_eps=n / loads_s, changes=changes)

    # Profile: a separate run (cProfile roughly doubles the time) over the first records.
    m = min(n, cfg.profile_events)
    prof = cProfile.Profile()
    prof.runcall(run_batched, records[:m])
    stats = pstats.Stats(prof).stats
    driver = next(k for k in stats if k[2] == "run_batched")
    total = stats[driver][3]
    skip = {driver}
    ranked = sorted(((v[3], v[2], v[1], k) for k, v in stats.items() if k not in skip), reverse=True)
    print(f"\n  cProfile of Pipeline.handle over the first {m:,} records ({total:.2f} s under the profiler): "
          f"top 10 by cumulative time")
    print(f"  {'cum s':>7} {'cum %':>6} {'self s':>7} {'calls':>9}  function")
    top = []
    for ct, tt, nc, key in ranked[:10]:
        print(f"  {ct:7.2f} {100 * ct / total:5.1f}% {tt:7.2f} {nc:9,}  {_short(key)}")
        top.append(dict(function=_short(key), cum_s=ct, cum_pct=100 * ct / total, self_s=tt, calls=nc))
    by_self = sorted(((v[2], v[1], k) for k, v in stats.items() if k not in skip), reverse=True)[:6]
    print("  top 6 by own (self) time: " + "; ".join(f"{_short(k).split('/')[-1]} {tt:.2f} s ({100 * tt / total:.0f}%)"
                                                     for tt, _nc, k in by_self))
    results["core"]["profile_top10"] = top


# ============================================================================ 2. end to end

@dataclass
class E2E:
    broker: Broker
    settings: Settings
    worker: WorkerProc
    workdir: Path
    events: list
    produced: int
    figures: dict = field(default_factory=dict)


def run_e2e(cfg: Config, workdir: Path, cleanup: Cleanup, events_n: int, customers: int, tag: str,
            show: bool = True, naive_agent: bool = True) -> E2E:
    if show:
        section(f"2. End to end on {cfg.broker}: one worker subprocess over a backlog on ONE input topic")
    t = time.perf_counter()
    events = generate(cfg.seed, customers, events_n)
    gen_s = time.perf_counter() - t
    broker = start_broker(cfg.broker, workdir / f"broker-{tag}.log", cleanup.add)
    settings = bench_settings(broker, f"bench-{tag}-", workdir / f"state-{tag}", cfg.partitions, cfg.store)
    create_topics(settings)
    topic = settings.topic_orders
    topics = dict.fromkeys(("orders", "interactions", "customers"), topic)

    prod = producer(broker.bootstrap)
    try:
        t = time.perf_counter()
        produced = send_events(prod, topics, events)
        produce_s = time.perf_counter() - t
    finally:
        prod.close()
    input_bytes = sum(len(encode_value(ev.value)) + len(ev.key) for ev in events)

    # Baselines on the same topic, before the worker starts (nothing else running).
    aio = raw_read_aiokafka(broker.bootstrap, topic, produced)
    kp = raw_read_kafka_python(broker.bootstrap, topic, produced)
    naive = run_naive_agent(broker, topic, produced, cfg.partitions, workdir, tag, cleanup) if naive_agent \
        else None
    nothing = run_naive_agent(broker, topic, produced, cfg.partitions, workdir, tag, cleanup,
                              mode="nothing") if naive_agent else None
    def variant_rate(suffix: str, **overrides) -> float:
        """events/s of the worker with ``overrides``, on its own app id, data dir and output topics."""
        variant = replace(settings, app_id=f"{settings.app_id}-{suffix}", data_dir=f"{settings.data_dir}-{suffix}",
                          web_port=free_port(), topic_segment_changes=f"{settings.topic_segment_changes}-{suffix}",
                          topic_dead_letter=f"{settings.topic_dead_letter}-{suffix}", **overrides)
        create_topics(variant)
        variant_worker = WorkerProc(variant, workdir / f"worker-{tag}-{suffix}.log")
        cleanup.add(variant_worker.stop)
        variant_worker.start()
        prog = watch_metrics(variant_worker, produced, timeout=120 + produced / 100)
        variant_worker.stop()
        return (produced - prog.first_count) / (prog.done - prog.first)

    def two_process_rate() -> float:
        """events/s of two worker processes in one group (own data dirs and ports), counts summed; from
        the first event either applied to the poll that sees the sum reach the backlog (the rebalance
        as the second process joins is inside the window, as it would be in production)."""
        suffix = "2p"
        variant = replace(settings, app_id=f"{settings.app_id}-{suffix}",
                          topic_segment_changes=f"{settings.topic_segment_changes}-{suffix}",
                          topic_dead_letter=f"{settings.topic_dead_letter}-{suffix}")
        create_topics(variant)
        pair = [WorkerProc(replace(variant, data_dir=f"{settings.data_dir}-{suffix}-p{i}", web_port=free_port()),
                           workdir / f"worker-{tag}-{suffix}-p{i}.log") for i in range(2)]
        for w in pair:
            cleanup.add(w.stop)
            w.start()
        started, first, first_count = time.monotonic(), None, 0
        deadline = started + 120 + produced / 100
        try:
            while time.monotonic() < deadline:
                for w in pair:
                    w.check()
                counts = [metrics_count(w.settings.web_port) or 0 for w in pair]
                now = time.monotonic()
                if first is None and sum(counts) > 0:
                    first, first_count = now, sum(counts)
                if sum(counts) >= produced:
                    return (produced - first_count) / (now - first)
                time.sleep(POLL_INTERVAL_S)
            raise TimeoutError(f"two workers applied {sum(counts)} of {produced} events")
        finally:
            for w in pair:
                w.stop()

    # The per-event live path (each event's outputs acknowledged before its state write) in the same run.
    per_event = variant_rate("per-event", live_path="per-event") if naive_agent and cfg.per_event else None
    # The same worker with one Kafka transaction per input partition per checkpoint (streams/eos.py).
    exactly_once = variant_rate("eos", processing_guarantee="exactly_once") \
        if naive_agent and cfg.exactly_once else None
    two_processes = two_process_rate() if naive_agent and cfg.two_processes else None

    worker = WorkerProc(settings, workdir / f"worker-{tag}.log")
    cleanup.add(worker.stop)
    worker.start()
    cpu0: Dict[str, float] = {}

    def at_first():
        cpu0.update(worker=cpu_seconds(worker.proc.pid), broker=cpu_seconds(broker.pid),
                    wall=time.monotonic(), sums=metrics_sums(settings.web_port) or {})

    prog = watch_metrics(worker, produced, timeout=120 + produced / 200, on_first=at_first)
    wall = time.monotonic() - cpu0["wall"]
    worker_cpu = cpu_seconds(worker.proc.pid) - cpu0["worker"]
    broker_cpu = cpu_seconds(broker.pid) - cpu0["broker"]
    sums = metrics_sums(settings.web_port) or {}
    in_agent = sums.get("clvstream_processing_seconds_sum", 0.0) - cpu0["sums"].get("clvstream_processing_seconds_sum", 0.0)
    worker_eps = (produced - prog.first_count) / (prog.done - prog.first)
    f = dict(events=produced, customers_initial=customers, input_bytes=input_bytes, produce_eps=produced / produce_s,
             worker_eps=worker_eps, worker_eps_from_start=produced / prog.done, web_up_s=prog.web_up,
             first_event_s=prog.first, first_count=prog.first_count, done_s=prog.done,
             raw_aiokafka_eps=aio.rate, raw_aiokafka_first_s=aio.first_s, raw_kafka_python_eps=kp.rate,
             raw_kafka_python_first_s=kp.first_s, naive_agent_eps=naive, nothing_agent_eps=nothing,
             per_event_worker_eps=per_event, exactly_once_worker_eps=exactly_once, two_processes_eps=two_processes, worker_cpu_share=worker_cpu / wall,
             broker_cpu_share=broker_cpu / wall, agent_body_share=in_agent / wall,
             agent_body_us_per_event=in_agent / max(1, produced - prog.first_count) * 1e6)
    f["broker"] = broker.kind
    f["broker_memory_mb"] = proc_memory_mb(broker.pid)
    t = time.perf_counter()
    worker.stop()  # graceful: commits offsets and flushes the changelog before section 4 reads it
    f["stop_s"] = time.perf_counter() - t
    if show:
        print(f"  params: {produced:,} events ({input_bytes / produced:.0f} B key+value on average; generated in "
              f"{gen_s:.1f} s, seed {cfg.seed}, {customers:,} initial customers) on topic {topic} "
              f"({cfg.partitions} partitions), store {cfg.store}, session timeout {settings.session_timeout_s} s")
        print(f"          produced with kafka-python (acks=all, linger 5 ms) at {produced / produce_s:,.0f} msgs/s; "
              f"worker start-up: /metrics up {prog.web_up:.2f} s, first event applied {prog.first:.2f} s "
              f"after process start ({prog.first_count} counted at that poll); "
              f"last applied {prog.done:.2f} s; graceful stop {f['stop_s']:.1f} s")
        print(f"          while processing ({wall:.1f} s): worker process CPU {100 * worker_cpu / wall:.0f}% of one core, "
              f"{broker.kind} CPU {100 * broker_cpu / wall:.0f}%; time inside the agent body (Pipeline.handle + table "
              f"writes + send calls, clvstream_processing_seconds) {100 * in_agent / wall:.0f}% of the wall time, "
              f"{f['agent_body_us_per_event']:.0f} us/event; {broker.kind} resident memory "
              f"{f['broker_memory_mb']['rss_mb']:,.0f} MB (peak {f['broker_memory_mb']['peak_mb']:,.0f} MB)")
        rows = [Row("events/s worker (first event -> last applied) vs Faust agent doing nothing (target >= 0.7x)",
                    worker_eps, nothing, "/s", "do-nothing agent"),
                Row("events/s worker (first event -> last applied) vs naive Faust agent (1 table write/event; "
                    "target >= 2.5x)", worker_eps, naive, "/s", "naive agent"),
                Row("events/s worker (checkpointed) vs the per-event live path (CLV_LIVE_PATH=per-event)",
                    worker_eps, per_event, "/s", "per-event"),
                Row("events/s worker (at least once) vs CLV_PROCESSING_GUARANTEE=exactly_once",
                    worker_eps, exactly_once, "/s", "exactly once"),
                Row("events/s naive Faust agent vs Faust agent doing nothing", naive, nothing, "/s",
                    "do-nothing agent"),
                Row("events/s worker (first event -> last applied) vs raw aiokafka (assign+seek, no group)",
                    worker_eps, aio.rate, "/s", "aiokafka"),
                Row("events/s worker vs raw kafka-python consumer", worker_eps, kp.rate, "/s", "kafka-python"),
                Row("events/s worker incl. start-up (process start -> last applied)", produced / prog.done,
                    aio.rate, "/s", "aiokafka"),
                Row("start-up s: worker process start -> first event applied vs raw aiokafka -> first record",
                    prog.first, aio.first_s, "s", "aiokafka", higher_is_better=False)]
        if two_processes is not None:
            rows.insert(4, Row("events/s 2 worker processes (one group, summed) vs 1 worker (target >= 1.7x)",
                               two_processes, worker_eps, "/s", "1 worker"))
        print_table(rows)
    return E2E(broker, settings, worker, workdir, events, produced, f)


def run_naive_agent(broker: Broker, topic: str, expected: int, partitions: int, workdir: Path, tag: str,
                    cleanup: Cleanup, mode: str = "naive") -> float:
    """bench/naive_agent.py over the same topic (its own group): events/s from its first to its last event.
    ``mode`` naive: json + one table write per event; nothing: the agent only counts (Faust's own cost)."""
    tag = f"{mode}-{tag}"
    out = workdir / f"naive-{tag}.txt"
    env = {**os.environ, "NAIVE_BOOTSTRAP": broker.bootstrap, "NAIVE_BROKER_KIND": broker.kind, "NAIVE_TOPIC": topic, "NAIVE_APP": f"naive-{tag}",
           "NAIVE_DATADIR": str(workdir / f"naive-state-{tag}"), "NAIVE_PARTITIONS": str(partitions),
           "NAIVE_PORT": str(free_port()), "NAIVE_EXPECT": str(expected), "NAIVE_OUT": str(out),
           "NAIVE_MODE": mode}
    log = open(workdir / f"naive-{tag}.log", "ab")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "naive_agent.py"), "worker", "-l", "warn"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    cleanup.add(lambda: stop_process(proc))
    try:
        deadline = time.monotonic() + 120 + expected / 300
        while not out.exists() or not out.read_text().endswith("\n"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"naive agent did not finish (exit {proc.poll()}), see {log.name}")
            time.sleep(0.1)
        first, last, n = out.read_text().split()
        return (int(n) - 1) / max(1e-9, float(last) - float(first))
    finally:
        stop_process(proc)
        log.close()


# ============================================================================ 3. latency

def _feed(prod, topic: str, events, rate: float, sent: Dict[str, float]) -> float:
    start = time.monotonic()
    for i, ev in enumerate(events):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent[ev.value["event_id"]] = time.time()
        prod.send(topic, key=ev.key.encode(), value=encode_value(ev.value), timestamp_ms=ev.event_time_ms)
    prod.flush()
    return time.monotonic() - start


def _pcts(values: List[float]) -> List[float]:
    s = sorted(values)
    return [percentile(s, q) * 1000 for q in (50, 95, 99)] + [s[-1] * 1000 if s else float("nan")]


def _latency_run(cfg: Config, broker: Broker, workdir: Path, cleanup: Cleanup, rate: float, k: int) -> dict:
    """One latency run at ``rate`` with its own worker, topics and raw baseline topic on ``broker``."""
    n = int(rate * cfg.latency_seconds)
    events = generate(cfg.seed + k, cfg.customers, n)
    settings = bench_settings(broker, f"bench-lat{k}-", workdir / f"state-lat{k}", cfg.partitions, cfg.store)
    create_topics(settings)
    raw_topic = f"bench-lat{k}-raw"
    ensure_topics(broker.bootstrap, [TopicSpec(raw_topic, cfg.partitions)])

    seen: Dict[str, float] = {}
    produced_at: Dict[str, float] = {}  # CreateTime of the change record (set by the worker's producer)
    seen_types: Counter = Counter()

    def on_change(r, at):
        doc = json.loads(r.value)
        cause = doc["cause"]["event_id"]
        if cause not in seen:
            seen[cause] = at
            produced_at[cause] = r.timestamp / 1000 if r.timestamp is not None and r.timestamp >= 0 else float("nan")
        seen_types[doc["cause"]["type"]] += 1

    observer = TopicObserver(broker.bootstrap, settings.topic_segment_changes, on_change, fetch_max_wait_ms=10)
    observer.start()
    cleanup.add(observer.stop)
    worker = WorkerProc(settings, workdir / f"worker-lat{k}.log")
    cleanup.add(worker.stop)
    prod = producer(broker.bootstrap, linger_ms=0)
    cleanup.add(prod.close)
    worker.start()
    # Warm-up probe: a new customer's signup dated before the stream; ready when its change shows up.
    probe_id, key, value, ts = probe_event(f"bench-probe-lat{k}", events[0].event_time_ms - 1000)
    prod.send(settings.topic_orders, key=key, value=value, timestamp_ms=ts)
    prod.flush()
    deadline = time.monotonic() + 120
    while probe_id not in seen:
        worker.check()
        if time.monotonic() > deadline:
            raise TimeoutError("latency worker never applied the warm-up probe:\n" + worker.log_tail())
        time.sleep(0.02)
    ready_s = time.monotonic() - worker.started_at

    sent: Dict[str, float] = {}
    cpu0 = (cpu_seconds(worker.proc.pid), cpu_seconds(broker.pid), time.process_time())
    body0 = (metrics_sums(settings.web_port) or {}).get("clvstream_processing_seconds_sum", 0.0)
    feed_s = _feed(prod, settings.topic_orders, events, rate, sent)
    sums = metrics_sums(settings.web_port) or {}
    processed_at_end = int(sums.get("clvstream_events_total", 1)) - 1
    cpu1 = (cpu_seconds(worker.proc.pid), cpu_seconds(broker.pid), time.process_time())
    cpu_share = {name: (b - a) / feed_s for name, a, b in zip(("worker", broker.kind, "bench"), cpu0, cpu1)}
    agent_share = (sums.get("clvstream_processing_seconds_sum", 0.0) - body0) / feed_s
    watch_metrics(worker, n + 1, timeout=120 + n / 100)
    time.sleep(1.0)  # let the observer catch the last changes
    observer.stop()
    worker.stop()
    lat = [seen[e] - sent[e] for e in sent if e in seen]
    order = sorted((sent[e], seen[e] - sent[e]) for e in sent if e in seen)
    thirds = [_pcts([x for _, x in order[i * len(order) // 3:(i + 1) * len(order) // 3]])[0] for i in range(3)]
    # Seconds of latency gained per second of run between the middle and the last third: > 0 means the
    # worker falls behind the offered rate (latency then depends on the run's length, not steady).
    growth = (thirds[2] - thirds[1]) / 1000 / (cfg.latency_seconds / 3)

    # Baseline: same events, same rate, raw topic, plain consumers at once: kafka-python at fetch_max_wait_ms
    # 10 / 500 (client default) / 1500, and aiokafka at 1500 (what Faust's consumer hard-codes): tansu answers
    # a waiting fetch late under a steady stream, so the wait matters.
    # + aiokafka at the worker's own fetch wait (CLV_FETCH_MAX_WAIT_MS): the floor of the engine's consumer.
    waits = ("kafka-python 10", "kafka-python 500", "kafka-python 1500", "aiokafka 1500",
             f"aiokafka {settings.fetch_max_wait_ms}")
    raw_seen: Dict[str, Dict[str, float]] = {w: {} for w in waits}
    observers = []
    for w in waits:
        def on_raw(r, at, d=raw_seen[w]):
            d.setdefault(json.loads(r.value)["event_id"], at)
        client, ms = w.split()
        if client == "aiokafka":
            o = AioObserver(broker.bootstrap, raw_topic, on_raw, fetch_max_wait_ms=int(ms)).start_and_wait()
        else:
            o = TopicObserver(broker.bootstrap, raw_topic, on_raw, fetch_max_wait_ms=int(ms))
            o.start()
        cleanup.add(o.stop)
        observers.append(o)
    time.sleep(0.5)
    raw_sent: Dict[str, float] = {}
    raw_feed_s = _feed(prod, raw_topic, events, rate, raw_sent)
    deadline = time.monotonic() + 10
    while any(len(d) < n for d in raw_seen.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for o in observers:
        o.stop()
    base = {w: _pcts([raw_seen[w][e] - raw_sent[e] for e in raw_sent if e in raw_seen[w]]) for w in waits}
    return dict(rate=rate, events=n, samples=len(lat), engine_ms=eng_dict(_pcts(lat)), thirds_p50_ms=thirds,
                growth_s_per_s=growth, steady=growth <= 0.05, ready_s=ready_s, cpu_share_during_feed=cpu_share,
                agent_body_share=agent_share,
                backlog_at_end=n - processed_at_end, live_eps=processed_at_end / feed_s,
                feed_eps=n / feed_s, raw_feed_eps=n / raw_feed_s, cause_types=dict(seen_types),
                sent_to_produced_ms=eng_dict(_pcts([produced_at[e] - sent[e] for e in sent if e in seen])),
                produced_to_observed_ms=eng_dict(_pcts([seen[e] - produced_at[e] for e in sent if e in seen])),
                raw_ms={w: eng_dict(base[w]) for w in waits}, raw_seen={w: len(raw_seen[w]) for w in waits},
                worker_wait=f"aiokafka {settings.fetch_max_wait_ms}")


def eng_dict(values: List[float]) -> dict:
    return dict(zip(("p50", "p95", "p99", "max"), values))


def _print_latency(cfg: Config, r: dict, why: str) -> None:
    n, q = r["events"], ("p50", "p95", "p99", "max")
    print(f"  params: {n:,} events at {r['rate']:,.0f}/s ({why}) for {cfg.latency_seconds:g} s, customers "
          f"{cfg.customers:,} initial; produced with kafka-python linger 0 (achieved {r['feed_eps']:,.0f}/s engine "
          f"run, {r['raw_feed_eps']:,.0f}/s baseline run)")
    print(f"          worker ready (probe applied) {r['ready_s']:.2f} s after process start; "
          f"{r['backlog_at_end']:,} events sent but not yet applied when the producer finished; "
          f"{r['samples']:,} of {n:,} events caused a change (cause types {r['cause_types']})")
    print("          CPU while the producer ran (share of one core): " + ", ".join(
        f"{k} {100 * v:.0f}%" for k, v in r["cpu_share_during_feed"].items())
        + f" (bench = producer + observer); worker time inside the agent body {100 * r['agent_body_share']:.0f}%")
    print("          observer of the segment changes = kafka-python, fetch_max_wait_ms 10; baseline = the same events "
          f"at the same rate to a raw topic read by plain consumers (no group), all at once; the table uses "
          f"{r['worker_wait']} ms, the worker consumer's fetch wait (CLV_FETCH_MAX_WAIT_MS; Faust hard-codes 1500)")
    print_table([Row(f"latency {x}: event -> segment change vs produce -> consume (target p99 < 250 ms)",
                     r["engine_ms"][x], r["raw_ms"][r["worker_wait"]][x], "ms", "raw aiokafka",
                     higher_is_better=False) for x in q])
    st, so = r["sent_to_produced_ms"], r["produced_to_observed_ms"]
    if abs(st["p50"]) < 60_000:  # the change records carry the worker's wall clock as CreateTime
        print(f"  split by the change record's CreateTime (worker's clock): sent -> change produced p50 "
              f"{st['p50']:.1f} / p99 {st['p99']:.1f} ms; produced -> observed p50 {so['p50']:.1f} / p99 "
              f"{so['p99']:.1f} ms")
    verdict = ("steady" if r["steady"] else
               f"NOT steady: latency grows {r['growth_s_per_s']:.2f} s per s, the worker falls behind this rate")
    print(f"  engine p50 by thirds of the run: " + " / ".join(f"{x:.0f}" for x in r["thirds_p50_ms"])
          + f" ms -> {verdict}")
    print("  raw produce -> consume by client and fetch_max_wait_ms (Faust's own consumer: aiokafka, 1500 ms):")
    for w, v in r["raw_ms"].items():
        print(f"    {w + ' ms':>20}: p50 {v['p50']:7.1f}  p95 {v['p95']:7.1f}  p99 {v['p99']:7.1f}  "
              f"max {v['max']:7.1f} ms   ({r['raw_seen'][w]:,}/{n:,} seen)")


def section_latency(cfg: Config, workdir: Path, cleanup: Cleanup, results: dict, e2e_eps: Optional[float]) -> None:
    section("3. Latency at a fixed rate: event sent -> its segment change observed (wall clock, one machine)")
    if cfg.rate:
        rate, why = cfg.rate, "--rate"
    elif e2e_eps:
        rate, why = min(cfg.rate_cap, e2e_eps / 2), f"half of section 2's {e2e_eps:,.0f}/s, capped at {cfg.rate_cap:,.0f}"
    else:
        rate, why = min(cfg.rate_cap, cfg.default_rate), "default (section 2 not run)"
    broker = start_broker(cfg.broker, workdir / "broker-lat.log", cleanup.add)
    runs = [_latency_run(cfg, broker, workdir, cleanup, rate, 1)]
    _print_latency(cfg, runs[0], why)
    if not runs[0]["steady"] and not cfg.rate:
        # A growing latency depends on the run's length: measure again at half the rate (fresh worker and topics).
        print(f"\n  again at half the rate (the first run was not steady):")
        runs.append(_latency_run(cfg, broker, workdir, cleanup, rate / 2, 2))
        _print_latency(cfg, runs[1], f"half of {rate:,.0f}/s")
    results["latency"] = runs
    broker.stop()


# ============================================================================ 4. state and recovery

def _restart_until_probe(e2e: E2E, probe_customer: str, event_time_ms: int, cleanup: Cleanup) -> dict:
    s = e2e.settings
    seen: Dict[str, float] = {}
    observer = TopicObserver(s.bootstrap, s.topic_segment_changes,
                             lambda r, at: seen.setdefault(cause_id(r.value), at), fetch_max_wait_ms=10)
    observer.start()
    cleanup.add(observer.stop)
    prod = producer(s.bootstrap, linger_ms=0)
    try:
        e2e.worker.start()
        started_wall = time.time()
        probe_id, key, value, ts = probe_event(probe_customer, event_time_ms)
        prod.send(s.topic_orders, key=key, value=value, timestamp_ms=ts)
        prod.flush()
        web_up = None
        deadline = time.monotonic() + 300 + e2e.produced / 200
        while probe_id not in seen:
            e2e.worker.check()
            if time.monotonic() > deadline:
                raise TimeoutError("restarted worker never applied the probe:\n" + e2e.worker.log_tail())
            if web_up is None and metrics_count(s.web_port, timeout=0.2) is not None:
                web_up = time.monotonic() - e2e.worker.started_at
            time.sleep(0.05)
        ready = seen[probe_id] - started_wall
        counted = metrics_count(s.web_port)
    finally:
        prod.close()
        observer.stop()
        e2e.worker.stop()
    return dict(ready_s=ready, web_up_s=web_up, counted_after=counted)


def section_state(cfg: Config, e2e: E2E, cleanup: Cleanup, show: bool = True) -> dict:
    if show:
        section("4. State size and recovery (changelog read back; worker restarted with its data dir wiped)")
    s = e2e.settings
    topic = changelog_topic(s)
    latest: Dict[bytes, bytes] = {}
    records = payload = 0
    for r in read_to_end(s.bootstrap, topic):  # Faust writes one record per batch on tansu: end offsets exact
        records += 1
        payload += len(r.key or b"") + len(r.value or b"")
        latest[r.key] = r.value
    sizes, mismatch = [], 0
    for v in latest.values():
        size = len(codec.encode(codec.decode(v)))
        mismatch += size != len(v)
        sizes.append(size)
    sizes.sort()
    customers = len(latest)
    rocks_bytes = dir_bytes(Path(s.data_dir))
    aio = raw_read_aiokafka(s.bootstrap, topic, records)
    kp = raw_read_kafka_python(s.bootstrap, topic, records)
    max_event_time = max(ev.event_time_ms for ev in e2e.events)

    rmtree(Path(s.data_dir))
    wiped = _restart_until_probe(e2e, "bench-probe-recovery-wiped", max_event_time + 1000, cleanup)
    kept = _restart_until_probe(e2e, "bench-probe-recovery-kept", max_event_time + 2000, cleanup)

    f = dict(customers=customers, changelog_records=records, changelog_payload_bytes=payload,
             state_mean_b=sum(sizes) / customers, state_p95_b=percentile(sizes, 95), state_max_b=sizes[-1],
             encode_mismatch=mismatch, changelog_bytes_per_customer=payload / customers,
             rocksdb_dir_bytes=rocks_bytes, raw_aiokafka_s=aio.read_s + aio.connect_s,
             raw_kafka_python_s=kp.read_s + kp.connect_s, recovery_wiped_s=wiped["ready_s"],
             recovery_wiped_web_s=wiped["web_up_s"], restart_kept_s=kept["ready_s"],
             first_start_s=e2e.figures["first_event_s"])
    if show:
        print(f"  params: changelog {topic}: {records:,} records, {payload / 1e6:.1f} MB key+value, "
              f"{customers:,} customers ({'tansu never compacts: one record per table write' if e2e.broker.kind == 'tansu' else 'Kafka compacts closed segments only: normally none yet'}); "
              f"RocksDB dir after graceful stop {rocks_bytes / 1e6:.1f} MB")
        print(f"          codec.encode size equals the changelog value for {customers - mismatch:,}/{customers:,} "
              f"customers; state max {sizes[-1]:,} B")
        print(f"          recovery = worker process start -> a new customer's signup (sent right after the start) "
              f"seen on the segment-change topic; /metrics up after {wiped['web_up_s'] or float('nan'):.2f} s; "
              f"events counted by then {wiped['counted_after']}")
        rows = [Row("state bytes/customer mean (codec.encode, latest per key)", f["state_mean_b"], None, "B",
                    "-"),
                Row("state bytes/customer p95", f["state_p95_b"], None, "B", "-"),
                Row("changelog payload bytes / customer vs latest state mean", payload / customers, f["state_mean_b"],
                    "B", "latest"),
                Row("RocksDB dir bytes / customer vs latest state mean", rocks_bytes / customers, f["state_mean_b"],
                    "B", "latest"),
                Row("recovery s, data dir wiped vs raw aiokafka read of the changelog", wiped["ready_s"],
                    f["raw_aiokafka_s"], "s", "aiokafka", higher_is_better=False),
                Row("recovery s, data dir wiped vs raw kafka-python read of the changelog", wiped["ready_s"],
                    f["raw_kafka_python_s"], "s", "kafka-python", higher_is_better=False),
                Row("restart s, data dir kept vs first start on empty state (section 2)", kept["ready_s"],
                    e2e.figures["first_event_s"], "s", "first start", higher_is_better=False),
                Row("restore s (wiped minus kept restart) vs raw aiokafka read of the changelog",
                    wiped["ready_s"] - kept["ready_s"], f["raw_aiokafka_s"], "s", "aiokafka",
                    higher_is_better=False)]
        print_table(rows)
    return f


# ============================================================================ 5. scaling

def proc_memory_mb(pid: Optional[int]) -> Dict[str, float]:
    """Resident memory of a process: now (VmRSS) and its peak so far (VmHWM), MB."""
    out = {"rss_mb": float("nan"), "peak_mb": float("nan")}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mb"] = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                out["peak_mb"] = int(line.split()[1]) / 1024
    except (OSError, ValueError, TypeError):
        pass
    return out


SEED_TOPIC = "s"  # positions of seeded states are {"s<partition>": offset}: never those of the real input topic


# Seen before Faust's recovery was patched (streams/kafka/flow_control.py: its second flow resume dropped events
# fetched during a changelog restore): the worker counted 19,999 of 20,000 and then waited for ever. The settle
# rule keeps a regression from hanging the run; the section prints it.
SETTLE_S = 20.0


def _scaling_size(cfg: Config, workdir: Path, cleanup: Cleanup, customers: int) -> dict:
    """One size: seed ``customers`` states into the changelog, then one worker restores and processes a backlog.

    Building 1M customers' state through the worker would take ~20 min of its ~1k events/s, so the state is
    built in process by the same Pipeline (one signup per customer: the generator's cohort signs up at once,
    ``initial_signup_days=0``) and written to the changelog topic as the worker would have (key = customer id,
    partition = the customer's partition, value = codec state). The seeded states carry the source position of
    a topic the worker never reads, so the follow-up events are not mistaken for replays.
    """
    follow = cfg.scaling_events
    tag = f"scale{customers}"
    t0 = time.perf_counter()
    events = list(EventGenerator(GeneratorConfig(seed=cfg.seed, customers=customers, initial_signup_days=0))
                  .events(limit=customers + follow))
    seed_events, follow_events = events[:customers], events[customers:]
    del events
    gen_s = time.perf_counter() - t0

    settings0 = Settings()
    pipeline = Pipeline(settings0.engine_config(), settings0.edge_rules(), source_codes(settings0))
    store: Dict[bytes, bytes] = {}
    t = time.perf_counter()
    for r in records_for(seed_events, SEED_TOPIC, cfg.partitions):
        res = pipeline.handle(r, store.get)
        store.update(res.writes)
    seed_s = time.perf_counter() - t
    del seed_events, pipeline
    sizes = sorted(len(v) for v in store.values())
    state_mean = sum(sizes) / len(sizes)

    broker = start_broker(cfg.broker, workdir / f"broker-{tag}.log", cleanup.add)
    settings = bench_settings(broker, f"bench-{tag}-", workdir / f"state-{tag}", cfg.partitions, cfg.store)
    create_topics(settings)
    clog = changelog_topic(settings)
    prod = producer(broker.bootstrap, linger_ms=20, batch_size=512 * 1024, max_request_size=8 * 1024 * 1024)
    try:
        t = time.perf_counter()
        for key, value in store.items():
            prod.send(clog, key=key, value=value, partition=partition_of(key, cfg.partitions))
        prod.flush()
        clog_produce_s = time.perf_counter() - t
        clog_records, clog_bytes = len(store), sum(len(k) + len(v) for k, v in store.items())
        del store
    finally:
        prod.close()
    prod = producer(broker.bootstrap)  # the input as in section 2 (default batches: Faust missed the last events of
    try:                                # a partition written in 512 kB batches on tansu)
        topics = dict.fromkeys(("orders", "interactions", "customers"), settings.topic_orders)
        produced = send_events(prod, topics, follow_events)
        prod.flush()
    finally:
        prod.close()
    mem_loaded = proc_memory_mb(broker.pid)

    aio_clog = raw_read_aiokafka(broker.bootstrap, clog, clog_records)
    kp_clog = raw_read_kafka_python(broker.bootstrap, clog, clog_records)
    aio_in = raw_read_aiokafka(broker.bootstrap, settings.topic_orders, produced)

    worker = WorkerProc(settings, workdir / f"worker-{tag}.log")
    cleanup.add(worker.stop)
    worker.start()
    prog = watch_metrics(worker, produced, timeout=300 + customers / 500 + produced / 100, settle_s=SETTLE_S)
    if prog.final_count < produced:  # a lost event is a bug, not noise: say so loudly, keep the run going
        print(f"  !! {customers:,} customers: the worker applied {prog.final_count:,} of {produced:,} events "
              f"and then stopped counting ({produced - prog.final_count:,} not applied)", flush=True)
    worker.stop()
    rocks = dir_bytes(Path(settings.data_dir))
    e2e = E2E(broker, settings, worker, workdir, follow_events, produced)
    kept = _restart_until_probe(e2e, f"bench-probe-{tag}-kept", max(ev.event_time_ms for ev in follow_events) + 1000,
                                cleanup)
    mem_end = proc_memory_mb(broker.pid)
    broker.stop()
    rmtree(workdir / f"state-{tag}")
    return dict(customers=customers, follow_events=produced, generate_s=gen_s, seed_s=seed_s,
                seed_eps=customers / seed_s, state_mean_b=state_mean, state_p95_b=percentile(sizes, 95),
                changelog_records=clog_records, changelog_bytes=clog_bytes, changelog_produce_s=clog_produce_s,
                raw_aiokafka_changelog_s=aio_clog.read_s + aio_clog.connect_s,
                raw_kafka_python_changelog_s=kp_clog.read_s + kp_clog.connect_s,
                raw_aiokafka_input_eps=aio_in.rate,
                recovery_s=prog.first, web_up_s=prog.web_up, worker_eps=(prog.final_count - prog.first_count) / (prog.done - prog.first),
                first_count=prog.first_count, counted=prog.final_count, restart_kept_s=kept["ready_s"], rocksdb_bytes=rocks,
                rocksdb_b_per_customer=rocks / customers, broker_rss_loaded_mb=mem_loaded["rss_mb"],
                broker_peak_mb=mem_end["peak_mb"], wall_s=time.perf_counter() - t0)


def section_scaling(cfg: Config, workdir: Path, cleanup: Cleanup, results: dict) -> None:
    sizes = cfg.scaling_sizes
    section(f"5. Scaling: throughput, recovery and state size at {', '.join(f'{c:,}' for c in sizes)} customers")
    print(f"  params: per size a fresh {cfg.broker} broker; N customers' state (one signup each, generator seed {cfg.seed}, cohort "
          f"signing up at once) built in process by Pipeline.handle and written to the changelog (one record per "
          f"customer, as after compaction); then {cfg.scaling_events:,} follow-up events of the same stream (mostly the "
          f"customers' first orders: CLV scoring + segment) on the input topic; ONE worker started on an empty data "
          f"dir restores the changelog, then processes the backlog; store {cfg.store}, {cfg.partitions} partitions")
    print("          recovery = worker process start -> first follow-up event applied (Faust restores the table before "
          "it delivers events, and the engine rebuilds its review heaps from the table at the first event); "
          "kept = a restart with the data dir kept until a new signup's change is seen")
    rows = []
    for c in sizes:
        inner = Cleanup()
        try:
            rows.append(_scaling_size(cfg, workdir, inner, c))
        finally:
            inner.run()
            rmtree(workdir / f"state-scale{c}")
        r = rows[-1]
        print(f"  {c:>9,} customers done in {r['wall_s']:.0f} s (generate {r['generate_s']:.0f} s, seed in process "
              f"{r['seed_s']:.0f} s = {r['seed_eps']:,.0f}/s, changelog produced in {r['changelog_produce_s']:.0f} s, "
              f"first event counted {r['first_count']:,}; {r['counted']:,} of {r['follow_events']:,} counted; "
              f"load average {loadavg()})", flush=True)
    head = (f"  {'customers':>9} | {'worker/s':>8} {'aiokafka/s':>10} | {'clog rec':>9} {'clog MB':>7} | "
            f"{'recov s':>7} {'kept s':>6} {'raw aio s':>9} {'recov/raw':>9} {'raw kp s':>8} {'recov/kp':>8} | "
            f"{'state B':>7} {'p95 B':>5} {'rocks B':>7} | {'broker MB':>9}")
    print(head)
    print("  " + "-" * (len(head) - 2))
    for r in rows:
        print(f"  {r['customers']:>9,} | {r['worker_eps']:>8,.0f} {r['raw_aiokafka_input_eps']:>10,.0f} | "
              f"{r['changelog_records']:>9,} {r['changelog_bytes'] / 1e6:>7.1f} | {r['recovery_s']:>7.2f} "
              f"{r['restart_kept_s']:>6.2f} {r['raw_aiokafka_changelog_s']:>9.2f} "
              f"{r['recovery_s'] / r['raw_aiokafka_changelog_s']:>8.1f}x {r['raw_kafka_python_changelog_s']:>8.2f} "
              f"{r['recovery_s'] / r['raw_kafka_python_changelog_s']:>7.1f}x | {r['state_mean_b']:>7.0f} "
              f"{r['state_p95_b']:>5} {r['rocksdb_b_per_customer']:>7.0f} | {r['broker_peak_mb']:>9,.0f}")
    print("  worker/s = follow-up events per second, first -> last applied; aiokafka/s = raw aiokafka read of the same "
          "input topic; recov/raw = recovery / raw read of the whole changelog (target < 3x with aiokafka); state B = "
          "codec state per customer after the signup (mean, p95); rocks B = RocksDB dir after the run / customers; "
          f"broker MB = the {cfg.broker} broker's peak resident memory (tansu: in-memory storage)")
    results["scaling"] = rows


# ============================================================================ main

def main(argv=None) -> int:
    cfg = parse_args(argv)
    # SIGTERM (and SIGINT, even when started in the background) unwind through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # refused connections while things start
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    started = time.perf_counter()
    print("clvstream benchmark (bench/run.py) -- figures beside baselines measured in the same run")
    for line in machine_lines():
        print("  " + line)
    print(f"  run       sections {','.join(map(str, cfg.sections))}{' + scaling' if cfg.scaling else ''}"
          f"{' (quick)' if '--quick' in (argv or sys.argv) else ''}; broker {BROKER_DESCRIPTIONS[cfg.broker]}")
    sys.stdout.flush()
    workdir = Path(tempfile.mkdtemp(prefix="clvstream-bench-"))
    cleanup = Cleanup()
    results: dict = {"config": {k: v for k, v in vars(cfg).items()}, "machine": machine_lines()}
    try:
        durations = results["section_s"] = {}

        def timed(name, fn, *args):
            t = time.perf_counter()
            try:
                return fn(*args)
            finally:
                durations[name] = time.perf_counter() - t
                print(f"  (section {name}: {durations[name]:.0f} s)", flush=True)

        if 1 in cfg.sections:
            timed("1", section_core, cfg, results)
        e2e = None
        if 2 in cfg.sections or 4 in cfg.sections:
            e2e = timed("2", run_e2e, cfg, workdir, cleanup, cfg.e2e_events, cfg.customers, "e2e")
            results["e2e"] = e2e.figures
        if 3 in cfg.sections:
            timed("3", section_latency, cfg, workdir, cleanup, results, e2e.figures["worker_eps"] if e2e else None)
        if 4 in cfg.sections:
            results["state"] = timed("4", section_state, cfg, e2e, cleanup)
        if cfg.scaling:
            timed("5", section_scaling, cfg, workdir, cleanup, results)
    finally:
        cleanup.run()
        if cfg.keep:
            print(f"\nwork dir kept: {workdir}")
        else:
            rmtree(workdir)
    total = time.perf_counter() - started
    print(f"\ntotal wall time {total:.0f} s")
    results["wall_s"] = total
    if cfg.json_path:
        Path(cfg.json_path).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
