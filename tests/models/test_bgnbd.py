"""BG/NBD: reproduce Fader, Hardie & Lee (2005) on CDNOW and probe the numerics."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.special import betaln, hyp2f1

from streams.models import bgnbd
from streams.models.fitting import compress_rows, fit_bgnbd, numerical_hessian
from streams.models.params import BgNbdParams

DATA = Path(__file__).parent.parent / "data" / "cdnow"

# Published estimates, Fader, Hardie & Lee (2005), section 5 (CDNOW, 2357
# customers, 39-week calibration, time in weeks).
PAPER = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
PAPER_LOG_LIKELIHOOD = -9582.4


def load_cdnow_summary():
    with open(DATA / "cdnow_customers_summary_with_transactions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return tuple(np.array([float(row[k]) for row in rows]) for k in ("x", "t_x", "T"))


@pytest.fixture(scope="module")
def cdnow():
    return load_cdnow_summary()


@pytest.fixture(scope="module")
def fitted(cdnow):
    return fit_bgnbd(*cdnow)


# -- fitting -----------------------------------------------------------------


def test_fit_reproduces_published_parameters(fitted):
    p = fitted.params
    assert fitted.converged, fitted.message
    assert fitted.n_customers == 2357
    # Published to 3 decimals; we agree to every published digit.
    assert (round(p.r, 3), round(p.alpha, 3), round(p.a, 3), round(p.b, 3)) == (0.243, 4.414, 0.793, 2.426)
    assert round(fitted.log_likelihood, 1) == PAPER_LOG_LIKELIHOOD


def test_standard_errors_match_lifetimes(fitted):
    # lifetimes 0.11.3 BetaGeoFitter().fit(...).standard_errors_ on the same data
    # (delta method on its autograd Hessian in log-parameters).
    lifetimes_se = {"r": 0.012557, "alpha": 0.378221, "a": 0.185719, "b": 0.705345}
    for name, expected in lifetimes_se.items():
        assert fitted.standard_errors[name] == pytest.approx(expected, rel=2e-3), name


def test_weighted_rows_give_the_same_fit(cdnow, fitted):
    columns, counts = compress_rows(*cdnow)
    assert len(counts) < 2357 and counts.sum() == 2357
    compressed = fit_bgnbd(*columns, weights=counts)
    assert compressed.n_customers == 2357
    assert compressed.log_likelihood == pytest.approx(fitted.log_likelihood, abs=1e-6)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(compressed.params, name) == pytest.approx(getattr(fitted.params, name), rel=1e-4)


def test_fit_in_days_is_the_same_model(cdnow, fitted):
    x, t_x, T = cdnow
    in_days = fit_bgnbd(x, t_x * 7, T * 7)
    assert in_days.params.alpha == pytest.approx(7 * fitted.params.alpha, rel=1e-4)
    for name in ("r", "a", "b"):
        assert getattr(in_days.params, name) == pytest.approx(getattr(fitted.params, name), rel=1e-4)
    # Densities of event times pick up a Jacobian 1/7 per repeat purchase.
    assert in_days.log_likelihood == pytest.approx(fitted.log_likelihood - x.sum() * math.log(7), abs=1e-5)


def test_numerical_hessian_of_a_quadratic():
    matrix = np.array([[2.0, 0.5, 0.0], [0.5, 3.0, -1.0], [0.0, -1.0, 4.0]])
    hess = numerical_hessian(lambda v: 0.5 * v @ matrix @ v + v.sum(), np.array([1.0, -2.0, 0.5]))
    np.testing.assert_allclose(hess, matrix, atol=1e-5)


def test_log_likelihood_scalar_and_batch_agree(cdnow, fitted):
    x, t_x, T = cdnow
    batch = bgnbd.log_likelihood_batch(fitted.params, x, t_x, T)
    scalar = [bgnbd.log_likelihood(fitted.params, *row) for row in zip(x[:200], t_x[:200], T[:200])]
    np.testing.assert_allclose(batch[:200], scalar, rtol=1e-12)
    assert batch.sum() == pytest.approx(fitted.log_likelihood, rel=1e-12)


# -- published / reference figures -------------------------------------------


def test_conditional_expectation_of_the_paper_example(fitted):
    # Hardie's BG/NBD spreadsheet (used in lifetimes' test-suite): customer with
    # x=2, t_x=30.43, T=38.86 buys 1.226 times in the next 39 weeks.
    for params in (PAPER, fitted.params):
        assert bgnbd.conditional_expected_purchases(params, 39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)


def test_unconditional_expectation_matches_hardie_spreadsheet(fitted):
    # E[X(t)], eq. (9): values from Hardie's BG/NBD Excel sheet as quoted in
    # lifetimes' test-suite (test_expectation_returns_same_value_Hardie_excel_sheet).
    times = [0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0]
    expected = [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576]
    actual = bgnbd.expected_purchases_batch(fitted.params, times)
    np.testing.assert_allclose(actual, expected, atol=5e-4)
    assert [bgnbd.expected_purchases(fitted.params, t) for t in times] == pytest.approx(actual.tolist(), rel=1e-12)


def test_p_alive_and_expectation_match_lifetimes():
    # lifetimes 0.11.3 with params_ = paper values, first 10 CDNOW customers.
    x = [2, 1, 0, 0, 0, 7, 1, 0, 2, 0]
    t_x = [30.43, 1.71, 0, 0, 0, 29.43, 5.00, 0, 35.71, 0]
    T = [38.86] * 10
    lifetimes_p_alive = [0.7265785701, 0.2121009854, 1, 1, 1, 0.6417563459, 0.3147857712, 1, 0.7847906126, 1]
    lifetimes_e52 = [1.5587208064, 0.2598234649, 0.2520730223, 0.2520730223, 0.2520730223,
                     4.1988555849, 0.3856122103, 0.2520730223, 1.6836024443, 0.2520730223]
    np.testing.assert_allclose(bgnbd.p_alive_batch(PAPER, x, t_x, T), lifetimes_p_alive, rtol=1e-9)
    np.testing.assert_allclose(bgnbd.conditional_expected_purchases_batch(PAPER, 52, x, t_x, T),
                               lifetimes_e52, rtol=1e-9)


# -- independent check by numerical integration --------------------------------


def brute_force_alive_expectation(params: BgNbdParams, t: float, x: float, T: float) -> float:
    """E[Y(t) | alive, x, T] without any hypergeometric function.

    Posterior given alive: lambda ~ Gamma(r+x, alpha+T), p ~ Beta(a, b+x);
    an alive customer buys (1 - exp(-lambda p t)) / p times, whose lambda-mean
    is (1 - (1 + p t/(alpha+T))^-(r+x)) / p; integrate that over p.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_norm = betaln(a, b + x)

    def integrand(p: float) -> float:
        if p <= 0.0:
            return 0.0
        value = -math.expm1(-(r + x) * math.log1p(p * t / (alpha + T))) / p
        return value * math.exp((a - 1) * math.log(p) + (b + x - 1) * math.log1p(-p) - log_norm)

    # The Beta(a, b+x) posterior concentrates near p ~ a/(b+x): split there.
    mode = min(0.5, 10 * a / (b + x))
    pieces = [(0.0, mode / 100), (mode / 100, mode), (mode, 1.0)]
    return sum(integrate.quad(integrand, lo, hi, limit=200, epsabs=0, epsrel=1e-11)[0] for lo, hi in pieces)


