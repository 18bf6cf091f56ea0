"""From a Kafka record to the state write and the records to publish.

This is the seam between the pure core and the Faust shell: it knows records
(topic, partition, offset, key, value, timestamp) but imports neither Faust nor a
Kafka client, so every decision the worker makes is unit-testable without a
broker. The agent in ``topology.py`` only feeds records in and carries the
returned writes out.

Silent customers: after each record the partition's stream time (the highest
event time seen on it) is compared with the review times of the customers in
that partition; due customers are re-assessed at that event time. Review times
live in a per-partition heap in memory, rebuilt from the state table after a
rebalance (``rebuild``), because they are derived from state and need no
changelog of their own.

Population figures: one ``PopulationAggregate`` per owned partition, updated with
every state change (the customer's previous contribution out, the new one in),
rebuilt with the review heaps. ``population_updates`` hands the changed ones to
the shell for publishing; ``receive_population`` merges what every worker
published into the global view (``population``) and summary (``global_summary``).
Those latest figures feed the summary (/segments, metrics) only.

Decisions of relative policies use versioned snapshots instead (``core.snapshots``):
with ``partitions`` given, each record first runs the "cut when the stream time
passes a boundary" step (the cut goes out as a ``POPULATION`` output, before the
record's state write), then is decided with version ``snapshot_boundary(stream
time of its partition)``, or waits in its partition's buffer until that version
is complete. A waiting partition is retried at its next record, or at a tick
record (``POPULATION_TICK`` on the rekey topic) the shell sends when
``releasable`` names it. ``Result.released`` holds the waiting records processed
in a call; their writes and outputs are merged into the returned result.
"""
from __future__ import annotations

import base64
import bisect
import heapq
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, Iterable, List, Optional, Set, Tuple

import msgpack
import msgspec

from .core import codec
from .core.aggregation import (Contribution, PopulationAggregate, PopulationConfig, PopulationSnapshot, Published,
                               contribution_of, decode_published, encode_published, merge_published,
                               record_assessment)
from .core.engine import EngineConfig, Scorer, process, review, review_time_ms
from .core.policies.base import is_relative
from .core.population import PopulationSummary, PopulationView
from .core.snapshots import (CUT_FORMAT, DEFAULT_PERIOD_MS, VersionedPopulation, cut_key, cut_snapshot,
                             decode_cut, encode_cut, snapshot_boundary)
from .core.state import APPLIED, LATE, REDELIVERED, CustomerState
from .core.validation import EdgeRules, Rejection, decode

SEGMENT_CHANGES, DEAD_LETTER, REKEY, POPULATION = "segment_changes", "dead_letter", "rekey", "population"
DEFERRED, TICK = "deferred", "tick"  # outcomes: the record waits for a complete population version; a tick
# A record with this key on the rekey topic carries nothing: it makes the worker retry that partition's waiting records.
POPULATION_TICK = b"\x00population-tick"
# json.dumps(doc, separators=(",", ":")) without building an encoder per call (what dumps does
# whenever an argument differs from its defaults): the same text.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode
_msgspec_json = msgspec.json.Encoder().encode


def _msgspec_writes_as_json_does(doc) -> bool:
    """Whether msgspec's JSON of ``doc`` is the stdlib's, as far as the values decide: dicts with str
    keys, lists, str, bool, None, int, and floats that both print alike.

    Exact types only (a str or int subclass, a tuple, a Decimal or a date go to the stdlib, which
    encodes or refuses them its own way). Floats: both print the shortest round-trip digits, but for
    |x| >= 1e16 the exponent differs (``1e+16`` / ``1e16``), below 1e-4 the stdlib switches to an
    exponent where msgspec does not (``1e-05`` / ``0.00001``), and NaN and infinities are ``NaN`` /
    ``Infinity`` there and ``null`` here (tests/shell/test_pipeline_json.py). Strings are checked on
    the output (``_segment_change_json``)."""
    if doc.__class__ is dict:
        for key in doc:
            if key.__class__ is not str:
                return False
        values = doc.values()
    else:
        values = doc
    for v in values:
        kind = v.__class__
        if kind is str or kind is int or v is None or kind is bool:
            continue
        if kind is float:
            if not (v == 0.0 or 1e-4 <= abs(v) < 1e16):  # NaN fails both comparisons
                return False
        elif kind is dict or kind is list:
            if not _msgspec_writes_as_json_does(v):
                return False
        else:
            return False
    return True


