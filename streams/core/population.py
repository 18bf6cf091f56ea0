"""The customer base seen per segment (seeds 000 and 003): the figures a shop steers on.

This module starts as the data contract between the per-partition aggregation
(kept incrementally by the pipeline, merged across partitions and workers) and
its readers (Prometheus metrics, the query API, the what-if report). Money is in
currency units, counts are customers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Protocol, Tuple


@dataclass(frozen=True)
class SegmentFigures:
    customers: int = 0
    historical_revenue: float = 0.0  # net of refunds
    historical_margin: float = 0.0  # after goods, service and logistics costs and refund losses
    formula_clv: float = 0.0
    predicted_clv: float = 0.0  # sum over the customers the fitted model scored
    potential_clv: float = 0.0
    churned: int = 0  # customers counted as churned (definition: see the aggregation)
    nps_responses: int = 0  # customers with an NPS answer (their latest answer counts)
    nps_promoters: int = 0  # latest answer 9-10
    nps_detractors: int = 0  # latest answer 0-6
    ces_responses: int = 0  # customer-effort answers
    ces_sum: float = 0.0

    @property
    def churn_rate(self) -> Optional[float]:
        return self.churned / self.customers if self.customers else None

    @property
    def nps(self) -> Optional[float]:
        """Net Promoter Score, -100..100: % promoters minus % detractors."""
        if not self.nps_responses:
            return None
        return 100.0 * (self.nps_promoters - self.nps_detractors) / self.nps_responses

    @property
    def average_ces(self) -> Optional[float]:
        return self.ces_sum / self.ces_responses if self.ces_responses else None


@dataclass(frozen=True)
class PopulationSummary:
    policy: str
    policy_version: str
    segments: Mapping[str, SegmentFigures] = field(default_factory=dict)
    # Pareto: share of all historical revenue (margin) that comes from the top 20% of customers by it.
    revenue_share_top20: Optional[float] = None
    margin_share_top20: Optional[float] = None
    partitions: Tuple[int, ...] = ()  # the partitions these figures cover

    @property
    def customers(self) -> int:
        return sum(f.customers for f in self.segments.values())

    def revenue_share(self, segment: str) -> Optional[float]:
        total = sum(f.historical_revenue for f in self.segments.values())
        return self.segments[segment].historical_revenue / total if total else None

    def margin_share(self, segment: str) -> Optional[float]:
        total = sum(f.historical_margin for f in self.segments.values())
        return self.segments[segment].historical_margin / total if total else None


class PopulationView(Protocol):
    """Where a customer stands among all customers (every partition, every worker).

    Relative policies ("top 20% of CLV is high value", "A/B/C split equally by total
    score", RFM quintiles) ask this. ``metric`` names a value a policy declares per
    customer (see the policy's ``population_metrics``). Answers are None while the
    metric has no customers yet. ``version`` names the snapshot, so a segment change
    can say which cut-offs it was decided with.
    """

    version: str

    def size(self, metric: str) -> int: ...

    def quantile(self, metric: str, q: float) -> Optional[float]: ...

    def fraction_below(self, metric: str, value: float) -> Optional[float]: ...
