"""Root fixtures: Kafka-protocol brokers for integration tests.

No Apache Kafka can be installed here, so tests run against embedded brokers
that are started on free loopback ports and killed with the test session
(see ``streams/kafka/broker.py`` and /work/shared/notes/brokers-and-faust.md):

* **tansu** is the default broker (``kafka_bootstrap``): a real network broker
  process, fast, honest about consumer groups under rebalances with plain
  clients.  Its gaps shape the tests: wrong end offsets after multi-record
  batches (Faust runs with ``producer_max_batch_size=1``), no aiokafka
  idempotence/transactions, JoinGroup held for session_timeout/2 (use short
  session timeouts), unknown topics auto-created with 4 partitions.
* **librdkafka mock** (``rdkafka_mock_bootstrap``): the second opinion.  Exact
  end offsets and changelog recovery without work-arounds, multi-broker
  clusters; but no CreateTopics (topics go through the launcher, which
  ``ensure_topics`` does in this process), ~5 MB kept per partition,
  transactions not honoured, kafka-python needs ``api_version=(2, 3)``.
* **external**: set ``KAFKA_BOOTSTRAP=host:port`` to run against real Kafka.
"""

from __future__ import annotations

import os
import re
import uuid

import pytest

from streams.kafka.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker_kind() -> str:
    """Which broker ``kafka_bootstrap`` points at: "external" (env ``KAFKA_BOOTSTRAP``)
    or "tansu".  Pass it to ``faust_settings_for`` / ``kafka_python_config_for``."""
    return "external" if os.environ.get("KAFKA_BOOTSTRAP") else "tansu"


@pytest.fixture(scope="session")
def tansu_broker():
    """A session-wide embedded tansu broker (memory only, single broker).

    Chosen as the default because it is a real broker process with faithful
    consumer-group behaviour for plain clients, starting in ~0.1 s.  Not
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

    ``KAFKA_BOOTSTRAP`` (real Kafka) when set — the only faithful option for
    exactly-once and retention/compaction — else the session tansu broker.
    Create topics with ``streams.kafka.admin.ensure_topics`` before producing:
    tansu auto-creates unknown topics with 4 partitions.
    """
    if broker_kind == "external":
        return os.environ["KAFKA_BOOTSTRAP"]
    return request.getfixturevalue("tansu_broker").bootstrap


@pytest.fixture(scope="session")
def rdkafka_mock_broker():
    """A session-wide librdkafka mock cluster (one broker) in a launcher process.

    Chosen to cross-check tansu: its end offsets are exact, so Faust changelog
    recovery works with default producer batching, and it had no losses under
    live rebalances.  Not faithful for: topic creation (no CreateTopics API;
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
