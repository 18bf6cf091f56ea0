"""Event -> state -> CLV -> segment: the whole pipeline as one pure function.

The Faust shell calls ``process`` for each input record and ``review`` when the
stream's event time passes a customer's review time; both return the segment
change to publish, if any. Nothing here reads the clock or talks to Kafka, so a
replay of the same log gives the same states and the same changes.

The segmentation policy (``policies``) decides the segment; relative policies
ask the optional population view where the customer stands. The engine adds
the minimum dwell time: a customer that moved less than ``min_dwell_days`` of
event time ago keeps its segment (a manual override excepted) and is reviewed
when the dwell time ends.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from .clv import ClvFigures, FormulaConfig, formula_clv
from .events import DAY_MS, Event
from .outlook import outlook
from .policies.base import PAliveCrossing, Policy
from .policies.matrix import MatrixPolicy
from .population import PopulationView
from .state import APPLIED, CustomerState, apply
from .validation import format_time_ms

# A model scorer adds predicted/potential CLV to the formula figures (BG/NBD + Gamma-Gamma);
# see ``prediction.ModelScorer``, which also knows when P(alive) crosses a threshold.
Scorer = Callable[[CustomerState, ClvFigures, int], ClvFigures]


def _crossing(state: CustomerState, scorer: Optional[Scorer]) -> Optional[PAliveCrossing]:
    if scorer is None or not hasattr(scorer, "p_alive_crossing_ms"):
        return None
    return lambda threshold: scorer.p_alive_crossing_ms(state, threshold)


def model_parameters(scorer: Optional[Scorer]):
    """The fitted parameters behind a model scorer (``prediction.ModelScorer``), None otherwise."""
    return getattr(scorer, "params", None)


def review_time_ms(state: CustomerState, cfg: "EngineConfig", scorer: Optional[Scorer] = None,
                   after_ms: Optional[int] = None) -> Optional[int]:
    """When to look at a silent customer again: the earliest moment after ``after_ms`` (default: its
    latest event) at which the policy's verdict can change with time alone, or its dwell time ends."""
    after = state.watermark_ms if after_ms is None else after_ms
    if after is None:
        return None
    times = [cfg.policy.review_time_ms(state, after, _crossing(state, scorer))]
    dwell = cfg.policy.stability.min_dwell_ms
    if dwell and state.segment_since_ms is not None:
        times.append(state.segment_since_ms + dwell)
    later = [t for t in times if t is not None and t > after]
    return min(later) if later else None


@dataclass(frozen=True)
class EngineConfig:
    lateness_ms: int = 7 * DAY_MS
    formula: FormulaConfig = FormulaConfig()
    policy: Policy = MatrixPolicy()

    def __post_init__(self):
        if not 0 <= self.lateness_ms < 365 * DAY_MS:
            raise ValueError("allowed lateness must be between 0 and 365 days (the rolling window)")


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # applied | duplicate | late | redelivered | reviewed
    change: Optional[dict] = None  # a segment_change event (schemas/v1/segment_change.schema.json)
    review_at_ms: Optional[int] = None  # when to look at this customer again if nothing happens
    # the policy's population metrics for this customer after the event (None when nothing was applied)
    metrics: Optional[Dict[str, float]] = None
    clv: Optional[ClvFigures] = None  # the figures the assessment used (population figures record them)


def score(state: CustomerState, cfg: EngineConfig, as_of_ms: int, scorer: Optional[Scorer] = None) -> ClvFigures:
    clv = formula_clv(state, cfg.formula, as_of_ms)
    return scorer(state, clv, as_of_ms) if scorer is not None else clv


def process(state: CustomerState, event: Event, cfg: EngineConfig,
            position: Optional[Tuple[str, int]] = None, scorer: Optional[Scorer] = None,
            replay: bool = False, population: Optional[PopulationView] = None) -> Outcome:
    """Apply one event to ``state`` (in place) and assess the customer's segment."""
    status = apply(state, event, cfg.lateness_ms, position)
    if status != APPLIED:
        return Outcome(status)
    cause = {"event_id": event.event_id, "type": event.type}
    return Outcome(status, *_reassess(state, cfg, state.watermark_ms, cause, scorer, replay, population))


def review(state: CustomerState, cfg: EngineConfig, as_of_ms: int, scorer: Optional[Scorer] = None,
           replay: bool = False, population: Optional[PopulationView] = None) -> Outcome:
    """Re-assess a silent customer at event time ``as_of_ms`` (drift toward low loyalty / churn)."""
    if state.watermark_ms is not None and as_of_ms < state.watermark_ms:
        as_of_ms = state.watermark_ms
    cause = {"event_id": f"review:{state.customer_id}:{as_of_ms}", "type": "review"}
    return Outcome("reviewed", *_reassess(state, cfg, as_of_ms, cause, scorer, replay, population))


def _reassess(state: CustomerState, cfg: EngineConfig, as_of_ms: int, cause: dict,
              scorer: Optional[Scorer], replay: bool, population: Optional[PopulationView]):
    policy = cfg.policy
    clv = score(state, cfg, as_of_ms, scorer)
    state.scored_by = clv.model
    # A policy with ``decide`` (the matrix) gives the segment first and words its reason and criteria
    # (``explain``) only for a change that goes out: most assessments keep the segment.
    decide = getattr(policy, "decide", None)
    if decide is not None:
        decision = decide(state, clv, as_of_ms, population)
        segment, manual = decision[0], decision[1]  # a tuple whose first two are these (matrix.Decision)
    else:
        verdict = policy.assess(state, clv, as_of_ms, population)
        segment, manual = verdict.segment, verdict.manual
    change = None
    dwell = policy.stability.min_dwell_ms
    held = (dwell and not manual and state.segment_since_ms is not None
            and as_of_ms < state.segment_since_ms + dwell)
    if segment != state.segment and not held:
        if decide is not None:
            verdict = policy.explain(state, clv, decision)  # before the segment moves: it words the move
        previous = state.segment
        state.segment, state.segment_since_ms = verdict.segment, as_of_ms
        state.sequence += 1
        change = {
            "type": "segment_change", "schema_version": 1,
            "event_id": f"{state.customer_id}:{state.sequence}",
            "customer_id": state.customer_id, "sequence": state.sequence,
            "previous_segment": previous, "segment": verdict.segment,
            "service_level": policy.service_levels[verdict.segment],
            "policy": policy.name, "policy_version": policy.version,
            "reason": verdict.reason, "criteria": verdict.criteria,
            "clv": clv.to_dict(cfg.formula.currency),
            "event_time": format_time_ms(as_of_ms), "cause": cause, "replay": replay,
            # computed here, when a change is emitted, not on every event
            "outlook": outlook(state, clv, as_of_ms, model_parameters(scorer)).to_dict(),
        }
        if verdict.population_version is not None:
            change["population_version"] = verdict.population_version
    metrics = policy.population_metrics(state, clv)
    return change, review_time_ms(state, cfg, scorer, as_of_ms), metrics, clv
