"""Read a topic from the beginning to its current end with kafka-python (ops tools)."""
from __future__ import annotations

import time
from typing import Dict, Iterator, Optional

from kafka import KafkaConsumer, TopicPartition


def read_to_end(bootstrap: str, topic: str, timeout: float = 120.0, **config) -> Iterator:
    """Yield every record of ``topic`` present when called, partition by partition in offset order.

    On tansu, end offsets are only exact for topics written one record per batch
    (Faust changelogs there are, see streams/kafka/broker.py).
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, **config)
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            return
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends: Dict[TopicPartition, int] = consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: {len(pending)} partitions not read to the end in {timeout} s")
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    if r.offset < ends[tp]:
                        yield r
            # Every pending partition, not only those that returned records: a transaction's commit
            # marker is a control batch that moves the position but yields no record, so a partition
            # ending in one (any transactional changelog) was never marked done and the read timed out.
            pending = {tp for tp in pending if consumer.position(tp) < ends[tp]}
    finally:
        consumer.close()


def latest_values(bootstrap: str, topic: str, timeout: float = 120.0, **config) -> Dict[bytes, Optional[bytes]]:
    """Compacted view: the last value per key (None for a tombstone)."""
    latest: Dict[bytes, Optional[bytes]] = {}
    for r in read_to_end(bootstrap, topic, timeout, **config):
        latest[r.key] = r.value
    return latest
