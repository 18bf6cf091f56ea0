"""A deterministic order for records fetched in arbitrary batches.

Customers are keyed, so a customer's events from every input topic share one partition
number. Records of one partition number are merged across topics by (record time, topic
rank, offset); partition numbers are independent of each other (state, review heaps and
stream time are per partition). A record is released only when every topic-partition of
its group that may still deliver has a record buffered, so the order never depends on
how the fetches happened to interleave: the same log always gives the same order.
"""
from __future__ import annotations

import heapq
from collections import deque
from typing import Deque, Dict, Iterable, Iterator, List, Sequence, Set, Tuple

from ..pipeline import Record

TP = Tuple[str, int]


class PartitionMerge:
    def __init__(self, tps: Iterable[TP], topic_rank: Dict[str, int]):
        self.rank = topic_rank
        self.queues: Dict[TP, Deque[Record]] = {tp: deque() for tp in tps}
        self.groups: Dict[int, List[TP]] = {}
        for tp in sorted(self.queues):
            self.groups.setdefault(tp[1], []).append(tp)
        self.finished: Set[TP] = set()

    def add(self, tp: TP, records: Sequence[Record]) -> None:
        self.queues[tp].extend(records)

    def finish(self, tp: TP) -> None:
        """Nothing more will come from ``tp`` (read to the end)."""
        self.finished.add(tp)

    def _key(self, record: Record) -> Tuple[int, int, int]:
        return (record.timestamp_ms or 0, self.rank[record.topic], record.offset)

    def ready(self) -> Iterator[Record]:
        """Every record whose place in the order is known now, group by group."""
        for tps in self.groups.values():
            if len(tps) == 1:  # one input topic: offset order is the order
                queue = self.queues[tps[0]]
                while queue:
                    yield queue.popleft()
                continue
            heads = [(self._key(self.queues[tp][0]), tp) for tp in tps if self.queues[tp]]
            heapq.heapify(heads)
            waiting = [tp for tp in tps if not self.queues[tp] and tp not in self.finished]
            while heads and not waiting:
                _, tp = heapq.heappop(heads)
                queue = self.queues[tp]
                yield queue.popleft()
                if queue:
                    heapq.heappush(heads, (self._key(queue[0]), tp))
                elif tp not in self.finished:
                    waiting.append(tp)

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self.queues.values())
