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
    conf = dict(bootstrap_servers=bootstrap, acks="all", linger_ms=5, retries=5,
                max_in_flight_requests_per_connection=1)  # keeps per-partition order across retries
    conf.update(overrides)
    return KafkaProducer(**conf)


def encode_value(value) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()


def send_events(prod: KafkaProducer, topics: Mapping[str, str], events: Iterable, rate: Optional[float] = None,
                stop: Optional[threading.Event] = None, on_sent=None) -> int:
    """Send ``events`` (objects with topic_role, key, value, event_time_ms) at most ``rate`` per second."""
    sent = 0
    started = time.monotonic()
    for ev in events:
        if stop is not None and stop.is_set():
            break
        key = ev.key.encode() if isinstance(ev.key, str) else ev.key
        prod.send(topics[ev.topic_role], key=key, value=encode_value(ev.value), timestamp_ms=ev.event_time_ms)
        sent += 1
        if on_sent is not None:
            on_sent(ev)
        if rate:
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    prod.flush()
    return sent
