"""Predicted and potential CLV per event, from BG/NBD + Gamma-Gamma parameters.

The bridge from a customer's streaming state to the models' inputs, defined
exactly as the batch summary (``streams.models.summary``) defines them, so the
streaming score equals the batch score of the same events:

* purchase occasions are UTC days with an order; x = occasions - 1 (repeats);
* t_x = last purchase day - first purchase day, T = as-of day - first purchase
  day, both in the parameters' time unit (days or weeks);
* mean spend = mean value of the repeat occasions (the first is excluded, as in
  Fader & Hardie), net of refunds in proportion to the customer's refund share
  (refunds are not attributed to single orders in the state), in the CLV
  basis: on margin it is scaled by the customer's margin ratio.

Customers without an order have no (x, t_x, T): they keep the formula CLV and
the figures say ``model: formula``. The same happens until a fitted parameter
set exists.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Tuple

from ..models import bgnbd
from ..models.clv import clv as model_clv
from ..models.params import DAYS_PER_UNIT, ModelParameters
from .clv import ClvFigures
from .events import DAY_MS
from .state import CustomerState


@dataclass(frozen=True)
class PredictionConfig:
    horizon_days: float = 365.0
    steps: int = 12  # discounting periods within the horizon
    annual_discount_rate: float = 0.10
    basis: str = "margin"

    def __post_init__(self):
        if self.horizon_days <= 0 or self.steps < 1 or self.annual_discount_rate < 0:
            raise ValueError("horizon must be positive, steps >= 1, discount rate >= 0")


def rfm(state: CustomerState, as_of_ms: int, days_per_unit: float) -> Optional[Tuple[int, float, float, float]]:
    """(x, t_x, T, mean repeat spend) of a customer, or None without orders."""
    if not state.purchase_days or state.first_order_ms is None:
        return None
    first_day = state.first_order_ms // DAY_MS
    x = state.purchase_days - 1
    t_x = (state.last_order_ms // DAY_MS - first_day) / days_per_unit
    T = (as_of_ms // DAY_MS - first_day) / days_per_unit
    mean_spend = 0.0
    if x > 0 and state.revenue_cents > 0:
        repeat_cents = state.revenue_cents - state.first_order_day_cents
        mean_spend = repeat_cents / 100 / x * max(0.0, 1 - state.refund_cents / state.revenue_cents)
    return x, t_x, T, mean_spend


class ModelScorer:
    """A ``Scorer`` for the engine: adds predicted and potential CLV and P(alive)."""

    def __init__(self, params: ModelParameters, cfg: PredictionConfig = PredictionConfig()):
        if params.gamma_gamma is None:
            raise ValueError("model parameters without Gamma-Gamma cannot value purchases")
        self.params, self.cfg = params, cfg
        self.days_per_unit = DAYS_PER_UNIT[params.time_unit]
        self.horizon = cfg.horizon_days / self.days_per_unit
        years_per_step = cfg.horizon_days / 365.25 / cfg.steps
        self.rate_per_step = (1 + cfg.annual_discount_rate) ** years_per_step - 1
        self.label = f"bgnbd-gg:{params.version}"

    def __call__(self, state: CustomerState, clv: ClvFigures, as_of_ms: int) -> ClvFigures:
        inputs = rfm(state, as_of_ms, self.days_per_unit)
        if inputs is None:
            return clv
        x, t_x, T, mean_spend = inputs
        bg, gg = self.params.bgnbd, self.params.gamma_gamma
        predicted, potential = model_clv(bg, gg, x, t_x, T, mean_spend, self.horizon, self.rate_per_step,
                                         self.cfg.steps)
        p_alive = bgnbd.p_alive(bg, x, t_x, T)
        if not all(map(math.isfinite, (predicted, potential, p_alive))):
            # Never publish NaN (it is not JSON either): keep the formula and say why.
            return replace(clv, model=f"formula (model {self.params.version} not finite here)")
        scale = self._basis_ratio(state)
        return replace(clv, predicted=predicted * scale, potential=potential * scale, p_alive=p_alive,
                       model=self.label)

    def _basis_ratio(self, state: CustomerState) -> float:
        if self.cfg.basis != "margin":
            return 1.0
        net = state.net_revenue_cents
        return min(1.0, max(0.0, state.margin_cents / net)) if net > 0 else 0.0

    def p_alive_crossing_ms(self, state: CustomerState, threshold: float) -> Optional[int]:
        """Event time at which a silent customer's P(alive) falls below ``threshold`` (closed form)."""
        inputs = rfm(state, state.watermark_ms or 0, self.days_per_unit)
        if inputs is None:
            return None
        x, t_x, _, _ = inputs
        age = bgnbd.p_alive_threshold_time(self.params.bgnbd, x, t_x, threshold)
        if math.isinf(age):
            return None
        # T is measured in whole days from the first purchase day: the first day on which T >= T*.
        first_day = state.first_order_ms // DAY_MS
        day = first_day + math.ceil(age * self.days_per_unit - 1e-9)
        if bgnbd.p_alive(self.params.bgnbd, x, t_x, (day - first_day) / self.days_per_unit) >= threshold:
            day += 1  # T* fell exactly on a day boundary where P(alive) equals the threshold
        return day * DAY_MS