def _segment_change_json(change: dict) -> bytes:
    """``_compact_json(change).encode()``, the same bytes, by msgspec's encoder where it writes them
    (about six times cheaper; a change document goes out for about every third record).

    With the values checked, the strings decide: msgspec writes non-ASCII characters as UTF-8 and DEL
    raw, and escapes quotes, backslashes and control characters with a backslash (in its own form),
    where the stdlib escapes all of them as ``\\uXXXX`` or short escapes. An output that is ASCII
    without a backslash or DEL had only printable ASCII strings, which both write verbatim."""
    try:
        out = _msgspec_json(change) if _msgspec_writes_as_json_does(change) else None
    except (RecursionError, ValueError):  # a cycle or deep nesting; an int beyond Python's digit limit
        out = None  # the stdlib decides (and raises its own error)
    if out is not None and out.isascii() and b"\\" not in out and b"\x7f" not in out:
        return out
    return _compact_json(change).encode()


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]
    timestamp_ms: Optional[int]


@dataclass
class Result:
    outcome: str  # applied | duplicate | late | redelivered | invalid | rekeyed
    reason: Optional[str] = None  # dead-letter reason when invalid or late
    event_type: Optional[str] = None
    writes: Dict[bytes, bytes] = field(default_factory=dict)  # state table key -> value
    outputs: List[Tuple[str, bytes, bytes]] = field(default_factory=list)  # (role, key, value)
    changes: List[dict] = field(default_factory=list)
    # customer id -> the policy's population metrics after this record (events and reviews it caused)
    metrics: Dict[str, Dict[str, float]] = field(default_factory=dict)
    event_time_ms: Optional[int] = None  # of a decoded event (operational metrics only)
    # waiting records of the partition processed in this call, in log order (their writes/outputs are merged in)
    released: List[Tuple[Record, "Result"]] = field(default_factory=list)

    def processed(self) -> List["Result"]:
        """The results of the records processed in this call (to count), in order."""
        done = [r for _, r in self.released]
        return done if self.outcome in (DEFERRED, TICK) else done + [self]


def dead_letter_envelope(record: Record, rejection: Rejection, now_iso: Optional[str] = None) -> bytes:
    doc = {"type": "dead_letter", "schema_version": 1, "reason": rejection.reason, "error": rejection.error,
           "original_base64": base64.b64encode(record.value or b"").decode(),
           "original_key_base64": None if record.key is None else base64.b64encode(record.key).decode(),
           "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset,
                      "timestamp_ms": record.timestamp_ms}}
    if now_iso:
        doc["dead_lettered_at"] = now_iso
    return json.dumps(doc, separators=(",", ":")).encode()


class _ResumePoint:
    """Watermarks of a partition's stored states, indexed by source position (see ``Pipeline._resume_at``)."""

    __slots__ = ("placed", "groups", "by_source")

    def __init__(self):
        self.placed: Dict[str, list] = {}  # source -> [(position, watermark)] while collecting
        self.groups: Dict[tuple, int] = {}  # the sources a state has applied -> the highest watermark
        self.by_source: Dict[str, Tuple[List[int], List[int]]] = {}

    def add(self, state: CustomerState) -> None:
        wm, positions = state.watermark_ms, state.positions
        for src, pos in positions.items():
            self.placed.setdefault(src, []).append((pos, wm))
        sources = tuple(positions)
        if wm > self.groups.get(sources, wm - 1):
            self.groups[sources] = wm

    def seal(self) -> None:
        """Per source: the positions sorted, with the running maximum of their watermarks."""
        for src, placed in self.placed.items():
            placed.sort()
            running, best = [], None
            for _, wm in placed:
                best = wm if best is None or wm > best else best
                running.append(best)
            self.by_source[src] = ([pos for pos, _ in placed], running)
        self.placed = {}

    def stream_time_before(self, source: str, offset: int) -> Optional[int]:
        """The highest watermark of the states that applied nothing of ``source`` at ``offset`` or later."""
        candidates = [wm for sources, wm in self.groups.items() if source not in sources]
        entry = self.by_source.get(source)
        if entry is not None:
            positions, running = entry
            i = bisect.bisect_left(positions, offset)
            if i:
                candidates.append(running[i - 1])
        return max(candidates) if candidates else None