@pytest.mark.parametrize(
    "t, x, T",
    [(39, 2, 38.86), (52, 0, 20.0), (10_000, 0, 0.0), (10_000, 1000, 10_000), (1.0, 1000, 10_000),
     (5_000, 50, 100), (0.01, 3, 30)],
)
def test_alive_expectation_matches_numerical_integral(t, x, T):
    assert bgnbd.expected_purchases_if_alive(PAPER, t, x, T) == pytest.approx(
        brute_force_alive_expectation(PAPER, t, x, T), rel=1e-7
    )


# -- edge cases -----------------------------------------------------------------


def test_customer_without_repeat_purchase_is_alive():
    assert bgnbd.p_alive(PAPER, 0, 0, 10_000) == 1.0
    assert bgnbd.p_alive_threshold_time(PAPER, 0, 0, 0.5) == math.inf
    assert bgnbd.conditional_expected_purchases(PAPER, 39, 0, 0, 38.86) == pytest.approx(
        bgnbd.expected_purchases_if_alive(PAPER, 39, 0, 38.86)
    )


def test_naive_hypergeometric_form_breaks_but_ours_does_not():
    x, t_x, T, t = 1000, 9_990.0, 10_000.0, 10_000.0
    z = t / (PAPER.alpha + T + t)
    # eq. (10) as printed: the 2F1 factor is not representable for such x
    naive = hyp2f1(PAPER.r + x, PAPER.b + x, PAPER.a + PAPER.b + x - 1, z)
    assert not math.isfinite(naive) or naive > 1e300
    value = bgnbd.conditional_expected_purchases(PAPER, t, x, t_x, T)
    alive = bgnbd.expected_purchases_if_alive(PAPER, t, x, T)
    assert math.isfinite(value) and math.isfinite(alive)
    # A customer buying ~0.1 times a week for 10000 weeks keeps that rate while alive.
    assert 300 < alive < 1000 + 1
    assert 0 < bgnbd.p_alive(PAPER, x, t_x, T) <= 1


