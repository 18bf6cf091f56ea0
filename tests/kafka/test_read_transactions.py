"""read_to_end on a topic written in transactions (exactly-once changelogs and outputs)."""
from __future__ import annotations

import uuid

import pytest
from kafka import KafkaProducer

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.kafka.read import read_to_end

pytestmark = pytest.mark.integration


def test_read_to_end_finishes_on_a_partition_ending_in_a_commit_marker(kafka_broker, unique_topic_prefix):
    """Each partition ends in a transaction's commit marker (a control batch: it moves the
    position, yields no record).  The read used to wait for a record that never came and time out."""
    bootstrap, topic = kafka_broker.bootstrap, unique_topic_prefix + "txn"
    ensure_topics(bootstrap, [TopicSpec(topic, 2)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"read-test-{uuid.uuid4().hex}")
    producer.init_transactions()
    for batch in range(3):
        producer.begin_transaction()
        for i in range(5):
            producer.send(topic, key=f"k{i}".encode(), value=f"{batch}-{i}".encode(), partition=i % 2)
        producer.commit_transaction()
    producer.close()
    # one record batch per fetch (the broker still returns a first batch larger than the limit),
    # so the last fetch of each partition holds only its commit marker, as it does when a reader
    # catches up with a worker mid-stream
    records = list(read_to_end(bootstrap, topic, timeout=30, max_partition_fetch_bytes=1, fetch_max_bytes=1))
    assert sorted(r.value for r in records) == sorted(f"{b}-{i}".encode() for b in range(3) for i in range(5))
