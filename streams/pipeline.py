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
import heapq
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, Iterable, List, Optional, Set, Tuple

import msgpack

from .core import codec
from .core.aggregation import (PopulationAggregate, PopulationConfig, PopulationSnapshot, Published,
                               contribution_of, decode_published, encode_published, merge_published,
                               record_assessment)
from .core.engine import EngineConfig, Scorer, process, review, review_time_ms
from .core.policies.base import is_relative
from .core.population import PopulationSummary, PopulationView
from .core.snapshots import (CUT_FORMAT, DEFAULT_PERIOD_MS, VersionedPopulation, cut_key, cut_snapshot,
                             decode_cut, encode_cut, snapshot_boundary)
from .core.state import APPLIED, LATE, CustomerState
from .core.validation import EdgeRules, Rejection, decode

SEGMENT_CHANGES, DEAD_LETTER, REKEY, POPULATION = "segment_changes", "dead_letter", "rekey", "population"
DEFERRED, TICK = "deferred", "tick"  # outcomes: the record waits for a complete population version; a tick
# A record with this key on the rekey topic carries nothing: it makes the worker retry that partition's waiting records.
POPULATION_TICK = b"\x00population-tick"


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
        tick = record.key == POPULATION_TICK and self.source_codes.get(record.topic) == "r"
        if self.versions is None:
            return Result(TICK) if tick else self._handle(record, load)
        if not tick and record.partition not in self.waiting:  # the common case: nothing waits before it
            result = self._handle(record, load)
            if result is None:
                self.waiting[record.partition] = deque([record])
                result = Result(DEFERRED)
            return self._with_cuts(result)
        if not tick:
            self.waiting[record.partition].append(record)
        done = self.drain(record.partition, load)
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
        written: Dict[bytes, bytes] = {}
        while True:
            ready = self.releasable()
            if not ready:
                return self._with_cuts(self._merged(Result(TICK), done))
            for p in ready:
                for record, result in self.drain(p, lambda key: written[key] if key in written else load(key)):
                    written.update(result.writes)
                    done.append((record, result))

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

    def drain(self, partition: int, load: Callable[[bytes], Optional[bytes]]) -> List[Tuple[Record, Result]]:
        """Process the partition's waiting records, in order, while their version is complete.
        (Pure callers that own every partition, e.g. a batch rebuild, may call it for any partition.)"""
        queue = self.waiting.get(partition)
        done: List[Tuple[Record, Result]] = []
        written: Dict[bytes, bytes] = {}  # the caller stores the writes after this call: later records read them here
        while queue:
            result = self._handle(queue[0], lambda key: written[key] if key in written else load(key))
            if result is None:
                break
            written.update(result.writes)
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

    def _handle(self, record: Record, load: Callable[[bytes], Optional[bytes]]) -> Optional[Result]:
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
        population = self.population
        if self.versions is not None:
            ready, population = self._version_for(record.partition, event.event_time_ms)
            if not ready:
                return None
        state = self._load(load, key, event.customer_id)
        before = contribution_of(state, self.population_config)
        position = (f"{self.source_codes.get(record.topic, record.topic)}{record.partition}", record.offset)
        outcome = process(state, event, self.cfg, position, self.scorer, self.replay, population)
        self._recount(record.partition, before, state, outcome, state.watermark_ms)
        result = Result(outcome.status, event_type=event.type, event_time_ms=event.event_time_ms)
        if outcome.metrics is not None:
            result.metrics[event.customer_id] = outcome.metrics
        result.writes[key] = codec.encode(state)  # positions advance even for duplicates
        if outcome.status == LATE:
            late = Rejection("late", f"event_time older than the customer's watermark minus "
                                     f"{self.cfg.lateness_ms // 1000} s allowed lateness")
            result.reason = late.reason
            result.outputs.append((DEAD_LETTER, record.key or b"", dead_letter_envelope(record, late, self.clock())))
        if outcome.change:
            self._publish(result, key, outcome.change)
        if outcome.status == APPLIED:
            self._schedule(record.partition, event.customer_id, outcome.review_at_ms)
            self._advance(record.partition, event.event_time_ms, load, result, population)
        return result

    def failed(self, record: Record, exc: BaseException) -> Result:
        """A record whose processing raised: dead-letter it so it can be redriven after a fix."""
        return self._reject(record, Rejection("processing_error", f"{type(exc).__name__}: {exc}"[:500]))

    def _reject(self, record: Record, rejection: Rejection) -> Result:
        return Result("invalid", reason=rejection.reason,
                      outputs=[(DEAD_LETTER, record.key or b"", dead_letter_envelope(record, rejection, self.clock()))])

    def _load(self, load, key: bytes, customer_id: str) -> CustomerState:
        blob = load(key)
        return codec.decode(blob) if blob is not None else CustomerState(customer_id)

    def _publish(self, result: Result, key: bytes, change: dict) -> None:
        result.changes.append(change)
        result.outputs.append((SEGMENT_CHANGES, key, json.dumps(change, separators=(",", ":")).encode()))

    # -- silent customers ---------------------------------------------------
    def _schedule(self, partition: int, customer_id: str, at_ms: Optional[int]) -> None:
        if at_ms is not None:
            heapq.heappush(self.reviews.setdefault(partition, []), (at_ms, customer_id))

    def _advance(self, partition: int, event_time_ms: int, load, result: Result,
                 population: Optional[PopulationView] = None) -> None:
        now = max(self.stream_time.get(partition, event_time_ms), event_time_ms)
        self.stream_time[partition] = now
        heap = self.reviews.get(partition)
        while heap and heap[0][0] <= now:
            at_ms, customer_id = heapq.heappop(heap)
            key = customer_id.encode()
            blob = result.writes.get(key) or load(key)
            if blob is None:
                continue
            state = codec.decode(blob)
            if review_time_ms(state, self.cfg, self.scorer, after_ms=at_ms - 1) != at_ms:
                continue  # superseded by a later event of this customer
            before = contribution_of(state, self.population_config)
            outcome = review(state, self.cfg, at_ms, self.scorer, self.replay, population)
            self._recount(partition, before, state, outcome, max(at_ms, state.watermark_ms or at_ms))
            result.writes[key] = codec.encode(state)
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
            wm = state.watermark_ms
            if wm is not None and wm > self.stream_time.get(p, wm - 1):
                self.stream_time[p] = wm
        for p in wanted:
            heapq.heapify(self.reviews[p])
        return count

    # -- population figures ---------------------------------------------------
    def _recount(self, partition: int, before, state: CustomerState, outcome, as_of_ms: Optional[int]) -> None:
        """Record the assessment in the state and move the customer's contribution."""
        clv = getattr(outcome, "clv", None)
        if clv is not None and as_of_ms is not None:
            record_assessment(state, clv, as_of_ms, self.population_config, getattr(outcome, "metrics", None))
        agg = self.aggregates.get(partition)
        if agg is None:
            agg = self.aggregates[partition] = PopulationAggregate(self.population_config.relative_accuracy)
        try:
            changed = agg.update(before, contribution_of(state, self.population_config))
        except ValueError:
            # the figures missed this customer (a partition taken without a rebuild): recount from the table
            self.needs_rebuild = True
            return
        if changed:
            self.population_changed.add(partition)

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
