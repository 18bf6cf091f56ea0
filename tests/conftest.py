"""Root fixtures: Kafka-protocol brokers for integration tests.

* **Apache Kafka** is the default broker (``kafka_bootstrap``, kind ``"kafka"``): the pinned
  version of ``deploy/kafka/pom.xml``, fetched once by ``python -m streams.kafka.install``
  (``make test`` runs it) and started by :mod:`streams.kafka.apache`.  ``kafka_broker`` is a
  single KRaft node, ``kafka_cluster`` three (RF 3, min ISR 2) for broker faults.  Each JVM
  starts once per session (10-40 s on a loaded 2-core machine).  No client work-arounds:
  Kafka's and Faust's defaults.
* **tansu** (``tansu_broker``): the zero-install broker of ``make demo``, kept for a small
  smoke set.  Its gaps: wrong end offsets after multi-record batches (Faust runs with
  ``producer_max_batch_size=1``), no aiokafka idempotence/transactions, JoinGroup held for
  session_timeout/2 (short session timeouts), unknown topics auto-created with 4 partitions.
* **librdkafka mock** (``rdkafka_mock_bootstrap``): only for tests that need exactly it
  (no CreateTopics, ~5 MB per partition, transactions not honoured, kafka-python needs
  ``api_version=(2, 3)``).
* **external**: set ``KAFKA_BOOTSTRAP=host:port`` to run the suite against a Kafka elsewhere.
"""

from __future__ import annotations

import os
import re
import uuid

import pytest

from streams.kafka.apache import KafkaCluster
from streams.kafka.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker_kind() -> str:
    """Which broker ``kafka_bootstrap`` points at: "external" (env ``KAFKA_BOOTSTRAP``)
    or "kafka" (the session's Apache Kafka node).  Pass it to ``faust_settings_for`` /
    ``kafka_python_config_for``."""
    return "external" if os.environ.get("KAFKA_BOOTSTRAP") else "kafka"


@pytest.fixture(scope="session")
def kafka_broker():
    """A session-wide Apache Kafka KRaft node (broker and controller in one JVM, RF 1).

    The faithful broker: exact end offsets, transactions, Kafka's group protocol.  Its
    classpath must have been fetched (``python -m streams.kafka.install``; ``make test``
    does): a missing one fails the fixture with that command, it never downloads here.
    """
    cluster = KafkaCluster(1).start(timeout=180)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kafka_cluster():
    """A session-wide 3-node Apache Kafka cluster (3 controller voters, RF 3, min ISR 2).

    For broker-fault tests: ``stop_node`` / ``kill_node`` / ``start_node`` (data kept).  A test
    that stops a node must start it again before it ends, so later tests get three nodes.
    """
    cluster = KafkaCluster(3).start(timeout=240)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def tansu_broker():
    """A session-wide embedded tansu broker (memory only, single broker).

    The zero-install broker of ``make demo``; its smoke tests keep that path working.
    Starts in ~0.1 s.  Not
    faithful for: end offsets after multi-record batches, aiokafka
    idempotence/transactions, JoinGroup latency (session_timeout/2), retention,
    compaction, DeleteRecords/CreatePartitions.
    """
    broker = EmbeddedBroker("tansu").start(timeout=20)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(request, broker_kind) -> str:
    """Bootstrap address of the suite's main broker.

    ``KAFKA_BOOTSTRAP`` (a Kafka elsewhere) when set, else the session's Apache Kafka node.
    Create topics with ``streams.kafka.admin.ensure_topics`` before producing (Kafka
    auto-creates unknown topics with one partition).
    """
    if broker_kind == "external":
        return os.environ["KAFKA_BOOTSTRAP"]
    return request.getfixturevalue("kafka_broker").bootstrap


@pytest.fixture(scope="session")
def tansu_bootstrap(tansu_broker) -> str:
    """Bootstrap address of the session tansu broker (the ``make demo`` smoke set)."""
    return tansu_broker.bootstrap


@pytest.fixture(scope="session")
def rdkafka_mock_broker():
    """A session-wide librdkafka mock cluster (one broker) in a launcher process.

    Only for tests that need exactly it.  Not faithful for: topic creation (no CreateTopics API;
    ``ensure_topics`` uses the launcher in this process, topic configs are
    ignored), retention (keeps only ~5 MB per partition), transactions
    (accepted, not honoured).  kafka-python clients need
    ``kafka_python_config_for("rdkafka-mock")`` (``api_version=(2, 3)``).
    Skipped when confluent-kafka is not installed.
    """
    pytest.importorskip("confluent_kafka")
    broker = EmbeddedBroker("rdkafka-mock").start(timeout=20)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def rdkafka_mock_bootstrap(rdkafka_mock_broker) -> str:
    """Bootstrap address of the session librdkafka mock cluster (see ``rdkafka_mock_broker``)."""
    return rdkafka_mock_broker.bootstrap


@pytest.fixture
def unique_topic_prefix(request) -> str:
    """A fresh topic-name prefix (``<test-name>-<8 hex>-``) so tests sharing a
    session broker never see each other's topics, groups or offsets."""
    name = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name).strip("-")[:40]
    return f"{name}-{uuid.uuid4().hex[:8]}-"
