"""EmbeddedBroker: start, Kafka round trips over TCP, clean stop, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams.kafka.admin import TopicSpec, describe_topics, ensure_topics
from streams.kafka.broker import (
    BROKER_TRAITS,
    EmbeddedBroker,
    faust_settings_for,
    kafka_python_config_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

KINDS = ["tansu", "rdkafka-mock"]
ROOT = Path(__file__).resolve().parents[2]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (an unreaped zombie is dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(params=KINDS)
def session_broker(request) -> EmbeddedBroker:
    fixture = {"tansu": "tansu_broker", "rdkafka-mock": "rdkafka_mock_broker"}[request.param]
    return request.getfixturevalue(fixture)


def round_trip(bootstrap: str, kind: str, topic: str, partitions: int = 3) -> dict:
    """Produce keyed messages, read them back by assignment; return key -> values."""
    cfg = kafka_python_config_for(kind)
    ensure_topics(bootstrap, [TopicSpec(topic, partitions)])
    sent = [(f"k{i % 4}".encode(), f"v{i}".encode()) for i in range(12)]
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **cfg)
    try:
        for key, value in sent:
            producer.send(topic, key=key, value=value)
        producer.flush(10)
    finally:
        producer.close(5)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **cfg)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        got: list = []
        deadline = time.monotonic() + 15
        while len(got) < len(sent) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                got.extend(records)
    finally:
        consumer.close()
    assert len(got) == len(sent), f"read {len(got)} of {len(sent)}"
    by_key: dict = defaultdict(list)
    partition_of: dict = {}
    for record in sorted(got, key=lambda r: (r.partition, r.offset)):
        by_key[record.key].append(record.value)
        assert partition_of.setdefault(record.key, record.partition) == record.partition
    for key in by_key:  # per-key order is kept
        assert by_key[key] == [v for k, v in sent if k == key]
    return dict(by_key)


@pytest.mark.parametrize("kind", KINDS)
def test_start_stop_leaves_no_process(kind):
    t0 = time.monotonic()
    broker = EmbeddedBroker(kind).start(timeout=20)
    started = time.monotonic() - t0
    pid, log_path = broker.pid, broker.log_path
    try:
        assert broker.kind == kind and broker.running
        host, port = broker.bootstrap.split(",")[0].rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        assert pid_alive(pid)
        # own process group: a terminal Ctrl-C reaches only us, we stop it in order
        assert os.getpgid(pid) == pid != os.getpgid(0)
        assert describe_topics(broker.bootstrap, ["nothing-here"],
                               client_config=kafka_python_config_for(kind)) == {}
        assert started < 10
    finally:
        broker.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not broker.running
    broker.stop()  # idempotent
    assert not log_path.exists()  # an auto-created log goes with the broker


@pytest.mark.parametrize("kind", KINDS)
def test_context_manager_and_caller_log(kind, tmp_path):
    log = tmp_path / "broker.log"
    with EmbeddedBroker(kind, log_path=log) as broker:
        pid = broker.pid
        assert broker.log_path == log
    assert log.exists() and log.stat().st_size > 0  # the caller's log is kept
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_keyed_round_trip(session_broker, unique_topic_prefix):
    by_key = round_trip(session_broker.bootstrap, session_broker.kind, unique_topic_prefix + "rt")
    assert sorted(by_key) == [b"k0", b"k1", b"k2", b"k3"]


def test_consumer_group_round_trip(session_broker, unique_topic_prefix):
    """A kafka-python group consumer joins, reads and commits with a session timeout
    the broker tolerates under load (tansu holds JoinGroup for session_timeout / 2;
    the mock holds a first join for 3 s and hangs if the session expires meanwhile,
    which a CI run hit at the bare 4 s minimum)."""
    bootstrap, cfg = session_broker.bootstrap, session_broker.kafka_python_config()
    session_ms = int(session_broker.traits.loaded_session_timeout_s * 1000)
    topic = unique_topic_prefix + "grp"
    ensure_topics(bootstrap, [TopicSpec(topic, 2)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, **cfg)
    for i in range(6):
        producer.send(topic, key=f"k{i}".encode(), value=b"x")
    producer.flush(10)
    producer.close(5)
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=unique_topic_prefix + "g",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             session_timeout_ms=session_ms, heartbeat_interval_ms=500, **cfg)
    try:
        # Metadata before the first join: a leader that assigns before it knows the topic's
        # partitions assigns nothing and has to rejoin (the CI failure's log showed this too).
        assert consumer.partitions_for_topic(topic) == {0, 1}
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 6 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                got.extend(records)
        assert len(got) == 6
        consumer.commit()
        committed = {p: consumer.committed(TopicPartition(topic, p)) for p in (0, 1)}
        assert sum(v or 0 for v in committed.values()) == 6
    finally:
        consumer.close()


def test_two_tansu_brokers_side_by_side():
    with EmbeddedBroker("tansu") as a, EmbeddedBroker("tansu") as b:
        assert a.bootstrap != b.bootstrap and a.pid != b.pid
        round_trip(a.bootstrap, "tansu", "only-in-a")
        round_trip(b.bootstrap, "tansu", "only-in-b")
        assert describe_topics(a.bootstrap, ["only-in-a", "only-in-b"]) == {"only-in-a": 3}
        assert describe_topics(b.bootstrap, ["only-in-a", "only-in-b"]) == {"only-in-b": 3}
    assert not pid_alive(a.pid) and not pid_alive(b.pid)


CHILD = textwrap.dedent(
    """
    import sys, time
    from streams.kafka.broker import EmbeddedBroker
    broker = EmbeddedBroker(sys.argv[1], log_path=sys.argv[2]).start(timeout=20)
    print(broker.pid, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=["SIGKILL", "SIGTERM", "SIGINT"])
