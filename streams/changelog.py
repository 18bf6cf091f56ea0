"""At least once: a checkpoint's states written to the table the way ``table[key] = value`` does, per batch.

Faust's ``Table.__setitem__`` per key (faust-streaming 0.15.3): ``on_key_set`` -> ``send_changelog``
(``Topic.send_soon``: a ``FutureMessage`` through the ``ProducerBuffer``'s sender task to
``publish_message`` and aiokafka, ``_on_changelog_sent`` writing the store's persisted changelog offset
to RocksDB on every ack), the window-TTL bookkeeping (a no-op: this table has no window), the
``on_table_set`` sensor, then ``data[key] = value`` (the store: the RocksDB of the current event's
partition and the store's key index). Measured at about 15 % of the worker's samples, most of it the
per-record future objects, buffer hand-offs and persisted-offset writes. Here, per input partition of a
checkpoint, keeping each of those effects:

* the changelog records go straight to Faust's producer (``app.producer.send``, aiokafka's send),
  partition = the input partition = the table partition (what ``partition_for_key`` gives, and it
  checks once that the changelog has as many partitions as the input), raw key and value, no
  headers: the bytes Faust sends;
* the store is written as Faust writes it (``data[key] = value`` in the partition's event context) and
  the ``on_table_set`` sensor called for each key;
* the persisted offset is set once per partition and checkpoint, from the ack of the partition's last
  record (aiokafka acks one partition's batches in order, so that is the highest; Faust sets it on every
  ack, to the same final value): recovery then reads the changelog after it, as before;
* every record is tracked by Faust's commit (``faust_private.track_deliveries``): its flush waits for the
  acks and fails for good once one failed, so the input offsets of a state whose changelog record is
  missing are never committed; ``on_failure`` also crashes the worker at once, and its restart
  redelivers from the last commit.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Dict

from faust.types import TP

from .kafka.faust_private import in_event_context, track_deliveries


class DirectChangelog:
    """Writes a checkpoint's changed states: store, changelog records, persisted offsets (see above)."""

    def __init__(self, app, table, on_failure: Callable[[BaseException], None]):
        self.app, self.table, self.on_failure = app, table, on_failure
        self._topic = None  # the changelog topic's name, known once the table is set up

    async def write(self, partition: int, writes: Dict[bytes, bytes], event) -> None:
        """Write ``writes`` (key -> encoded state) of input ``partition``, ``event`` one of its events."""
        if not writes:
            return
        table, store, send = self.table, self.table.data, self.app.producer.send
        topic = self._topic
        if topic is None:
            topic = self._topic = table.changelog_topic.get_topic_name()
        sensor = self.app.sensors.on_table_set
        with in_event_context(event):
            if table.partition_for_key(next(iter(writes))) != partition:  # Faust's choice, and its check
                raise AssertionError(f"event of partition {partition} in context gives another partition")
            sent = [await send(topic, key, value, partition, None, None) for key, value in writes.items()]
            for key, value in writes.items():
                store[key] = value
                sensor(table, key, value)
        track_deliveries(self.app, sent)
        for fut in sent:
            fut.add_done_callback(self._failed)
        sent[-1].add_done_callback(partial(self._persisted, TP(topic, partition)))

    def _persisted(self, tp: TP, fut) -> None:
        if not fut.cancelled() and fut.exception() is None:
            self.table.data.set_persisted_offset(tp, fut.result().offset)

    def _failed(self, fut) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            self.on_failure(fut.exception())
