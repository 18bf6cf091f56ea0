"""RFM: recency, frequency and monetary quintile scores 1-5 and named segments.

Scores: each dimension is scored 1 (worst) to 5 (best) by quintile over all
customers with an order: recency by the time of the last order (later is
better), frequency by the number of orders, monetary by net revenue. The
population metrics are the raw figures (last-order time, orders, net
revenue), which change only with the customer's own events; a customer's
quintile is 1 + floor(5 x share of customers below it), capped at 5. Without a
population view (or below ``min_population``), the absolute ``fallback``
bounds apply (recency in days since the last order: fewer is better).

Segments: the standard R x FM grid, FM = round half up of (F + M) / 2 (e.g. the
grid popularised by Putler and the common R-F "segment map"):

    R \\ FM   1            2-3                  4-5
    5        New          Potential Loyalist   Champions
    4        Promising    Potential Loyalist   Loyal
    3        About to Sleep / Need Attention (FM 3)  Loyal
    1-2      Hibernating (Lost at R1 FM1) / At Risk (FM 3-4) / Can't Lose Them (FM 5)

(exactly: R3 FM1-2 About to Sleep, R3 FM3 Need Attention; R1-2 FM1-2 Hibernating, R1 FM1 Lost,
R1-2 FM3-4 At Risk, R1-2 FM5 Can't Lose Them). A policy file may declare its own
grid; rules are tried in order and must cover all 25 (R, FM) cells.
Customers without an order have no RFM scores: they are ``no_orders_segment``.

Hysteresis: a customer keeps its segment while scores within the band (each
figure moved by up to ``hysteresis`` of itself in either direction; recency as
days since the last order) could still place it there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from itertools import product
from typing import Dict, List, Mapping, Optional, Tuple

from ..clv import ClvFigures
from ..events import DAY_MS
from ..population import PopulationView
from ..state import CustomerState
from .base import Assessment, PAliveCrossing, Stability, earliest_after, relative_view

LAST_ORDER, ORDERS, MONETARY = "last_order_ms", "orders", "net_revenue"
DIMENSIONS = ("recency", "frequency", "monetary")


@dataclass(frozen=True)
class RfmRule:
    name: str
    recency: Tuple[int, int]  # inclusive score range
    fm: Tuple[int, int]
    service_level: Mapping[str, object]

    def matches(self, r: int, fm: int) -> bool:
        return self.recency[0] <= r <= self.recency[1] and self.fm[0] <= fm <= self.fm[1]


def _level(tier: str, channel: str, days: int, programme: str) -> dict:
    return {"tier": tier, "support_channel": channel, "delivery_days": days, "programme": programme}


STANDARD_RULES: Tuple[RfmRule, ...] = (
    RfmRule("Champions", (5, 5), (4, 5), _level("platinum", "dedicated account manager", 1,
                                                 "reward, early access, ambassador programme")),
    RfmRule("Loyal", (3, 4), (4, 5), _level("gold", "priority line", 2, "upsell, loyalty programme")),
    RfmRule("Potential Loyalist", (4, 5), (2, 3), _level("silver", "priority line", 2, "membership offer")),
    RfmRule("New", (5, 5), (1, 1), _level("silver", "onboarding", 3, "onboarding journey")),
    RfmRule("Promising", (4, 4), (1, 1), _level("bronze", "self-service", 3, "brand awareness, free trials")),
    RfmRule("Need Attention", (3, 3), (3, 3), _level("silver", "proactive follow-up", 3, "limited-time offers")),
    RfmRule("About to Sleep", (3, 3), (1, 2), _level("bronze", "self-service", 5, "reactivation, popular products")),
    RfmRule("Can't Lose Them", (1, 2), (5, 5), _level("gold", "personal call", 2, "win-back, renewals")),
    RfmRule("At Risk", (1, 2), (3, 4), _level("silver", "personal email", 3, "personalised win-back")),
    RfmRule("Lost", (1, 1), (1, 1), _level("bronze", "web self-service", 5, "minimal investment, revive or let go")),
    RfmRule("Hibernating", (1, 2), (1, 2), _level("bronze", "web self-service", 5, "relevant offers, low cost")),
)
NO_ORDERS = "Prospect"
NO_ORDERS_LEVEL = _level("bronze", "web self-service", 5, "first-order conversion")

# Fallback bounds: 4 ascending values split a figure into 5 scores.
FALLBACK = {"recency_days": (30.0, 90.0, 180.0, 365.0),  # fewer days since the last order is better
            "frequency": (2.0, 3.0, 5.0, 8.0),
            "monetary": (100.0, 250.0, 500.0, 1000.0)}


def check_coverage(rules) -> None:
    holes = [(r, fm) for r, fm in product(range(1, 6), repeat=2) if not any(x.matches(r, fm) for x in rules)]
    if holes:
        raise ValueError(f"RFM rules leave (R, FM) cells without a segment: {holes}")


@dataclass(frozen=True)
class RfmPolicy:
    name: str = "rfm"
    version: str = "1"
    rules: Tuple[RfmRule, ...] = STANDARD_RULES
    no_orders_segment: str = NO_ORDERS
    no_orders_service_level: Mapping[str, object] = None  # default NO_ORDERS_LEVEL
    fallback: Mapping[str, Tuple[float, ...]] = None  # default FALLBACK
    min_population: int = 50
    hysteresis: float = 0.1
    min_dwell_days: float = 0.0
    kind: str = "rfm"

    def __post_init__(self):
        Stability(self.hysteresis, self.min_dwell_days)
        if self.no_orders_service_level is None:
            object.__setattr__(self, "no_orders_service_level", dict(NO_ORDERS_LEVEL))
        if self.fallback is None:
            object.__setattr__(self, "fallback", dict(FALLBACK))
        for key, bounds in self.fallback.items():
            if key not in FALLBACK or len(bounds) != 4 or list(bounds) != sorted(set(bounds)):
                raise ValueError(f"fallback {key}: four strictly ascending bounds expected")
        if set(self.fallback) != set(FALLBACK):
            raise ValueError(f"fallback needs {sorted(FALLBACK)}")
        check_coverage(self.rules)
        if len(set(self.segments)) != len(self.segments):
            raise ValueError("segment names must be unique")

    @property
    def segments(self) -> Tuple[str, ...]:
        names: List[str] = []
        for rule in self.rules:
            if rule.name not in names:
                names.append(rule.name)
        return tuple(names) + (self.no_orders_segment,)

    @property
    def service_levels(self) -> Dict[str, dict]:
        levels = {}
        for rule in self.rules:
            levels.setdefault(rule.name, dict(rule.service_level))
        levels[self.no_orders_segment] = dict(self.no_orders_service_level)
        return levels

    @cached_property  # the policy is frozen: built once, not at every assessment
    def stability(self) -> Stability:
        return Stability(self.hysteresis, self.min_dwell_days)

    def population_metrics(self, state: CustomerState, clv: ClvFigures) -> Dict[str, float]:
        if state.last_order_ms is None:
            return {}
        return {LAST_ORDER: float(state.last_order_ms), ORDERS: float(state.order_count),
                MONETARY: clv.historical_revenue}

    def segment_of(self, r: int, fm: int) -> str:
        for rule in self.rules:
            if rule.matches(r, fm):
                return rule.name
        raise AssertionError("coverage is checked at construction")

    # -- scores ------------------------------------------------------------------
    def _scorers(self, population: Optional[PopulationView], as_of_ms: int):
        """Per dimension: figure -> score 1..5, and the population version if relative."""
        views = [relative_view(population, m, self.min_population) for m in (LAST_ORDER, ORDERS, MONETARY)]
        if all(v is not None for v in views):
            def quintile(metric: str):
                def score(value: float) -> int:
                    below = population.fraction_below(metric, value)
                    return 1 if below is None else min(5, 1 + math.floor(5 * below + 1e-9))
                return score
            recency = quintile(LAST_ORDER)
            return (lambda last_ms: recency(last_ms)), quintile(ORDERS), quintile(MONETARY), population.version

        def bounded(bounds, higher_is_better=True):
            return lambda v: (1 + sum(v >= b for b in bounds)) if higher_is_better else 5 - sum(v >= b for b in bounds)
        rec = bounded(self.fallback["recency_days"], higher_is_better=False)
        return ((lambda last_ms: rec((as_of_ms - last_ms) / DAY_MS)), bounded(self.fallback["frequency"]),
                bounded(self.fallback["monetary"]), None)

    def assess(self, state: CustomerState, clv: ClvFigures, as_of_ms: int,
               population: Optional[PopulationView] = None) -> Assessment:
        first = "first assessment; " if state.segment is None else ""
        if state.last_order_ms is None:
            return Assessment(self.no_orders_segment, first + "no order yet: no RFM scores", {})
        r_of, f_of, m_of, version = self._scorers(population, as_of_ms)
        last, orders, money = state.last_order_ms, float(state.order_count), clv.historical_revenue
        r, f, m = r_of(last), f_of(orders), m_of(money)
        fm = math.floor((f + m) / 2 + 0.5)
        segment = self.segment_of(r, fm)
        days = (as_of_ms - last) / DAY_MS
        criteria = {"recency_days": round(days, 1), "orders": state.order_count, "net_revenue": round(money, 2),
                    "r": r, "f": f, "m": m, "fm": fm, "cut_off_source": "population" if version else "fallback"}
        reason = f"R{r} F{f} M{m} (FM {fm}) -> {segment}"
        if segment != state.segment and state.segment in self.segments and self.hysteresis:
            h = self.hysteresis
            r_band = {r_of(last - int(h * days * DAY_MS)), r_of(min(as_of_ms, last + int(h * days * DAY_MS)))} | {r}
            f_band = {f_of(orders * (1 - h)), f_of(orders * (1 + h)), f}
            m_band = {m_of(money - abs(money) * h), m_of(money + abs(money) * h), m}
            held = any(self.segment_of(rr, math.floor((ff + mm) / 2 + 0.5)) == state.segment
                       for rr in range(min(r_band), max(r_band) + 1)
                       for ff in range(min(f_band), max(f_band) + 1)
                       for mm in range(min(m_band), max(m_band) + 1))
            if held:
                segment = state.segment
                reason += f", held in {segment} by the {h:.0%} hysteresis band"
        return Assessment(segment, first + reason, criteria, version)

    def review_time_ms(self, state: CustomerState, after_ms: int,
                       p_alive_crossing: Optional[PAliveCrossing] = None) -> Optional[int]:
        """With fallback bounds, recency scores fall as days pass: review at each recency bound (and its
        hysteresis-widened twin). With a population, recency ranks do not move with time alone."""
        if state.last_order_ms is None:
            return None
        times = []
        for b in self.fallback["recency_days"]:
            for factor in (1.0, 1 / (1 - self.hysteresis)):
                times.append(state.last_order_ms + math.ceil(b * factor * DAY_MS))
        return earliest_after(times, after_ms)
