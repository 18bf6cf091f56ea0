"""Criteria scoring with A/B/C segments and an exit segment (seed 003).

The seed's recipe, step by step:

1. Financial and strategic criteria, each with 3-4 answer categories scored
   1..n, 1 the least favourable: a criterion reads one customer figure
   (``features.FEATURES``) and ascending ``bounds`` split it into categories
   (value < bounds[0] is category 1 ...; reversed when lower is better).
2. Total score: the (optionally weighted) sum of the category scores.
3. Exit: customers in the lowest category on (nearly) all criteria
   (``lowest_on_at_least`` of them) go to the exit segment - the customers to
   part with, politely. They are left out of the ranking. A grace period keeps
   brand-new customers (no history yet) out of it.
4. The others are split equally over the segments (A, B, C[, D]) by rank of
   total score: the cut-offs are population quantiles of the total score
   (k segments: quantiles 1-1/k, 1-2/k, ...). Customers tied on a cut-off all
   go to the higher segment, so a cut never runs through one total score.
   Without a population view or below ``min_population`` customers, the
   declared ``fallback_cut_offs`` (absolute total scores) apply.
5. Refinements: a segment may require a minimum score on criteria (``"*"``:
   every criterion; "A customers score at least 3 on every criterion"); a
   customer failing it falls to the next segment (the last regular segment
   has no minimum). Manual overrides per customer id win over everything.

Hysteresis: a customer keeps its segment while its total stays at or above
``cut-off x (1 - hysteresis)``.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property
from typing import Dict, List, Mapping, Optional, Tuple

from ..clv import ClvFigures
from ..events import DAY_MS
from ..population import PopulationView
from ..state import CustomerState
from .base import Assessment, PAliveCrossing, Stability, earliest_after, relative_view
from .features import FEATURES, time_points

TOTAL = "total_score"  # the population metric: total score as of the customer's latest event (exit excluded)
EVERY = "*"


@dataclass(frozen=True)
class Criterion:
    name: str
    feature: str
    bounds: Tuple[float, ...]  # ascending: len(bounds) + 1 categories
    higher_is_better: bool = True
    weight: float = 1.0
    missing_score: int = 1  # category score when the customer has no value (no NPS answer yet...)

    def __post_init__(self):
        if self.feature not in FEATURES:
            raise ValueError(f"criterion {self.name}: unknown feature {self.feature!r}")
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError(f"criterion {self.name}: bounds must be strictly ascending")
        if self.weight <= 0:
            raise ValueError(f"criterion {self.name}: weight must be positive")
        if not 1 <= self.missing_score <= self.categories:
            raise ValueError(f"criterion {self.name}: missing_score must be 1..{self.categories}")

    @property
    def categories(self) -> int:
        return len(self.bounds) + 1

    def score(self, value: Optional[float]) -> int:
        if value is None:
            return self.missing_score
        k = bisect_right(self.bounds, value)  # 0..len(bounds)
        return k + 1 if self.higher_is_better else self.categories - k


@dataclass(frozen=True)
class ScoredSegment:
    name: str
    service_level: Mapping[str, object]
    min_scores: Mapping[str, int] = field(default_factory=dict)  # criterion name or "*" -> minimum score


@dataclass(frozen=True)
class ExitRule:
    name: str
    service_level: Mapping[str, object]
    lowest_on_at_least: Optional[int] = None  # None: every criterion
    grace_days: float = 0.0  # customers younger than this (tenure) are never put in exit


@dataclass(frozen=True)
class CriteriaPolicy:
    name: str
    version: str
    criteria: Tuple[Criterion, ...]
    ranked: Tuple[ScoredSegment, ...]  # best first: A, B, C[, D]
    fallback_cut_offs: Tuple[float, ...]  # descending total scores: >= [0] is A, >= [1] is B ...
    exit: Optional[ExitRule] = None
    overrides: Mapping[str, str] = field(default_factory=dict)  # customer id -> segment
    min_population: int = 30
    hysteresis: float = 0.1
    min_dwell_days: float = 0.0
    kind: str = "criteria"

    def __post_init__(self):
        Stability(self.hysteresis, self.min_dwell_days)
        names = [c.name for c in self.criteria]
        if not names or len(set(names)) != len(names):
            raise ValueError("criteria need unique names (at least one)")
        if not 2 <= len(self.ranked) <= 4:
            raise ValueError("2 to 4 ranked segments (the seed advises 3 or 4) plus the exit segment")
        if len(self.fallback_cut_offs) != len(self.ranked) - 1:
            raise ValueError(f"fallback_cut_offs needs {len(self.ranked) - 1} total scores (one per boundary)")
        if list(self.fallback_cut_offs) != sorted(set(self.fallback_cut_offs), reverse=True):
            raise ValueError("fallback_cut_offs must be strictly descending")
        if len(set(self.segments)) != len(self.segments):
            raise ValueError("segment names must be unique")
        for seg in self.ranked:
            for crit, minimum in seg.min_scores.items():
                if crit != EVERY and crit not in names:
                    raise ValueError(f"segment {seg.name}: min_scores names unknown criterion {crit!r}")
                if minimum < 1:
                    raise ValueError(f"segment {seg.name}: minimum score must be at least 1")
        if self.ranked[-1].min_scores:
            raise ValueError(f"the last ranked segment ({self.ranked[-1].name}) cannot require minimum scores")
        if self.exit is not None and self.exit.lowest_on_at_least is not None \
                and not 1 <= self.exit.lowest_on_at_least <= len(self.criteria):
            raise ValueError(f"exit.lowest_on_at_least must be 1..{len(self.criteria)}")
        unknown = sorted(set(self.overrides.values()) - set(self.segments))
        if unknown:
            raise ValueError(f"overrides name unknown segments {unknown}")

    @property
    def segments(self) -> Tuple[str, ...]:
        return tuple(s.name for s in self.ranked) + ((self.exit.name,) if self.exit else ())

    @property
    def service_levels(self) -> Dict[str, dict]:
        levels = {s.name: dict(s.service_level) for s in self.ranked}
        if self.exit:
            levels[self.exit.name] = dict(self.exit.service_level)
        return levels

    @cached_property  # the policy is frozen: built once, not at every assessment
    def stability(self) -> Stability:
        return Stability(self.hysteresis, self.min_dwell_days)

    # -- scoring ---------------------------------------------------------------
    def scores(self, state: CustomerState, clv: ClvFigures, as_of_ms: int) -> List[Tuple[Criterion, object, int]]:
        out = []
        for c in self.criteria:
            value = FEATURES[c.feature](state, clv, as_of_ms)
            out.append((c, value, c.score(value)))
        return out

    def total(self, scored) -> float:
        return sum(c.weight * s for c, _, s in scored)

    def is_exit(self, state: CustomerState, scored, as_of_ms: int) -> bool:
        if self.exit is None:
            return False
        start = state.tenure_start_ms
        if start is not None and as_of_ms - start < self.exit.grace_days * DAY_MS:
            return False
        lowest = sum(1 for _, _, s in scored if s == 1)
        need = self.exit.lowest_on_at_least or len(self.criteria)
        return lowest >= need

    def population_metrics(self, state: CustomerState, clv: ClvFigures) -> Dict[str, float]:
        as_of = state.watermark_ms or 0
        scored = self.scores(state, clv, as_of)
        return {} if self.is_exit(state, scored, as_of) else {TOTAL: self.total(scored)}

    def cut_offs(self, population: Optional[PopulationView]) -> Tuple[List[float], Optional[str]]:
        k = len(self.ranked)
        view = relative_view(population, TOTAL, self.min_population)
        if view is not None:
            cuts = [view.quantile(TOTAL, 1 - i / k) for i in range(1, k)]
            if all(c is not None for c in cuts):
                return cuts, view.version
        return list(self.fallback_cut_offs), None

    def assess(self, state: CustomerState, clv: ClvFigures, as_of_ms: int,
               population: Optional[PopulationView] = None) -> Assessment:
        scored = self.scores(state, clv, as_of_ms)
        total = self.total(scored)
        criteria: Dict[str, object] = {
            c.name: {"value": None if v is None else round(v, 2), "score": s} for c, v, s in scored}
        criteria[TOTAL] = round(total, 2)
        first = "first assessment; " if state.segment is None else ""
        override = self.overrides.get(state.customer_id)
        if override is not None:
            return Assessment(override, first + "manual override in the policy file", criteria, None, manual=True)
        if self.is_exit(state, scored, as_of_ms):
            lowest = [c.name for c, _, s in scored if s == 1]
            return Assessment(self.exit.name, first + f"exit: lowest category on {len(lowest)} of "
                              f"{len(self.criteria)} criteria ({', '.join(lowest)})", criteria)
        cuts, version = self.cut_offs(population)
        criteria["cut_offs"] = [round(c, 2) for c in cuts]
        criteria["cut_off_source"] = "population" if version else "fallback"
        current = self._rank_of(state.segment)
        index = 0
        while index < len(cuts):
            bar = cuts[index] * ((1 - self.hysteresis) if current is not None and current <= index else 1)
            if total >= bar:
                break
            index += 1
        placed = self.ranked[index].name
        reasons = [f"total score {total:g} ranks {placed} ({_where(index, cuts, version)})"]
        while self.ranked[index].min_scores:
            failed = self._failed_minimums(self.ranked[index], scored)
            if not failed:
                break
            reasons.append(f"{self.ranked[index].name} needs " + ", ".join(failed))
            index += 1
        segment = self.ranked[index].name
        return Assessment(segment, first + "; ".join(reasons), criteria, version)

    def _rank_of(self, segment: Optional[str]) -> Optional[int]:
        for i, s in enumerate(self.ranked):
            if s.name == segment:
                return i
        return None

    def _failed_minimums(self, seg: ScoredSegment, scored) -> List[str]:
        failed = []
        for c, _, s in scored:
            need = seg.min_scores.get(c.name, seg.min_scores.get(EVERY))
            if need is not None and s < need:
                failed.append(f"{c.name} >= {need} (scores {s})")
        return failed

    def review_time_ms(self, state: CustomerState, after_ms: int,
                       p_alive_crossing: Optional[PAliveCrossing] = None) -> Optional[int]:
        times: List[Optional[int]] = []
        for c in self.criteria:
            times.extend(time_points(c.feature, c.bounds, state))
            if c.feature == "p_alive" and p_alive_crossing is not None:
                times.extend(p_alive_crossing(b) for b in c.bounds)
        if self.exit is not None and self.exit.grace_days and state.tenure_start_ms is not None:
            times.append(state.tenure_start_ms + int(self.exit.grace_days * DAY_MS))
        return earliest_after(times, after_ms)


def _where(index: int, cuts: List[float], version: Optional[str]) -> str:
    source = "population split" if version else "fallback cut-offs"
    if index < len(cuts):
        return f">= {cuts[index]:g}, {source}"
    return f"< {cuts[-1]:g}, {source}"