@pytest.mark.parametrize("kind", KINDS)
def test_parent_death_leaves_no_orphan(kind, sig, tmp_path):
    """SIGKILL/SIGTERM of the owner: PR_SET_PDEATHSIG; SIGINT: KeyboardInterrupt -> atexit."""
    # A test run started in the background (`cmd &` in a script) inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: give the owner the default disposition an interactive one has.
    parent = subprocess.Popen([sys.executable, "-c", CHILD, kind, str(tmp_path / "broker.log")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"child said {line!r}, stderr: {parent.stderr.read()}"
        broker_pid = int(line)
        assert pid_alive(broker_pid)
        os.kill(parent.pid, sig)
        parent.wait(10)
        assert wait_gone(broker_pid, 5.0), f"broker {broker_pid} outlived its parent ({sig!r})"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_traits_and_settings_are_consistent():
    # "kafka" is Apache Kafka (streams.kafka.apache.KafkaCluster, tests/kafka/test_apache.py), not embedded
    assert set(BROKER_TRAITS) == set(KINDS) | {"kafka"}
    assert faust_settings_for("tansu")["producer_max_batch_size"] == 1
    assert "producer_max_batch_size" not in faust_settings_for("rdkafka-mock")
    for kind in KINDS:
        settings = faust_settings_for(kind, session_timeout=4.0)
        assert settings["processing_guarantee"] == "at_least_once"
        assert settings["broker_heartbeat_interval"] < settings["broker_session_timeout"] == 4.0
        loaded = BROKER_TRAITS[kind].loaded_session_timeout_s  # what group tests and the harness use
        assert loaded > BROKER_TRAITS[kind].min_session_timeout_s
        assert faust_settings_for(kind, session_timeout=loaded)["broker_session_timeout"] == loaded
    assert faust_settings_for("external") == {}
    with pytest.raises(ValueError, match="session timeout"):
        faust_settings_for("rdkafka-mock", session_timeout=3.0)
    assert kafka_python_config_for("rdkafka-mock") == {"api_version": (2, 3)}
    with pytest.raises(ValueError):
        EmbeddedBroker("kafka")


def test_broker_started_off_the_main_thread_outlives_that_thread():
    """PR_SET_PDEATHSIG fires when the forking *thread* exits: the broker module
    forks from a long-lived spawner thread when not on the main thread."""
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("b", EmbeddedBroker("tansu").start(timeout=20)))
    worker.start()
    worker.join(25)
    broker = box["b"]
    try:
        time.sleep(0.3)
        assert broker.running and pid_alive(broker.pid)
        assert describe_topics(broker.bootstrap, ["x"]) == {}
    finally:
        broker.stop()
    assert not pid_alive(broker.pid)
