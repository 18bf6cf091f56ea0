"""Population snapshots at event-time boundaries: relative cut-offs as a function of the log.

The global population view (quantile cut-offs of relative policies) used to be
whatever figures had last arrived over the network, so the same log gave other
segment changes at another speed. Here every decision uses a *versioned*
snapshot, and which version, and what it holds, follow from the log alone:

- Boundaries every ``period_ms`` of event time (``snapshot_boundary``: UTC days
  by default, CLV_POPULATION_PERIOD).
- A partition's contribution *as of boundary B* is its aggregate at the moment
  its stream time (highest event time applied on it) first passes B: just
  before the first record with event time >= B is processed. One record that
  jumps over several boundaries gives them all that contribution (one ``Cut``
  covering ``first``..``last``). That is a function of the partition's log.
- Version B of the global view is the merge of every partition's contribution
  as of B; it is *complete* once every partition has cut B.
- A record on partition p is decided with version ``snapshot_boundary(stream
  time of p)``, its own partition's stream time including the record (so
  events, late events and the reviews they trigger all use it). If that
  version is not complete (another partition lags in event time), the record
  waits in a per-partition buffer (Kafka Streams style), with every later
  record of p behind it, until it is.

Nothing here knows the number of workers, publish timing or speed: a replay,
one worker or two, fast or slow, meets the same versions with the same
content. ``VersionedPopulation`` keeps the cuts a worker has seen (its own and
the ones read from the population topic) and merges versions on demand, once
per version (the hot path only looks a version up).

Idle partitions: a partition that gets no records (empty, or its producers
stopped) would hold every version back forever. Only the shell can tell idle
from slow, by the wall clock, so this is where determinism is given up, and
only then: when a record has waited longer than the worker's idle timeout, the
partitions its version waits for are *declared idle* (``declare_idle``) and
count as complete with their latest cut (or nothing). Versions merged with an
idle partition's stale figures are named ``<boundary>~partial`` so the changes
decided with them say so. A partition leaves the idle set with its next cut.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

import msgpack

from .aggregation import PopulationAggregate, PopulationSnapshot
from .distribution import DEFAULT_RELATIVE_ACCURACY
from .events import DAY_MS
from .validation import format_time_ms

DEFAULT_PERIOD_MS = DAY_MS
CUT_FORMAT = 2  # first item of a cut record (1 is the latest-figures record of aggregation.encode_published)
_VIEW_CACHE = 8  # merged versions kept per worker (a partition moves to a new one once per period)
_NONE_STALE: FrozenSet[int] = frozenset()
PARTIAL = "~partial"  # suffix of a version merged with an idle partition's stale figures


def snapshot_boundary(t_ms: int, period_ms: int = DEFAULT_PERIOD_MS) -> int:
    """The boundary at or before event time ``t_ms`` (epoch-aligned multiples of the period)."""
    return t_ms - t_ms % period_ms


def boundaries_passed(old_ms: Optional[int], new_ms: int,
                      period_ms: int = DEFAULT_PERIOD_MS) -> Optional[Tuple[Optional[int], int]]:
    """The boundaries a stream time passes moving from ``old_ms`` to ``new_ms``, as (first, last);
    first None: every boundary up to last (the partition's first record). None: no boundary passed."""
    last = snapshot_boundary(new_ms, period_ms)
    if old_ms is None:
        return None, last
    if last <= old_ms:
        return None
    return snapshot_boundary(old_ms, period_ms) + period_ms, last


def version_name(boundary_ms: int, partial: bool = False) -> str:
    """What a segment change carries as ``population_version``: the boundary, as an event time
    (``~partial`` when idle partitions were merged with stale figures: not reproducible)."""
    return format_time_ms(boundary_ms) + (PARTIAL if partial else "")


@dataclass(frozen=True)
class Cut:
    """Partition ``partition``'s figures as of every boundary from ``first`` (None: all before) to ``last``."""

    partition: int
    first: Optional[int]
    last: int
    aggregate: PopulationAggregate

    def covers(self, boundary: int) -> bool:
        return boundary <= self.last and (self.first is None or self.first <= boundary)


def cut_snapshot(aggregate: PopulationAggregate, partition: int, old_stream_ms: Optional[int], event_time_ms: int,
                 period_ms: int = DEFAULT_PERIOD_MS) -> Optional[Cut]:
    """The step a processor runs before each record: when the record's event time moves the
    partition's stream time past one or more boundaries, the partition's figures *before* the
    record are its contribution as of those boundaries (a copy: the aggregate keeps changing)."""
    if old_stream_ms is not None and event_time_ms <= old_stream_ms:
        return None
    passed = boundaries_passed(old_stream_ms, event_time_ms, period_ms)
    if passed is None:
        return None
    return Cut(partition, passed[0], passed[1], PopulationAggregate.from_list(aggregate.to_list()))


def cut_key(cut: Cut) -> bytes:
    """Topic key: one record per partition and last boundary (compaction keeps each)."""
    return f"{cut.partition}@{cut.last}".encode()


def encode_cut(cut: Cut, policy: str, policy_version: str, period_ms: int) -> bytes:
    return msgpack.packb([CUT_FORMAT, cut.partition, policy, policy_version, period_ms, cut.first, cut.last,
                          cut.aggregate.to_list()], use_bin_type=True)


@dataclass(frozen=True)
class PublishedCut:
    policy: str
    policy_version: str
    period_ms: int
    cut: Cut


def decode_cut(row: list) -> PublishedCut:
    """From an unpacked cut record (``row[0] == CUT_FORMAT``)."""
    _, partition, policy, policy_version, period_ms, first, last, aggregate = row
    return PublishedCut(policy, policy_version, int(period_ms),
                        Cut(int(partition), first, int(last), PopulationAggregate.from_list(aggregate)))


class VersionedPopulation:
    """Every partition's cuts seen so far, and the complete global versions merged from them."""

    def __init__(self, partitions: int, period_ms: int = DEFAULT_PERIOD_MS,
                 relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY):
        if partitions < 1 or period_ms < 1:
            raise ValueError("partitions and period must be positive")
        self.partitions, self.period_ms, self.relative_accuracy = partitions, period_ms, relative_accuracy
        self._cuts: Dict[int, List[Cut]] = {}  # partition -> cuts sorted by last boundary
        self._views: Dict[Tuple[int, FrozenSet[int]], PopulationSnapshot] = {}  # (boundary, stale ones) -> view
        self._complete: Optional[int] = None  # every version up to this one is complete
        self.idle: Set[int] = set()  # partitions declared idle by the shell (see the module doc)

    def add(self, cut: Cut) -> None:
        """Take a cut (own or read from the topic); the same (partition, last) again replaces it."""
        if not 0 <= cut.partition < self.partitions:
            return  # a partition this deployment does not have (e.g. from before a repartition)
        cuts = self._cuts.setdefault(cut.partition, [])
        lasts = [c.last for c in cuts]
        i = bisect_left(lasts, cut.last)
        if i < len(cuts) and cuts[i].last == cut.last:
            if cuts[i] == cut:
                return
            cuts[i] = cut
            self._views = {k: v for k, v in self._views.items() if not cut.covers(k[0])}
        else:
            cuts.insert(i, cut)
        if cut.partition in self.idle and i == len(cuts) - 1:
            self.idle.discard(cut.partition)  # it moves again
            self._views = {k: v for k, v in self._views.items() if cut.partition not in k[1]}
        self._recount()

    def declare_idle(self, partitions: Iterable[int]) -> None:
        """Let versions complete without these partitions' next cuts (the shell's idle timeout)."""
        new = {p for p in partitions if 0 <= p < self.partitions} - self.idle
        if new:
            self.idle |= new
            self._recount()

    def lagging(self, boundary: int) -> List[int]:
        """The partitions version ``boundary`` still waits for."""
        return [p for p in range(self.partitions)
                if p not in self.idle and (self.passed(p) is None or self.passed(p) < boundary)]

    def _recount(self) -> None:
        active = [p for p in range(self.partitions) if p not in self.idle]
        if any(p not in self._cuts for p in active):
            self._complete = None
            return
        complete = min((self._cuts[p][-1].last for p in active), default=None)
        if complete is None:  # every partition idle: nothing decides a version
            self._complete = None
            return
        if complete != self._complete:
            # every partition decides with the version of its own last cut or a later one: older cuts are done
            self.forget_before(min(c[-1].last for c in self._cuts.values()))
        self._complete = complete

    def passed(self, partition: int) -> Optional[int]:
        """The last boundary this partition has cut (None: none seen)."""
        cuts = self._cuts.get(partition)
        return cuts[-1].last if cuts else None

    @property
    def complete_through(self) -> Optional[int]:
        """Every version up to this boundary is complete (None: some partition has cut nothing yet)."""
        return self._complete

    def is_complete(self, boundary: int) -> bool:
        return self._complete is not None and boundary <= self._complete

    def view(self, boundary: int) -> Optional[PopulationSnapshot]:
        """Version ``boundary`` of the global view, or None while it is not complete."""
        if not self.is_complete(boundary):
            return None
        stale = (frozenset(p for p in self.idle if self.passed(p) is None or self.passed(p) < boundary)
                 if self.idle else _NONE_STALE)
        key = (boundary, stale)
        view = self._views.get(key)
        if view is None:
            merged = PopulationAggregate(self.relative_accuracy)
            for p in range(self.partitions):
                cuts = self._cuts.get(p)
                if not cuts:
                    continue  # idle and never seen: no customers
                i = min(bisect_left([c.last for c in cuts], boundary), len(cuts) - 1)
                merged.merge(cuts[i].aggregate)  # the cut covering the boundary (cuts are contiguous)
            view = PopulationSnapshot(merged, range(self.partitions), version=version_name(boundary, bool(stale)))
            if len(self._views) >= _VIEW_CACHE:
                del self._views[min(self._views)]
            self._views[key] = view
        return view

    def forget_before(self, boundary: int) -> None:
        """Drop what no decision at or after ``boundary`` can need (keeps each partition's covering cut)."""
        for p, cuts in self._cuts.items():
            i = min(bisect_left([c.last for c in cuts], boundary), len(cuts) - 1)
            if i > 0:
                del cuts[:i]
        self._views = {k: v for k, v in self._views.items() if k[0] >= boundary}

    def cuts(self, partition: int) -> Iterable[Cut]:
        return tuple(self._cuts.get(partition, ()))
