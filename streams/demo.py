"""The live demo: embedded broker, one worker, realistic traffic, changes on screen.

Everything is a child of this process (broker and worker die with it, even on
kill -9, through PR_SET_PDEATHSIG) and Ctrl-C stops them in reverse order.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Optional

from kafka import KafkaConsumer

from .kafka.admin import ensure_topics
from .kafka.broker import EmbeddedBroker
from .kafka.produce import producer, send_events
from .settings import Settings
from .topics import topic_specs  # noqa: F401  (also imported from here by tests and tools)

SHORT = {"High Value / High Loyalty": "HV/HL", "High Value / Low Loyalty": "HV/LL",
         "Low Value / High Loyalty": "LV/HL", "Low Value / Low Loyalty": "LV/LL"}


def start_worker(settings: Settings, log_path: Path, extra_env: Optional[dict] = None) -> subprocess.Popen:
    env = {**os.environ, **settings.with_env(), **(extra_env or {})}
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "streams.app", "worker", "-l", os.environ.get("CLV_LOG_LEVEL", "warn")],
                            env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
                            start_new_session=True)


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def run(customers: int = 2000, rate: float = 500.0, partitions: int = 4, duration: Optional[float] = None,
        seed: int = 7, web_port: int = 6066, fit_after: Optional[float] = 30.0, out=sys.stdout) -> dict:
    # kafka-python logs every refused connection while the broker starts: keep the screen for the changes.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    workdir = Path(tempfile.mkdtemp(prefix="clvstream-demo-"))
    broker = EmbeddedBroker("tansu", log_path=str(workdir / "broker.log")).start()
    stop = threading.Event()
    worker = fitter = None
    stats = Counter()

    def _interrupt(signum, frame):  # Ctrl-C or kill: finish the loop, then clean up below
        if not stop.is_set():
            print("\nstopping...", file=out)
        stop.set()

    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        settings = replace(Settings.from_env(), broker=f"kafka://{broker.bootstrap}", broker_kind="tansu",
                           data_dir=str(workdir / "state"), partitions=partitions, session_timeout_s=3.0,
                           web_port=web_port)
        ensure_topics(broker.bootstrap, topic_specs(settings))
        print(f"broker    tansu on {broker.bootstrap} (pid {broker.pid}); logs and state in {workdir}", file=out)
        worker = start_worker(settings, workdir / "worker.log")
        print(f"worker    pid {worker.pid}, metrics on http://127.0.0.1:{web_port}/metrics, "
              f"query API on http://127.0.0.1:{web_port}/customers/<id> and /segments", file=out)
        from .generator import EventGenerator, GeneratorConfig

        gen = EventGenerator(GeneratorConfig(seed=seed, customers=customers, share_duplicates=0.01,
                                             share_malformed=0.002))
        topics = {"orders": settings.topic_orders, "interactions": settings.topic_interactions,
                  "customers": settings.topic_customers}
        prod = producer(broker.bootstrap)
        feeder = threading.Thread(target=send_events, daemon=True, name="generator",
                                  args=(prod, topics, gen.events(), rate, stop),
                                  kwargs={"on_sent": lambda ev: stats.update(["sent"])})
        feeder.start()
        print(f"generator {customers} customers at {rate:.0f} events/s; Ctrl-C to stop", file=out)
        if fit_after:
            fitter = threading.Timer(fit_after, _fit_in_background, (settings, stop, out))
            fitter.daemon = True
            fitter.start()
            print(f"model     BG/NBD + Gamma-Gamma fitted from the live state after {fit_after:.0f} s; "
                  f"until then CLV is the formula", file=out)
        _tail(broker.bootstrap, settings, stats, stop, duration, worker, out)
    finally:
        stop.set()
        if fitter is not None:
            fitter.cancel()
        if worker is not None:
            stop_process(worker)
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"stopped: {stats['sent']} events sent, {stats['changes']} segment changes, "
          f"{stats['dead_letters']} dead letters", file=out)
    return dict(stats)


def _fit_in_background(settings: Settings, stop: threading.Event, out, retry_after: float = 20.0) -> None:
    """Fit and publish; while there is too little history to converge, try again later."""
    from .ops.fit import fit_and_publish

    while not stop.is_set():
        try:
            if fit_and_publish(settings, settings.model_time_unit, None, True,
                               out=lambda line: print(f"model     {line}", file=out)) is not None:
                return
        except Exception as exc:  # the demo goes on with the formula CLV
            print(f"model     fit failed: {exc}", file=out)
        print(f"model     trying again in {retry_after:.0f} s", file=out)
        stop.wait(retry_after)


def _tail(bootstrap, settings, stats, stop, duration, worker, out) -> None:
    consumer = KafkaConsumer(settings.topic_segment_changes, settings.topic_dead_letter,
                             bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=500)
    population, reasons = Counter(), Counter()
    started = last_summary = time.monotonic()
    try:
        while not stop.is_set():
            for msg in consumer:
                doc = json.loads(msg.value)
                if msg.topic == settings.topic_dead_letter:
                    stats["dead_letters"] += 1
                    reasons[doc["reason"]] += 1
                    continue
                stats["changes"] += 1
                if doc["previous_segment"]:
                    population[doc["previous_segment"]] -= 1
                population[doc["segment"]] += 1
                clv = doc["clv"]
                value = (f"predicted {clv['predicted']:>8.2f} P(alive) {clv['p_alive']:.2f}"
                         if clv.get("predicted") is not None else f"formula   {clv['formula']:>8.2f}")
                print(f"{doc['event_time'][:10]}  {doc['customer_id']:>12}  "
                      f"{SHORT.get(doc['previous_segment'], doc['previous_segment'] or '-'):>5} -> "
                      f"{SHORT.get(doc['segment'], doc['segment']):<5}  "
                      f"{value}  {doc['reason']}", file=out)
            now = time.monotonic()
            if now - last_summary >= 5:
                last_summary = now
                pop = "  ".join(f"{SHORT.get(s, s)} {n}" for s, n in sorted(population.items()))  # any policy
                dead = ", ".join(f"{r} {n}" for r, n in reasons.most_common())
                print(f"--- {stats['sent']} events sent, {stats['changes']} segment changes | {pop} | "
                      f"dead letters: {dead or 'none'}", file=out)
            if worker.poll() is not None:
                print(f"worker exited with {worker.returncode}; see its log", file=out)
                break
            if duration is not None and now - started >= duration:
                break
    finally:
        consumer.close()
