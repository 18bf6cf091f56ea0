"""Predicted and potential CLV (BG/NBD x Gamma-Gamma, discounted)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.models import bgnbd, gamma_gamma
from streams.models.clv import clv, clv_batch, discounted_alive_purchases, potential_clv, predicted_clv
from streams.models.params import BgNbdParams, GammaGammaParams

BG = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
GG = GammaGammaParams(p=6.25, q=3.74, v=15.44)

CUSTOMERS = [  # (x, t_x, T, mean_spend): first CDNOW customers + extremes
    (2, 30.43, 38.86, 22.35),
    (1, 1.71, 38.86, 11.77),
    (0, 0.0, 38.86, 0.0),
    (7, 29.43, 38.86, 73.74),
    (1000, 9_000.0, 10_000.0, 25.0),
    (40, 2.0, 500.0, 80.0),
]


def brute_force_clv(x, t_x, T, mean_spend, horizon, discount_rate, steps):
    """The definition, term by term, from the per-horizon conditional expectation."""
    spend = gamma_gamma.conditional_expected_spend(GG, x, mean_spend)
    total = 0.0
    for i in range(1, steps + 1):
        purchases = (bgnbd.conditional_expected_purchases(BG, i * horizon / steps, x, t_x, T)
                     - bgnbd.conditional_expected_purchases(BG, (i - 1) * horizon / steps, x, t_x, T))
        total += purchases * spend / (1 + discount_rate) ** i
    return total


@pytest.mark.parametrize("customer", CUSTOMERS)
@pytest.mark.parametrize("horizon, discount_rate, steps", [(52.0, 0.01, 12), (520.0, 0.1, 10), (13.0, 0.0, 1)])
def test_matches_brute_force_sum(customer, horizon, discount_rate, steps):
    expected = brute_force_clv(*customer, horizon, discount_rate, steps)
    predicted = predicted_clv(BG, GG, *customer, horizon, discount_rate, steps)
    assert predicted == pytest.approx(expected, rel=1e-10, abs=1e-300)
    p_alive = bgnbd.p_alive(BG, *customer[:3])
    if p_alive > 0:
        assert potential_clv(BG, GG, *customer, horizon, discount_rate, steps) == pytest.approx(
            expected / p_alive, rel=1e-10
        )


def test_matches_lifetimes_customer_lifetime_value():
    # lifetimes 0.11.3 GammaGammaFitter.customer_lifetime_value(bgf, ..., time=12,
    # discount_rate=0.01, freq="W") with paper parameters: 12 monthly steps of
    # 4.345 weeks, discounted 1% a month.
    lifetimes = [36.2892111256, 4.6372946597, 8.3690043589, 283.5327763171]
    ours = [predicted_clv(BG, GG, *c, 12 * 4.345, 0.01, 12) for c in CUSTOMERS[:4]]
    np.testing.assert_allclose(ours, lifetimes, rtol=1e-9)


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_predicted_never_exceeds_potential(customer):
    predicted, potential = clv(BG, GG, *customer, 52.0, 0.01, 12)
    assert 0.0 <= predicted <= potential
    assert predicted == pytest.approx(bgnbd.p_alive(BG, *customer[:3]) * potential, rel=1e-12)
    if customer[0] == 0:  # never dropped out: nothing to condition on
        assert predicted == potential


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_discounting_lowers_value(customer):
    values = [predicted_clv(BG, GG, *customer, 104.0, rate, 24) for rate in (0.0, 0.005, 0.02, 0.1)]
    assert all(later < earlier for earlier, later in zip(values, values[1:]))
    # undiscounted CLV is simply E[Y(horizon)] * E[M], whatever the number of steps
    undiscounted = (bgnbd.conditional_expected_purchases(BG, 104.0, *customer[:3])
                    * gamma_gamma.conditional_expected_spend(GG, customer[0], customer[3]))
    assert values[0] == pytest.approx(undiscounted, rel=1e-10)


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_zero_horizon_is_worth_nothing(customer):
    assert predicted_clv(BG, GG, *customer, 0.0, 0.01, 12) == 0.0
    assert potential_clv(BG, GG, *customer, 0.0, 0.01, 12) == 0.0
    predicted, potential = clv_batch(BG, GG, *([c] for c in customer), 0.0, 0.01, 12)
    assert predicted[0] == 0.0 and potential[0] == 0.0


def test_longer_horizon_is_worth_more():
    values = [predicted_clv(BG, GG, 2, 30.43, 38.86, 22.35, h, 0.01, 12) for h in (13.0, 26.0, 52.0, 520.0)]
    assert all(later > earlier for earlier, later in zip(values, values[1:]))


def test_potential_clv_survives_p_alive_underflow():
    # P(alive) underflows to 0 for this customer; the alive-conditional value is still there
    predicted, potential = clv(BG, GG, 1000, 1.0, 10_000.0, 30.0, 52.0, 0.01, 12)
    assert predicted == 0.0
    assert math.isfinite(potential) and potential > 0.0


def test_invalid_schedules_are_refused():
    for horizon, rate, steps in [(-1.0, 0.01, 12), (52.0, -1.0, 12), (52.0, 0.01, 0), (math.inf, 0.0, 1)]:
        with pytest.raises(ValueError):
            discounted_alive_purchases(BG, 1, 10.0, horizon, rate, steps)


@settings(max_examples=100, deadline=None)
@given(
    x=st.integers(min_value=0, max_value=1000),
    recency_share=st.floats(min_value=0.0, max_value=1.0),
    T=st.floats(min_value=0.0, max_value=10_000.0),
    mean_spend=st.floats(min_value=0.0, max_value=1e4),
    horizon=st.floats(min_value=0.0, max_value=5_000.0),
    discount_rate=st.floats(min_value=0.0, max_value=0.5),
    steps=st.integers(min_value=1, max_value=36),
)
def test_scalar_and_vectorized_paths_agree(x, recency_share, T, mean_spend, horizon, discount_rate, steps):
    t_x = 0.0 if x == 0 else recency_share * T
    predicted, potential = clv(BG, GG, x, t_x, T, mean_spend, horizon, discount_rate, steps)
    batch_predicted, batch_potential = clv_batch(BG, GG, [x], [t_x], [T], [mean_spend], horizon, discount_rate, steps)
    assert predicted == pytest.approx(batch_predicted[0], rel=1e-9, abs=1e-300)
    assert potential == pytest.approx(batch_potential[0], rel=1e-9, abs=1e-300)
    assert 0.0 <= predicted <= potential
