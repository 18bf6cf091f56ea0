"""What the query API answers about one customer, from the stored state, read-only.

The segment's reason is recomputed with the engine's own scoring and assessment
(``engine.score``, ``segments.assess``) at the moment the segment was last decided,
on copies of the state: nothing is written and no reason needs to be stored
(the state stays as small as it is). No Faust or Kafka import: unit-tested directly.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Optional

from .core.engine import EngineConfig, Scorer, model_parameters, score
from .core.outlook import outlook
from .core.segments import assess
from .core.state import CustomerState
from .core.validation import format_time_ms

# Customer ids as producers write them: printable, no whitespace or slashes, bounded length.
CUSTOMER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")


def valid_customer_id(text: str) -> bool:
    return CUSTOMER_ID.fullmatch(text) is not None


def assessed_at_ms(state: CustomerState) -> Optional[int]:
    """When the stored segment was last decided: the latest event, or a later review of a silent customer."""
    times = [t for t in (state.watermark_ms, state.segment_since_ms) if t is not None]
    return max(times) if times else None


def explain_segment(state: CustomerState, cfg: EngineConfig, scorer: Optional[Scorer] = None) -> Optional[dict]:
    """Segment, reason and criteria of the stored state, recomputed without touching it.

    ``assess`` only names the dimensions that flip; assessing a copy without a previous
    segment names both. The reason credits the hysteresis band only when the band is what
    keeps the stored segment: the assessment with the band (as the engine decides) gives the
    stored segment and the one without it does not. When neither gives it (the settings or the
    model changed since the engine decided: e.g. a model published since puts P(alive), which
    has no band, below the at-risk cut-off) the reason says the stored segment stands until the
    customer's next event or review, instead of claiming a band it lies outside of; when the
    minimum dwell time holds it (the engine's rule, not the policy's), the reason says that.
    """
    as_of = assessed_at_ms(state)
    if as_of is None or state.segment is None:
        return None
    clv = score(state, cfg, as_of, scorer)
    kept = assess(state, clv, cfg.policy, as_of)  # with hysteresis, as the engine decides
    fresh = assess(replace(state, segment=None), clv, cfg.policy, as_of)  # both dimensions explained
    reason = fresh.reason.removeprefix("first assessment; ")
    dwell_ms = cfg.policy.stability.min_dwell_ms
    dwell_ends = None if not dwell_ms or state.segment_since_ms is None else state.segment_since_ms + dwell_ms
    if kept.segment != state.segment and not kept.manual and dwell_ends is not None and as_of < dwell_ends:
        # the engine's own hold (engine._reassess): a customer that moved recently keeps its segment
        reason = (f"now assessed as {kept.segment}: {reason}; kept in {state.segment} for the minimum dwell time "
                  f"of {cfg.policy.stability.min_dwell_days:g} days (until {format_time_ms(dwell_ends)})")
    elif kept.segment != state.segment:
        reason = (f"now assessed as {kept.segment}: {reason}; {state.segment} was decided under other settings "
                  f"or model parameters and stands until the customer's next event or review")
    elif fresh.segment != state.segment:
        reason += f"; kept in {state.segment} within the {cfg.policy.hysteresis:.0%} hysteresis band"
    return {"segment": state.segment, "reason": reason, "criteria": kept.criteria,
            "assessed_at": format_time_ms(as_of), "clv": clv.to_dict(cfg.formula.currency),
            "outlook": outlook(state, clv, as_of, model_parameters(scorer)).to_dict(),
            "consistent": kept.segment == state.segment}


def customer_document(state: CustomerState, cfg: EngineConfig, scorer: Optional[Scorer] = None) -> dict:
    """The lookup answer: business state, CLV forms, order outlook, segment, reason and service level."""
    explained = explain_segment(state, cfg, scorer)
    doc = {"customer_id": state.customer_id, "segment": state.segment,
           "segment_since": None if state.segment_since_ms is None else format_time_ms(state.segment_since_ms),
           "sequence": state.sequence, "scored_by": state.scored_by,
           "service_level": cfg.policy.service_levels.get(state.segment) if state.segment else None,
           "policy": {"name": cfg.policy.name, "version": cfg.policy.version},
           "reason": None, "criteria": None, "clv": None, "outlook": None, "assessed_at": None,
           "state": _jsonable(state.business_view())}
    if explained is not None:
        doc.update(reason=explained["reason"], criteria=explained["criteria"], clv=explained["clv"],
                   outlook=explained["outlook"], assessed_at=explained["assessed_at"])
        if not explained["consistent"]:
            # Settings or model parameters changed since the engine decided: say so rather than hide it.
            doc["note"] = ("the current settings or model parameters would assess this customer differently; "
                           "the stored segment stands until the customer's next event or review")
    return doc


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def summary_document(summary) -> dict:
    """A ``PopulationSummary`` as JSON: per segment counts, money, shares, churn, NPS, CES; Pareto."""
    segments = {}
    for name, f in sorted(summary.segments.items()):
        segments[name] = {
            "customers": f.customers,
            "share_of_customers": f.customers / summary.customers if summary.customers else None,
            "historical_revenue": round(f.historical_revenue, 2), "historical_margin": round(f.historical_margin, 2),
            "revenue_share": summary.revenue_share(name), "margin_share": summary.margin_share(name),
            "clv": {"formula": round(f.formula_clv, 2), "predicted": round(f.predicted_clv, 2),
                    "potential": round(f.potential_clv, 2)},
            "churned": f.churned, "churn_rate": f.churn_rate,
            "nps": f.nps, "nps_responses": f.nps_responses, "nps_promoters": f.nps_promoters,
            "nps_detractors": f.nps_detractors,
            "average_ces": f.average_ces, "ces_responses": f.ces_responses,
        }
    return {"policy": {"name": summary.policy, "version": summary.policy_version},
            "customers": summary.customers, "partitions": list(summary.partitions),
            "pareto": {"revenue_share_top20": summary.revenue_share_top20,
                       "margin_share_top20": summary.margin_share_top20},
            "segments": segments}
