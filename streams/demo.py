"""The live demo: embedded broker, one worker, realistic traffic, changes on screen.

Everything is a child of this process (broker and worker die with it, even on
kill -9, through PR_SET_PDEATHSIG). Ctrl-C stops reading, the generator, the worker
and the broker within seconds, removes the demo's temp directory and prints the
summary last. One thread writes to the screen: the others (model fit) hand it lines.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Optional

from kafka import KafkaConsumer

from .demo_screen import SHORT, DemoTally, parse_worker_metrics  # noqa: F401  (SHORT: kept for importers)
from .kafka.admin import ensure_topics
from .kafka.broker import EmbeddedBroker
from .kafka.produce import producer, send_events
from .settings import Settings
from .topics import topic_specs  # noqa: F401  (also imported from here by tests and tools)

STATUS_EVERY_S = 3.0
# A fit on a few weeks of history sees nobody drop out yet and calls recent buyers "at risk":
# the demo waits for this much event time before fitting.
MIN_FIT_HISTORY_DAYS = 90
WORKER_STOP_GRACE_S = 0.5  # the demo's state is thrown away: no need to wait for a full Faust shutdown


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
        seed: int = 7, web_port: int = 6066, fit_after: Optional[float] = 30.0, out=sys.stdout,
        status_every: float = STATUS_EVERY_S) -> dict:
    # kafka-python logs every refused connection while the broker starts: keep the screen for the changes.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    workdir = Path(tempfile.mkdtemp(prefix="clvstream-demo-"))
    stop = threading.Event()
    lines: "queue.SimpleQueue[str]" = queue.SimpleQueue()  # from other threads to the one screen writer
    tally = DemoTally(customers_at_start=customers)
    broker = worker = fitter = feeder = prod = None
    started = time.monotonic()

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    def _interrupt(signum, frame):  # Ctrl-C or kill: the loop ends within one poll, cleanup follows
        stop.set()

    # Ctrl-C, kill, or the terminal closing (SIGHUP): finish the loop, then clean up below
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        broker = EmbeddedBroker("tansu", log_path=str(workdir / "broker.log")).start()
        settings = replace(Settings.from_env(), broker=f"kafka://{broker.bootstrap}", broker_kind="tansu",
                           data_dir=str(workdir / "state"), partitions=partitions, session_timeout_s=3.0,
                           web_port=web_port)
        ensure_topics(broker.bootstrap, topic_specs(settings))
        say(f"broker    tansu on {broker.bootstrap} (pid {broker.pid})")
        worker = start_worker(settings, workdir / "worker.log")
        say(f"worker    pid {worker.pid}, web server on port {web_port}")
        say(f"live page http://127.0.0.1:{web_port}/ui   (also /customers/<id>, /segments, /metrics)")
        from .generator import EventGenerator, GeneratorConfig

        gen = EventGenerator(GeneratorConfig(seed=seed, customers=customers, share_duplicates=0.01,
                                             share_malformed=0.002))
        topics = {"orders": settings.topic_orders, "interactions": settings.topic_interactions,
                  "customers": settings.topic_customers}
        prod = producer(broker.bootstrap)
        feeder = threading.Thread(target=_feed, daemon=True, name="generator",
                                  args=(prod, topics, gen.events(), rate, stop, tally))
        feeder.start()
        say(f"generator {customers} customers sign up over the first 30 days of simulated time, then new ones "
            f"arrive and are referred; {rate:.0f} events/s")
        if fit_after:
            fitter = threading.Timer(fit_after, _fit_in_background,
                                     (settings, stop, lines.put, lambda: tally.history_days()))
            fitter.daemon = True
            fitter.start()
            say(f"model     BG/NBD + Gamma-Gamma fitted from the live state after {fit_after:.0f} s and "
                f"{MIN_FIT_HISTORY_DAYS} days of history; until then predicted CLV is the formula")
        say("Moves that matter are printed as they happen, a status line every few seconds; Ctrl-C stops.")
        _tail(broker.bootstrap, settings, tally, stop, duration, worker, lines, say, started, status_every,
              workdir)
    finally:
        stop.set()  # reading has stopped; the generator stops at its next event, the fitter at its next step
        if worker is not None and worker.poll() is None:
            try:
                os.killpg(worker.pid, signal.SIGTERM)  # the worker stops while the generator winds down
            except ProcessLookupError:
                pass
        if fitter is not None:
            fitter.cancel()
        if feeder is not None:
            feeder.join(1.0)
        if prod is not None:
            prod.close(timeout=0)  # unsent demo traffic is of no use to anyone
        # SIGKILLed but not reaped yet on a very busy machine: go on, they cannot outlive us (PDEATHSIG)
        if worker is not None:
            try:
                stop_process(worker, timeout=WORKER_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        if broker is not None:
            try:
                broker.stop(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(workdir, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for line in tally.summary(time.monotonic() - started):
        say(line)
    return {"sent": tally.sent, "changes": tally.first_assessments + sum(tally.moves.values()),
            "first_assessments": tally.first_assessments, "moves": dict(tally.moves),
            "dead_letters": sum(tally.dead_letters.values()), "customers": len(tally.customers)}


def _feed(prod, topics, events, rate, stop, tally) -> None:
    try:
        send_events(prod, topics, events, rate, stop, on_sent=lambda ev: tally.on_sent(ev.key))
    except Exception:  # the producer is closed under it on Ctrl-C
        if not stop.is_set():
            raise


def _fit_in_background(settings: Settings, stop: threading.Event, say, history_days, retry_after: float = 20.0) -> None:
    """Fit and publish once the engine has seen ``MIN_FIT_HISTORY_DAYS`` of event time; while there is too
    little history to converge, try again later.

    The fit's multi-line report is condensed to one line per attempt for the screen.
    """
    from .ops.fit import fit_and_publish

    while history_days() < MIN_FIT_HISTORY_DAYS:
        if stop.wait(1.0):
            return
    while not stop.is_set():
        report = []
        try:
            fitted = fit_and_publish(settings, settings.model_time_unit, None, True, out=report.append)
        except Exception as exc:  # the demo goes on with the formula CLV
            if stop.is_set():
                return
            say(f"model     fit failed: {exc}; trying again in {retry_after:.0f} s")
        else:
            if fitted is not None:
                say(f"model     {report[0]}; {report[-1]}: predicted CLV and P(alive) from now on")
                return
            say(f"model     {report[0]}; not converged yet (too little history), trying again in "
                f"{retry_after:.0f} s")
        stop.wait(retry_after)


def _worker_figures(base_url: str, figures: dict, stop: threading.Event, every_s: float) -> None:
    """Poll the worker's /metrics off the screen thread (a scrape can take a while under load)."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"{base_url}/metrics", timeout=2) as response:
                figures["now"] = (time.monotonic(), parse_worker_metrics(response.read().decode()))
        except (OSError, ValueError):
            pass  # not up yet, or busy: the status line says so
        stop.wait(every_s)


