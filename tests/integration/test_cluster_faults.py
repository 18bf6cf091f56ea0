"""Fault tests on the 3-node Apache Kafka cluster (RF 3, min ISR 2), issue 12.

Modelled on Kafka's own system tests (streams_eos_test, streams_broker_bounce_test): events flow
at a steady rate from an idempotent producer, faults hit the workers or the brokers, and a
``read_committed`` consumer of the segment changes (what a campaign engine runs) records every
change it sees, before any dedup.  After the run the worker's state (changelog) must equal the
pure pipeline over the same input, and every expected change must have been seen:

* at-least-once: duplicates allowed, each carrying the same ``(customer_id, sequence)`` and content;
* exactly-once (``CLV_PROCESSING_GUARANTEE=exactly_once``, streams/eos.py: one Kafka transaction
  per input partition per checkpoint; Faust's own guarantee stays at least once): no duplicate
  either.  ``CLV_FAULT_GUARANTEE=exactly_once`` runs every test in that mode; the default run is
  at-least-once plus the ``*_exactly_once`` variants of the worker kill and the rebalance tests.
  (Faust's own ``processing_guarantee="exactly_once"``, measured earlier, did not hold: 4
  duplicates after three kill -9, and a worker never ready after a clean leave, issue 12.)
  Measured with the engine's mode: every test holds with standbys off (``CLV_STANDBY_REPLICAS=0``);
  with a standby the CPU-load rebalance test failed in both modes (docs/operations.md).

Each test prints one ``FAULT-FIGURES`` line (``pytest -s``): events sent, orders lost and
double-counted, segment changes lost and duplicated, crashes, and ``recover_s`` (the longest gap
between committed segment changes after the first fault).  Every wait is on a condition; the
timeouts only bound a test that would otherwise hang.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest

from tests.integration.cluster_faults import (GUARANTEES, BusyLoops, ClusterWorker, CommittedChanges,
                                              IdempotentTraffic, active_controller, cluster_settings,
                                              partition_leaders)
from tests.integration.faults import converge, explain_differences, report
from tests.integration.harness import Expected, free_port, stable_assignment
from tests.integration.test_faults import assert_no_customer_ids_in_logs, events_for
from streams.topology import STATE_TABLE

# Each test drives several worker and broker restarts: minutes on a shared 2-core machine (measured up
# to 325 s at load 8-37), past the suite-wide 300 s timeout.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture
def guarantee(request) -> str:
    value = os.environ.get("CLV_FAULT_GUARANTEE", "at_least_once")
    assert value in GUARANTEES, f"CLV_FAULT_GUARANTEE must be one of {GUARANTEES}"
    wanted = getattr(request, "param", value)  # the *_exactly_once variants below
    if wanted != value and value == "exactly_once":
        pytest.skip("CLV_FAULT_GUARANTEE=exactly_once runs every test in that mode already")
    return wanted


exactly_once = pytest.mark.parametrize("guarantee", ["exactly_once"], indirect=True)


@pytest.fixture
def run(kafka_cluster, unique_topic_prefix, tmp_path, guarantee):
    """settings on the cluster, a worker factory, and the verifier (started before any worker)."""
    settings = cluster_settings(kafka_cluster, unique_topic_prefix, tmp_path / "a" / "state")
    verifier = CommittedChanges(settings)
    verifier.start()
    workers = []

    def worker(name: str = "a") -> ClusterWorker:
        log_dir = tmp_path / name
        log_dir.mkdir(exist_ok=True)
        s = settings if name == "a" else replace(settings, data_dir=str(log_dir / "state"), web_port=free_port())
        w = ClusterWorker(s, log_dir, guarantee)
        workers.append(w)
        return w

    yield settings, worker, verifier
    for w in workers:
        w.stop()
    verifier.stop()
    for node in kafka_cluster.nodes:  # later tests get three nodes
        if not node.running:
            kafka_cluster.start_node(node.node_id)


def finish(name, settings, guarantee, expected, traffic, verifier, workers, fault_started, started, **extra):
    """Join the traffic, compare state and changes, print the figures, assert the bar."""
    traffic.join(timeout=300)
    states = converge(replace(settings, processing_guarantee=guarantee), expected, timeout=180)
    changes = verifier.figures(expected, fault_started)
    crashes = sum(w.crashed for w in workers)
    report(f"{name} [kafka-cluster, {guarantee}]", events_sent=traffic.sent,
           orders_lost=states["orders_lost"], orders_double_counted=states["orders_double_counted"],
           customers_differing=len(states["customers_differing"]),
           **{k: v for k, v in changes.items() if k not in ("recover_s", "examples")}, crashes=crashes,
           recover_s=changes["recover_s"], **extra, seconds=round(time.monotonic() - started))
    assert not states["customers_differing"], explain_differences(settings, expected, states["states"],
                                                                  states["customers_differing"])
    assert changes["changes_lost"] == changes["changes_unexpected"] == changes["changes_different"] == 0, (
        {k: v for k, v in changes.items() if k != "examples"}, changes["examples"])
    if guarantee == "exactly_once":
        assert changes["changes_duplicated"] == 0, changes
    assert crashes == 0
    assert_no_customer_ids_in_logs(*workers)


def test_worker_killed_three_times(run, guarantee):
    """kill -9 of the worker three times while events flow, a restart each time."""
    killed_three_times(run, guarantee)


@exactly_once
def test_worker_killed_three_times_exactly_once(run, guarantee):
    """The same in the default run with CLV_PROCESSING_GUARANTEE=exactly_once: no duplicate either."""
    killed_three_times(run, guarantee)


def killed_three_times(run, guarantee):
    settings, worker, verifier = run
    started = time.monotonic()
    events = events_for(seed=41, limit=5000, share_duplicates=0.02)
    expected = Expected(settings).feed(events)
    a = worker().start()
    traffic = IdempotentTraffic(settings, events, rate=120).start()
    verifier.progress(30)
    fault_started = time.monotonic()
    for _ in range(3):
        a.kill()
        a.start()
        verifier.progress(30, total=len(expected.changes))
    finish("worker-kill-9-x3", settings, guarantee, expected, traffic, verifier, [a], fault_started, started)


def rebalances(run, guarantee, name: str, seed: int):
    """Two workers: b joins, a leaves cleanly, b is killed (-9), both rejoin."""
    settings, worker, verifier = run
    started = time.monotonic()
    events = events_for(seed=seed, limit=6000, share_duplicates=0.02)
    expected = Expected(settings).feed(events)
    a, b = worker("a").start(), worker("b")
    traffic = IdempotentTraffic(settings, events, rate=120).start()
    verifier.progress(30)
    fault_started = time.monotonic()
    b.start()                                    # join
    stable_assignment([a, b], settings.partitions, timeout=180)
    verifier.progress(20, total=len(expected.changes))
    a.stop()                                     # clean leave
    stable_assignment([b], settings.partitions, timeout=180)
    verifier.progress(20, total=len(expected.changes))
    b.kill()                                     # crash
    a.start(), b.start()                         # rejoin
    stable_assignment([a, b], settings.partitions, timeout=180)
    finish(name, settings, guarantee, expected, traffic, verifier, [a, b], fault_started, started)


def test_two_workers_join_leave_kill_rejoin(run, guarantee):
    rebalances(run, guarantee, "rebalance", seed=42)


@exactly_once
def test_two_workers_join_leave_kill_rejoin_exactly_once(run, guarantee):
    rebalances(run, guarantee, "rebalance", seed=42)


@pytest.mark.long_fault
def test_rebalances_under_cpu_load(run, guarantee):
    """The rebalance scenario with one busy-loop process per core beside it (the mock run that
    lost 2,730 orders was a loaded machine)."""
    with BusyLoops(seconds=600):
        rebalances(run, guarantee, "rebalance-cpu-load", seed=43)


def test_leader_and_controller_killed(run, guarantee, kafka_cluster):
    """kill -9 of the broker leading most input and changelog partitions, restart; then of the
    active controller (KRaft quorum leader), restart.  With 3 replicas and min ISR 2 the two
    others keep taking writes while one is down."""
    settings, worker, verifier = run
    started = time.monotonic()
    events = events_for(seed=44, limit=5000, share_duplicates=0.02)
    expected = Expected(settings).feed(events)
    a = worker().start()
    traffic = IdempotentTraffic(settings, events, rate=120).start()
    verifier.progress(30)
    changelog = f"{settings.app_id}-{STATE_TABLE}-changelog"
    leaders = partition_leaders(settings.bootstrap, [settings.topic_orders, changelog])
    leader = leaders.most_common(1)[0][0]
    fault_started = time.monotonic()
    kafka_cluster.kill_node(leader)
    verifier.progress(20, total=len(expected.changes))  # processing goes on with two brokers
    kafka_cluster.start_node(leader)
    verifier.progress(20, total=len(expected.changes))
    controller = active_controller(settings.bootstrap)
    kafka_cluster.kill_node(controller)
    verifier.progress(20, total=len(expected.changes))
    kafka_cluster.start_node(controller)
    finish("leader-and-controller-kill-9", settings, guarantee, expected, traffic, verifier, [a],
           fault_started, started, leader_killed=leader, controller_killed=controller,
           leader_led=leaders[leader])


def test_every_broker_restarted(run, guarantee, kafka_cluster):
    """A rolling restart of all three brokers (SIGTERM, data kept on disk) while the worker runs."""
    settings, worker, verifier = run
    started = time.monotonic()
    events = events_for(seed=45, limit=5000, share_duplicates=0.02)
    expected = Expected(settings).feed(events)
    a = worker().start()
    traffic = IdempotentTraffic(settings, events, rate=60).start()  # ~85 s: three restarts take long
    verifier.progress(30)
    fault_started = time.monotonic()
    for node in kafka_cluster.nodes:
        kafka_cluster.restart_node(node.node_id)
        verifier.progress(20, total=len(expected.changes))
    finish("rolling-restart", settings, guarantee, expected, traffic, verifier, [a], fault_started, started)