_NOT_LOADED = object()  # a key the cache has not asked ``load`` for (None: asked, no state stored)


class StateCache:
    """Decoded customer states between two checkpoints: decoded once, encoded once at ``settle``.

    ``load`` reads the stored (encoded) state; ``put`` marks a state changed and remembers the input
    partition of the record that changed it (the shell writes the state from that partition's event
    context, as the per-event path did). States are mutated in place by the core, so one object per
    customer is shared by every record of the batch.

    ``counted`` keeps each cached state's population contribution as the pipeline last counted it
    (``contribution_of`` of the state as it is: only the pipeline mutates these objects, and it
    counts after every mutation), so a customer's next record in the batch does not compute it again.
    """

    __slots__ = ("load", "states", "changed", "counted")

    def __init__(self, load: Callable[[bytes], Optional[bytes]]):
        self.load = load
        self.states: Dict[bytes, Optional[CustomerState]] = {}
        self.changed: Dict[bytes, int] = {}  # key -> input partition of its latest change
        self.counted: Dict[bytes, Optional[Contribution]] = {}  # key -> contribution_of(its state)

    def get(self, key: bytes) -> Optional[CustomerState]:
        state = self.states.get(key, _NOT_LOADED)  # not try/except: the per-event path always misses once
        if state is _NOT_LOADED:
            blob = self.load(key)
            state = self.states[key] = codec.decode(blob) if blob is not None else None
        return state

    def put(self, key: bytes, state: CustomerState, partition: int) -> None:
        self.states[key] = state
        self.changed[key] = partition

    def settle(self) -> Dict[bytes, bytes]:
        """The changed states, encoded (key -> value), in the order they first changed; the cache empties."""
        states = self.states
        out = {key: codec.encode(states[key]) for key in self.changed}
        self.states, self.changed, self.counted = {}, {}, {}
        return out

    def settle_by_partition(self) -> Dict[int, Dict[bytes, bytes]]:
        """``settle`` grouped by the input partition that last changed each state."""
        changed = self.changed
        partitions: Dict[int, Dict[bytes, bytes]] = {}
        for key, blob in self.settle().items():
            partitions.setdefault(changed[key], {})[key] = blob
        return partitions


