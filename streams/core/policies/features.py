"""Named per-customer figures that criteria can score (state, CLV, profile attributes).

Each feature is a function of (state, CLV figures, as-of event time). ``None``
means the customer has no value yet (no NPS answer, no model score...); the
criterion then gives its ``missing_score``. Features that drift with event time
alone (recency, windows, tenure) say when they next change, so a silent
customer is reviewed at that moment (see ``time_points``).
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Iterable, Optional

from ..clv import ClvFigures
from ..events import DAY_MS
from ..state import CustomerState

Feature = Callable[[CustomerState, ClvFigures, int], Optional[float]]


def _window(days: int, part: int) -> Feature:
    def f(s: CustomerState, clv: ClvFigures, as_of: int) -> float:
        value = s.window(days, as_of)[part]
        return value / 100 if part == 1 else value
    return f


def _mean(total: str, count: str) -> Feature:
    return lambda s, clv, t: getattr(s, total) / getattr(s, count) if getattr(s, count) else None


def _days_since_last_order(s: CustomerState, clv: ClvFigures, as_of: int) -> Optional[float]:
    return None if s.last_order_ms is None else (as_of - s.last_order_ms) / DAY_MS


def _tenure_days(s: CustomerState, clv: ClvFigures, as_of: int) -> Optional[float]:
    start = s.tenure_start_ms
    return None if start is None else (as_of - start) / DAY_MS


def _flag(name: str) -> Feature:
    return lambda s, clv, t: (None if name not in s.attributes else float(bool(s.attributes[name])))


def _strategic_flags(s: CustomerState, clv: ClvFigures, as_of: int) -> float:
    return float(sum(bool(s.attributes.get(a)) for a in ("reference_customer", "strategic_account", "big_name")))


FEATURES: Dict[str, Feature] = {
    # financial
    "net_revenue": lambda s, clv, t: clv.historical_revenue,
    "margin": lambda s, clv, t: clv.historical_margin,
    "margin_rate": lambda s, clv, t: (s.margin_cents / s.revenue_cents) if s.revenue_cents else None,
    "orders": lambda s, clv, t: float(s.order_count),
    "orders_365d": _window(365, 0),
    "net_revenue_365d": _window(365, 1),
    "purchases_per_year": lambda s, clv, t: clv.purchases_per_year,
    "average_order_value": lambda s, clv, t: clv.historical_revenue / s.order_count if s.order_count else None,
    "formula_clv": lambda s, clv, t: clv.formula,
    "predicted_clv": lambda s, clv, t: clv.predicted if clv.predicted is not None else clv.formula,
    "potential_clv": lambda s, clv, t: clv.potential,
    "p_alive": lambda s, clv, t: clv.p_alive,
    "days_since_last_order": _days_since_last_order,
    "tenure_days": _tenure_days,
    "refund_rate": lambda s, clv, t: s.refund_count / s.order_count if s.order_count else None,
    # relationship
    "last_nps": lambda s, clv, t: None if s.last_nps is None else float(s.last_nps),
    "average_nps": _mean("nps_sum", "nps_count"),
    "average_ces": _mean("ces_sum", "ces_count"),  # 1 = very easy ... 7 = very hard
    "referrals": lambda s, clv, t: float(s.referrals),
    "complaints": lambda s, clv, t: float(s.complaints),
    "average_rating": _mean("rating_sum", "reviews"),
    # strategic (customer attributes)
    "reference_customer": _flag("reference_customer"),
    "strategic_account": _flag("strategic_account"),
    "big_name": _flag("big_name"),
    "strategic_flags": _strategic_flags,  # how many of reference_customer, strategic_account, big_name
    "ideal_customer_fit": lambda s, clv, t: (None if s.attributes.get("ideal_customer_fit") is None
                                             else float(s.attributes["ideal_customer_fit"])),
}

# Features whose value changes with event time alone (besides P(alive), handled by the model's crossing time).
TIME_DRIFTING = {"orders_365d", "net_revenue_365d", "days_since_last_order", "tenure_days",
                 "purchases_per_year", "formula_clv", "predicted_clv", "potential_clv"}


def time_points(feature: str, bounds: Iterable[float], s: CustomerState) -> Iterable[int]:
    """Event times at which ``feature`` crosses one of ``bounds`` for a silent customer (exact where cheap).

    CLV figures drift continuously with tenure (the formula's purchase rate) and are re-read at the next
    event or review; they are not scheduled.
    """
    if feature == "days_since_last_order" and s.last_order_ms is not None:
        return [s.last_order_ms + math.ceil(b * DAY_MS) for b in bounds]
    if feature == "tenure_days" and s.tenure_start_ms is not None:
        return [s.tenure_start_ms + math.ceil(b * DAY_MS) for b in bounds]
    if feature in ("orders_365d", "net_revenue_365d"):
        return [(d + 365) * DAY_MS for d in s.days]  # each day bucket leaves the window
    return []
