"""Per-partition population figures, kept incrementally, merged across partitions.

Each customer *contributes* to its partition's aggregate: one customer in its
segment, its historical revenue and margin, CLV sums, churn, NPS and CES, and
one value per named metric to the metric's distribution. Updating a customer
removes its previous contribution and adds the new one. Everything is integer
(counts, cents), so add/remove/merge are exact and order-independent: after any
sequence of updates an aggregate equals the one rebuilt from the table.

Recovering the previous contribution exactly: the parts that follow from the
state (segment, revenue, margin, last NPS, CES) are derived from the old state;
the parts that depended on the moment and the model of the assessment (CLV
figures, churn, the policy's metric values) are not derivable later (the scorer
may have changed, time moved on), so the engine's last assessment leaves them in
``CustomerState.population_record`` (a few bytes; see ``record_assessment``).

Churn (documented in the README): at the customer's latest assessment, a
customer scored by the fitted model is churned when P(alive) is below the
policy's at-risk threshold; without a model, when the last order is more than
``churn_days`` before the assessment time. Customers without orders are not
churned (they have not started). Silent customers are re-assessed only at their
review times (loyalty lapse, P(alive) crossing), so their churn flag can lag.

Metric values are kept to two decimals (cents for money).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from operator import add, itemgetter, sub
from typing import Dict, Iterable, Mapping, NamedTuple, Optional, Tuple

import msgpack

from .clv import ClvFigures
from .distribution import DEFAULT_RELATIVE_ACCURACY, LogHistogram, histogram_for, to_cents
from .events import DAY_MS
from .population import PopulationSummary, SegmentFigures
from .state import CustomerState

# The per-customer metrics tracked without a policy declaring them. "clv" is the
# policy's value metric (``MatrixPolicy.value_metric``; formula CLV otherwise).
DEFAULT_METRICS = ("clv", "historical_revenue", "historical_margin")

# Per segment, in this order (money in cents); mirrors SegmentFigures.
_FIELDS = ("customers", "historical_revenue", "historical_margin", "formula_clv", "predicted_clv",
           "potential_clv", "churned", "nps_responses", "nps_promoters", "nps_detractors", "ces_responses",
           "ces_sum")
_MONEY = {1, 2, 3, 4, 5}
_name = itemgetter(0)  # of a (name, hundredths) metric pair

FORMAT_VERSION = 1  # of the published aggregate blob


@dataclass(frozen=True)
class PopulationConfig:
    value_metric: str = "formula"  # what "clv" means: formula | predicted | historical_margin | historical_revenue
    at_risk_p_alive: float = 0.5  # churned below this P(alive) when the model scores
    churn_days: float = 365.0  # churned after this many days without an order when no model scores
    relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY

    @classmethod
    def for_policy(cls, policy, churn_days: float = 365.0,
                   relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
                   at_risk_p_alive: float = 0.5) -> "PopulationConfig":
        """``at_risk_p_alive`` counts for policies that declare none (criteria, RFM)."""
        return cls(value_metric=getattr(policy, "value_metric", "formula"),
                   at_risk_p_alive=getattr(policy, "at_risk_p_alive", at_risk_p_alive), churn_days=churn_days,
                   relative_accuracy=relative_accuracy)


# -- the customer's side ---------------------------------------------------------
def record_assessment(state: CustomerState, clv: ClvFigures, as_of_ms: int, cfg: PopulationConfig,
                      metrics: Optional[Mapping[str, float]] = None) -> None:
    """Leave in ``state`` what its contribution needs and cannot derive later.

    ``[churned, formula cents, predicted cents | None, potential cents | None]``
    plus, when the policy declared metric values other than the derivable
    defaults, ``{name: hundredths}``.
    """
    if clv.p_alive is not None:
        churned = clv.p_alive < cfg.at_risk_p_alive
    else:
        churned = state.last_order_ms is not None and as_of_ms - state.last_order_ms > cfg.churn_days * DAY_MS
    record = [int(churned), to_cents(clv.formula),
              None if clv.predicted is None else to_cents(clv.predicted),
              None if clv.potential is None else to_cents(clv.potential)]
    extras = {}
    if metrics:
        derived = _derived_metrics(state, record, cfg)
        for name in sorted(metrics):
            value = metrics[name]
            if value is None or value != value:  # None or NaN: no value to rank
                continue
            cents = to_cents(value)
            if derived.get(name) != cents:
                extras[name] = cents
    if extras:
        record.append(extras)
    state.population_record = record


def _derived_metrics(state: CustomerState, record: Optional[list], cfg: PopulationConfig) -> Dict[str, int]:
    revenue, margin = state.net_revenue_cents, state.margin_cents
    metrics = {"historical_revenue": revenue, "historical_margin": margin}
    if record is not None:
        metrics["clv"] = _clv_cents(record, revenue, margin, cfg.value_metric)
    return metrics


def _clv_cents(record: list, revenue: int, margin: int, value_metric: str) -> int:
    """The "clv" metric: the policy's value figure (formula CLV for a metric it does not know)."""
    formula = record[1]
    if value_metric == "predicted":
        predicted = record[2]
        return formula if predicted is None else predicted
    if value_metric == "historical_margin":
        return margin
    if value_metric == "historical_revenue":
        return revenue
    return formula


