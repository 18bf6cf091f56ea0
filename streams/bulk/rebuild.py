"""Apply ordered input records to an in-memory customer store: the pure half of the bulk path.

Same ``Pipeline`` as the live agent, same ``load``/write contract; what differs is only what
is done with the writes: they are kept per input partition until the shell writes them to
the changelog (the latest value per customer per batch, which is what a compacted
changelog keeps anyway), instead of one changelog record per event.

Rekeyed events (a producer keyed them by something else than the customer id) are held
back and applied after the input pass, in the order (source partition, arrival): applying
them at once would make a customer's partition depend on how another partition's fetches
interleaved with it. The live worker applies them when they come back from the rekey
topic, so their place differs from live anyway; held back, it is at least reproducible.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from ..pipeline import REKEY, Pipeline, Record


@dataclass
class Rekeyed:
    record: Record  # as it will be read back from the rekey topic
    value: bytes


@dataclass
class StateRebuild:
    pipeline: Pipeline
    partition_of: Callable[[bytes], int]
    rekey_topic: str
    store: Dict[bytes, bytes] = field(default_factory=dict)
    # changelog partition -> customer key -> latest state, not yet written
    dirty: Dict[int, Dict[bytes, bytes]] = field(default_factory=dict)
    outputs: List[Tuple[str, bytes, bytes]] = field(default_factory=list)  # (role, key, value), not yet written
    outcomes: Counter = field(default_factory=Counter)
    changes: int = 0
    _held: Dict[int, List[Tuple[bytes, bytes, Optional[int]]]] = field(default_factory=dict)
    log: Optional[Callable[[str], None]] = None

    def apply(self, record: Record) -> None:
        try:
            result = self.pipeline.handle(record, self.store.get)
        except Exception as exc:  # a bug must not stop the rebuild: park the record, as the live agent does
            if self.log is not None:
                self.log(f"processing failed at {record.topic}[{record.partition}]@{record.offset}: {exc!r}")
            result = self.pipeline.failed(record, exc)
        self.outcomes[result.outcome] += 1
        if result.outcome == "rekeyed":
            (_, key, value), = [o for o in result.outputs if o[0] == REKEY]
            self._held.setdefault(record.partition, []).append((key, value, record.timestamp_ms))
            return
        if result.writes:
            self.store.update(result.writes)
            self.dirty.setdefault(record.partition, {}).update(result.writes)
        self.outputs.extend(result.outputs)
        self.changes += len(result.changes)

    def settle(self) -> None:
        """Records still waiting for a complete population version whose version is complete now
        (relative policies): what the live workers' ticks release. Call after the input pass."""
        result = self.pipeline.settle(self.store.get)
        for key, value in result.writes.items():
            self.store[key] = value
            self.dirty.setdefault(self.partition_of(key), {})[key] = value
        self.outputs.extend(result.outputs)
        self.changes += len(result.changes) + sum(len(r.changes) for _, r in result.released)

    def apply_all(self, records: Iterable[Record]) -> int:
        n = 0
        for record in records:
            self.apply(record)
            n += 1
        return n

    def held_rekeys(self) -> List[Rekeyed]:
        """The held-back rekeyed events as records of the (empty, recreated) rekey topic, in order."""
        offsets: Dict[int, int] = {}
        out = []
        for source in sorted(self._held):
            for key, value, timestamp_ms in self._held[source]:
                p = self.partition_of(key)
                offsets[p] = offsets.get(p, -1) + 1
                out.append(Rekeyed(Record(self.rekey_topic, p, offsets[p], key, value, timestamp_ms), value))
        self._held.clear()
        return out

    def take_changelog(self) -> Dict[int, Dict[bytes, bytes]]:
        dirty, self.dirty = self.dirty, {}
        return dirty

    def take_outputs(self) -> List[Tuple[str, bytes, bytes]]:
        outputs, self.outputs = self.outputs, []
        return outputs