class Pipeline:
    def __init__(self, cfg: EngineConfig, rules: EdgeRules, source_codes: Dict[str, str],
                 scorer: Optional[Scorer] = None, replay: bool = False,
                 clock: Callable[[], Optional[str]] = lambda: None,
                 population_config: Optional[PopulationConfig] = None, partitions: Optional[int] = None,
                 population_period_ms: int = DEFAULT_PERIOD_MS):
        self.cfg, self.rules, self.scorer, self.replay = cfg, rules, scorer, replay
        self.source_codes = source_codes  # topic name -> short code stored in state positions
        self.clock = clock  # wall clock for the dead-letter timestamp only (operational, not state)
        self.stream_time: Dict[int, int] = {}
        self.reviews: Dict[int, List[Tuple[int, str]]] = {}
        # after a rebuild, per partition: what its stream time was where the log resumes (see _resume_at)
        self.resume: Dict[int, "_ResumePoint"] = {}
        self.needs_rebuild = True  # review heaps must be (re)built from the table
        self.population_config = population_config or PopulationConfig.for_policy(cfg.policy)
        self.aggregates: Dict[int, PopulationAggregate] = {}  # owned partition -> its figures
        self.population_changed: Set[int] = set()  # partitions whose figures are not published yet
        self.published: Dict[int, Published] = {}  # latest aggregate per partition, all workers
        # Where customers stand among all customers (relative cut-offs); None: the policy's fallbacks.
        self.population: Optional[PopulationSnapshot] = None  # the global PopulationView
        self.global_summary: Optional[PopulationSummary] = None
        # Relative policies with the partition count known: decide with versioned snapshots (see module doc).
        self.versions: Optional[VersionedPopulation] = None
        if partitions is not None and is_relative(cfg.policy):
            self.versions = VersionedPopulation(partitions, population_period_ms,
                                                self.population_config.relative_accuracy)
        self.population_period_ms = population_period_ms
        self.waiting: Dict[int, Deque[Record]] = {}  # partition -> records waiting for a complete version
        self._cuts_out: List[Tuple[bytes, bytes]] = []  # cuts made in this call, to publish

    def set_scorer(self, scorer: Optional[Scorer]) -> None:
        """Switch model parameters; review times depend on them, so rebuild the heaps."""
        self.scorer = scorer
        self.needs_rebuild = True

    # -- records -----------------------------------------------------------
    def handle(self, record: Record, load: Callable[[bytes], Optional[bytes]]) -> Result:
        """One record against stored states (``load``): the per-event path, writes encoded in the result."""
        states = StateCache(load)
        result = self._handle_one(record, states)
        result.writes.update(states.settle())
        return result

    def handle_batch(self, records: Iterable[Record], states: "StateCache") -> List[Result]:
        """Records through one cache of decoded states: the checkpointed path.

        Each customer is decoded at most once and the writes stay in ``states`` until the
        shell settles them at its checkpoint (``states.settle()``), so ``Result.writes`` stay
        empty here. The same records give the same changes and, once settled, the same state
        bytes as ``handle`` record by record (tests/shell/test_checkpoint.py). An exception
        propagates: the cache then holds partly applied states and must be dropped (the shell
        falls back to ``handle`` per record after a rebuild).
        """
        handle = self._handle_one
        return [handle(record, states) for record in records]

    def _handle_one(self, record: Record, states: "StateCache") -> Result:
        """One record, or the waiting records of its partition it releases (relative policies)."""
        tick = record.key == POPULATION_TICK and self.source_codes.get(record.topic) == "r"
        if self.versions is None:
            return Result(TICK) if tick else self._handle(record, states)
        if not tick and record.partition not in self.waiting:  # the common case: nothing waits before it
            result = self._handle(record, states)
            if result is None:
                self.waiting[record.partition] = deque([record])
                result = Result(DEFERRED)
            return self._with_cuts(result)
        if not tick:
            self.waiting[record.partition].append(record)
        done = self.drain(record.partition, states)
        if done and done[-1][0] is record:
            result = done.pop()[1]
        else:
            result = Result(TICK if tick else DEFERRED)
        return self._with_cuts(self._merged(result, done))

    def settle(self, load: Callable[[bytes], Optional[bytes]]) -> Result:
        """For a process that owns every partition (a batch rebuild, a test's expected pipeline): process
        every waiting record whose version is complete, until none is (what the worker's ticks do). The
        records still waiting then need a later record of a lagging partition."""
        done: List[Tuple[Record, Result]] = []
        states = StateCache(load)
        while True:
            ready = self.releasable()
            if not ready:
                result = self._with_cuts(self._merged(Result(TICK), done))
                result.writes.update(states.settle())
                return result
            for p in ready:
                done.extend(self.drain(p, states))

    @staticmethod
    def _merged(result: Result, done: List[Tuple[Record, Result]]) -> Result:
        """``result`` carrying the writes and outputs of the released records ``done`` (theirs first)."""
        if done:
            writes, outputs = {}, []
            for _, r in done:
                writes.update(r.writes)
                outputs.extend(r.outputs)
            writes.update(result.writes)
            result.writes, result.outputs, result.released = writes, outputs + result.outputs, done
        return result

    def _with_cuts(self, result: Result) -> Result:
        if self._cuts_out:
            # before every other output: the cut describes the partition before these records
            result.outputs[:0] = [(POPULATION, key, blob) for key, blob in self._cuts_out]
            self._cuts_out.clear()
        return result

    def drain(self, partition: int, states: "StateCache") -> List[Tuple[Record, Result]]:
        """Process the partition's waiting records, in order, while their version is complete; their state
        writes stay in ``states``. (Pure callers that own every partition, e.g. a batch rebuild, may call
        it for any partition.)"""
        queue = self.waiting.get(partition)
        done: List[Tuple[Record, Result]] = []
        while queue:
            result = self._handle(queue[0], states)
            if result is None:
                break
            done.append((queue.popleft(), result))
        if not queue:
            self.waiting.pop(partition, None)
        return done

    def releasable(self) -> List[int]:
        """Partitions with waiting records whose first one could be processed now (to send a tick to)."""
        if self.versions is None:
            return []
        out = []
        for p, queue in self.waiting.items():
            t = self.stream_time.get(p)
            if t is not None and self.versions.is_complete(snapshot_boundary(t, self.population_period_ms)):
                out.append(p)
        return out

    def lagging(self) -> List[int]:
        """The partitions the waiting records wait for (what the shell's idle timeout declares idle)."""
        if self.versions is None:
            return []
        out: Set[int] = set()
        for p in self.waiting:
            t = self.stream_time.get(p)
            if t is not None:
                out.update(self.versions.lagging(snapshot_boundary(t, self.population_period_ms)))
        return sorted(out)

    def _version_for(self, partition: int, event_time_ms: int) -> Tuple[bool, Optional[PopulationView]]:
        """Cut the partition's figures if this event time passes a boundary; (ready, view to decide with)."""
        old = self.stream_time.get(partition)
        agg = self.aggregates.get(partition)
        if agg is None:
            agg = self.aggregates[partition] = PopulationAggregate(self.population_config.relative_accuracy)
        cut = cut_snapshot(agg, partition, old, event_time_ms, self.population_period_ms)
        if cut is not None:
            self.versions.add(cut)
            policy = self.cfg.policy
            self._cuts_out.append((cut_key(cut), encode_cut(cut, policy.name, policy.version,
                                                            self.population_period_ms)))
        now = event_time_ms if old is None else max(old, event_time_ms)
        self.stream_time[partition] = now
        boundary = snapshot_boundary(now, self.population_period_ms)
        if not self.versions.is_complete(boundary):
            return False, None
        return True, self.versions.view(boundary)

    def _handle(self, record: Record, states: "StateCache") -> Optional[Result]:
        """One record; None when it must wait for a complete population version."""
        event = decode(record.value, self.rules, record.timestamp_ms)
        if isinstance(event, Rejection):
            return self._reject(record, event)
        key = event.customer_id.encode()
        if record.key != key:
            # Producer keyed it otherwise: move it to the customer's partition first,
            # so one partition (and one worker) owns all of a customer's events.
            return Result("rekeyed", event_type=event.type, outputs=[(REKEY, key, record.value)],
                          event_time_ms=event.event_time_ms)
        position = (f"{self.source_codes.get(record.topic, record.topic)}{record.partition}", record.offset)
        if self.resume:  # first record of a rebuilt partition: its stream time where the log resumes
            self._resume_at(record.partition, *position)
        population = self.population
        if self.versions is not None:
            ready, population = self._version_for(record.partition, event.event_time_ms)
            if not ready:
                return None
        state = states.get(key)
        if state is None:
            state = CustomerState(event.customer_id)
            before = None  # contribution_of a customer without a segment
        else:  # as the batch last counted it, or computed
            before = states.counted.get(key, _NOT_LOADED)
            if before is _NOT_LOADED:
                before = contribution_of(state, self.population_config)
        outcome = process(state, event, self.cfg, position, self.scorer, self.replay, population)
        if outcome.status == APPLIED:
            states.counted[key] = self._recount(record.partition, before, state, outcome, state.watermark_ms)
        else:
            # duplicate, late, redelivered: apply() moved at most the source position, which no figure
            # counts, so the recount would find the contribution unchanged (tests/shell/test_pipeline_shortcuts.py)
            self._aggregate(record.partition)
        result = Result(outcome.status, event_type=event.type, event_time_ms=event.event_time_ms)
        if outcome.metrics is not None:
            result.metrics[event.customer_id] = outcome.metrics
        states.put(key, state, record.partition)  # positions advance even for duplicates
        if outcome.status == LATE:
            late = Rejection("late", f"event_time older than the customer's watermark minus "
                                     f"{self.cfg.lateness_ms // 1000} s allowed lateness")
            result.reason = late.reason
            result.outputs.append((DEAD_LETTER, record.key or b"", dead_letter_envelope(record, late, self.clock())))
        if outcome.change:
            self._publish(result, key, outcome.change)
        if outcome.status == APPLIED:
            self._schedule(record.partition, event.customer_id, outcome.review_at_ms)
            self._advance(record.partition, event.event_time_ms, states, result, population)
        elif outcome.status == REDELIVERED:
            # A record redelivered after a crash advanced the stream time when it was first applied:
            # advancing again fires the reviews it fired then, at the same record, for the customers
            # whose states did not reach the changelog before the crash (same change, same sequence).
            self._advance(record.partition, event.event_time_ms, states, result, population)
        return result

    def failed(self, record: Record, exc: BaseException) -> Result:
        """A record whose processing raised: dead-letter it so it can be redriven after a fix."""
        return self._reject(record, Rejection("processing_error", f"{type(exc).__name__}: {exc}"[:500]))

    def _reject(self, record: Record, rejection: Rejection) -> Result:
        return Result("invalid", reason=rejection.reason,
                      outputs=[(DEAD_LETTER, record.key or b"", dead_letter_envelope(record, rejection, self.clock()))])

    def _publish(self, result: Result, key: bytes, change: dict) -> None:
        result.changes.append(change)
        result.outputs.append((SEGMENT_CHANGES, key, _segment_change_json(change)))

    # -- silent customers ---------------------------------------------------
    def _schedule(self, partition: int, customer_id: str, at_ms: Optional[int]) -> None:
        if at_ms is not None:
            heapq.heappush(self.reviews.setdefault(partition, []), (at_ms, customer_id))

    def _advance(self, partition: int, event_time_ms: int, states: "StateCache", result: Result,
                 population: Optional[PopulationView] = None) -> None:
        now = max(self.stream_time.get(partition, event_time_ms), event_time_ms)
        self.stream_time[partition] = now
        heap = self.reviews.get(partition)
        while heap and heap[0][0] <= now:
            at_ms, customer_id = heapq.heappop(heap)
            key = customer_id.encode()
            state = states.get(key)
            if state is None:
                continue
            if review_time_ms(state, self.cfg, self.scorer, after_ms=at_ms - 1) != at_ms:
                continue  # superseded by a later event of this customer
            before = states.counted.get(key, _NOT_LOADED)
            if before is _NOT_LOADED:
                before = contribution_of(state, self.population_config)
            outcome = review(state, self.cfg, at_ms, self.scorer, self.replay, population)
            states.counted[key] = self._recount(partition, before, state, outcome,
                                                max(at_ms, state.watermark_ms or at_ms))
            states.put(key, state, partition)
            result.metrics[customer_id] = outcome.metrics
            if outcome.change:
                self._publish(result, key, outcome.change)
            self._schedule(partition, customer_id, outcome.review_at_ms)

    def rebuild(self, partition_of: Callable[[bytes], int], items: Iterable[Tuple[bytes, bytes]],
                partitions: Iterable[int]) -> int:
        """Recreate the review heaps of ``partitions`` from (key, state) pairs; return the count."""
        self.needs_rebuild = False
        wanted = set(partitions)
        for p in wanted:
            self.reviews[p] = []
            self.stream_time.pop(p, None)
        resume = {p: _ResumePoint() for p in wanted}
        # figures of the partitions owned now, from scratch; partitions no longer owned stop publishing
        self.aggregates = {p: PopulationAggregate(self.population_config.relative_accuracy) for p in wanted}
        self.population_changed = set(wanted)
        count = 0
        for key, blob in items:
            p = partition_of(key)
            if p not in wanted:
                continue
            state = codec.decode(blob)
            contribution = contribution_of(state, self.population_config)
            if contribution is not None:
                self.aggregates[p].add(contribution)
            at = review_time_ms(state, self.cfg, self.scorer)
            if at is not None:
                self.reviews[p].append((at, state.customer_id))
                count += 1
            if state.watermark_ms is not None:
                resume[p].add(state)
        for p in wanted:
            heapq.heapify(self.reviews[p])
            resume[p].seal()
        self.resume.update(resume)
        return count

    def _resume_at(self, partition: int, source: str, offset: int) -> None:
        """The first record of a rebuilt partition: its stream time where the log resumes.

        Not the highest watermark in the table: after a crash mid-checkpoint the changelog can hold
        states that already include records being redelivered now (they reached it before the
        offsets were committed), and a stream time taken from them would fire other customers'
        reviews before their own redelivered records are re-applied (a different change under the
        same sequence). States that applied ``offset`` or later of this source are left out.
        """
        point = self.resume.pop(partition, None)
        if point is not None:
            at = point.stream_time_before(source, offset)
            if at is not None:
                self.stream_time[partition] = at

    # -- population figures ---------------------------------------------------
    def _aggregate(self, partition: int) -> PopulationAggregate:
        agg = self.aggregates.get(partition)
        if agg is None:
            agg = self.aggregates[partition] = PopulationAggregate(self.population_config.relative_accuracy)
        return agg

    def _recount(self, partition: int, before, state: CustomerState, outcome,
                 as_of_ms: Optional[int]) -> Optional[Contribution]:
        """Record the assessment in the state and move the customer's contribution; return the new one."""
        clv = getattr(outcome, "clv", None)
        if clv is not None and as_of_ms is not None:
            record_assessment(state, clv, as_of_ms, self.population_config, getattr(outcome, "metrics", None))
        agg = self.aggregates.get(partition)
        if agg is None:
            agg = self._aggregate(partition)
        after = contribution_of(state, self.population_config)
        try:
            changed = agg.update(before, after)
        except ValueError:
            # the figures missed this customer (a partition taken without a rebuild): recount from the table
            self.needs_rebuild = True
            return after
        if changed:
            self.population_changed.add(partition)
        return after

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Partitions revoked: stop publishing their figures (their next owner rebuilds and publishes)."""
        for p in partitions:
            self.aggregates.pop(p, None)
            self.population_changed.discard(p)
            self.waiting.pop(p, None)  # not acked by the shell: the next owner reads them again

    def population_summary(self, partitions: Optional[Iterable[int]] = None) -> PopulationSummary:
        """Figures of the local partitions (all owned ones by default)."""
        wanted = sorted(self.aggregates if partitions is None else set(partitions) & set(self.aggregates))
        merged = PopulationAggregate(self.population_config.relative_accuracy)
        for p in wanted:
            merged.merge(self.aggregates[p])
        policy = self.cfg.policy
        return merged.summary(policy.name, policy.version, wanted)

    def population_updates(self) -> Dict[int, bytes]:
        """Encoded figures of the owned partitions that changed since the last call (to publish)."""
        policy = self.cfg.policy
        out = {p: encode_published(self.aggregates[p], p, policy.name, policy.version)
               for p in sorted(self.population_changed) if p in self.aggregates}
        self.population_changed.clear()
        return out

    def _receive_cut(self, row: list) -> None:
        published = decode_cut(row)
        policy = self.cfg.policy
        if self.versions is None or (published.policy, published.policy_version, published.period_ms,
                                     published.cut.aggregate.relative_accuracy) != (
                policy.name, policy.version, self.population_period_ms, self.population_config.relative_accuracy):
            return  # cut under another policy or period: its owner cuts again once it runs this one
        self.versions.add(published.cut)

    def receive_population(self, blobs: Iterable[Optional[bytes]]) -> int:
        """Take published partition figures (latest per partition wins) and refresh the global view.

        Returns how many records were unreadable (skipped: the previous figures of
        that partition stay until its owner publishes again).
        """
        bad = 0
        for blob in blobs:
            if blob is None:
                continue
            try:
                row = msgpack.unpackb(blob, raw=False, strict_map_key=False)
                if isinstance(row, list) and row and row[0] == CUT_FORMAT:
                    self._receive_cut(row)
                    continue
                pub = decode_published(blob)
            except (ValueError, TypeError, IndexError, KeyError, msgpack.UnpackException):
                bad += 1
                continue
            self.published[pub.partition] = pub
        policy = self.cfg.policy
        self.population, self.global_summary = merge_published(
            self.published, policy.name, policy.version, self.population_config.relative_accuracy)
        return bad