class Contribution(NamedTuple):  # a tuple: built twice per event, compared at every update
    segment: str
    figures: Tuple[int, ...]  # in _FIELDS order
    metrics: Tuple[Tuple[str, int], ...]  # (name, hundredths), sorted by name


def contribution_of(state: CustomerState, cfg: PopulationConfig) -> Optional[Contribution]:
    """What this customer adds to its partition's figures; None until it has a segment.

    A pure function of the stored state (and the configuration), so the value
    added at one update is recomputed exactly from the stored state at the next.
    A state written before records existed (codec format 1) contributes without
    CLV figures until its next assessment.
    """
    if state.segment is None:
        return None
    record = state.population_record
    revenue, margin = state.net_revenue_cents, state.margin_cents
    formula = predicted = potential = churned = 0
    if record is not None:
        churned, formula, predicted, potential = record[0], record[1], record[2] or 0, record[3] or 0
    nps = state.last_nps
    figures = (1, revenue, margin, formula, predicted, potential, churned,
               int(nps is not None), int(nps is not None and nps >= 9), int(nps is not None and nps <= 6),
               state.ces_count, state.ces_sum)
    if record is None:  # the derived metrics alone, already sorted by name
        return Contribution(state.segment, figures, (("historical_margin", margin), ("historical_revenue", revenue)))
    clv = _clv_cents(record, revenue, margin, cfg.value_metric)
    if len(record) <= 4:
        return Contribution(state.segment, figures,
                            (("clv", clv), ("historical_margin", margin), ("historical_revenue", revenue)))
    metrics = {"historical_revenue": revenue, "historical_margin": margin, "clv": clv}
    metrics.update(record[4])
    return Contribution(state.segment, figures, tuple(sorted(metrics.items())))


