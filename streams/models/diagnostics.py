"""Checks of a fitted BG/NBD against what the customers actually did.

* :func:`holdout_check`: refit on a calibration period, forecast each
  customer's repeat purchases in the holdout period that follows (eq. 10),
  and compare with what they bought, overall and by calibration frequency
  (the paper's Figure 4; lifetimes' ``plot_calibration_purchases_vs_holdout_purchases``);
* :func:`tracking`: expected (eq. 9, per birth cohort) vs actual repeat
  purchases per period (the paper's Figures 2 and 3).

Pure numpy; the pictures are drawn by ``streams.models.report``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np

from . import bgnbd
from .fitting import FitResult, fit_bgnbd
from .params import BgNbdParams

#: calibration frequencies 0 .. FREQUENCY_BUCKETS-1, the last one meaning "or more"
FREQUENCY_BUCKETS = 8


@dataclass(frozen=True)
class HoldoutCheck:
    """Forecast vs actual repeat purchases in a holdout period of ``length`` time units."""

    length: float
    calibration_fit: FitResult
    customers: int
    predicted_total: float
    actual_total: float
    mae: float
    #: per calibration frequency bucket: (x, customers, mean actual, mean predicted)
    by_frequency: tuple[tuple[int, int, float, float], ...]

    @property
    def relative_error(self) -> float:
        return self.predicted_total / self.actual_total - 1.0 if self.actual_total else math.nan

    def summary(self, unit: str) -> str:
        if not self.calibration_fit.usable:
            return (f"holdout check ({self.length:g} {unit}): the calibration-period fit was refused: "
                    f"{self.calibration_fit.refusal}")
        return (f"holdout check ({self.length:g} {unit}, {self.customers} customers): repeat purchases "
                f"predicted {self.predicted_total:.1f}, actual {self.actual_total:.0f} "
                f"({self.relative_error:+.1%}); MAE per customer {self.mae:.3f}")


def holdout_check(x, t_x, T, actual, length: float, penalizer_coef: float = 0.0) -> HoldoutCheck:
    """Fit on calibration ``(x, t_x, T)`` and forecast ``length`` time units beyond each ``T``.

    ``actual[i]`` is customer i's repeat purchase occasions in the holdout.
    Never raises on the data: a refused calibration fit is reported as such.
    """
    x, t_x, T, actual = (np.asarray(v, dtype=float) for v in (x, t_x, T, actual))
    fit = fit_bgnbd(x, t_x, T, penalizer_coef=penalizer_coef)
    if fit.params is None or not fit.usable:
        return HoldoutCheck(length, fit, int(x.size), math.nan, float(actual.sum()), math.nan, ())
    with np.errstate(all="ignore"):
        predicted = bgnbd.conditional_expected_purchases_batch(fit.params, length, x, t_x, T)
    buckets = np.minimum(x, FREQUENCY_BUCKETS - 1).astype(int)
    rows = []
    for k in range(FREQUENCY_BUCKETS):
        mask = buckets == k
        if mask.any():
            rows.append((k, int(mask.sum()), float(actual[mask].mean()), float(predicted[mask].mean())))
    return HoldoutCheck(length, fit, int(x.size), float(predicted.sum()), float(actual.sum()),
                        float(np.abs(predicted - actual).mean()), tuple(rows))


@dataclass(frozen=True)
class Tracking:
    """Repeat purchases per period: ``edges`` (n+1 times) and ``actual`` / ``expected`` (n values)."""

    edges: np.ndarray
    actual: np.ndarray
    expected: np.ndarray


def tracking(params: BgNbdParams, births, repeat_times, edges) -> Tracking:
    """Expected vs actual repeat purchases in each period ``[edges[i], edges[i+1])``.

    ``births`` are the customers' first-purchase times and ``repeat_times``
    the times of all their repeat purchase occasions, on one axis in the
    parameters' time unit.  The expectation is eq. (9) per customer,
    ``E[X(edge - birth)]`` differenced over the periods, summed by birth
    cohort (customers born at the same time share it).
    """
    edges = np.asarray(edges, dtype=float)
    births = np.asarray(births, dtype=float)
    cohorts, sizes = np.unique(births, return_counts=True)
    ages = np.maximum(edges[None, :] - cohorts[:, None], 0.0)
    with np.errstate(all="ignore"):
        cumulative = bgnbd.expected_purchases_batch(params, ages)
        # Past the closed form's numeric range (extreme early fits) E[X(t)] is unknown: NaN, so the
        # periods it touches show as a gap. Not 0 (a false drop) nor nan_to_num's 1.8e308 (an overflow).
        cumulative = np.where(np.isfinite(cumulative), cumulative, np.nan)
        expected = np.diff(sizes @ cumulative)
    actual, _ = np.histogram(np.asarray(repeat_times, dtype=float), bins=edges)
    return Tracking(edges, actual.astype(float), expected)


def p_alive_matrix(params: BgNbdParams, T: float, max_x: int, cells: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(alive) of a customer of age ``T`` over a grid of frequency x (rows) and recency t_x (columns).

    Returns ``(frequencies, recencies, matrix)``; cells with ``x == 0`` and
    ``t_x > 0`` cannot occur and are NaN.
    """
    frequencies = np.arange(0, max(int(max_x), 1) + 1, dtype=float)
    recencies = np.linspace(0.0, T, cells)
    x, t_x = np.meshgrid(frequencies, recencies, indexing="ij")
    with np.errstate(all="ignore"):
        matrix = bgnbd.p_alive_batch(params, x, t_x, np.full_like(x, T))
    matrix = np.where((x == 0) & (t_x > 0), np.nan, matrix)
    return frequencies, recencies, matrix

