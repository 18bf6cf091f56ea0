"""Apache Kafka under the tests: the launcher (streams/kafka/apache.py) and the clients the
project uses, each against the pinned broker version (Kafka 4 removed old protocol
versions, KIP-896): aiokafka, kafka-python, confluent-kafka and Faust."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, NewTopic

from streams.kafka.admin import TopicSpec, describe_topics, ensure_topics
from streams.kafka.apache import KafkaCluster
from streams.kafka.broker import BROKER_TRAITS, faust_settings_for, free_port, kafka_python_config_for
from streams.kafka.install import INSTALL_COMMAND, pinned_version
from tests.kafka.test_broker import pid_alive

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]


def read_all(bootstrap: str, topic: str, partitions: int, *, want: int, isolation_level: str = "read_uncommitted",
             timeout: float = 30.0) -> list:
    """Every record of ``topic`` from the beginning, polled until ``want`` arrived or ``timeout``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation_level)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        got: list = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                got.extend(records)
        # Nothing more than wanted either: read on until the end offsets (exact on Kafka).
        ends = consumer.end_offsets(tps)
        while any(consumer.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                got.extend(records)
        return got
    finally:
        consumer.close()


# --------------------------------------------------------------------------- the launcher


def test_a_missing_classpath_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_KAFKA_CACHE", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=INSTALL_COMMAND.replace(".", r"\.")):
        KafkaCluster(1).start()


def test_single_node_starts_answers_and_stops_leaving_nothing():
    cluster = KafkaCluster(1).start(timeout=180)
    node, root = cluster.nodes[0], cluster.root
    pid = node.pid
    try:
        assert cluster.kind == "kafka" and cluster.version == pinned_version()
        assert os.getpgid(pid) == pid != os.getpgid(0)  # own process group, as the embedded brokers
        config = node.config_path.read_text()
        assert "process.roles=broker,controller" in config and f"log.dirs={node.data_dir}" in config
        assert "log.retention.ms=-1" in config  # generated events are ~2 years old (apache.py docstring)
        assert (node.data_dir / "meta.properties").is_file()  # formatted by kafka-storage
        ensure_topics(cluster.bootstrap, [TopicSpec("lifecycle", 3)])
        assert describe_topics(cluster.bootstrap, ["lifecycle", "absent"]) == {"lifecycle": 3}
    finally:
        cluster.stop()
    assert not pid_alive(pid)
    assert not root.exists()
    assert not cluster.running
    cluster.stop()  # idempotent


def test_the_kafka_kind_needs_no_work_arounds():
    traits = BROKER_TRAITS["kafka"]
    assert traits.exact_end_offsets_with_batching and traits.transactions_honoured and traits.create_topics_api
    assert faust_settings_for("kafka", session_timeout=10.0) == {}  # Faust's defaults: batching, guarantee
    assert kafka_python_config_for("kafka") == {}
    with pytest.raises(ValueError, match="session timeout"):  # below group.min.session.timeout.ms
        faust_settings_for("kafka", session_timeout=3.0)


def test_cluster_keeps_acknowledged_records_through_a_leader_kill_and_restart(kafka_cluster, unique_topic_prefix):
    """3 nodes, RF 3, min ISR 2: kill -9 the partition leader, keep producing with acks=all,
    restart it with its data: nothing acknowledged is lost, the node rejoins the ISR."""
    bootstrap, topic = kafka_cluster.bootstrap, unique_topic_prefix + "rf3"
    ensure_topics(bootstrap, [TopicSpec(topic, 1, replication_factor=3)])
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        (described,) = admin.describe_topics([topic])
        partition = described["partitions"][0]
        assert sorted(partition["replica_nodes"]) == [1, 2, 3]
        leader = partition["leader_id"]
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=10**6, delivery_timeout_ms=120_000)
    try:
        for i in range(50):
            producer.send(topic, f"before-{i}".encode())
        producer.flush(30)
        kafka_cluster.kill_node(leader)
        for i in range(50):
            producer.send(topic, f"during-{i}".encode())
        producer.flush(120)
    finally:
        producer.close(10)
    kafka_cluster.start_node(leader)
    values = [r.value.decode() for r in read_all(bootstrap, topic, 1, want=100)]
    assert Counter(values) == Counter([f"before-{i}" for i in range(50)] + [f"during-{i}" for i in range(50)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the restarted node catches up from its own disk and the leader
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            isr = admin.describe_topics([topic])[0]["partitions"][0]["isr_nodes"]
        finally:
            admin.close()
        if sorted(isr) == [1, 2, 3]:
            break
        time.sleep(0.5)
    assert sorted(isr) == [1, 2, 3]


# --------------------------------------------------------------------------- aiokafka 0.14


def test_aiokafka_idempotent_producer_and_group_consumer(kafka_broker, unique_topic_prefix):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    bootstrap, topic = kafka_broker.bootstrap, unique_topic_prefix + "aio"
    ensure_topics(bootstrap, [TopicSpec(topic, 3)])
    sent = [(f"k{i % 5}".encode(), f"v{i}".encode()) for i in range(30)]

    async def run() -> tuple[list, dict]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            for key, value in sent:
                await producer.send(topic, value, key=key)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=unique_topic_prefix + "g",
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            got: list = []
            deadline = time.monotonic() + 60
            while len(got) < len(sent) and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(records)
            await consumer.commit()
            committed = {p: await consumer.committed(TopicPartition(topic, p)) for p in range(3)}
        finally:
            await consumer.stop()
        return got, committed

    got, committed = asyncio.run(run())
    assert sorted((r.key, r.value) for r in got) == sorted(sent)
    assert sum(committed.values()) == len(sent)


def test_aiokafka_transactions_are_honoured_for_read_committed(kafka_broker, unique_topic_prefix):
    from aiokafka import AIOKafkaProducer

    bootstrap, topic = kafka_broker.bootstrap, unique_topic_prefix + "aiotx"
    ensure_topics(bootstrap, [TopicSpec(topic, 2)])

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique_topic_prefix + "tx")
        await producer.start()
        try:
            for outcome in ("commit", "abort", "commit"):
                async with producer.transaction() if outcome == "commit" else _aborting(producer):
                    for i in range(5):
                        await producer.send(topic, f"{outcome}-{i}".encode(), key=str(i).encode())
        finally:
            await producer.stop()

    asyncio.run(run())
    committed = [r.value.decode() for r in read_all(bootstrap, topic, 2, want=10, isolation_level="read_committed")]
    assert Counter(committed) == Counter(f"commit-{i}" for i in range(5) for _ in range(2))
    everything = [r.value.decode() for r in read_all(bootstrap, topic, 2, want=15)]
    assert sum(v.startswith("abort") for v in everything) == 5  # written, then aborted: read_uncommitted sees them


class _aborting:  # noqa: N801 - used like producer.transaction()
    def __init__(self, producer):
        self.producer = producer

    async def __aenter__(self):
        await self.producer.begin_transaction()

    async def __aexit__(self, *exc):
        await self.producer.abort_transaction()
        return False


# --------------------------------------------------------------------------- kafka-python 3.0


def test_kafka_python_admin_group_consumer_and_transactions(kafka_broker, unique_topic_prefix):
    bootstrap, topic = kafka_broker.bootstrap, unique_topic_prefix + "kp"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 2, 1, topic_configs={"cleanup.policy": "compact"})])
        configs = admin.describe_configs([ConfigResource("TOPIC", topic)])
    finally:
        admin.close()
    assert describe_topics(bootstrap, [topic]) == {topic: 2}
    assert "compact" in repr(configs)
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique_topic_prefix + "tx")
    try:
        producer.init_transactions()
        for outcome in ("commit", "abort"):
            producer.begin_transaction()
            for i in range(4):
                producer.send(topic, key=f"{outcome}{i}".encode(), value=outcome.encode())
            producer.commit_transaction() if outcome == "commit" else producer.abort_transaction()
    finally:
        producer.close(10)
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=unique_topic_prefix + "g",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             isolation_level="read_committed")
    try:
        got: list = []
        deadline = time.monotonic() + 60
        while len(got) < 4 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                got.extend(records)
        consumer.commit()
        assert consumer.assignment() == {TopicPartition(topic, 0), TopicPartition(topic, 1)}
    finally:
        consumer.close()
    assert sorted(r.value for r in got) == [b"commit"] * 4


# --------------------------------------------------------------------------- confluent-kafka


def test_confluent_kafka_transactions_and_group_consumer(kafka_broker, unique_topic_prefix):
    confluent_kafka = pytest.importorskip("confluent_kafka")
    bootstrap, topic = kafka_broker.bootstrap, unique_topic_prefix + "ck"
    ensure_topics(bootstrap, [TopicSpec(topic, 2)])
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap,
                                         "transactional.id": unique_topic_prefix + "tx"})
    producer.init_transactions(30)
    for outcome in ("commit", "abort"):
        producer.begin_transaction()
        for i in range(4):
            producer.produce(topic, key=f"{outcome}{i}", value=outcome)
        producer.commit_transaction(30) if outcome == "commit" else producer.abort_transaction(30)
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic_prefix + "g",
                                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                         "isolation.level": "read_committed"})
    try:
        consumer.subscribe([topic])
        got: list = []
        deadline = time.monotonic() + 60
        while len(got) < 4 and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got.append(message.value())
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert got == [b"commit"] * 4


# --------------------------------------------------------------------------- Faust 0.15.3


class FaustProbe:
    """tests/kafka/faust_probe.py as a worker subprocess (own process group)."""

    def __init__(self, bootstrap: str, prefix: str, data: Path, guarantee: str = "at_least_once"):
        self.env = {**os.environ, "PROBE_BOOTSTRAP": bootstrap, "PROBE_APP": prefix + "probe",
                    "PROBE_DATA": str(data), "PROBE_SOURCE": prefix + "words", "PROBE_OUTPUT": prefix + "counts",
                    "PROBE_GUARANTEE": guarantee, "PYTHONPATH": str(ROOT)}
        self.log = data.parent / "faust-probe.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "FaustProbe":
        self.env["PROBE_WEB_PORT"] = str(free_port())
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "kafka" / "faust_probe.py"),
                                          "worker", "-l", "info"], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def counts_by_key(bootstrap: str, topic: str, isolation_level: str, after: dict | None = None) -> dict:
    """Every count sent per key, in offset order; ``after`` (partition -> offset) skips what an
    earlier run sent."""
    sent: dict = {}
    records = read_all(bootstrap, topic, 2, want=0, isolation_level=isolation_level, timeout=10)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        if after is None or record.offset > after.get(record.partition, -1):
            # keys raw, values json: Faust's defaults
            sent.setdefault(record.key.decode(), []).append(int(json.loads(record.value)))
    return sent


