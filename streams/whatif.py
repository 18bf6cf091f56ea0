"""What-if: replay the input topics through the current and a new segmentation policy.

Both run as pure pipelines in this process, side by side over the same records
(each topic-partition in offset order, merged across topics by record time),
under their own id ``<app id>-whatif``: no consumer group, no state table, no
commit, nothing the live workers read. Each pipeline keeps an exact population
view (``ExactPopulation``) fed with its own customers' metrics, so relative
cut-offs apply as soon as the population is large enough. The customers' final
segments under both give the transition matrix current -> new. The new
policy's segment changes can be written to a separate topic, never the live one.

Both pipelines score with the same model parameters (``CLV_MODEL_PARAMS_FILE``,
else the latest published ones, else the formula), so differences come from the
policy alone.
"""
from __future__ import annotations

import heapq
import json
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, List, Optional, Tuple

from .core import codec
from .core.exact_population import ExactPopulation
from .core.prediction import ModelScorer
from .kafka.partitioning import partition_for
from .kafka.read import latest_values, read_to_end
from .models.params import ModelParameters
from .pipeline import REKEY, SEGMENT_CHANGES, Pipeline, Record
from .settings import Settings
from .topics import rekey_topic_name, source_codes


def whatif_app_id(settings: Settings) -> str:
    return f"{settings.app_id}-whatif"


def default_output_topic(settings: Settings) -> str:
    return f"{whatif_app_id(settings)}.segment-changes"


@dataclass
class PolicyRun:
    """One policy's pure pipeline with its own store and exact population."""

    pipeline: Pipeline
    population: ExactPopulation
    store: Dict[bytes, bytes] = field(default_factory=dict)
    changes: int = 0

    def feed(self, record: Record, rekey_topic: str, rekey_offsets: Dict[int, int], partitions: int) -> List[bytes]:
        """Handle one record; returns the encoded segment changes it produced."""
        result = self.pipeline.handle(record, self.store.get)
        if result.outcome == "rekeyed":  # the worker would re-send it under the customer's key: do that here
            (_, key, value), = [o for o in result.outputs if o[0] == REKEY]
            p = partition_for(key, partitions)
            rekey_offsets[p] = rekey_offsets.get(p, -1) + 1
            result = self.pipeline.handle(Record(rekey_topic, p, rekey_offsets[p], key, value, record.timestamp_ms),
                                          self.store.get)
        self.store.update(result.writes)
        for cid, metrics in result.metrics.items():
            if metrics is not None:
                self.population.update(cid, metrics)
        self.changes += len(result.changes)
        return [v for role, _, v in result.outputs if role == SEGMENT_CHANGES]

    def segments(self) -> Dict[str, Optional[str]]:
        return {k.decode(): codec.decode(v).segment for k, v in self.store.items()}


@dataclass
class WhatIfReport:
    current_policy: str
    new_policy: str
    current_segments: Tuple[str, ...]
    new_segments: Tuple[str, ...]
    transitions: Counter  # (current segment, new segment) -> customers
    records: int
    changes_current: int
    changes_new: int
    written: int = 0
    output_topic: Optional[str] = None

    def counts(self, side: int) -> Counter:
        out: Counter = Counter()
        for pair, n in self.transitions.items():
            out[pair[side]] += n
        return out

    @property
    def moved(self) -> int:
        return sum(n for (a, b), n in self.transitions.items() if a != b)

    def render(self) -> str:
        rows = [s for s in self.current_segments if self.counts(0)[s]] + \
               sorted({a for a, _ in self.transitions} - set(self.current_segments), key=str)
        cols = [s for s in self.new_segments if self.counts(1)[s]] + \
               sorted({b for _, b in self.transitions} - set(self.new_segments), key=str)
        first = max([len(str(r)) for r in rows] + [5])
        widths = [max(len(str(c)), 5) for c in cols]
        lines = [f"what-if: {self.records} records replayed; current policy {self.current_policy} "
                 f"({self.changes_current} segment changes), new policy {self.new_policy} "
                 f"({self.changes_new} segment changes)",
                 "transition matrix (customers, current -> new):",
                 " " * first + "  " + "  ".join(f"{str(c):>{w}}" for c, w in zip(cols, widths)) + "  total"]
        for r in rows:
            cells = "  ".join(f"{self.transitions.get((r, c), 0):>{w}}" for c, w in zip(cols, widths))
            lines.append(f"{str(r):<{first}}  {cells}  {self.counts(0)[r]:>5}")
        lines.append(f"{'total':<{first}}  " + "  ".join(f"{self.counts(1)[c]:>{w}}" for c, w in zip(cols, widths))
                     + f"  {sum(self.transitions.values()):>5}")
        lines.append(f"customers per segment, current: " + ", ".join(f"{s} {n}" for s, n in
                                                                      _ordered(self.counts(0), self.current_segments)))
        lines.append(f"customers per segment, new:     " + ", ".join(f"{s} {n}" for s, n in
                                                                      _ordered(self.counts(1), self.new_segments)))
        if set(self.current_segments) & set(self.new_segments):  # same segment names: count the moves
            lines.append(f"{self.moved} of {sum(self.transitions.values())} customers would move")
        if self.output_topic:
            lines.append(f"wrote {self.written} segment changes of the new policy to {self.output_topic}")
        return "\n".join(lines)