# -- the partition's side ----------------------------------------------------------
class PopulationAggregate:
    """Segment totals and metric distributions of a set of customers (a partition, or merged)."""

    __slots__ = ("relative_accuracy", "segments", "metrics")

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY):
        self.relative_accuracy = relative_accuracy
        self.segments: Dict[str, list] = {}
        self.metrics: Dict[str, LogHistogram] = {}

    def add(self, c: Contribution, sign: int = 1) -> None:
        totals = self.segments.get(c.segment)
        if totals is None:
            if sign < 0:
                raise ValueError(f"removing a customer from empty segment {c.segment!r}")
            totals = self.segments[c.segment] = [0] * len(_FIELDS)
        if sign == 1 or sign == -1:  # totals[i] += sign * x, in C
            totals[:] = map(add if sign == 1 else sub, totals, c.figures)
        else:
            totals[:] = [t + sign * x for t, x in zip(totals, c.figures)]
        if totals[0] == 0:
            if any(totals):
                raise ValueError(f"segment {c.segment!r} has no customers but non-zero sums: {totals}")
            del self.segments[c.segment]
        for name, cents in c.metrics:
            self._move(name, cents, sign)

    def update(self, old: Optional[Contribution], new: Optional[Contribution]) -> bool:
        """Replace a customer's contribution; True when the figures changed."""
        if old == new:
            return False
        if old is not None and new is not None and old.segment == new.segment:
            # the common case (an order, a review): move only what changed
            totals = self.segments.get(old.segment)
            if totals is None:
                raise ValueError(f"removing a customer from empty segment {old.segment!r}")
            totals[:] = map(add, totals, map(sub, new.figures, old.figures))  # totals[i] += new - old, in C
            was, now = old.metrics, new.metrics
            if was == now:
                return True
            if len(was) == len(now) and list(map(_name, was)) == list(map(_name, now)):
                # the same metrics (both sorted by name), some values moved: each histogram on its own
                # (moves of different metrics commute, so this equals the set difference below)
                metrics = self.metrics
                for (name, a), (_, b) in zip(was, now):
                    if a != b:
                        h = metrics.get(name)
                        if h is None or h.count == 1:  # the removal would empty it: the two steps as they are
                            self._move(name, a, -1)
                            self._move(name, b, 1)
                        else:  # _move(a, -1) then _move(b, 1), looked up once
                            h.shift_cents(a, b)
                return True
            for name, cents in sorted(set(was) - set(now)):
                self._move(name, cents, -1)
            for name, cents in sorted(set(now) - set(was)):
                self._move(name, cents, 1)
            return True
        if old is not None:
            self.add(old, -1)
        if new is not None:
            self.add(new, 1)
        return True

    def _move(self, name: str, cents: int, sign: int) -> None:
        h = self.metrics.get(name)
        if h is None:
            h = self.metrics[name] = histogram_for(name, self.relative_accuracy)
        h.add_cents(cents, sign)
        if not h.count:
            del self.metrics[name]

    def merge(self, other: "PopulationAggregate") -> "PopulationAggregate":
        for segment, totals in other.segments.items():
            mine = self.segments.setdefault(segment, [0] * len(_FIELDS))
            for i, x in enumerate(totals):
                mine[i] += x
        for name, h in other.metrics.items():
            self.metrics.setdefault(name, histogram_for(name, self.relative_accuracy)).merge(h)
        return self

    @classmethod
    def of(cls, states: Iterable[CustomerState], cfg: PopulationConfig) -> "PopulationAggregate":
        agg = cls(cfg.relative_accuracy)
        for state in states:
            c = contribution_of(state, cfg)
            if c is not None:
                agg.add(c)
        return agg

    # -- figures ----------------------------------------------------------------
    @property
    def customers(self) -> int:
        return sum(t[0] for t in self.segments.values())

    def figures(self) -> Dict[str, SegmentFigures]:
        out = {}
        for segment in sorted(self.segments):
            t = self.segments[segment]
            out[segment] = SegmentFigures(**{f: (t[i] / 100 if i in _MONEY else t[i])
                                             for i, f in enumerate(_FIELDS)})
        return out

    def summary(self, policy: str, policy_version: str, partitions: Iterable[int]) -> PopulationSummary:
        revenue, margin = self.metrics.get("historical_revenue"), self.metrics.get("historical_margin")
        return PopulationSummary(policy, policy_version, self.figures(),
                                 revenue_share_top20=revenue.top_share(0.2) if revenue else None,
                                 margin_share_top20=margin.top_share(0.2) if margin else None,
                                 partitions=tuple(sorted(partitions)))

    # -- encoding ------------------------------------------------------------
    def to_list(self) -> list:
        return [self.relative_accuracy, {s: self.segments[s] for s in sorted(self.segments)},
                {m: self.metrics[m].to_list() for m in sorted(self.metrics)}]

    @classmethod
    def from_list(cls, row: list) -> "PopulationAggregate":
        agg = cls(row[0])
        agg.segments = {s: list(t) for s, t in row[1].items()}
        agg.metrics = {m: LogHistogram.from_list(h) for m, h in row[2].items()}
        return agg

    def __eq__(self, other) -> bool:
        return isinstance(other, PopulationAggregate) and self.to_list() == other.to_list()