def _tail(bootstrap, settings, tally, stop, duration, worker, lines, say, started, status_every, workdir) -> None:
    consumer = KafkaConsumer(settings.topic_segment_changes, settings.topic_dead_letter,
                             bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    figures: dict = {}
    threading.Thread(target=_worker_figures, daemon=True, name="worker-figures",
                     args=(f"http://127.0.0.1:{settings.web_port}", figures, stop, status_every / 2)).start()
    next_status = started + status_every
    last = (started, 0, None)  # (when, events sent, worker figures) at the previous status line
    try:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=250, max_records=500).values():
                for msg in records:
                    if stop.is_set():  # Ctrl-C: stop reading now, not after the batch
                        break
                    doc = json.loads(msg.value)
                    if msg.topic == settings.topic_dead_letter:
                        tally.on_dead_letter(doc)
                    else:
                        line = tally.on_change(doc)
                        if line is not None:
                            say(line)
            while not lines.empty():
                say(lines.get())
            now = time.monotonic()
            if now >= next_status and not stop.is_set():
                next_status = now + status_every
                when, sent, worker_before = last
                _, worker_now = figures.get("now", (None, None))
                processed_rate = None
                if worker_now is not None and worker_before is not None:
                    processed_rate = max(0.0, worker_now.processed - worker_before.processed) / (now - when)
                say(tally.status(now - started, (tally.sent - sent) / (now - when), worker_now, processed_rate))
                last = (now, tally.sent, worker_now)
            if worker.poll() is not None:
                say(f"worker exited with {worker.returncode}; the end of its log:")
                log = (workdir / "worker.log").read_text(errors="replace").splitlines()
                for line in log[-20:]:
                    say(f"  {line}")
                break
            if duration is not None and now - started >= duration:
                break
    finally:
        consumer.close(autocommit=False)
