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
   A failed delivery is remembered (``delivery_failure``): every later flush raises it too, also one
   that comes after the record already failed (Faust's flush never looks at a settled record).

The exactly-once mode (``streams/eos.py``) adds:

4. ``set_isolation_level``: Faust builds its worker consumer ``read_uncommitted`` unless its own
   exactly-once is on; the patch sets aiokafka's ``AIOKafkaConsumer._isolation_level`` (read when
   the consumer starts its fetcher), so neither the stream nor the table recovery (the same
   consumer) reads an aborted rekey or changelog record. Shares the wrapper of 2.
5. ``recover_to_last_committed_record``: wraps ``faust.tables.recovery.Recovery._build_highwaters``
   (end offset - 1 per changelog partition) to wait for the last committed record instead.
6. ``before_table_recovery``: wraps the app's ``TableManager.on_rebalance`` (instance attribute),
   the step of ``App._on_partitions_assigned`` that starts the recovery.
7. ``transaction_state``: ``AIOKafkaProducer._txn_manager.state`` (aiokafka's TransactionState).

Both guarantees use:

8. ``restart_streams_at_committed_offsets``: after a rebalance Faust's fetch loop
   (``Consumer._drain_messages``) handed the agent stream records from wherever aiokafka's fetch
   position happened to be, and the core, which skips a record at or below the highest input offset
   it applied for that partition, then skipped the records that came later from the committed
   offset. Three Faust behaviours, read in faust-streaming 0.15.3 and seen in the 3-node join/leave
   test at at-least-once (CI, quiet machine, about 1 run in 4; a trace of every fetch, ack, seek
   and commit showed each one):

   * A revocation clears the per-partition "read offsets" below which fetched records are dropped
     as already delivered, but the fetch loop, blocked handing a record M to a full agent queue,
     is released by the revocation's ``stop_flow`` and sets M's offset *after* the clearing (M
     itself never delivered). When the partition comes back, records from the committed offset up
     to M are dropped: e.g. o3@353-367 never applied while o3@368 was.
   * Faust's ``getmany`` skips records of partitions that are not active when it hands them on,
     and aiokafka's drain takes every partition when the live set of active partitions it was given
     has become empty meanwhile; both advance aiokafka's position past records nobody got. Faust
     resumes the stream partitions, then seeks them back to their committed offsets: in between
     (and while aiokafka seeks partition by partition, awaiting each committed offset) the agent got
     records from that advanced position (o3@595-614 with 535 committed), applied them, and the
     re-fetched 535-594 were dropped or skipped as replays.

   The patch: on assignment the read offsets are forgotten and the stream partitions deliver
   nothing until their seek; the seek pauses them, drops what was fetched before it, moves each to
   its committed offset (one never committed to the start), and resumes them; aiokafka is never
   handed an empty set of partitions to drain. A partition restarts exactly at its committed offset
   and is delivered in order from there.

At least once adds:

9. ``track_deliveries``: records the worker hands to ``app.producer.send`` itself (the direct
   changelog of ``streams/changelog.py``) join the buffer's records of 3.: Faust's commit flush waits
   for them and fails for good once one failed (aiokafka's own ``flush`` waits but never raises).
"""
from __future__ import annotations

import asyncio
import weakref
from contextlib import contextmanager
from typing import TYPE_CHECKING, Awaitable, Callable, Dict, Iterator, Optional, Set

if TYPE_CHECKING:
    from faust.types import TP

_FETCH_MARK = "_clvstream_fetch_max_wait_ms"
_RESTARTS = "_clvstream_restarts_streams"  # marks the patched Consumer.perform_seek
_UNSOUGHT = "_clvstream_unsought"  # consumer attribute: stream partitions not sought since their assignment
_FENCE = "_clvstream_seeks"  # consumer attribute: seeks begun; a batch drained before the latest is stale...
_FENCED = "_clvstream_fenced"  # ...for the partitions that seek moves
_BATCH_FENCE = "_clvstream_batch_seeks"  # consumer attribute: the seeks begun when the batch being handed on was drained
_UNSETTLED = "_clvstream_unsettled"  # ProducerBuffer attribute: records put, not yet delivered
_FAILED = "_clvstream_failed"  # ProducerBuffer attribute: the first delivery of 3. or 9. that failed


@contextmanager
def in_event_context(event) -> Iterator[None]:
    """Table writes inside this block belong to ``event``'s partition (as if Faust were delivering it)."""
    from faust.streams import _current_event

    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


_WORKER_CONSUMER: dict = {}  # what the patched _create_worker_consumer sets on the consumer it builds


def set_fetch_max_wait(ms: int) -> None:
    """Make Faust's worker consumer wait at most ``ms`` for a fetch (process-wide, idempotent)."""
    if ms <= 0:
        raise ValueError("the fetch wait must be positive")
    _WORKER_CONSUMER["_fetch_max_wait_ms"] = ms
    _patch_worker_consumer()
    setattr(_patched_worker_consumer(), _FETCH_MARK, ms)


def set_isolation_level(level: str) -> None:
    """Make Faust's worker consumer (its stream and its table recovery) read ``level`` (4. above)."""
    if level not in ("read_committed", "read_uncommitted"):
        raise ValueError(f"not an isolation level: {level!r}")
    _WORKER_CONSUMER["_isolation_level"] = level  # aiokafka reads it when it starts its fetcher
    _patch_worker_consumer()


def _patched_worker_consumer():
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    return AIOKafkaConsumerThread._create_worker_consumer


def _patch_worker_consumer() -> None:
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    current = AIOKafkaConsumerThread._create_worker_consumer
    original = getattr(current, "__wrapped__", current)

    def _create_worker_consumer(self, transport):
        consumer = original(self, transport)
        for name, value in _WORKER_CONSUMER.items():
            setattr(consumer, name, value)
        return consumer

    _create_worker_consumer.__wrapped__ = original
    if hasattr(current, _FETCH_MARK):
        setattr(_create_worker_consumer, _FETCH_MARK, getattr(current, _FETCH_MARK))
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer


def flush_producer_buffer_fully() -> None:
    """Make Faust's ``ProducerBuffer.flush`` wait until every record put before it is delivered
    (process-wide, idempotent; see 3. above)."""
    from faust.transport.producer import ProducerBuffer

    if getattr(ProducerBuffer.flush, _UNSETTLED, False):
        return
    original_put = ProducerBuffer.put

    def put(self, fut) -> None:
        _track(self, fut)
        original_put(self, fut)

    original_flush = ProducerBuffer.flush

    async def flush(self) -> None:
        if self.state != "running":
            # Stopping: its sender task may be gone and never deliver what is queued; Faust's own
            # flush raises or returns then, as before (the buffer's own stop flushes: not the place to
            # raise a remembered failure; the commits that matter ran before, while it was running).
            await original_flush(self)
            return
        _raise_failure(self)
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


def _track(buffer, fut) -> None:
    """``fut`` joins what ``buffer``'s flush waits for; its failure is remembered there for good."""
    state = buffer.__dict__
    unsettled = state.get(_UNSETTLED)
    if unsettled is None:
        unsettled = state[_UNSETTLED] = set()
    unsettled.add(fut)

    def settled(done) -> None:
        unsettled.discard(done)
        if not done.cancelled() and done.exception() is not None and _FAILED not in state:
            state[_FAILED] = done.exception()

    fut.add_done_callback(settled)


def _raise_failure(buffer) -> None:
    failure = buffer.__dict__.get(_FAILED)
    if failure is not None:
        raise failure


def track_deliveries(app, futures) -> None:
    """Make Faust's commit wait for the acks of ``futures`` (sent with ``app.producer.send``) and fail
    for good once one of them failed (9. above; needs ``flush_producer_buffer_fully``)."""
    buffer = app.producer.buffer
    for fut in futures:
        _track(buffer, fut)


def delivery_failure(app) -> Optional[BaseException]:
    """The first delivery of Faust's buffer or of ``track_deliveries`` that failed, if one did."""
    return app.producer.buffer.__dict__.get(_FAILED)


def recover_to_last_committed_record(find: Optional[Callable[[Set[TP]], Awaitable[Dict[TP, int]]]]) -> None:
    """Faust's recovery waits until it has applied the changelog's last offset minus one (its
    "highwater", from the end offset). On a transactional changelog that offset is a commit (or
    abort) marker, never delivered as a record: recovery would wait for ever (a worker that never
    becomes ready). With ``find`` (the offset of the last committed record per changelog
    partition, or -1), recovery waits for that record instead; None restores Faust's behaviour
    (5. above). Process-wide."""
    from faust.tables.recovery import Recovery

    current = Recovery._build_highwaters
    original = getattr(current, "__wrapped__", current)
    if find is None:
        Recovery._build_highwaters = original
        return

    async def _build_highwaters(self, consumer, tps, destination, title):
        await original(self, consumer, tps, destination, title)
        if tps:
            last = await find(set(tps))
            for tp in tps:
                if tp in last:
                    destination[tp] = last[tp]
            self.log.info("%s changelog partitions: recovering up to the last committed record %s", title,
                          {f"{tp.topic}[{tp.partition}]": last.get(tp) for tp in sorted(tps)})

    _build_highwaters.__wrapped__ = original
    Recovery._build_highwaters = _build_highwaters


def before_table_recovery(app, hook: Callable[[Set[TP]], Awaitable[None]]) -> None:
    """Run ``hook(assigned)`` in Faust's ``_on_partitions_assigned`` before the tables start their
    recovery (``app.tables.on_rebalance``; Faust's ``on_partitions_assigned`` signal comes only after
    it): the exactly-once producers fence the previous owners there, so the changelog recovery
    reads holds no transaction that is still open (6. above)."""
    tables = app.tables
    original = tables.on_rebalance

    async def on_rebalance(assigned, revoked, newly_assigned, generation_id=0):
        await hook(set(assigned))
        return await original(assigned, revoked, newly_assigned, generation_id)

    tables.on_rebalance = on_rebalance


def transaction_state(producer) -> str:
    """aiokafka's transaction state of a transactional producer: ``ready``, ``open``, ``abortable``
    (an error: only an abort may follow), ``fatal`` (the producer is unusable) or ``other`` (7. above)."""
    from aiokafka.producer.transaction_manager import TransactionState

    state = producer._txn_manager.state
    return {TransactionState.READY: "ready", TransactionState.IN_TRANSACTION: "open",
            TransactionState.ABORTABLE_ERROR: "abortable", TransactionState.FATAL_ERROR: "fatal"}.get(state, "other")


class _PartitionsToDrain:
    """What aiokafka's ``Fetcher.fetched_records(partitions)`` is given instead of Faust's live set
    of active partitions: the same membership, but never falsy (an empty set there means "drain
    every partition", which took records of paused partitions that Faust then skipped)."""

    __slots__ = ("live",)

    def __init__(self, live) -> None:
        self.live = live

    def __contains__(self, tp) -> bool:
        return tp in self.live

    def __bool__(self) -> bool:
        return True

    def __iter__(self):
        return iter(list(self.live))

    def __len__(self) -> int:
        return len(self.live)


def restart_streams_at_committed_offsets() -> None:
    """Make every stream partition of a new assignment start at its committed offset and deliver in
    order from there (8. above; process-wide, idempotent)."""
    from faust.transport.consumer import Consumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    if getattr(Consumer.perform_seek, _RESTARTS, False):
        return
    original_assigned, original_seek, original_getmany = (Consumer.on_partitions_assigned, Consumer.perform_seek,
                                                           Consumer.getmany)
    original_fetch = AIOKafkaConsumerThread._fetch_records

    def streams_of(consumer, tps) -> set:
        return {tp for tp in tps if not consumer._is_changelog_tp(tp)}

    async def on_partitions_assigned(self, assigned, generation_id: int = 0) -> None:
        self._read_offset.clear()  # set by the fetch loop after the revocation: belongs to no one now
        self.__dict__[_UNSOUGHT] = streams_of(self, assigned)  # nothing of theirs delivered before their seek
        await original_assigned(self, assigned, generation_id)

    async def perform_seek(self) -> None:
        streams = streams_of(self, self.assignment())
        resume = streams & self._get_active_partitions()
        self.__dict__[_FENCED] = streams
        self.__dict__[_FENCE] = self.__dict__.get(_FENCE, 0) + 1  # none drained before this handed on...
        self.pause_partitions(streams)  # ...and none drained while they are moved
        unsought = self.__dict__.setdefault(_UNSOUGHT, set())
        unsought |= streams
        try:
            self._read_offset.clear()
            await original_seek(self)  # aiokafka: each to its committed offset; Faust: read offsets
            never = {tp: 0 for tp in streams if not self._committed_offset.get(tp)}
            if never and hasattr(self, "seek_wait"):  # aiokafka left these where they were
                await self.seek_wait(never)
            unsought -= streams
        finally:
            self.resume_partitions(resume)

    async def getmany(self, timeout: float):
        state = self.__dict__
        async for tp, message in original_getmany(self, timeout):
            # _BATCH_FENCE: the seeks begun when aiokafka drained this batch (set by _fetch_records below)
            if tp in state.get(_UNSOUGHT, ()) or (state.get(_FENCE, 0) != state.get(_BATCH_FENCE, 0)
                                                  and tp in state.get(_FENCED, ())):
                continue  # drained before its seek, which moves it back: the record is fetched again
            yield tp, message

    async def _fetch_records(self, consumer, active_partitions, timeout=None, max_records=None):
        partitions = _PartitionsToDrain(active_partitions) if active_partitions is not None else None
        records = await original_fetch(self, consumer, partitions, timeout=timeout, max_records=max_records)
        # Read right after the drain (no await between): a drain that took a partition's records saw it
        # active, so before the pause of a seek that began later, or after the seek ended.
        self.consumer.__dict__[_BATCH_FENCE] = self.consumer.__dict__.get(_FENCE, 0)
        return records

    for name, wrapper, original in (("on_partitions_assigned", on_partitions_assigned, original_assigned),
                                    ("perform_seek", perform_seek, original_seek),
                                    ("getmany", getmany, original_getmany)):
        wrapper.__wrapped__ = original
        setattr(Consumer, name, wrapper)
    _fetch_records.__wrapped__ = original_fetch
    AIOKafkaConsumerThread._fetch_records = _fetch_records
    setattr(perform_seek, _RESTARTS, True)
