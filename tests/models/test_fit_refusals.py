"""Fits never raise on the data they are given; too little or degenerate data is refused with a reason."""

from __future__ import annotations

import math

import numpy as np

from streams.models.fitting import fit_bgnbd, fit_gamma_gamma
from streams.models.requirements import DataRequirements


def draw(n, r, alpha, a, b, days=273, seed=5):
    """(x, t_x, T) in weeks of n BG/NBD customers, whole days (as bench/bench_fit.py draws them)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.integers(1, days + 1, n) / 7.0
    x, t_x, now, active = np.zeros(n), np.zeros(n), np.zeros(n), np.arange(n)
    while active.size:
        now[active] += rng.exponential(1.0, active.size) / lam[active]
        active = active[now[active] <= T[active]]
        x[active] += 1
        t_x[active] = np.floor(now[active] * 7.0) / 7.0
        active = active[rng.random(active.size) >= p[active]]
    return x, t_x, T


def test_no_repeat_buyer_is_refused():
    fit = fit_bgnbd([0, 0, 0], [0, 0, 0], [5.0, 3.0, 1.0])
    assert fit.params is None and not fit.usable
    assert "no repeat purchase" in fit.refusal


def test_one_customer_is_refused():
    fit = fit_bgnbd([2], [3.0], [5.0])
    assert not fit.usable and fit.refusal


def test_all_on_the_same_day_is_refused():
    fit = fit_bgnbd([0, 0], [0.0, 0.0], [0.0, 0.0])
    assert fit.params is None and "single day" in fit.refusal


def test_no_customer_is_refused():
    assert "no customer" in fit_bgnbd([], [], []).refusal


def test_invalid_rows_are_refused_not_raised():
    fit = fit_bgnbd([1, -1], [1.0, 0.0], [2.0, 2.0])
    assert fit.params is None and fit.refusal.startswith("invalid rows")
    assert "weights" in fit_bgnbd([1], [1.0], [2.0], weights=[-1]).refusal
    assert "length" in fit_bgnbd([1, 2], [1.0], [2.0]).refusal


def test_a_healthy_sample_is_usable():
    x, t_x, T = draw(3000, 0.243, 4.414, 0.793, 2.426)
    fit = fit_bgnbd(x, t_x, T)
    assert fit.usable, fit.refusal
    assert fit.n_rows < 3000  # identical rows collapsed
    assert all(math.isfinite(v) and v > 0 for v in fit.standard_errors.values())


def test_penalizer_pulls_towards_smaller_parameters():
    x, t_x, T = draw(3000, 0.243, 4.414, 0.793, 2.426)
    plain = fit_bgnbd(x, t_x, T)
    penalized = fit_bgnbd(x, t_x, T, penalizer_coef=0.1)
    assert penalized.usable and penalized.penalizer_coef == 0.1
    squares = lambda p: p.r ** 2 + p.a ** 2 + p.b ** 2  # alpha carries the time unit
    assert squares(penalized.params) < squares(plain.params)
    assert penalized.log_likelihood < plain.log_likelihood  # the unpenalized likelihood is reported
    assert "penalizer" in fit_bgnbd(x, t_x, T, penalizer_coef=-1).refusal


def test_gamma_gamma_with_identical_spend_is_refused():
    # every order costs 20.00: no spread in spend, p -> infinity
    x = np.array([1, 2, 3, 1, 4, 2, 5, 1] * 20, dtype=float)
    fit = fit_gamma_gamma(x, np.full(x.size, 20.0))
    assert not fit.usable and fit.refusal, fit


def test_gamma_gamma_without_finite_mean_is_refused():
    rng = np.random.default_rng(2)
    x = rng.integers(1, 6, 2000).astype(float)
    nu = rng.gamma(0.6, 1.0, x.size)  # q = 0.6 < 1: heavy-tailed spend, no population mean
    m = rng.gamma(3.0 * x, 1.0 / (nu * x))
    fit = fit_gamma_gamma(x, m)
    assert not fit.usable
    assert "finite mean" in fit.refusal or "bound" in fit.refusal or "degenerate" in fit.refusal, fit.refusal


def test_requirements_list_every_shortfall():
    req = DataRequirements()
    assert req.unmet(500, 180, 100) == []
    reasons = req.unmet(232, 40, 7)
    assert len(reasons) == 3
    assert "232 customers" in reasons[0] and "40 days" in reasons[1] and "7 repeat buyers" in reasons[2]


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

customer = st.tuples(st.integers(0, 30), st.integers(0, 400), st.integers(0, 400), st.floats(0.01, 1e6))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(customer, min_size=0, max_size=40))
def test_any_valid_history_gives_a_result_never_an_exception(rows):
    x, t_x, T, spend = [], [], [], []
    for repeats, a, b, amount in rows:
        age, last = max(a, b), min(a, b)
        x.append(repeats if age else 0)
        t_x.append(last / 7 if repeats and age else 0.0)
        T.append(age / 7)
        spend.append(amount if repeats else 0.0)
    for fit in (fit_bgnbd(x, t_x, T), fit_gamma_gamma(x, spend)):
        assert fit.usable or fit.refusal
        if fit.usable:
            assert all(math.isfinite(v) and v > 0 for v in fit.params.to_dict().values())
            assert all(math.isfinite(v) for v in fit.standard_errors.values())
            assert math.isfinite(fit.log_likelihood)
