"""Send generated (or recorded) events to the input topics with kafka-python.

The record timestamp is set to the event time (CreateTime = event time), so the
edge's "event time far ahead of its record" check is deterministic on replay.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Iterable, Mapping, Optional

from kafka import KafkaProducer


def producer(bootstrap: str, **overrides) -> KafkaProducer:
    # Retries: kafka-python's default (until delivery_timeout_ms, 2 min).  Five retries 100 ms apart
    # were not enough on Apache Kafka: a topic created a moment before answers NOT_LEADER until the
    # leader's metadata catches up (seen for longer than 0.5 s on a loaded machine), and the records
    # were dropped.
    conf = dict(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                max_in_flight_requests_per_connection=1)  # keeps per-partition order across retries
    conf.update(overrides)
    return KafkaProducer(**conf)


def encode_value(value) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()


def send_events(prod: KafkaProducer, topics: Mapping[str, str], events: Iterable, rate: Optional[float] = None,
                stop: Optional[threading.Event] = None, on_sent=None) -> int:
    """Send ``events`` (objects with topic_role, key, value, event_time_ms) at most ``rate`` per second."""
    sent = 0
    failures: list = []
    started = time.monotonic()
    for ev in events:
        if stop is not None and stop.is_set():
            break
        key = ev.key.encode() if isinstance(ev.key, str) else ev.key
        future = prod.send(topics[ev.topic_role], key=key, value=encode_value(ev.value), timestamp_ms=ev.event_time_ms)
        future.add_errback(failures.append)
        sent += 1
        if on_sent is not None:
            on_sent(ev)
        if rate:
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    prod.flush()
    if failures:  # an event the broker never took must not vanish silently
        raise RuntimeError(f"{len(failures)} of {sent} events were not delivered, e.g. {failures[0]!r}")
    return sent
