"""What streams/kafka/faust_private.py relies on in Faust's and aiokafka's private API, with real
objects and no broker: a table write takes its partition from the event set by ``in_event_context``
(and only inside it), the worker consumer Faust builds waits ``set_fetch_max_wait`` ms, and the
producer buffer's flush waits for every record put before it (``flush_producer_buffer_fully``)."""
from __future__ import annotations

import asyncio

import faust
import pytest
from faust.streams import current_event
from faust.types import TP

from streams.kafka.faust_private import flush_producer_buffer_fully, in_event_context, set_fetch_max_wait


class _Message:
    def __init__(self, topic: str, partition: int):
        self.topic, self.partition, self.tp = topic, partition, TP(topic, partition)


class _Event:
    """Faust reads ``event.message.partition``/``.topic`` only; weakref-able like faust.Event."""

    def __init__(self, partition: int):
        self.message = _Message("clv.orders", partition)


def test_table_writes_take_the_partition_of_the_event_in_context(tmp_path):
    app = faust.App("private-api-test", broker="kafka://127.0.0.1:1", store="memory://", datadir=str(tmp_path))
    table = app.Table("t", default=None, partitions=4, key_type=bytes, value_type=bytes)
    sent = []
    table.send_changelog = lambda partition, key, value, **kw: sent.append((partition, key, value)) or _Fut(partition)
    with pytest.raises(Exception):
        table[b"k"] = b"v"  # outside stream iteration and without a context: Faust refuses
    event = _Event(3)
    with in_event_context(event):
        assert current_event() is event
        table[b"k"] = b"v"
    assert current_event() is None  # restored: later reads are not pinned to that partition
    assert sent == [(3, b"k", b"v")] and table.get(b"k") == b"v"


class _Fut:
    def __init__(self, partition: int):
        self.message = _Message("changelog", partition)


def test_worker_consumer_fetch_wait_is_configurable(tmp_path):
    app = faust.App("private-api-fetch", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))

    def built() -> int:
        async def build():
            thread = app.consumer._thread  # the object Faust builds its aiokafka consumer with
            return thread._create_worker_consumer(app.transport)._fetch_max_wait_ms  # never started
        return asyncio.run(build())

    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    before = AIOKafkaConsumerThread._create_worker_consumer
    # Faust's own method, even when a topology built earlier in this process patched it already
    original = getattr(before, "__wrapped__", before)
    AIOKafkaConsumerThread._create_worker_consumer = original
    try:
        assert built() == 1500  # Faust's hard-coded wait: the reason for the patch
        set_fetch_max_wait(80)
        set_fetch_max_wait(120)  # idempotent: wraps Faust's original once
        assert built() == 120
        assert AIOKafkaConsumerThread._create_worker_consumer.__wrapped__ is original
        with pytest.raises(ValueError):
            set_fetch_max_wait(0)
    finally:
        AIOKafkaConsumerThread._create_worker_consumer = before  # other tests in this process see what they saw


def _buffer_flush(app, outcomes) -> tuple:
    """Three records put in a started ProducerBuffer whose sender needs 0.3 s a record (a loop
    busy with a checkpoint); returns (records delivered when flush returned, what flush raised)."""
    from faust.transport.producer import ProducerBuffer

    async def scenario():
        buffer = ProducerBuffer(loop=asyncio.get_running_loop())
        buffer.app = app
        delivered = []

        async def slow_send(fut):
            await asyncio.sleep(0.3)
            outcome = outcomes[len(delivered)]
            delivered.append(fut)
            fut.set_exception(outcome) if isinstance(outcome, Exception) else fut.set_result(outcome)

        buffer._send_pending = slow_send
        await buffer.start()
        try:
            records = [asyncio.get_running_loop().create_future() for _ in outcomes]
            for record in records:
                buffer.put(record)
            raised = None
            try:
                await buffer.flush()
            except Exception as exc:  # noqa: BLE001 - the test reports what flush raised
                raised = exc
            return len(delivered), raised
        finally:
            while not buffer.pending.empty():  # what Faust's flush left behind: not sent at the stop
                buffer.pending.get_nowait().cancel()
            await buffer.stop()

    return asyncio.run(scenario())


def test_the_producer_buffer_flush_waits_for_every_record_put_before_it(tmp_path):
    from faust.transport.producer import ProducerBuffer

    app = faust.App("private-api-flush", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
    before = ProducerBuffer.put, ProducerBuffer.flush
    # Faust's own methods, even when a topology built earlier in this process patched them already
    ProducerBuffer.put = getattr(before[0], "__wrapped__", before[0])
    ProducerBuffer.flush = getattr(before[1], "__wrapped__", before[1])
    try:
        delivered, raised = _buffer_flush(app, [None, None, None])
        assert (delivered, raised) == (0, None), "Faust's flush returns with records undelivered: the reason"
        flush_producer_buffer_fully()
        flush_producer_buffer_fully()  # idempotent: wraps Faust's originals once
        assert ProducerBuffer.flush.__wrapped__ is getattr(before[1], "__wrapped__", before[1])
        assert _buffer_flush(app, [None, None, None]) == (3, None)
        failure = RuntimeError("changelog record not delivered")
        delivered, raised = _buffer_flush(app, [None, failure, None])
        assert (delivered, raised) == (3, failure), "a failed record must stop the commit that flushes"
    finally:
        ProducerBuffer.put, ProducerBuffer.flush = before  # other tests in this process see what they saw
