"""What every segmentation policy offers the engine.

A policy turns a customer's state and CLV figures into a segment with a reason
and the criteria behind it. Relative policies ("top 20% of CLV", "A/B/C split
equally", RFM quintiles) ask a ``PopulationView`` where the customer stands
among all customers; when there is no view or it holds fewer than the policy's
``min_population`` customers, they use the absolute fallback cut-offs declared
in the policy (the assessment then carries no population version).

Stability is split in two: each policy applies its own hysteresis band inside
``assess`` (it knows what a cut-off is), and the engine enforces the minimum
dwell time (event time), which is the same for every policy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Mapping, Optional, Protocol, Tuple

from ..clv import ClvFigures
from ..events import DAY_MS
from ..population import PopulationView
from ..state import CustomerState

# When a silent customer's P(alive) falls below a threshold (event time ms), from the fitted model.
PAliveCrossing = Callable[[float], Optional[int]]


@dataclass(frozen=True, slots=True)
class Assessment:
    segment: str
    reason: str
    criteria: Dict[str, object]
    population_version: Optional[str] = None  # the cut-offs' snapshot, when relative cut-offs decided
    manual: bool = False  # a manual override: not held back by the minimum dwell time


@dataclass(frozen=True)
class Stability:
    """Hysteresis: relative band a figure must move past before a customer leaves its segment.
    Minimum dwell: event time a customer stays in a segment before it may move again."""

    hysteresis: float = 0.1
    min_dwell_days: float = 0.0

    def __post_init__(self):
        if not 0 <= self.hysteresis < 1:
            raise ValueError("hysteresis must be in [0, 1)")
        if self.min_dwell_days < 0:
            raise ValueError("min_dwell_days must not be negative")

    @property
    def min_dwell_ms(self) -> int:
        return int(self.min_dwell_days * DAY_MS)


class Policy(Protocol):
    kind: str  # matrix | criteria | rfm
    name: str
    version: str
    stability: Stability
    min_population: int  # fewer customers in the view than this: fallback cut-offs
    service_levels: Mapping[str, dict]

    @property
    def segments(self) -> Tuple[str, ...]:
        """All segments, best first."""

    def assess(self, state: CustomerState, clv: ClvFigures, as_of_ms: int,
               population: Optional[PopulationView]) -> Assessment: ...

    def review_time_ms(self, state: CustomerState, after_ms: int,
                       p_alive_crossing: Optional[PAliveCrossing]) -> Optional[int]:
        """Earliest event time after ``after_ms`` at which the verdict can change with time alone."""

    def population_metrics(self, state: CustomerState, clv: ClvFigures) -> Dict[str, float]:
        """Per-customer values whose distribution over all customers the policy needs."""


def relative_view(population: Optional[PopulationView], metric: str, min_population: int) -> Optional[PopulationView]:
    """The view when it is usable for ``metric``, else None (use the fallback cut-offs)."""
    if population is None:
        return None
    return population if population.size(metric) >= max(1, min_population) else None


def earliest_after(times: Iterable[Optional[int]], after_ms: int) -> Optional[int]:
    later = [t for t in times if t is not None and t > after_ms]
    return min(later) if later else None


def is_relative(policy: Policy) -> bool:
    """Whether the policy's verdicts can depend on the population view (then decisions wait for
    complete snapshot versions, see ``core.snapshots``). A matrix without a top share is absolute."""
    return not (policy.kind == "matrix" and getattr(policy, "high_value_top_share", None) is None)