@pytest.mark.parametrize("x", [1, 10, 100, 1000])
@pytest.mark.parametrize("T", [1.0, 100.0, 10_000.0])
@pytest.mark.parametrize("t", [1e-6, 1.0, 52.0, 10_000.0])
def test_values_stay_finite_and_ordered(x, T, t):
    for t_x in (0.0, T / 2, T):
        p_alive = bgnbd.p_alive(PAPER, x, t_x, T)
        value = bgnbd.conditional_expected_purchases(PAPER, t, x, t_x, T)
        assert 0.0 <= p_alive <= 1.0
        assert math.isfinite(value) and value >= 0.0
        # more time can only add purchases
        assert bgnbd.conditional_expected_purchases(PAPER, 2 * t, x, t_x, T) >= value


def test_p_alive_underflows_gracefully():
    # 1000 purchases in the first week, then silence for 10000 weeks
    assert bgnbd.p_alive(PAPER, 1000, 1.0, 10_000.0) == 0.0
    assert bgnbd.conditional_expected_purchases(PAPER, 52, 1000, 1.0, 10_000.0) == 0.0
    assert bgnbd.expected_purchases_if_alive(PAPER, 52, 1000, 10_000.0) > 0.0


def test_a_equal_to_one_is_continuous():
    near = [bgnbd.expected_purchases_if_alive(BgNbdParams(0.5, 5.0, a, 2.0), 30.0, 3, 40.0)
            for a in (1 - 1e-4, 1.0, 1 + 1e-4)]
    assert math.isfinite(near[1])
    assert near[1] == pytest.approx(0.5 * (near[0] + near[2]), rel=1e-6)
    assert bgnbd.expected_purchases_if_alive_batch(BgNbdParams(0.5, 5.0, 1.0, 2.0), 30.0, 3, 40.0) == pytest.approx(near[1])


# -- threshold crossing ---------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.9, 0.5, 0.3, 0.1, 1e-3, 1e-12])
@pytest.mark.parametrize("x, t_x", [(1, 0.5), (2, 30.43), (7, 29.43), (50, 10.0), (1000, 5000.0)])
def test_p_alive_at_threshold_time_equals_threshold(x, t_x, threshold):
    crossing = bgnbd.p_alive_threshold_time(PAPER, x, t_x, threshold)
    assert crossing >= t_x
    if crossing > t_x:
        assert bgnbd.p_alive(PAPER, x, t_x, crossing) == pytest.approx(threshold, rel=1e-9)
        assert bgnbd.p_alive(PAPER, x, t_x, crossing * (1 + 1e-6)) < threshold
    else:  # already below the threshold right after the last purchase
        assert bgnbd.p_alive(PAPER, x, t_x, t_x) <= threshold
    assert bgnbd.p_alive_threshold_time_batch(PAPER, [x], [t_x], threshold)[0] == pytest.approx(crossing, rel=1e-12)


