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

from streams.kafka.faust_private import (before_table_recovery, flush_producer_buffer_fully, in_event_context,
                                         recover_to_last_committed_record, set_fetch_max_wait, set_isolation_level,
                                         transaction_state)


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


def test_worker_consumer_isolation_level_is_configurable(tmp_path):
    """Faust builds its worker consumer read_uncommitted unless its own exactly-once is on; the
    engine's exactly-once needs read_committed for the stream and the recovery (same consumer)."""
    app = faust.App("private-api-isolation", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    def built() -> tuple:
        async def build():
            consumer = app.consumer._thread._create_worker_consumer(app.transport)  # never started
            return consumer._isolation_level, consumer._fetch_max_wait_ms
        return asyncio.run(build())

    before = AIOKafkaConsumerThread._create_worker_consumer
    AIOKafkaConsumerThread._create_worker_consumer = original = getattr(before, "__wrapped__", before)
    try:
        assert built()[0] == "read_uncommitted"  # Faust's choice at at-least-once
        set_fetch_max_wait(90)
        set_isolation_level("read_committed")
        assert built() == ("read_committed", 90)  # one wrapper sets both
        assert AIOKafkaConsumerThread._create_worker_consumer.__wrapped__ is original
        set_isolation_level("read_uncommitted")
        assert built()[0] == "read_uncommitted"
        with pytest.raises(ValueError):
            set_isolation_level("committed")
    finally:
        AIOKafkaConsumerThread._create_worker_consumer = before


def test_recovery_highwaters_become_the_last_committed_records():
    """Faust's recovery waits for end offset - 1: a marker on a transactional changelog."""
    from faust.tables.recovery import Recovery

    before = Recovery._build_highwaters
    original = getattr(before, "__wrapped__", before)
    tps = {TP("cl", 0), TP("cl", 1)}

    class _Consumer:
        async def highwaters(self, *partitions):
            return {tp: 10 for tp in partitions}  # end offsets

    class _Log:
        def info(self, *args):
            pass

    recovery = type("R", (), {"log": _Log(), "_highwater_logtable": lambda self, hw, title: ""})()

    def build(fn) -> dict:
        destination = {}
        asyncio.run(fn(recovery, _Consumer(), tps, destination, "active"))
        return destination

    async def find(partitions):
        assert partitions == tps
        return {TP("cl", 0): 8, TP("cl", 1): -1}  # a commit marker at 9; no committed record at all

    Recovery._build_highwaters = original
    try:
        assert build(Recovery._build_highwaters) == {TP("cl", 0): 9, TP("cl", 1): 9}  # Faust's: end - 1
        recover_to_last_committed_record(find)
        recover_to_last_committed_record(find)  # idempotent: wraps Faust's original once
        assert Recovery._build_highwaters.__wrapped__ is original
        assert build(Recovery._build_highwaters) == {TP("cl", 0): 8, TP("cl", 1): -1}
        recover_to_last_committed_record(None)
        assert Recovery._build_highwaters is original
    finally:
        Recovery._build_highwaters = before


def test_a_hook_runs_before_the_tables_start_their_recovery(tmp_path):
    app = faust.App("private-api-rebalance", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
    calls = []

    async def recovery_start(assigned, revoked, newly_assigned, generation_id=0):
        calls.append(("tables", generation_id))

    app.tables.on_rebalance = recovery_start  # what App._on_partitions_assigned awaits, looked up per call

    async def hook(assigned):
        calls.append(("hook", assigned))

    before_table_recovery(app, hook)
    asyncio.run(app.tables.on_rebalance({TP("t", 1)}, set(), {TP("t", 1)}, 7))
    assert calls == [("hook", {TP("t", 1)}), ("tables", 7)]
    import inspect
    from faust.app.base import App

    source = inspect.getsource(App._on_partitions_assigned)
    assert source.index("self.tables.on_rebalance") < source.index("self.on_partitions_assigned.send")


def test_transaction_state_reads_aiokafkas_transaction_manager():
    from aiokafka import AIOKafkaProducer

    async def states():
        producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", transactional_id="t", enable_idempotence=True)
        seen = [transaction_state(producer)]  # not initialised yet
        manager = producer._txn_manager
        from aiokafka.producer.transaction_manager import TransactionState

        for state in (TransactionState.READY, TransactionState.IN_TRANSACTION,
                      TransactionState.ABORTABLE_ERROR, TransactionState.FATAL_ERROR):
            manager.state = state
            seen.append(transaction_state(producer))
        return seen

    assert asyncio.run(states()) == ["other", "ready", "open", "abortable", "fatal"]
