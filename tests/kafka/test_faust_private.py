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



class _Record:
    def __init__(self, tp: TP, offset: int):
        self.topic, self.partition, self.tp, self.offset = tp.topic, tp.partition, tp, offset
        self.key = self.value = b""


class _FetchLoop:
    """Faust's own fetch loop (``Consumer._drain_messages``) and rebalance steps on a consumer that is
    never started: the fetch is a queue of batches, the conductor a list, the seek a stub."""

    def __init__(self, tmp_path, name: str):
        self.app = faust.App(name, broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
        self.consumer = consumer = self.app.consumer
        self.tp = TP("clv.orders", 0)
        self.batches: asyncio.Queue = asyncio.Queue()
        self.delivered, self.blocked, self.never = [], asyncio.Event(), asyncio.Event()
        self.block_at, self.committed, self.sought = None, {self.tp: 3}, []

        async def _getmany(active_partitions, timeout):  # aiokafka's drain: one queued batch...
            offsets = await self.batches.get()
            # ...stamped as the patched AIOKafkaConsumerThread._fetch_records stamps what it drains
            from streams.kafka.faust_private import _BATCH_FENCE, _FENCE
            consumer.__dict__[_BATCH_FENCE] = consumer.__dict__.get(_FENCE, 0)
            return {self.tp: [_Record(self.tp, o) for o in offsets]} if self.tp in active_partitions else {}

        async def deliver(message):  # the conductor; ``block_at`` finds the agent's queue full
            if message.offset == self.block_at and not self.blocked.is_set():
                self.blocked.set()
                await self.never.wait()
            self.delivered.append(message.offset)

        async def seek_to_committed():
            self.sought.append(dict(consumer._read_offset))
            return dict(self.committed)

        async def revoked_by_app(revoked):  # what App._on_partitions_revoked does first
            consumer.stop_flow()

        async def assigned_by_app(assigned, generation_id):
            consumer.pause_partitions(assigned)  # as App._on_partitions_assigned does

        consumer._getmany, consumer.callback, consumer.seek_to_committed = _getmany, deliver, seek_to_committed
        consumer._on_partitions_revoked, consumer._on_partitions_assigned = revoked_by_app, assigned_by_app
        consumer._to_message = lambda tp, record: record
        consumer.highwater = lambda tp: 0
        consumer.assignment = lambda: {self.tp}
        self.fetcher = type("Fetcher", (), {})()
        self.fetcher._stopped = asyncio.Event()

    def start(self):
        self.consumer._set_active_tps({self.tp})
        self.task = asyncio.create_task(self.consumer._drain_messages(self.fetcher))

    async def until(self, condition, what: str):
        for _ in range(500):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}")

    async def stop(self):
        self.fetcher._stopped.set()
        self.batches.put_nowait([])
        await asyncio.wait_for(self.task, 5)


def test_a_partition_that_comes_back_restarts_at_its_committed_offset(tmp_path):
    """Through a revocation that finds the fetch loop handing a record to a full agent queue and an
    assignment that gives the partition back: the read offset Faust's loop leaks into the new
    generation is forgotten, records fetched before the seek (from a position past the committed
    offset) are not handed on, and from the committed offset everything comes in order."""
    from streams.kafka.faust_private import restart_streams_at_committed_offsets

    restart_streams_at_committed_offsets()
    restart_streams_at_committed_offsets()  # idempotent

    async def scenario():
        loop = _FetchLoop(tmp_path, "private-api-drain")
        consumer, tp = loop.consumer, loop.tp
        loop.block_at = 6
        loop.batches.put_nowait(list(range(0, 10)))
        loop.start()
        await asyncio.wait_for(loop.blocked.wait(), 5)
        assert loop.delivered == [0, 1, 2, 3, 4, 5]
        await consumer.on_partitions_revoked({tp})
        await loop.until(lambda: consumer._read_offset.get(tp) is not None, "the fetch loop to record offset 6")
        assert consumer._read_offset.get(tp) == 6, "Faust's fetch loop no longer leaks its read offset"

        await consumer.on_partitions_assigned({tp}, 2)
        assert consumer._read_offset.get(tp) is None
        loop.delivered.clear()
        consumer.resume_flow()
        consumer.resume_partitions({tp})  # recovery resumes the stream partitions before it seeks them
        loop.batches.put_nowait(list(range(20, 25)))  # aiokafka's position had moved past skipped records
        await loop.until(lambda: loop.batches.empty(), "the early batch to be drained")
        await consumer.perform_seek()
        assert loop.sought == [{}], "read offsets are forgotten before aiokafka seeks"
        assert tp in consumer._get_active_partitions(), "the seek resumes what was resumed before it"
        loop.batches.put_nowait(list(range(3, 13)))  # after the seek: from the committed offset 3
        await loop.until(lambda: loop.delivered[-1:] == [12], "offset 12")
        await loop.stop()
        assert loop.delivered == list(range(3, 13))

    asyncio.run(scenario())