def encode_published(aggregate: PopulationAggregate, partition: int, policy: str, policy_version: str) -> bytes:
    """The record a worker publishes for a partition it owns (canonical: same figures, same bytes)."""
    return msgpack.packb([FORMAT_VERSION, partition, policy, policy_version, aggregate.to_list()], use_bin_type=True)


@dataclass(frozen=True)
class Published:
    partition: int
    policy: str
    policy_version: str
    aggregate: PopulationAggregate


def decode_published(blob: bytes) -> Published:
    row = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    if not isinstance(row, list) or not row or row[0] != FORMAT_VERSION:
        raise ValueError(f"unknown population aggregate format {row[0] if isinstance(row, list) and row else row!r}")
    return Published(row[1], row[2], row[3], PopulationAggregate.from_list(row[4]))


# -- the global view ---------------------------------------------------------------
class PopulationSnapshot:
    """A ``PopulationView`` over merged partitions; ``version`` is given (an event-time boundary,
    see ``snapshots``) or a hash of the content."""

    def __init__(self, aggregate: PopulationAggregate, partitions: Iterable[int], version: Optional[str] = None):
        self.aggregate = aggregate
        self.partitions = tuple(sorted(partitions))
        if version is None:
            content = msgpack.packb([list(self.partitions), aggregate.to_list()], use_bin_type=True)
            version = hashlib.blake2b(content, digest_size=8).hexdigest()
        self.version = version

    def size(self, metric: str) -> int:
        h = self.aggregate.metrics.get(metric)
        return h.count if h else 0

    def quantile(self, metric: str, q: float) -> Optional[float]:
        h = self.aggregate.metrics.get(metric)
        return h.quantile(q) if h else None

    def fraction_below(self, metric: str, value: float) -> Optional[float]:
        h = self.aggregate.metrics.get(metric)
        return h.fraction_below(value) if h else None

    def top_share(self, metric: str, fraction: float = 0.2) -> Optional[float]:
        h = self.aggregate.metrics.get(metric)
        return h.top_share(fraction) if h else None

    def __repr__(self) -> str:
        return f"PopulationSnapshot(version={self.version}, partitions={self.partitions}, customers={self.aggregate.customers})"


def merge_published(latest: Mapping[int, Published], policy: str, policy_version: str,
                    relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> Tuple[PopulationSnapshot, PopulationSummary]:
    """Merge the latest aggregate per partition into the global view and summary.

    Partitions published under another policy (version) or accuracy are left out
    (their owner republishes once it runs this policy); ``partitions`` says which
    are covered.
    """
    merged = PopulationAggregate(relative_accuracy)
    covered = []
    for p in sorted(latest):
        pub = latest[p]
        if (pub.policy, pub.policy_version, pub.aggregate.relative_accuracy) != (policy, policy_version,
                                                                                 relative_accuracy):
            continue
        merged.merge(pub.aggregate)
        covered.append(p)
    return PopulationSnapshot(merged, covered), merged.summary(policy, policy_version, covered)


def summary_dict(summary: PopulationSummary) -> dict:
    """JSON-ready form of a summary, with the derived per-segment rates and shares."""
    from dataclasses import asdict

    segments = {}
    for name, f in summary.segments.items():
        d = asdict(f)
        d.update(churn_rate=f.churn_rate, nps=f.nps, average_ces=f.average_ces,
                 revenue_share=summary.revenue_share(name), margin_share=summary.margin_share(name))
        segments[name] = d
    return {"policy": summary.policy, "policy_version": summary.policy_version, "customers": summary.customers,
            "partitions": list(summary.partitions), "revenue_share_top20": summary.revenue_share_top20,
            "margin_share_top20": summary.margin_share_top20, "segments": segments}
