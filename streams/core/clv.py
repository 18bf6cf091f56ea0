"""Historical and formula CLV from a customer's state.

Formula CLV (seed 000/001): ``value per order x purchases per year x expected
lifetime in years - acquisition cost``. With little history the observed rates
are noise (one order yesterday is not "365 orders a year"), so the purchase rate
is shrunk toward a prior as if the customer had been observed for
``prior_weight_years`` buying at ``prior_purchases_per_year``:

    purchases/year = (orders + prior_rate * w) / (tenure_years + w)

and a customer without orders is valued at ``default_order_value`` per order.
Both are documented defaults in the README (settings CLV_*).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .events import DAY_MS
from .state import CustomerState

YEAR_MS = 365.25 * DAY_MS


@dataclass(frozen=True)
class FormulaConfig:
    basis: str = "margin"  # "margin" (after goods, service, logistics costs and refunds) or "revenue"
    expected_lifetime_years: float = 3.0
    prior_purchases_per_year: float = 2.0
    prior_weight_years: float = 1.0
    default_order_value: float = 25.0  # per order, in the basis, for customers without orders
    default_acquisition_cost: float = 0.0
    currency: str = "EUR"

    def __post_init__(self):
        if self.basis not in ("margin", "revenue"):
            raise ValueError(f"CLV basis must be 'margin' or 'revenue', not {self.basis!r}")
        if self.expected_lifetime_years <= 0 or self.prior_weight_years <= 0:
            raise ValueError("expected lifetime and prior weight must be positive")


@dataclass(frozen=True, slots=True)
class ClvFigures:
    historical_revenue: float
    historical_margin: float
    formula: float
    purchases_per_year: float
    value_per_order: float
    predicted: Optional[float] = None
    potential: Optional[float] = None
    p_alive: Optional[float] = None
    model: str = "formula"

    def to_dict(self, currency: str) -> dict:
        d = {"historical_revenue": round(self.historical_revenue, 2),
             "historical_margin": round(self.historical_margin, 2),
             "formula": round(self.formula, 2), "model": self.model, "currency": currency}
        d["predicted"] = None if self.predicted is None else round(self.predicted, 2)
        d["potential"] = None if self.potential is None else round(self.potential, 2)
        d["p_alive"] = None if self.p_alive is None else round(self.p_alive, 4)
        return d


def formula_clv(state: CustomerState, cfg: FormulaConfig, as_of_ms: Optional[int] = None) -> ClvFigures:
    as_of_ms = state.watermark_ms if as_of_ms is None else as_of_ms
    revenue = state.net_revenue_cents / 100
    margin = state.margin_cents / 100
    if state.order_count:
        value_per_order = (margin if cfg.basis == "margin" else revenue) / state.order_count
    else:
        value_per_order = cfg.default_order_value
    start = state.tenure_start_ms
    tenure_years = 0.0 if start is None or as_of_ms is None else max(0.0, (as_of_ms - start) / YEAR_MS)
    w = cfg.prior_weight_years
    per_year = (state.order_count + cfg.prior_purchases_per_year * w) / (tenure_years + w)
    acquisition = (state.acquisition_cost_cents / 100 if state.acquisition_cost_cents is not None
                   else cfg.default_acquisition_cost)
    formula = value_per_order * per_year * cfg.expected_lifetime_years - acquisition
    return ClvFigures(historical_revenue=revenue, historical_margin=margin, formula=formula,
                      purchases_per_year=per_year, value_per_order=value_per_order)