def test_threshold_time_extremes():
    # P(alive | x=1, T=t_x) = (b)/(b+a) ~ 0.75: a threshold above that is crossed at once
    assert bgnbd.p_alive_threshold_time(PAPER, 1, 3.0, 0.9) == 3.0
    # tiny thresholds: astronomically late but still exact
    late = bgnbd.p_alive_threshold_time(PAPER, 1, 3.0, 1e-300)
    assert 1e200 < late < math.inf
    assert bgnbd.p_alive(PAPER, 1, 3.0, late) == pytest.approx(1e-300, rel=1e-9)
    # ... and beyond the float range: inf, no exception (scalar and batch)
    slow_decay = BgNbdParams(r=0.01, alpha=4.0, a=0.8, b=2.4)
    assert bgnbd.p_alive_threshold_time(slow_decay, 1, 3.0, 5e-324) == math.inf
    assert bgnbd.p_alive_threshold_time_batch(slow_decay, [1, 0], [3.0, 0.0], 5e-324).tolist() == [math.inf, math.inf]
    for bad in (0.0, 1.0, -0.1, 2.0):
        with pytest.raises(ValueError):
            bgnbd.p_alive_threshold_time(PAPER, 1, 3.0, bad)


# -- scalar and vectorized paths agree --------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    x=st.integers(min_value=0, max_value=1000),
    recency_share=st.floats(min_value=0.0, max_value=1.0),
    T=st.floats(min_value=0.0, max_value=10_000.0),
    t=st.floats(min_value=0.0, max_value=10_000.0),
)
def test_scalar_and_vectorized_paths_agree(x, recency_share, T, t):
    t_x = 0.0 if x == 0 else recency_share * T
    params = PAPER
    pairs = [
        (bgnbd.p_alive(params, x, t_x, T), bgnbd.p_alive_batch(params, [x], [t_x], [T])[0]),
        (bgnbd.conditional_expected_purchases(params, t, x, t_x, T),
         bgnbd.conditional_expected_purchases_batch(params, [t], [x], [t_x], [T])[0]),
        (bgnbd.log_likelihood(params, x, t_x, T), bgnbd.log_likelihood_batch(params, [x], [t_x], [T])[0]),
        (bgnbd.expected_purchases_if_alive_curve(params, [t], x, T)[0],
         bgnbd.expected_purchases_if_alive(params, t, x, T)),
    ]
    for scalar, vector in pairs:
        assert math.isfinite(scalar)
        assert scalar == pytest.approx(float(vector), rel=1e-10, abs=1e-300)


def test_validate_rfm_rejects_inconsistent_rows():
    bgnbd.validate_rfm([0, 2], [0, 3], [5, 5])
    for x, t_x, T in [([1], [6], [5]), ([-1], [0], [5]), ([0], [1], [5]), ([1], [float("nan")], [5])]:
        with pytest.raises(ValueError):
            bgnbd.validate_rfm(x, t_x, T)


def test_huge_a_and_b_stay_finite_and_match_the_integral():
    """A fit on a short history can send a and b to 1e5 (dropout barely varies);
    2F1 then overflows and the quadrature fallback must take over."""
    from streams.models.bgnbd import _alive_expectation_by_quadrature, expected_purchases_if_alive_curve

    huge = BgNbdParams(0.50217, 4.59075, 53214.03658, 320458.41147)
    curve = expected_purchases_if_alive_curve(huge, [13.0, 26.0, 52.0], 2, 8.0)
    assert all(math.isfinite(v) and v > 0 for v in curve)
    assert curve == sorted(curve)
    # with moderate a, b the closed form and the integral agree
    moderate = BgNbdParams(0.5, 4.6, 530.0, 3204.0)
    closed = expected_purchases_if_alive_curve(moderate, [52.0], 2, 8.0)[0]
    assert closed == pytest.approx(_alive_expectation_by_quadrature(0.5, 4.6, 530.0, 3204.0, 52.0, 2, 8.0), rel=1e-9)
    # huge a, b behave like the moderate population with the same mean dropout
    assert curve[-1] == pytest.approx(closed, rel=0.01)