def _ordered(counts: Counter, order: Iterable[str]) -> List[Tuple[str, int]]:
    known = [(s, counts[s]) for s in order if counts[s]]
    return known + sorted(((s, n) for s, n in counts.items() if s not in order), key=lambda x: str(x[0]))


def compare(settings: Settings, new_policy, records: Iterable[Record], scorer=None,
            sink=None) -> WhatIfReport:
    """The pure comparison over ``records`` (in the order a worker would see them)."""
    codes = source_codes(settings)
    current_cfg = settings.engine_config()
    runs = []
    for cfg, version in ((current_cfg, "whatif-current"), (replace(current_cfg, policy=new_policy), "whatif-new")):
        pipeline = Pipeline(cfg, settings.edge_rules(), codes, scorer=scorer, replay=True)
        run = PolicyRun(pipeline, ExactPopulation(version))
        pipeline.population = run.population
        runs.append(run)
    current, new = runs
    rekey = rekey_topic_name(settings)
    offsets_cur: Dict[int, int] = {}
    offsets_new: Dict[int, int] = {}
    count = written = 0
    for record in records:
        count += 1
        current.feed(record, rekey, offsets_cur, settings.partitions)
        for value in new.feed(record, rekey, offsets_new, settings.partitions):
            if sink is not None:
                sink(json.loads(value)["customer_id"].encode(), value)
                written += 1
    cur_segments, new_segments = current.segments(), new.segments()
    transitions = Counter((cur_segments[c], new_segments.get(c)) for c in cur_segments)
    return WhatIfReport(f"{current_cfg.policy.name} v{current_cfg.policy.version}",
                        f"{new_policy.name} v{new_policy.version}", tuple(current_cfg.policy.segments),
                        tuple(new_policy.segments), transitions, count, current.changes, new.changes, written)


def input_records(settings: Settings, **config) -> Iterable[Record]:
    """Every input record from the beginning: each topic-partition in offset order, merged by record time.

    Reads to the end offsets at the start (on tansu exact only for topics written one record per batch).
    """
    live_sources = [t for t in source_codes(settings) if t != rekey_topic_name(settings)]
    per_tp: Dict[Tuple[str, int], List[Record]] = {}
    for topic in live_sources:
        for r in read_to_end(settings.bootstrap, topic, **config):
            per_tp.setdefault((r.topic, r.partition), []).append(
                Record(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp))
    streams = [sorted(v, key=lambda r: r.offset) for _, v in sorted(per_tp.items())]
    return heapq.merge(*streams, key=lambda r: r.timestamp_ms or 0)


def current_scorer(settings: Settings, **config):
    """The model parameters the workers would use: the pinned file, else the latest published, else none."""
    if settings.model_params_file:
        from pathlib import Path

        blob: Optional[bytes] = Path(settings.model_params_file).read_bytes()
    else:
        blob = latest_values(settings.bootstrap, settings.topic_model_parameters, **config).get(b"current")
    if not blob:
        return None
    return ModelScorer(ModelParameters.from_dict(json.loads(blob)), settings.prediction_config())


def what_if(settings: Settings, new_policy, output_topic: Optional[str] = None, write: bool = False,
            client_config: Optional[dict] = None) -> WhatIfReport:
    """Replay the input topics through both policies; optionally write the new policy's changes."""
    config = client_config or {}
    if write:
        output_topic = output_topic or default_output_topic(settings)
        if output_topic == settings.topic_segment_changes:
            raise ValueError(f"refusing to write what-if changes to the live topic {output_topic}")
    sink, prod = None, None
    if write:
        from .kafka.produce import producer

        prod = producer(settings.bootstrap, **config)
        sink = lambda key, value: prod.send(output_topic, key=key, value=value)  # noqa: E731
    try:
        report = compare(settings, new_policy, input_records(settings, **config),
                         scorer=current_scorer(settings, **config), sink=sink)
    finally:
        if prod is not None:
            prod.flush()
            prod.close()
    report.output_topic = output_topic if write else None
    return report
