"""The least data a BG/NBD + Gamma-Gamma fit needs before its parameters are published.

Why: with a short history no one has been seen to stop buying, so the
dropout parameters (a, b) are not identified; the maximum likelihood then
sits at an edge (a -> 0: "no one ever leaves") or goes near-degenerate
(a=88,828, b=1,048,496: "everyone has the same dropout probability"), and
workers would score every customer with it.  Klaviyo asks for 500 customers
with orders, 180 days of history and "some" repeat buyers before it shows
predictions; we take the same first two and make the third a number.  On the
demo's stream (2,000 customers at 500 events/s) the first fit that meets all
three comes about 40 s in (~200 days of event time).

Meeting them is necessary, not sufficient: the fit itself can still be
refused (``FitResult.refusal``: a parameter at a bound, near-degenerate, not
identified, no finite mean spend).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataRequirements:
    """Thresholds a calibration sample must meet (all inclusive)."""

    #: customers with at least one order
    min_customers: int = 500
    #: days from the earliest first purchase to the calibration end
    min_history_days: float = 180.0
    #: customers with at least one repeat purchase occasion (x >= 1); also the
    #: Gamma-Gamma's sample, as only repeat buyers carry spend information
    min_repeat_buyers: int = 100

    def unmet(self, customers: int, history_days: float, repeat_buyers: int) -> list[str]:
        """Reasons the sample falls short, empty when it meets every threshold."""
        reasons = []
        if customers < self.min_customers:
            reasons.append(f"{customers} customers with orders < {self.min_customers} required")
        if history_days < self.min_history_days:
            reasons.append(f"{history_days:.0f} days of history < {self.min_history_days:.0f} required")
        if repeat_buyers < self.min_repeat_buyers:
            reasons.append(f"{repeat_buyers} repeat buyers < {self.min_repeat_buyers} required")
        return reasons

    def describe(self) -> str:
        return (f">= {self.min_customers} customers with orders, >= {self.min_history_days:.0f} days of history, "
                f">= {self.min_repeat_buyers} repeat buyers")
