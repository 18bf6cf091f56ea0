"""Gamma-Gamma: reproduce Fader & Hardie (2013) on the CDNOW repeat buyers."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from streams.models import gamma_gamma
from streams.models.fitting import compress_rows, fit_gamma_gamma
from streams.models.params import GammaGammaParams

DATA = Path(__file__).parent.parent / "data" / "cdnow"

# Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value"
# (brucehardie.com/notes/025): p = 6.25, q = 3.74, gamma (our v) = 15.44, fitted on
# the 946 CDNOW sample customers with at least one repeat purchase (lifetimes'
# test_params_out_is_close_to_Hardie_paper and CLVTools' Gamma-Gamma test use the
# same figures; CLVTools pins the log-likelihood at -4055.9177).
PUBLISHED = GammaGammaParams(p=6.25, q=3.74, v=15.44)
PUBLISHED_LOG_LIKELIHOOD = -4055.9177


def significant(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")


def load_cdnow_spend():
    with open(DATA / "cdnow_customers_summary_with_transactions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return np.array([float(r["x"]) for r in rows]), np.array([float(r["zbar"]) for r in rows])


@pytest.fixture(scope="module")
def spend():
    return load_cdnow_spend()


@pytest.fixture(scope="module")
def fitted(spend):
    return fit_gamma_gamma(*spend)


def test_fit_reproduces_published_parameters(spend, fitted):
    p = fitted.params
    assert fitted.converged, fitted.message
    # Only repeat buyers enter the likelihood; the 1411 one-time buyers are ignored.
    assert fitted.n_customers == 946
    assert (significant(p.p), significant(p.q), significant(p.v)) == (6.25, 3.74, 15.4)
    # The MLE is v = 15.448 (lifetimes 0.11.3 finds 15.4477 as well); the note
    # prints 15.44.  Hardie's spreadsheet is evaluated at the unrounded optimum:
    # its population mean 35.17 needs v ~ 15.448 (6.25 * 15.44 / 2.74 = 35.22).
    assert p.v == pytest.approx(15.4477, abs=1e-3)
    assert fitted.log_likelihood == pytest.approx(PUBLISHED_LOG_LIKELIHOOD, abs=0.01)
    # and the published (rounded) point is no better than ours
    x, mean_spend = spend
    repeat = gamma_gamma.fittable_mask(x, mean_spend)
    published_ll = gamma_gamma.log_likelihood_batch(PUBLISHED, x[repeat], mean_spend[repeat]).sum()
    assert published_ll <= fitted.log_likelihood


def test_standard_errors_match_lifetimes(fitted):
    # lifetimes 0.11.3 GammaGammaFitter standard_errors_ on the same 946 customers
    lifetimes_se = {"p": 1.189687, "q": 0.290166, "v": 4.159994}
    for name, expected in lifetimes_se.items():
        assert fitted.standard_errors[name] == pytest.approx(expected, rel=2e-3), name


def test_weights_equal_repeated_rows(spend, fitted):
    columns, counts = compress_rows(*spend)
    compressed = fit_gamma_gamma(*columns, weights=counts)
    assert compressed.n_customers == 946
    assert compressed.log_likelihood == pytest.approx(fitted.log_likelihood, abs=1e-6)


def test_conditional_expected_spend_matches_hardie_spreadsheet(fitted):
    # First ten CDNOW customers; "E(M)" column of Hardie's spreadsheet for note 025,
    # as quoted by lifetimes' test_conditional_expected_average_profit.
    x = [2, 1, 0, 0, 0, 7, 1, 0, 2, 0]
    mean_spend = [22.35, 11.77, 0, 0, 0, 73.74, 11.77, 0, 25.55, 0]
    spreadsheet = [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17]
    batch = gamma_gamma.conditional_expected_spend_batch(fitted.params, x, mean_spend)
    np.testing.assert_allclose(batch, spreadsheet, atol=0.01)
    scalar = [gamma_gamma.conditional_expected_spend(fitted.params, *row) for row in zip(x, mean_spend)]
    np.testing.assert_allclose(scalar, batch, rtol=1e-14)


def test_customer_without_repeat_purchase_gets_population_mean(fitted):
    params = fitted.params
    mean = params.p * params.v / (params.q - 1)
    assert params.population_mean_spend == pytest.approx(mean)
    assert gamma_gamma.conditional_expected_spend(params, 0, 0.0) == pytest.approx(mean)
    # whatever spend is recorded (e.g. the first purchase), it is ignored for x = 0
    assert gamma_gamma.conditional_expected_spend(params, 0, 1000.0) == pytest.approx(mean)
    assert gamma_gamma.conditional_expected_spend_batch(params, [0], [1000.0])[0] == pytest.approx(mean)


def test_expected_spend_shrinks_towards_the_observed_mean(fitted):
    params = fitted.params
    estimates = [gamma_gamma.conditional_expected_spend(params, x, 100.0) for x in (1, 10, 100, 10_000)]
    assert all(later > earlier for earlier, later in zip(estimates, estimates[1:]))
    assert estimates[-1] == pytest.approx(100.0, rel=1e-3)


def test_log_likelihood_scalar_and_batch_agree(fitted):
    for x, m in [(1, 5.0), (3, 40.0), (200, 17.5)]:
        assert gamma_gamma.log_likelihood(fitted.params, x, m) == pytest.approx(
            gamma_gamma.log_likelihood_batch(fitted.params, [x], [m])[0], rel=1e-12
        )


def test_infinite_mean_is_refused():
    params = GammaGammaParams(2.0, 0.9, 10.0)
    assert params.population_mean_spend == math.inf
    with pytest.raises(ValueError):
        gamma_gamma.conditional_expected_spend(params, 1, 10.0)
    with pytest.raises(ValueError):
        gamma_gamma.conditional_expected_spend_batch(params, [1], [10.0])


def test_nothing_to_fit_is_refused_not_raised():
    # before: ValueError out of fit_gamma_gamma, and so out of `clvstream fit`
    fit = fit_gamma_gamma([0, 0], [0.0, 0.0])
    assert fit.params is None and not fit.usable
    assert "no customer with x >= 1" in fit.refusal
