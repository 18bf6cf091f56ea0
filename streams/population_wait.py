"""The worker's side of records waiting for a complete population version (``Pipeline.waiting``).

Kept apart from the agent loop in ``topology.py``: how waiting records are held
unacknowledged, acknowledged once processed, resumed by tick records, and
when the wall-clock idle timeout lets a lagging partition stop holding the
others back (see ``streams.core.snapshots``).
"""
from __future__ import annotations

import time

from .pipeline import DEFERRED, POPULATION_TICK, TICK, Pipeline



class WaitingRecords:
    """The shell's side of records waiting for a complete population version (``Pipeline.waiting``).

    A waiting record is not acknowledged (one more reference on its message), so its offset and the
    ones after it are not committed: after a crash or a rebalance it is read again. Once processed
    (``Result.released``) it is acknowledged. A waiting partition goes on at its next record, or at
    a tick record sent to its partition of the rekey topic when ``Pipeline.releasable`` names it.
    """

    def __init__(self, app, pipeline: Pipeline, rekey_topic, idle_timeout_s: float):
        self.app, self.pipeline, self.rekey_topic = app, pipeline, rekey_topic
        self.idle_timeout_s = idle_timeout_s
        self.messages: dict = {}  # (topic, partition, offset) -> the Faust message not acknowledged yet
        self.ticking: set = set()  # partitions with a tick on its way
        self.since: dict = {}  # waiting partition -> monotonic time its first waiting record last moved

    def hold(self, message, result) -> None:
        if result.outcome == DEFERRED:
            message.incref()
            self.messages[(message.topic, message.partition, message.offset)] = message
            self.since.setdefault(message.partition, time.monotonic())
        elif result.outcome == TICK:
            self.ticking.discard(message.partition)

    async def release(self, result) -> None:
        for record, _ in result.released:
            message = self.messages.pop((record.topic, record.partition, record.offset), None)
            if message is not None:
                message.ack(self.app.consumer)
            self.since[record.partition] = time.monotonic()
        self.since = {p: t for p, t in self.since.items() if p in self.pipeline.waiting}
        await self.tick()

    async def expire(self, now: float) -> None:
        """Records waited longer than the idle timeout: declare the partitions they wait for idle
        (decisions then name ``~partial`` versions: determinism is given up here, and only here)."""
        if not any(now - t > self.idle_timeout_s for t in self.since.values()):
            return
        lagging = self.pipeline.lagging()
        if lagging and self.pipeline.versions is not None:
            self.app.log.warning("population partitions %s idle for %.0f s: relative decisions use partial "
                                 "versions until they move", lagging, self.idle_timeout_s)
            self.pipeline.versions.declare_idle(lagging)
            self.since = dict.fromkeys(self.since, now)
        await self.tick()

    async def tick(self) -> None:
        for partition in self.pipeline.releasable():
            if partition not in self.ticking:
                self.ticking.add(partition)
                await self.rekey_topic.send(key=POPULATION_TICK, value=b"", partition=partition)

    def forget(self, partitions) -> None:
        """Revoked: their messages are not ours to acknowledge any more (the next owner reads them again)."""
        self.messages = {k: m for k, m in self.messages.items() if k[1] not in partitions}
        self.ticking -= set(partitions)
        self.since = {p: t for p, t in self.since.items() if p not in partitions}
