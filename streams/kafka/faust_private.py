"""Every use of Faust's (and aiokafka's) private API in the project, in one place.

PRIVATE API: faust-streaming 0.15.3 and aiokafka 0.14. tests/kafka/test_faust_private.py pins what
is relied on here, so an upgrade that moves it fails there first, not in production.

1. ``in_event_context``: Faust writes a table key (RocksDB partition and changelog partition) from
   the *current event*, a context variable its per-event stream iteration sets. The checkpointed
   agent writes the changed states after the batch's outputs are flushed, outside that iteration,
   so it sets the variable (``faust.streams._current_event``, a weak reference) to an event of the
   partition the state belongs to for the duration of the writes, and restores it afterwards (a
   stale event would make a later ``table.get`` look in that event's partition only).
2. ``set_fetch_max_wait``: Faust's worker consumer hard-codes aiokafka's ``fetch_max_wait_ms=1500``
   (``faust/transport/drivers/aiokafka.py``); a parked fetch on a quiet partition then delays fresh
   records by up to that long on some brokers. The patch sets aiokafka's
   ``AIOKafkaConsumer._fetch_max_wait_ms`` (read when the consumer starts its fetcher).
"""
from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Iterator

_FETCH_MARK = "_clvstream_fetch_max_wait_ms"


@contextmanager
def in_event_context(event) -> Iterator[None]:
    """Table writes inside this block belong to ``event``'s partition (as if Faust were delivering it)."""
    from faust.streams import _current_event

    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def set_fetch_max_wait(ms: int) -> None:
    """Make Faust's worker consumer wait at most ``ms`` for a fetch (process-wide, idempotent)."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    if ms <= 0:
        raise ValueError("the fetch wait must be positive")
    current = AIOKafkaConsumerThread._create_worker_consumer
    original = getattr(current, "__wrapped__", current)

    def _create_worker_consumer(self, transport):
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms
        return consumer

    _create_worker_consumer.__wrapped__ = original
    setattr(_create_worker_consumer, _FETCH_MARK, ms)
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer
