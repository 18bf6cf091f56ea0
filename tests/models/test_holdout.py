"""CDNOW 39 + 39 weeks: raw transactions -> summaries -> BG/NBD fit -> holdout forecast.

Calibration 1997-01-01 .. 1997-09-30 (39 weeks), holdout 1997-10-01 .. 1998-06-30
(39 weeks), as in Fader, Hardie & Lee (2005).  Run with ``pytest -s`` to see the
error figures.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from streams.models import bgnbd
from streams.models.fitting import fit_bgnbd
from streams.models.summary import as_arrays, holdout_purchases, summarize

DATA = Path(__file__).parent.parent / "data" / "cdnow"
CALIBRATION_END = dt.date(1997, 9, 30).toordinal()
HOLDOUT_END = dt.date(1998, 6, 30).toordinal()
HOLDOUT_WEEKS = (HOLDOUT_END - CALIBRATION_END) / 7  # 39.0


def load_transactions():
    """(sample customer id, day number, dollar value) rows of CDNOW_sample.txt."""
    rows = []
    with open(DATA / "CDNOW_sample.txt") as handle:
        for line in handle:
            _, customer, date, _, amount = line.split()
            day = dt.date(int(date[:4]), int(date[4:6]), int(date[6:])).toordinal()
            rows.append((int(customer), day, float(amount)))
    return rows


@pytest.fixture(scope="module")
def transactions():
    return load_transactions()


@pytest.fixture(scope="module")
def calibration(transactions):
    return summarize(transactions, CALIBRATION_END, time_unit="weeks")


@pytest.fixture(scope="module")
def forecast(transactions, calibration):
    x, t_x, T, _ = as_arrays(calibration)
    fit = fit_bgnbd(x, t_x, T)
    predicted = bgnbd.conditional_expected_purchases_batch(fit.params, HOLDOUT_WEEKS, x, t_x, T)
    counts = holdout_purchases(transactions, CALIBRATION_END, HOLDOUT_END)
    actual = np.array([counts[s.customer_id] for s in calibration], dtype=float)
    tracking_expected = bgnbd.expected_purchases_batch(fit.params, T + HOLDOUT_WEEKS).sum()
    return fit, x, T, predicted, actual, tracking_expected


def test_summary_builder_reproduces_published_calibration_summary(calibration):
    with open(DATA / "cdnow_customers_summary_with_transactions.csv", newline="") as handle:
        published = {int(row["ID"]): row for row in csv.DictReader(handle)}
    assert len(calibration) == len(published) == 2357
    for ours in calibration:
        row = published[ours.customer_id]
        assert ours.x == int(row["x"]), ours
        # the file is rounded to 2 decimals
        assert ours.t_x == pytest.approx(float(row["t_x"]), abs=0.005 + 1e-9), ours
        assert ours.T == pytest.approx(float(row["T"]), abs=0.005 + 1e-9), ours
        assert ours.mean_spend == pytest.approx(float(row["zbar"]), abs=0.005 + 1e-9), ours


def test_holdout_forecast(forecast):
    fit, x, T, predicted, actual, tracking_expected = forecast
    errors = predicted - actual
    mae = float(np.abs(errors).mean())
    rmse = float(np.sqrt((errors ** 2).mean()))
    total_predicted, total_actual = float(predicted.sum()), float(actual.sum())
    relative = total_predicted / total_actual - 1
    tracking_actual = float(x.sum() + actual.sum())
    tracking_relative = tracking_expected / tracking_actual - 1
    p = fit.params
    report = (
        f"BG/NBD on built summaries: r={p.r:.4f} alpha={p.alpha:.4f} a={p.a:.4f} b={p.b:.4f} "
        f"LL={fit.log_likelihood:.2f}\n"
        f"holdout {HOLDOUT_WEEKS:.0f} weeks, {len(actual)} customers: MAE/customer={mae:.4f} RMSE={rmse:.4f}\n"
        f"total repeat purchases predicted={total_predicted:.1f} actual={total_actual:.0f} ({relative:+.1%})\n"
        f"78-week cumulative tracking (eq. 9 per customer) expected={tracking_expected:.1f} "
        f"actual={tracking_actual:.0f} ({tracking_relative:+.1%})"
    )
    print("\n" + report)
    # The summaries are exact (not rounded), so the fit differs from the paper's
    # only in the 4th digit.
    assert (round(p.r, 3), round(p.alpha, 2), round(p.a, 3), round(p.b, 2)) == (0.243, 4.41, 0.793, 2.43), report
    # Figures cross-checked with lifetimes 0.11.3 (calibration_and_holdout_data,
    # freq="D", then BetaGeoFitter.predict(39, ...)): 1653.41, MAE 0.7855, RMSE 1.6080.
    assert total_predicted == pytest.approx(1653.41, abs=0.05), report
    assert mae == pytest.approx(0.7855, abs=1e-4), report
    assert rmse == pytest.approx(1.6080, abs=1e-4), report
    # The BG/NBD under-forecasts the CDNOW holdout by 12% (1653 vs 1882 repeat
    # purchase occasions; the Pareto/NBD does likewise) - the brief's "within
    # 10%" does not hold on this data.  We pin the known gap instead ...
    assert -0.15 < relative < -0.10, report
    # ... and the paper's cumulative tracking view (its Figure 2), which is close.
    assert abs(tracking_relative) < 0.05, report
