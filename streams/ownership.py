"""Which input partitions a checkpoint may settle, across rebalances.

A checkpoint (``topology.checkpoint``) sends its outputs, waits for their acks, then writes the
changed states to the table (RocksDB + changelog) and acknowledges its events. Faust runs the
revocation of a rebalance beside it: with ``stream_wait_empty=False`` (needed for a prompt
shutdown) nothing waits for the checkpoint in flight, and the assignor keeps listing revoked
partitions until the next assignment. So a revoked worker could write states after Faust's
revoke-time flush, behind the new owner's back. (The orders lost under CPU load in the 3-node
fault tests, first suspected to be this, came from standby promotion: see CLV_STANDBY_REPLICAS.
This race is read from Faust's code, not measured.)

``PartitionOwnership`` closes that at its cause, the way Kafka Streams commits its tasks inside
``onPartitionsRevoked``:

* a checkpoint runs inside ``settling()``;
* ``revoke()`` (from Faust's ``on_partitions_revoked``, which the group waits for before it
  reassigns anything) waits for the checkpoint in flight to finish while the partitions are still
  this worker's, and holds new checkpoints back;
* ``assigned()`` (from ``on_rebalance_complete``: the new assignment is known and its tables are
  restored) lets them go on; the agent then settles only the events of partitions it still owns.

Plain asyncio, no Faust: tested in tests/shell/test_ownership.py.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

log = logging.getLogger(__name__)


class PartitionOwnership:
    """A gate between checkpoints and revocations (see the module docstring)."""

    def __init__(self, warn_after_s: float = 10.0) -> None:
        self._settling = asyncio.Lock()  # FIFO: a waiting revocation goes before the next checkpoint
        self._known = asyncio.Event()  # the assignment is known: checkpoints may start
        self._known.set()  # Faust delivers no event before its first assignment
        self.warn_after_s = warn_after_s

    @property
    def known(self) -> bool:
        return self._known.is_set()

    @asynccontextmanager
    async def settling(self) -> AsyncIterator[None]:
        """Held while a checkpoint runs; waits first until no rebalance is under way."""
        while True:
            await self._known.wait()
            await self._settling.acquire()
            if self._known.is_set():
                break
            self._settling.release()  # a revocation came first: wait for the next assignment
        try:
            yield
        finally:
            self._settling.release()

    async def revoke(self) -> None:
        """Wait for the checkpoint in flight to settle; then none starts until ``assigned``.

        No time limit: the checkpoint ends once its outputs are acknowledged or fail (it then
        raises and releases the gate), and the group waits for this member's revocation anyway.
        """
        warning = asyncio.get_running_loop().call_later(
            self.warn_after_s, log.warning, "a revocation has waited %.0f s for the checkpoint in flight",
            self.warn_after_s)
        try:
            async with self._settling:
                self._known.clear()
        finally:
            warning.cancel()

    def assigned(self) -> None:
        """The new assignment is known (and its tables restored): checkpoints go on."""
        self._known.set()
