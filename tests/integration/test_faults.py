"""Fault tests on a real broker: kill -9, rebalances, a frozen broker, a flood of bad input.

Each compares the worker's state and segment changes with the pure pipeline over the same
records (harness.Expected). Processing is at-least-once: duplicates of segment changes are
allowed and must be recognisable by (customer_id, sequence) — the tests dedup by that key and
demand exactly the expected sequence; order figures in the state must be exact.
Each test prints a ``FAULT-FIGURES`` line (events sent, lost, double-counted, crashes).
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import pytest

from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.admin import ensure_topics
from streams.kafka.broker import EmbeddedBroker
from streams.demo import topic_specs
from tests.integration.faults import (Traffic, check_changes, converge, customer_ids_in, explain_differences, report,
                                      wait_for_changes)
from tests.integration.harness import Expected, Worker, free_port, make_settings

pytestmark = pytest.mark.integration


def events_for(seed: int, limit: int, customers: int = 200, **noise):
    return list(EventGenerator(GeneratorConfig(seed=seed, customers=customers, **noise)).events(limit=limit))


def second_worker(settings, tmp_path, name: str) -> Worker:
    log_dir = tmp_path / name
    log_dir.mkdir()
    return Worker(replace(settings, data_dir=str(log_dir / "state"), web_port=free_port()), log_dir)


def assert_no_customer_ids_in_logs(*workers):
    for w in workers:
        found = customer_ids_in(w.log_path.read_bytes()) if w.log_path.exists() else {}
        assert not found, f"customer ids in {w.log_path}: {list(found)[:3]}"


@pytest.fixture
def env(any_broker, unique_topic_prefix, tmp_path):
    bootstrap, kind = any_broker
    return make_settings(bootstrap, kind, unique_topic_prefix, tmp_path / "state")


def test_kill_9_while_events_flow(env, tmp_path):
    settings, started = env, time.monotonic()
    events = events_for(seed=31, limit=3000, share_duplicates=0.02)
    expected = Expected(settings).feed(events)
    worker = Worker(settings, tmp_path).start()
    traffic = Traffic(settings, events, rate=250).start()
    try:
        wait_for_changes(settings, 100)  # the worker is busy
        worker.kill()
        killed_at = traffic.sent
        worker.start()
        traffic.join()
        states = converge(settings, expected)
        changes = check_changes(settings, expected)
        crashed = worker.proc.poll() is not None
    finally:
        worker.stop()
    report(f"kill-9 [{settings.broker_kind}]", events_sent=traffic.sent, killed_after=killed_at,
           orders_lost=states["orders_lost"], orders_double_counted=states["orders_double_counted"],
           customers_differing=len(states["customers_differing"]), crashes=int(crashed),
           **{k: v for k, v in changes.items() if k != "examples"}, seconds=round(time.monotonic() - started))
    assert not states["customers_differing"], explain_differences(settings, expected, states["states"],
                                                                  states["customers_differing"])
    assert changes["changes_lost"] == changes["changes_unexpected"] == changes["changes_different"] == 0, changes
    assert not crashed
    assert_no_customer_ids_in_logs(worker)


def test_rebalances_while_events_flow(env, tmp_path):
    """A second worker joins, the first leaves cleanly and comes back, the second is killed."""
    settings, started = env, time.monotonic()
    pause = settings.session_timeout_s
    events = events_for(seed=32, limit=6000, share_duplicates=0.02)
    expected = Expected(settings).feed(events)
    a = Worker(settings, tmp_path).start()
    b = second_worker(settings, tmp_path, "b")
    traffic = Traffic(settings, events, rate=300).start()
    try:
        wait_for_changes(settings, 50)
        b.start()                 # join
        time.sleep(pause + 2)
        a.stop()                  # clean leave
        time.sleep(pause)
        a.start()                 # rejoin
        time.sleep(pause + 2)
        b.kill()                  # crash
        traffic.join()
        states = converge(settings, expected, timeout=120)
        changes = check_changes(settings, expected)
        crashed = a.proc.poll() is not None
    finally:
        a.stop()
        b.stop()
    report(f"rebalance [{settings.broker_kind}]", events_sent=traffic.sent,
           orders_lost=states["orders_lost"], orders_double_counted=states["orders_double_counted"],
           customers_differing=len(states["customers_differing"]), crashes=int(crashed),
           **{k: v for k, v in changes.items() if k != "examples"}, seconds=round(time.monotonic() - started))
    assert not states["customers_differing"], explain_differences(settings, expected, states["states"],
                                                                  states["customers_differing"])
    assert changes["changes_lost"] == changes["changes_unexpected"] == changes["changes_different"] == 0, changes
    assert not crashed
    assert_no_customer_ids_in_logs(a, b)


def test_broker_frozen_then_back(unique_topic_prefix, tmp_path):
    """tansu stopped with SIGSTOP for longer than the session timeout, then SIGCONT.

    Why SIGSTOP: tansu keeps everything in memory, so a restart would be a new, empty cluster
    (not an outage but data loss); the mock launcher has no broker down/up control. A frozen
    process is what a hung broker, a long GC/VM pause or a dropped network path look like to
    clients: connections stay open and nothing answers."""
    started = time.monotonic()
    broker = EmbeddedBroker("tansu").start()
    worker = None
    try:
        settings = make_settings(broker.bootstrap, "tansu", unique_topic_prefix, tmp_path / "state")
        events = events_for(seed=33, limit=3000)
        expected = Expected(settings).feed(events)
        worker = Worker(settings, tmp_path).start()
        traffic = Traffic(settings, events, rate=400).start()
        wait_for_changes(settings, 50)
        os.kill(broker.pid, signal.SIGSTOP)
        frozen_at = traffic.sent
        time.sleep(max(8.0, settings.session_timeout_s * 2))
        os.kill(broker.pid, signal.SIGCONT)
        traffic.join()
        states = converge(settings, expected, timeout=120)
        changes = check_changes(settings, expected)
        crashed = worker.proc.poll() is not None
    finally:
        if worker is not None:
            worker.stop()
        os.kill(broker.pid, signal.SIGCONT) if broker.running else None
        broker.stop()
    report("broker-frozen [tansu]", events_sent=traffic.sent, frozen_after=frozen_at,
           orders_lost=states["orders_lost"], orders_double_counted=states["orders_double_counted"],
           customers_differing=len(states["customers_differing"]), crashes=int(crashed),
           **{k: v for k, v in changes.items() if k != "examples"}, seconds=round(time.monotonic() - started))
    assert not states["customers_differing"]
    assert changes["changes_lost"] == changes["changes_unexpected"] == changes["changes_different"] == 0, changes
    assert not crashed


def test_ten_thousand_malformed_events(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path):
    """10,000 generated malformed events (every class: invalid JSON, wrong types, missing fields,
    negative/huge amounts, unknown currency, out-of-range times, oversized, unknown versions)
    interleaved with valid ones."""
    from collections import Counter

    from tests.integration.harness import json_values, read_topic

    started = time.monotonic()
    settings = make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state")
    events, malformed = [], 0
    for ev in EventGenerator(GeneratorConfig(seed=34, customers=150, share_malformed=0.9)).events():
        events.append(ev)
        malformed += ev.kind == "malformed"
        if malformed == 10_000:
            break
    expected = Expected(settings).feed(events)
    want_reasons = Counter(expected.dead)
    assert sum(want_reasons.values()) >= 10_000
    worker = Worker(settings, tmp_path).start()
    traffic = Traffic(settings, events, rate=None).start()
    try:
        traffic.join()
        dead = read_topic(settings.bootstrap, settings.topic_dead_letter,
                          lambda rs: len(rs) >= len(expected.dead), timeout=120, what="dead letters")
        reasons = Counter(d["reason"] for d in json_values(dead))
        states = converge(settings, expected, timeout=120)
        crashed = worker.proc.poll() is not None
    finally:
        worker.stop()
    report(f"malformed [{settings.broker_kind}]", events_sent=traffic.sent, malformed_sent=malformed,
           valid_sent=len(events) - malformed, dead_letters=sum(reasons.values()),
           reasons_match=reasons == want_reasons, orders_lost=states["orders_lost"],
           orders_double_counted=states["orders_double_counted"], crashes=int(crashed),
           seconds=round(time.monotonic() - started))
    assert reasons == want_reasons
    malformed_reasons = Counter(e.expected_rejection for e in events if e.kind == "malformed")
    assert all(reasons[r] >= n for r, n in malformed_reasons.items())
    assert not states["customers_differing"]
    assert not crashed and "Traceback" not in worker.log()
    assert_no_customer_ids_in_logs(worker)
