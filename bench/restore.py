"""Restore of a customer-state changelog: Faust's own recovery vs `clvstream restore`, beside a raw read.

    .venv/bin/python bench/bulk.py --bootstrap HOST:PORT ...          # leaves bulkXXXXXX.app on the broker
    .venv/bin/python bench/restore.py --bootstrap HOST:PORT --prefix bulkXXXXXX.

Same run, same broker, one after the other:
  raw       an aiokafka consumer reading the whole changelog (getmany, no processing);
  faust     a worker on an empty data dir: start -> /ready (Faust's record-by-record recovery),
            then -> its first processed event (the pipeline rebuilds review heaps and population
            figures from every state then);
  bulk      `clvstream restore` into another empty data dir, then a worker on it, same two marks.
Not part of the pytest suite.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bulk import raw_read, settings_for  # noqa: E402
from streams import processes  # noqa: E402
from streams.bulk.restore import restore  # noqa: E402
from streams.kafka.produce import producer  # noqa: E402
from streams.topics import state_changelog_topic  # noqa: E402


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as r:
            return json.loads(r.read()).get("status") == "ready"
    except (OSError, ValueError):
        return False


def _changes_count(settings) -> int:
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=settings.bootstrap)
    tps = [TopicPartition(settings.topic_segment_changes, p) for p in range(settings.partitions)]
    n = sum(c.end_offsets(tps).values())
    c.close()
    return n


def timed_worker(settings, data_dir: Path, log_dir: Path, probe: int, timeout: float = 1800) -> dict:
    """Start a worker on ``data_dir``; seconds to /ready and to its first processed (probe) event."""
    own = replace(settings, data_dir=str(data_dir))
    before = _changes_count(own)
    started = time.perf_counter()
    proc = processes.start(own, 0, log_dir=log_dir)
    try:
        while not _ready(own.web_port):
            if time.perf_counter() - started > timeout or proc.poll() is not None:
                raise RuntimeError("worker not ready (see its log)")
            time.sleep(0.2)
        ready = time.perf_counter() - started
        prod = producer(own.bootstrap)  # a new customer's signup: one segment change once processed
        cid = f"probe-{probe:06d}"
        prod.send(own.topic_customers, key=cid.encode(), value=json.dumps(
            {"type": "customer", "schema_version": 1, "event_id": f"p{probe}", "customer_id": cid,
             "event_time": "2025-06-01T00:00:00Z", "kind": "signup", "acquisition_channel": "organic",
             "acquisition_cost": 0, "currency": "EUR"}).encode())
        prod.flush()
        prod.close()
        while _changes_count(own) <= before:
            if time.perf_counter() - started > timeout:
                raise RuntimeError("probe event never processed")
            time.sleep(0.2)
        return {"ready_s": ready, "first_event_s": time.perf_counter() - started}
    finally:
        processes.stop([proc])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--kind", default="external")
    p.add_argument("--prefix", required=True, help="topic prefix of a bench/bulk.py run, e.g. bulk1a2b3c.")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--skip-faust", action="store_true", help="skip Faust's own recovery (slow)")
    p.add_argument("--workers", action="store_true",
                   help="also time workers to /ready and their first event (UNFINISHED: hung in the last runs)")
    a = p.parse_args(argv)
    settings = settings_for(a.bootstrap, a.kind, a.partitions, prefix=a.prefix)
    from streams.settings import Settings
    settings = replace(settings, web_port=Settings().web_port + 40)
    work = Path(tempfile.mkdtemp(prefix="clv-restore-"))
    try:
        from aiokafka.structs import TopicPartition  # noqa: F401
        changelog = state_changelog_topic(settings.app_id)
        from kafka import KafkaConsumer, TopicPartition as KTP

        c = KafkaConsumer(bootstrap_servers=a.bootstrap)
        records = sum(c.end_offsets([KTP(changelog, q) for q in range(a.partitions)]).values())
        c.close()
        raw_s = asyncio.run(raw_read(settings, [changelog], records))
        print(f"raw read      {raw_s:7.1f} s  ({records:,} changelog records, {records / raw_s:,.0f}/s)", flush=True)
        if a.workers and not a.skip_faust:
            f = timed_worker(settings, work / "faust", work, 1)
            print(f"faust restore {f['ready_s']:7.1f} s to ready ({f['ready_s'] / raw_s:.1f}x raw), "
                  f"{f['first_event_s']:.1f} s to the first event ({f['first_event_s'] / raw_s:.1f}x raw)", flush=True)
        t = time.perf_counter()
        # the worker of timed_worker is process 0 of processes.start: its data dir is <dir>/p0
        report = asyncio.run(restore(processes.process_settings(replace(settings, data_dir=str(work / "bulk")), 0),
                                     progress=False))
        fill = time.perf_counter() - t
        print(f"bulk restore  {fill:7.1f} s  ({fill / raw_s:.1f}x raw; {report.line()})", flush=True)
        if not a.workers:
            return 0
        b = timed_worker(settings, work / "bulk", work, 2)
        print(f"  + worker    {b['ready_s']:7.1f} s to ready, {b['first_event_s']:.1f} s to the first event; "
              f"total {fill + b['ready_s']:.1f} s to ready ({(fill + b['ready_s']) / raw_s:.1f}x raw), "
              f"{fill + b['first_event_s']:.1f} s to the first event ({(fill + b['first_event_s']) / raw_s:.1f}x raw)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
