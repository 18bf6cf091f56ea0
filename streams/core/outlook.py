"""A customer's order outlook: the figures Klaviyo users expect beside our CLV forms.

* ``expected_next_order_date`` (UTC date): with a model, the day by which a customer who
  is still active has placed the next order as likely as not (median of the BG/NBD wait,
  ``bgnbd.median_wait_if_alive``, counted from the event time of the assessment; the
  mean is infinite for most one-time buyers); without a model, the last order day plus
  the average gap between orders (it may lie before the event time: overdue);
* ``average_days_between_orders``: days from the first to the last purchase occasion over
  the gaps between them (occasions are UTC days with an order, as the model counts them);
* ``churn_probability``: 1 - P(alive), only with a model (no honest estimate without one);
* ``predicted_orders_365d``: with a model, the purchase occasions expected in the next
  365 days, E[Y(t) | x, t_x, T] (eq. 10 of Fader, Hardie & Lee 2005); without one, the
  formula CLV's purchases per year (the customer's rate shrunk toward the prior).

``basis`` says which: ``bgnbd:<parameters version>`` or ``history``. "Now" is the event
time of the assessment, never the wall clock. Computed only when a segment change is
emitted or a lookup is made, not per event.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from ..models import bgnbd
from ..models.params import DAYS_PER_UNIT, ModelParameters
from .clv import ClvFigures
from .events import DAY_MS
from .prediction import rfm
from .state import CustomerState

HORIZON_DAYS = 365.0
HISTORY = "history"


@dataclass(frozen=True, slots=True)
class Outlook:
    expected_next_order_date: Optional[str]
    average_days_between_orders: Optional[float]
    churn_probability: Optional[float]
    predicted_orders_365d: Optional[float]
    basis: str

    def to_dict(self) -> dict:
        def rounded(value, digits):
            return None if value is None else round(value, digits)
        return {"expected_next_order_date": self.expected_next_order_date,
                "average_days_between_orders": rounded(self.average_days_between_orders, 1),
                "churn_probability": rounded(self.churn_probability, 4),
                "predicted_orders_365d": rounded(self.predicted_orders_365d, 3),
                "basis": self.basis}


def _date(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date().isoformat()


def average_days_between_orders(state: CustomerState) -> Optional[float]:
    """Mean gap in days between purchase occasions; None below two occasions."""
    if state.purchase_days < 2 or state.first_order_ms is None or state.last_order_ms is None:
        return None
    return (state.last_order_ms // DAY_MS - state.first_order_ms // DAY_MS) / (state.purchase_days - 1)


def outlook(state: CustomerState, clv: ClvFigures, as_of_ms: int,
            params: Optional[ModelParameters] = None) -> Outlook:
    """The outlook at event time ``as_of_ms``, from the model ``params`` when ``clv`` was scored by it."""
    gap = average_days_between_orders(state)
    inputs = rfm(state, as_of_ms, DAYS_PER_UNIT[params.time_unit]) if params is not None else None
    if inputs is None or clv.p_alive is None:  # no model, no order, or the model was not finite here
        next_date = None
        if gap is not None:
            next_date = _date((state.last_order_ms // DAY_MS + gap) * DAY_MS)
        per_year = clv.purchases_per_year if state.order_count else None
        return Outlook(next_date, gap, None, per_year, HISTORY)
    x, t_x, T, _ = inputs
    days_per_unit = DAYS_PER_UNIT[params.time_unit]
    bg = params.bgnbd
    wait_days = bgnbd.median_wait_if_alive(bg, x, T) * days_per_unit
    predicted = clv.p_alive * bgnbd.expected_purchases_if_alive(bg, HORIZON_DAYS / days_per_unit, x, T)
    return Outlook(_date(as_of_ms + wait_days * DAY_MS), gap, 1.0 - clv.p_alive, predicted,
                   f"bgnbd:{params.version}")
