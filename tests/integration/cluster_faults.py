"""Pieces of the fault tests on the 3-node Apache Kafka cluster (test_cluster_faults.py).

* :class:`CommittedChanges`: a campaign engine's view of the output, a ``read_committed``
  consumer of the segment-changes topic running beside the test from its start, keeping every
  record as it arrives (before any dedup) and when.
* :func:`cluster_settings`: settings on the cluster, with every topic pre-created at the
  cluster's replication factor (TopicSpec defaults to 1, which a broker kill would take offline).
* :func:`partition_leaders` / :func:`active_controller`: which node to kill.
* :class:`BusyLoops`: one CPU-bound process per core.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Optional

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from streams.demo import start_worker, topic_specs
from streams.kafka.admin import ensure_topics
from streams.kafka.apache import java_binary
from streams.kafka.install import installed_lib_dir
from streams.kafka.produce import producer, send_events
from streams.settings import Settings
from tests.integration.faults import Traffic
from tests.integration.harness import Worker, client_config, input_topics, make_settings

GUARANTEES = ("at_least_once", "exactly_once")


def cluster_settings(cluster, prefix: str, data_dir: Path) -> Settings:
    settings = make_settings(cluster.bootstrap, "kafka", prefix, data_dir)
    settings = replace(settings, broker=";".join(f"kafka://{a}" for a in cluster.bootstrap.split(",")),
                       replication_factor=cluster.size)  # the workers' Faust topics too (CLV_REPLICATION_FACTOR)
    ensure_topics(settings.bootstrap, topic_specs(settings))
    return settings


class ClusterWorker(Worker):
    """A worker process with the engine's processing guarantee (``CLV_PROCESSING_GUARANTEE``,
    streams/eos.py; Faust's own stays at least once); its Faust topics get the settings'
    replication factor (``cluster_settings``)."""

    def __init__(self, settings: Settings, log_dir: Path, guarantee: str):
        super().__init__(replace(settings, processing_guarantee=guarantee), log_dir)
        self.env = {"CLV_PROCESSING_GUARANTEE": guarantee}
        if os.environ.get("CLV_FAULT_STANDBY_REPLICAS"):  # the fault tests with Faust's standbys on
            self.env["CLV_STANDBY_REPLICAS"] = os.environ["CLV_FAULT_STANDBY_REPLICAS"]
        self.starts, self.ended = 0, True

    def start(self) -> "ClusterWorker":
        self.proc = start_worker(self.settings, self.log_path, extra_env=self.env)
        self.starts, self.ended = self.starts + 1, False
        return self

    @property
    def crashed(self) -> bool:
        """Exited although nobody stopped it (stop() and kill() reap the process first)."""
        return self.proc is not None and not self.ended and self.proc.poll() is not None

    def stop(self) -> None:
        super().stop()
        self.ended = True

    def kill(self) -> None:
        super().kill()
        self.ended = True


class IdempotentTraffic(Traffic):
    """Traffic whose producer retries without writing an event twice (a broker kill makes it
    retry): the expected figures assume each event is in the input log exactly once."""

    def _run(self):
        prod = producer(self.settings.bootstrap, request_timeout_ms=60000, enable_idempotence=True,
                        **client_config(self.settings))
        try:
            send_events(prod, input_topics(self.settings, True), self.events, self.rate,
                        on_sent=lambda ev: setattr(self, "sent", self.sent + 1))
        finally:
            prod.close()


class CommittedChanges(threading.Thread):
    """Every segment change a read_committed consumer sees, with its arrival time."""

    def __init__(self, settings: Settings):
        super().__init__(daemon=True, name="read-committed-verifier")
        self.settings = settings
        self.arrivals: List[tuple] = []  # (monotonic seconds, change dict)
        self._stop_event = threading.Event()
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap, enable_auto_commit=False,
                                     isolation_level="read_committed", **client_config(self.settings))
            topic = self.settings.topic_segment_changes
            tps = [TopicPartition(topic, p) for p in range(self.settings.partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            try:
                while not self._stop_event.is_set():
                    for batch in consumer.poll(timeout_ms=300).values():
                        now = time.monotonic()
                        self.arrivals.extend((now, json.loads(r.value)) for r in batch)
            finally:
                consumer.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)

    @property
    def count(self) -> int:
        return len(self.arrivals)

    def keys(self) -> set:
        return {(c["customer_id"], c["sequence"]) for _, c in list(self.arrivals)}

    def wait_for(self, count: int, timeout: float, what: str = "segment changes") -> None:
        deadline = time.monotonic() + timeout
        while self.count < count:
            if self.error is not None:
                raise self.error
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: {self.count} of {count} after {timeout:.0f} s")
            time.sleep(0.2)

    def progress(self, more: int = 20, timeout: float = 180.0, total: Optional[int] = None) -> None:
        """Until ``more`` further changes arrive (the worker is processing), or, once the input has
        all been sent, until ``total`` changes arrived (no more can come)."""
        want = self.count + more if total is None else min(self.count + more, total)
        self.wait_for(want, timeout, what=f"{more} more segment changes")

    def figures(self, expected, fault_started: float, timeout: float = 120.0) -> Dict[str, int]:
        """Lost / duplicated / unexpected / different changes, as this consumer saw them, once it
        has every expected change (or the timeout), and the longest gap in arrivals after the
        first fault (seconds to recover)."""
        want = {(c["customer_id"], c["sequence"]): c for c in expected.changes}
        deadline = time.monotonic() + timeout
        while not set(want) <= self.keys() and time.monotonic() < deadline:
            time.sleep(0.5)
        settled = time.monotonic() + 3.0  # let late duplicates land, so the figure counts them
        while time.monotonic() < settled:
            time.sleep(0.2)
        arrivals = list(self.arrivals)
        seen = Counter((c["customer_id"], c["sequence"]) for _, c in arrivals)
        first: Dict[tuple, dict] = {}
        different, examples = 0, []
        for _, c in arrivals:
            key = (c["customer_id"], c["sequence"])
            if key in first and _comparable(first[key]) != _comparable(c):
                different += 1
                examples.append(("copy differs from the first", key, _differing_fields(first[key], c)))
            first.setdefault(key, c)
        examples += [("first copy differs from expected", k, _differing_fields(first[k], c))
                     for k, c in want.items() if k in first and _comparable(first[k]) != _comparable(c)]
        times = [t for t, _ in arrivals if t >= fault_started]
        gaps = [b - a for a, b in zip([fault_started] + times, times)]
        return {"changes_expected": len(want), "changes_read": len(arrivals),
                "changes_lost": sum(1 for k in want if k not in seen),
                "changes_duplicated": sum(n - 1 for n in seen.values()),
                "changes_unexpected": sum(1 for k in seen if k not in want),
                "changes_different": different + sum(1 for k, c in want.items()
                                                     if k in first and _comparable(first[k]) != _comparable(c)),
                "recover_s": round(max(gaps, default=0.0), 1), "examples": examples[:4]}


def _differing_fields(got: dict, want: dict, path: str = "") -> Dict[str, tuple]:
    """field path -> (got, want) for the fields two changes disagree on."""
    out: Dict[str, tuple] = {}
    for k in sorted(set(got) | set(want)):
        a, b = got.get(k), want.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out.update(_differing_fields(a, b, f"{path}{k}."))
        elif a != b:
            out[f"{path}{k}"] = (a, b)
    return out


def _comparable(change: dict) -> str:
    return json.dumps(change, sort_keys=True)


def partition_leaders(bootstrap: str, topics: List[str]) -> Counter:
    """node id -> how many partitions of ``topics`` it leads."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        return Counter(p["leader_id"] for t in admin.describe_topics(topics) for p in t["partitions"])
    finally:
        admin.close()


def active_controller(bootstrap: str) -> int:
    """The KRaft quorum leader (Admin.describeMetadataQuorum, through Kafka's own Java client)."""
    source = Path(__file__).with_name("ActiveController.java")
    out = subprocess.run([java_binary(), "-cp", f"{installed_lib_dir()}/*", str(source), bootstrap],
                         capture_output=True, text=True, timeout=120, check=True)
    return int(out.stdout.strip().splitlines()[-1])


class BusyLoops:
    """One busy-loop process per core, for a bounded time; ended by PID."""

    def __init__(self, seconds: float = 300.0):
        self.seconds, self.procs = seconds, []

    def __enter__(self) -> "BusyLoops":
        code = f"import time\nend = time.monotonic() + {self.seconds}\nwhile time.monotonic() < end: pass\n"
        self.procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 1)]
        return self

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            p.kill()
            p.wait(10)