def test_a_batch_drained_before_the_seek_is_not_handed_on_after_it(tmp_path):
    """A batch aiokafka drained before the seek (the fetch loop still handing it on when the seek
    ends) is stale for the partitions the seek moved: dropped, the records come again from the
    committed offset. aiokafka is never handed an empty (drain-everything) set of partitions."""
    from streams.kafka.faust_private import _PartitionsToDrain, restart_streams_at_committed_offsets

    restart_streams_at_committed_offsets()
    live: set = set()
    assert _PartitionsToDrain(live) and TP("t", 0) not in _PartitionsToDrain(live)
    live.add(TP("t", 0))
    assert TP("t", 0) in _PartitionsToDrain(live)

    async def scenario():
        loop = _FetchLoop(tmp_path, "private-api-fence")
        consumer, tp = loop.consumer, loop.tp
        await consumer.on_partitions_assigned({tp}, 1)
        consumer.resume_partitions({tp})
        await consumer.perform_seek()
        loop.block_at = 41
        loop.batches.put_nowait(list(range(40, 45)))  # drained, handed on up to 41 (agent queue full)
        loop.start()
        await asyncio.wait_for(loop.blocked.wait(), 5)
        loop.committed = {tp: 41}
        await consumer.perform_seek()  # e.g. the flow stopped: Faust seeks back to committed offsets
        loop.never.set()  # the queue takes 41 again; 42-44 of the stale batch must not follow
        loop.batches.put_nowait(list(range(41, 46)))
        await loop.until(lambda: loop.delivered[-1:] == [45], "offset 45")
        await loop.stop()
        assert loop.delivered == [40, 41, 41, 42, 43, 44, 45]  # 41 twice: the core skips the replay

    asyncio.run(scenario())


def test_the_thread_drain_never_takes_every_partition_and_stamps_its_batch(tmp_path):
    """The patched ``AIOKafkaConsumerThread._fetch_records`` hands aiokafka a set that is never empty
    to it (an emptied live set drained every partition) and records the seeks begun at the drain."""
    from contextlib import nullcontext

    from streams.kafka.faust_private import _BATCH_FENCE, _FENCE, restart_streams_at_committed_offsets

    restart_streams_at_committed_offsets()

    async def scenario():
        app = faust.App("private-api-thread", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))
        consumer = app.consumer
        consumer.__dict__[_FENCE] = 7
        seen = []

        class Fetcher:
            _closed = False
            _subscriptions = type("Subscriptions", (), {"fetch_context": staticmethod(nullcontext)})()

            async def fetched_records(self, partitions, timeout=0, max_records=None):
                seen.append((bool(partitions), TP("t", 0) in partitions))
                return {}

        aiokafka_consumer = type("AIOKafkaConsumer", (), {"_closed": False, "_fetcher": Fetcher()})()
        live: set = set()  # Faust's active partitions, emptied by a pause while the drain is under way
        assert await consumer._thread._fetch_records(aiokafka_consumer, live, timeout=0.1, max_records=10) == {}
        assert seen == [(True, False)]
        assert consumer.__dict__[_BATCH_FENCE] == 7

    asyncio.run(scenario())


def test_a_failed_delivery_fails_every_later_flush_also_of_tracked_sends(tmp_path):
    """Records sent with ``app.producer.send`` (the direct changelog) are waited for by the commit's
    flush once tracked, and a failure, even one settled before the flush began, fails every later flush."""
    from faust.transport.producer import ProducerBuffer

    from streams.kafka.faust_private import delivery_failure, track_deliveries

    flush_producer_buffer_fully()
    app = faust.App("private-api-track", broker="kafka://127.0.0.1:1", datadir=str(tmp_path))

    async def scenario():
        loop = asyncio.get_running_loop()
        buffer = app.producer.buffer
        assert isinstance(buffer, ProducerBuffer)
        buffer._send_pending = lambda fut: asyncio.sleep(0)  # nothing is put in this buffer here
        await buffer.start()
        try:
            ok, late = loop.create_future(), loop.create_future()
            track_deliveries(app, [ok, late])
            loop.call_later(0.2, ok.set_result, None)
            loop.call_later(0.3, late.set_result, None)
            await buffer.flush()
            assert ok.done() and late.done(), "the flush returned before the tracked acks"
            assert delivery_failure(app) is None
            refused = loop.create_future()
            track_deliveries(app, [refused])
            failure = RuntimeError("MESSAGE_TOO_LARGE")
            refused.set_exception(failure)
            await asyncio.sleep(0)  # settled before the next flush begins
            outcomes = []
            for _ in range(2):
                try:
                    await buffer.flush()
                    outcomes.append(None)
                except RuntimeError as exc:
                    outcomes.append(exc)
            return outcomes, delivery_failure(app)
        finally:
            await buffer.stop()  # its own stop flush does not raise the remembered failure

    outcomes, remembered = asyncio.run(scenario())
    assert str(outcomes[0]) == "MESSAGE_TOO_LARGE" and outcomes == [outcomes[0]] * 2
    assert remembered is outcomes[0]
