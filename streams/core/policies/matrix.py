"""Value x loyalty matrix (seed 000): four segments, each with a service level.

Value: a CLV figure against a cut-off. The cut-off is absolute
(``high_value_threshold``) or, with ``high_value_top_share`` set, relative to
all customers: the top share of the population by that figure is high value
(e.g. 0.2: the top 20% of CLV). Without a population view, or while it holds
fewer than ``min_population`` customers, the absolute threshold is the fallback.

Loyalty: repeat buying in the last year, a recent order, not a detractor on the
last NPS answer (0-6) and, once a BG/NBD model is fitted, probably still alive
(P(alive) at or above a threshold): a high-value customer drifting below it
lands in High Value / Low Loyalty, the seed's "large potential but at risk of
churn". A segment change names the dimension(s) that flipped and the figures
behind them, so a campaign engine (and a person) can see why the customer moved.

Hysteresis: once high, a dimension only drops when it falls below
``cut-off x (1 - hysteresis)``, so a customer hovering at a cut-off does not
flap between segments.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Dict, List, NamedTuple, Optional, Tuple

from ..clv import ClvFigures
from ..events import DAY_MS
from ..population import PopulationView
from ..state import CustomerState
from .base import Assessment, PAliveCrossing, Stability, earliest_after, relative_view

HV_HL = "High Value / High Loyalty"
HV_LL = "High Value / Low Loyalty"
LV_HL = "Low Value / High Loyalty"
LV_LL = "Low Value / Low Loyalty"
SEGMENTS = (HV_HL, HV_LL, LV_HL, LV_LL)
VALUE_METRICS = ("formula", "predicted", "historical_margin", "historical_revenue")
VALUE = "value"  # the population metric: the customer's value figure at its last assessment

# The seed's strategy per segment, as promises a campaign or service desk can act on.
DEFAULT_SERVICE_LEVELS: Dict[str, dict] = {
    HV_HL: {"tier": "platinum", "support_channel": "dedicated account manager", "delivery_days": 1,
            "programme": "exclusive offers, beta tests, ambassador programme"},
    HV_LL: {"tier": "gold", "support_channel": "proactive personal follow-up", "delivery_days": 2,
            "programme": "loyalty incentives, account management"},
    LV_HL: {"tier": "silver", "support_channel": "automated and self-service", "delivery_days": 3,
            "programme": "cost-efficient retention"},
    LV_LL: {"tier": "bronze", "support_channel": "web self-service", "delivery_days": 5,
            "programme": "minimal investment, conversion and upsell"},
}


@dataclass(frozen=True)
class MatrixPolicy:
    name: str = "value-loyalty-matrix"
    version: str = "1"
    value_metric: str = "formula"  # formula | predicted | historical_margin | historical_revenue
    high_value_threshold: float = 500.0  # absolute cut-off; the fallback when the cut-off is relative
    high_value_top_share: Optional[float] = None  # e.g. 0.2: the top 20% by value is high value
    min_population: int = 100
    loyalty_min_orders_365d: int = 2
    loyalty_max_recency_days: int = 120
    loyalty_min_last_nps: int = 7  # a last NPS below this (a detractor) means low loyalty
    at_risk_p_alive: float = 0.5  # P(alive) below this means at risk of churn: low loyalty
    hysteresis: float = 0.1
    min_dwell_days: float = 0.0
    service_levels: Dict[str, dict] = field(default_factory=lambda: dict(DEFAULT_SERVICE_LEVELS))
    kind: str = "matrix"

    def __post_init__(self):
        if self.value_metric not in VALUE_METRICS:
            raise ValueError(f"unknown value metric {self.value_metric!r}")
        if not 0 < self.at_risk_p_alive < 1:
            raise ValueError("at_risk_p_alive must be in (0, 1)")
        if self.high_value_top_share is not None and not 0 < self.high_value_top_share < 1:
            raise ValueError("high_value_top_share must be in (0, 1)")
        Stability(self.hysteresis, self.min_dwell_days)  # validates both
        missing = set(SEGMENTS) - set(self.service_levels)
        if missing:
            raise ValueError(f"service levels missing for {sorted(missing)}")

    @property
    def segments(self) -> Tuple[str, ...]:
        return SEGMENTS

    @cached_property  # the policy is frozen: built once, not at every assessment
    def stability(self) -> Stability:
        return Stability(self.hysteresis, self.min_dwell_days)

    def population_metrics(self, state: CustomerState, clv: ClvFigures) -> Dict[str, float]:
        return {VALUE: value_of(clv, self.value_metric)} if self.high_value_top_share is not None else {}

    def value_cut_off(self, population: Optional[PopulationView]) -> Tuple[float, Optional[str]]:
        """(cut-off, population version) - the version only when the population decided it."""
        if self.high_value_top_share is not None:
            view = relative_view(population, VALUE, self.min_population)
            if view is not None:
                cut = view.quantile(VALUE, 1 - self.high_value_top_share)
                if cut is not None:
                    return cut, view.version
        return self.high_value_threshold, None

    def assess(self, state: CustomerState, clv: ClvFigures, as_of_ms: int,
               population: Optional[PopulationView] = None) -> Assessment:
        return _assess(self, state, clv, as_of_ms, population)

    def decide(self, state: CustomerState, clv: ClvFigures, as_of_ms: int,
               population: Optional[PopulationView] = None) -> "Decision":
        """The segment (and ``manual``, first two) as ``assess`` decides it; ``explain`` gives the full assessment."""
        return _decide(self, state, clv, as_of_ms, population)

    def explain(self, state: CustomerState, clv: ClvFigures, decision: "Decision") -> Assessment:
        """``assess``'s result for ``decide``'s decision (call it before the state's segment moves)."""
        return _explain(self, state, clv, decision)

    def review_time_ms(self, state: CustomerState, after_ms: int,
                       p_alive_crossing: Optional[PAliveCrossing] = None) -> Optional[int]:
        crossing = None
        if p_alive_crossing is not None and state.segment in (HV_HL, LV_HL):
            crossing = p_alive_crossing(self.at_risk_p_alive)
        return earliest_after(_lapse_times(state, self, crossing), after_ms)


def value_of(clv: ClvFigures, metric: str) -> float:
    if metric == "formula":
        return clv.formula
    if metric == "predicted":
        return clv.predicted if clv.predicted is not None else clv.formula
    if metric == "historical_margin":
        return clv.historical_margin
    if metric == "historical_revenue":
        return clv.historical_revenue
    raise KeyError(metric)


def assess(state: CustomerState, clv: ClvFigures, policy: MatrixPolicy, as_of_ms: int,
           population: Optional[PopulationView] = None) -> Assessment:
    return _assess(policy, state, clv, as_of_ms, population)


def _assess(policy: MatrixPolicy, state: CustomerState, clv: ClvFigures, as_of_ms: int,
            population: Optional[PopulationView]) -> Assessment:
    return _explain(policy, state, clv, _decide(policy, state, clv, as_of_ms, population))


class Decision(NamedTuple):
    """What ``_decide`` found, for ``_explain`` to word: the segment first, then the figures behind it,
    taken before the engine moves the state's segment. A tuple: built at every assessment."""
    segment: str
    manual: bool
    was: Optional[str]  # the segment before this assessment
    value: float
    threshold: float
    population_version: Optional[str]
    value_cut: float  # the threshold with hysteresis
    high_value: bool
    orders_365: int
    recency: Optional[float]  # days since the last order
    max_recency: float  # with hysteresis
    high_loyalty: bool


# Decision(...) without NamedTuple's Python-level __new__: the same object, built in C
_new_tuple = tuple.__new__


def _decide(policy: MatrixPolicy, state: CustomerState, clv: ClvFigures, as_of_ms: int,
            population: Optional[PopulationView]) -> Decision:
    """The segment, without the reason text and criteria (``_explain``): the engine explains only the
    decisions that go out as a change, about a third of them."""
    was = state.segment
    was_high_value = was == HV_HL or was == HV_LL
    was_high_loyalty = was == HV_HL or was == LV_HL
    value = value_of(clv, policy.value_metric)
    threshold, population_version = policy.value_cut_off(population)
    value_cut = threshold * ((1 - policy.hysteresis) if was_high_value else 1)
    high_value = value >= value_cut

    orders_365, _ = state.window(365, as_of_ms)
    recency = None if state.last_order_ms is None else (as_of_ms - state.last_order_ms) / DAY_MS
    max_recency = policy.loyalty_max_recency_days * ((1 + policy.hysteresis) if was_high_loyalty else 1)
    high_loyalty = (orders_365 >= policy.loyalty_min_orders_365d
                    and recency is not None and recency <= max_recency
                    and not (state.last_nps is not None and state.last_nps < policy.loyalty_min_last_nps)
                    and (clv.p_alive is None or clv.p_alive >= policy.at_risk_p_alive))
    segment = (HV_HL if high_loyalty else HV_LL) if high_value else (LV_HL if high_loyalty else LV_LL)
    return _new_tuple(Decision, (segment, False, was, value, threshold, population_version, value_cut, high_value,
                                 orders_365, recency, max_recency, high_loyalty))


def _explain(policy: MatrixPolicy, state: CustomerState, clv: ClvFigures, decision: Decision) -> Assessment:
    """The assessment of ``_decide``'s decision: reason text and criteria (the state's segment unmoved)."""
    segment, was, value, threshold = decision.segment, decision.was, decision.value, decision.threshold
    population_version, value_cut, high_value = decision.population_version, decision.value_cut, decision.high_value
    orders_365, recency, max_recency = decision.orders_365, decision.recency, decision.max_recency
    high_loyalty = decision.high_loyalty
    was_high_value = was in (HV_HL, HV_LL)
    was_high_loyalty = was in (HV_HL, LV_HL)
    min_orders = policy.loyalty_min_orders_365d
    detractor = state.last_nps is not None and state.last_nps < policy.loyalty_min_last_nps
    loyal_checks = {
        "repeat_buying": orders_365 >= min_orders,
        "recent_order": recency is not None and recency <= max_recency,
        "not_detractor": not detractor,
        "probably_alive": clv.p_alive is None or clv.p_alive >= policy.at_risk_p_alive,
    }
    criteria = {"value_metric": policy.value_metric, "value": round(value, 2),
                "high_value_threshold": round(threshold, 2),
                "orders_365d": orders_365,
                "days_since_last_order": None if recency is None else round(recency, 1),
                "last_nps": state.last_nps,
                "p_alive": None if clv.p_alive is None else round(clv.p_alive, 4)}
    if policy.high_value_top_share is not None:
        criteria["high_value_top_share"] = policy.high_value_top_share
        criteria["cut_off"] = "population" if population_version is not None else "fallback"
    reasons = []
    if was is None:
        reasons.append("first assessment")
    if was is None or high_value != was_high_value:
        cmp = ">=" if high_value else "<"
        where = (f" (top {policy.high_value_top_share:.0%} cut-off)" if population_version is not None else "")
        reasons.append(f"value {'high' if high_value else 'low'}: {policy.value_metric} CLV {value:.2f} {cmp} "
                       f"{value_cut:.2f}{where}")
    if was is None or high_loyalty != was_high_loyalty:
        if high_loyalty:
            reasons.append(f"loyalty high: {orders_365} orders in 365 days, last order {recency:.0f} days ago")
        else:
            failed = [k for k, ok in loyal_checks.items() if not ok]
            detail = {"repeat_buying": f"{orders_365} orders in 365 days < {min_orders}",
                      "recent_order": ("no order yet" if recency is None
                                       else f"last order {recency:.0f} days ago > {max_recency:.0f}"),
                      "not_detractor": f"last NPS {state.last_nps} < {policy.loyalty_min_last_nps}",
                      "probably_alive": (f"at risk of churn: P(alive) {clv.p_alive or 0:.3f} < "
                                         f"{policy.at_risk_p_alive:.3f}")}
            reasons.append("loyalty low: " + ", ".join(detail[k] for k in failed))
    return Assessment(segment, "; ".join(reasons), criteria, population_version)


def next_review_ms(state: CustomerState, policy: MatrixPolicy,
                   p_alive_crossing_ms: Optional[int] = None) -> Optional[int]:
    """Earliest event time at which a silent customer's loyalty lapses, if it is high now.

    Lets the shell re-assess customers when the stream's event time passes this
    moment instead of rescoring everyone on a timer. ``p_alive_crossing_ms`` is
    when P(alive) falls below the at-risk threshold (closed form, from the model).
    """
    candidates = _lapse_times(state, policy, p_alive_crossing_ms)
    return min(candidates) if candidates else None


def _lapse_times(state: CustomerState, policy: MatrixPolicy, p_alive_crossing_ms: Optional[int]) -> List[int]:
    if state.segment not in (HV_HL, LV_HL) or state.last_order_ms is None:
        return []
    lapse_recency = state.last_order_ms + int(policy.loyalty_max_recency_days * (1 + policy.hysteresis) * DAY_MS) + 1
    # repeat_buying lapses when the order that keeps the 365-day count at the minimum leaves the window
    # (the k-th latest order day, orders counted per day: walk the days from the latest instead of
    # sorting one entry per order; tests/core/test_core_shortcuts.py compares the two)
    k = policy.loyalty_min_orders_365d
    lapse_window = None
    if k <= 0:  # not a sensible policy, but decided as before: the sorted list's [k - 1]
        order_days = sorted((d for d, (n, _) in state.days.items() for _ in range(n)), reverse=True)
        lapse_window = (order_days[k - 1] + 365) * DAY_MS if len(order_days) >= k else None
    else:
        seen = 0
        for d in sorted(state.days, reverse=True):
            n = state.days[d][0]
            if n > 0:
                seen += n
                if seen >= k:
                    lapse_window = (d + 365) * DAY_MS
                    break
    return [t for t in (lapse_recency, lapse_window, p_alive_crossing_ms) if t is not None]