def last_offsets(bootstrap: str, topic: str, isolation_level: str) -> dict:
    records = read_all(bootstrap, topic, 2, want=0, isolation_level=isolation_level, timeout=10)
    return {p: max(r.offset for r in records if r.partition == p) for p in {r.partition for r in records}}


def wait_for_counts(bootstrap: str, topic: str, want: dict, probe: FaustProbe, isolation_level: str,
                    timeout: float = 120.0, *, redeliveries: bool = False, after: dict | None = None) -> dict:
    """Every count sent per key on the output topic (past ``after``), polled until the latest per
    key equals ``want`` or, with ``redeliveries``, reaches it (at least once: an event processed
    again after a rebalance, before its offset was committed, counts twice)."""
    sent: dict = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert probe.proc.poll() is None, f"Faust worker exited: {probe.tail()}"
        sent = counts_by_key(bootstrap, topic, isolation_level, after)
        latest = {key: counts[-1] for key, counts in sent.items()}
        if latest == want or (redeliveries and latest.keys() == want.keys()
                              and all(latest[key] >= want[key] for key in want)):
            return sent
        time.sleep(0.5)
    raise AssertionError(f"counts {sent} never became {want}\n{probe.tail()}")


def produce_words(bootstrap: str, topic: str, words: list[str]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for word in words:
            # Faust's default serializers: raw keys, json values
            producer.send(topic, key=word.encode(), value=json.dumps(word).encode())
        producer.flush(30)
    finally:
        producer.close(10)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_faust_worker_creates_its_topics_assigns_and_recovers_its_table(kafka_broker, unique_topic_prefix,
                                                                       tmp_path, guarantee):
    """Faust on this Kafka, as the worker runs it: the worker starts, its own PartitionAssignor leads the
    group, it creates the table's changelog (compacted) and its leader topic itself, and a
    restart with the RocksDB data dir wiped recovers the counts from the changelog alone.

    Under at least once an event may count twice (a rebalance before its offset is committed
    redelivers it: seen in CI on the second start); exactly once must give the exact counts."""
    bootstrap = kafka_broker.bootstrap
    prefix = f"{unique_topic_prefix}{guarantee[:3]}-"
    exact = guarantee == "exactly_once"
    isolation = "read_committed" if exact else "read_uncommitted"
    ensure_topics(bootstrap, [TopicSpec(prefix + "words", 2), TopicSpec(prefix + "counts", 2)])
    first = [w for w in ("apple", "pear", "fig", "kiwi", "plum") for _ in range(4)]
    probe = FaustProbe(bootstrap, prefix, tmp_path / "data", guarantee)
    produce_words(bootstrap, prefix + "words", first)
    probe.start()
    try:
        wait_for_counts(bootstrap, prefix + "counts", dict(Counter(first)), probe, isolation, redeliveries=not exact)
        changelog, leader = f"{prefix}probe-counts-changelog", f"{prefix}probe-__assignor-__leader"
        assert describe_topics(bootstrap, [changelog, leader]) == {changelog: 2, leader: 1}
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            configs = admin.describe_configs([ConfigResource("TOPIC", changelog)])
            group = admin.describe_groups([f"{prefix}probe"])[f"{prefix}probe"]
        finally:
            admin.close()
        assert "compact" in repr(configs)
        # Faust's own PartitionAssignor is the group's protocol (the consumer protocol's "range" is not)
        assert (group["protocol_type"], group["protocol_data"]) == ("consumer", "faust"), group
        probe.stop()
        assert probe.proc.returncode is not None
        in_changelog: dict = {}
        for record in sorted(read_all(bootstrap, changelog, 2, want=0, isolation_level=isolation, timeout=10),
                             key=lambda r: (r.partition, r.offset)):
            if record.value is not None:
                in_changelog[json.loads(record.key)] = json.loads(record.value)
        first_run = counts_by_key(bootstrap, prefix + "counts", isolation)
        at_stop = {key: counts[-1] for key, counts in first_run.items()}
        assert in_changelog == at_stop, "the changelog must hold what the table held at the stop"
        if exact:
            assert at_stop == dict(Counter(first))
        sent_before = last_offsets(bootstrap, prefix + "counts", isolation)
        shutil.rmtree(tmp_path / "data")  # recovery from the changelog alone
        second = ["apple", "fig", "fig", "banana"]
        produce_words(bootstrap, prefix + "words", second)
        probe.start()
        want = {key: at_stop.get(key, 0) + n for key, n in Counter(second).items()}
        second_run = wait_for_counts(bootstrap, prefix + "counts", want, probe, isolation,
                                     redeliveries=not exact, after=sent_before)
        # The table was recovered: each key's counts go on from the changelog's value, one by one
        # (a table that started empty would count from 1 again).
        for key, counts in second_run.items():
            assert counts == list(range(at_stop.get(key, 0) + 1, counts[-1] + 1)), (key, counts, at_stop)
    finally:
        probe.stop()

