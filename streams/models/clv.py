"""Customer lifetime value from BG/NBD (how many purchases) x Gamma-Gamma (how much).

Discounted CLV over a finite horizon, as in lifetimes'
``GammaGammaFitter.customer_lifetime_value`` (and Fader, Hardie & Lee 2005b):
the horizon is cut into ``steps`` equal periods and the purchases expected in
period ``i``, ``E[Y(t_i)] - E[Y(t_{i-1})]``, are valued at the expected spend
and discounted by ``(1 + discount_rate)^i`` (``discount_rate`` is per period,
i.e. per ``horizon / steps`` time units).

* predicted CLV uses the conditional expectation E[Y(t) | x, t_x, T] (eq. 10
  of the BG/NBD paper) - what the customer is expected to be worth given we
  do not know whether they are still active;
* potential CLV conditions on the customer being alive:
  E[Y(t) | alive, x, T] = E[Y(t) | x, t_x, T] / P(alive) - what they are
  worth if they are still a customer (the upside a retention action saves).

Hence ``predicted = P(alive) * potential``.  Both are computed from the
"alive" expectation, so potential CLV stays finite even when P(alive)
underflows to zero.
"""

from __future__ import annotations

import math

import numpy as np

from . import bgnbd, gamma_gamma
from .params import BgNbdParams, GammaGammaParams


def _check_schedule(horizon: float, discount_rate: float, steps: int) -> None:
    if not (horizon >= 0.0 and math.isfinite(horizon)):
        raise ValueError(f"horizon must be finite and >= 0, got {horizon!r}")
    if not discount_rate > -1.0:
        raise ValueError(f"discount_rate must be > -1, got {discount_rate!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")


def discounted_alive_purchases(bg: BgNbdParams, x: float, T: float,
                               horizon: float, discount_rate: float, steps: int) -> float:
    """Sum_i (E[Y(t_i)|alive] - E[Y(t_{i-1})|alive]) / (1 + discount_rate)^i, t_i = i*horizon/steps."""
    _check_schedule(horizon, discount_rate, steps)
    if horizon == 0.0:
        return 0.0
    dt = horizon / steps
    curve = bgnbd.expected_purchases_if_alive_curve(bg, [i * dt for i in range(1, steps + 1)], x, T)
    per_period = 1.0 / (1.0 + discount_rate)
    discount = 1.0
    previous = 0.0
    total = 0.0
    for current in curve:
        discount *= per_period
        total += (current - previous) * discount
        previous = current
    return total


def clv(bg: BgNbdParams, gg: GammaGammaParams, x: float, t_x: float, T: float,
        mean_spend: float, horizon: float, discount_rate: float, steps: int) -> tuple[float, float]:
    """``(predicted_clv, potential_clv)`` for one customer, sharing the work."""
    potential = (
        discounted_alive_purchases(bg, x, T, horizon, discount_rate, steps)
        * gamma_gamma.conditional_expected_spend(gg, x, mean_spend)
    )
    return bgnbd.p_alive(bg, x, t_x, T) * potential, potential


def predicted_clv(bg: BgNbdParams, gg: GammaGammaParams, x: float, t_x: float, T: float,
                  mean_spend: float, horizon: float, discount_rate: float, steps: int) -> float:
    """Discounted expected value of the customer's purchases in (T, T + horizon]."""
    return clv(bg, gg, x, t_x, T, mean_spend, horizon, discount_rate, steps)[0]


def potential_clv(bg: BgNbdParams, gg: GammaGammaParams, x: float, t_x: float, T: float,
                  mean_spend: float, horizon: float, discount_rate: float, steps: int) -> float:
    """Predicted CLV given the customer is still alive (= predicted / P(alive)).

    ``t_x`` is taken for symmetry with :func:`predicted_clv`; once the
    customer is known to be alive, recency carries no further information.
    """
    del t_x
    return (
        discounted_alive_purchases(bg, x, T, horizon, discount_rate, steps)
        * gamma_gamma.conditional_expected_spend(gg, x, mean_spend)
    )


def clv_batch(bg: BgNbdParams, gg: GammaGammaParams, x, t_x, T, mean_spend,
              horizon: float, discount_rate: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized :func:`clv`: arrays ``(predicted, potential)``."""
    _check_schedule(horizon, discount_rate, steps)
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    times = np.arange(0, steps + 1, dtype=float) * (horizon / steps)
    alive = bgnbd.expected_purchases_if_alive_batch(bg, times[None, :], x[..., None], T[..., None])
    discounts = (1.0 + discount_rate) ** -np.arange(1, steps + 1, dtype=float)
    per_period = np.diff(alive, axis=-1)
    potential = (per_period @ discounts) * gamma_gamma.conditional_expected_spend_batch(
        gg, x, mean_spend
    )
    return bgnbd.p_alive_batch(bg, x, t_x, T) * potential, potential
