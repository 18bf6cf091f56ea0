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
3. ``flush_producer_buffer_fully``: table writes put their changelog records in Faust's
   ``ProducerBuffer``; Faust's commit flushes the producer, then commits the input offsets. But
   ``ProducerBuffer.flush`` (``flush_atmost(None)``) returns as soon as 0.1 s pass without a record
   sent, records still queued, and its ``size`` does not count the record its sender task has taken
   but not yet handed to aiokafka. When the loop is busy (a checkpoint holds it for longer than that
   under CPU load) offsets were committed ahead of changelog records; a kill -9 then left RocksDB
   ahead of the changelog, and the partition's next owner restored stale states (orders lost in
   the 3-node rebalance test under CPU load). The patch makes ``flush`` wait for the delivery of
   every record put in the buffer before it was called (``FutureMessage`` resolves on the broker's
   ack), and raise if one failed, so no offset is committed past an undelivered changelog record.
"""
from __future__ import annotations

import asyncio
import weakref
from contextlib import contextmanager
from typing import Iterator

_FETCH_MARK = "_clvstream_fetch_max_wait_ms"
_UNSETTLED = "_clvstream_unsettled"  # ProducerBuffer attribute: records put, not yet delivered


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


def flush_producer_buffer_fully() -> None:
    """Make Faust's ``ProducerBuffer.flush`` wait until every record put before it is delivered
    (process-wide, idempotent; see 3. above)."""
    from faust.transport.producer import ProducerBuffer

    if getattr(ProducerBuffer.flush, _UNSETTLED, False):
        return
    original_put = ProducerBuffer.put

    def put(self, fut) -> None:
        unsettled = self.__dict__.get(_UNSETTLED)
        if unsettled is None:
            unsettled = self.__dict__[_UNSETTLED] = set()
        unsettled.add(fut)
        fut.add_done_callback(unsettled.discard)
        original_put(self, fut)

    original_flush = ProducerBuffer.flush

    async def flush(self) -> None:
        if self.state != "running":
            # Stopping: its sender task may be gone and never deliver what is queued; Faust's own
            # flush raises or returns then, as before.
            await original_flush(self)
            return
        waiting = list(self.__dict__.get(_UNSETTLED, ()))  # put before this call
        if not waiting:
            return
        await asyncio.wait(waiting)
        for fut in waiting:
            if not fut.cancelled() and fut.exception() is not None:
                raise fut.exception()

    put.__wrapped__ = original_put
    flush.__wrapped__ = original_flush
    setattr(flush, _UNSETTLED, True)
    ProducerBuffer.put = put
    ProducerBuffer.flush = flush
