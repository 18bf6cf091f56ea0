"""Fit BG/NBD + Gamma-Gamma from the engine's customer states, and say whether to publish.

The calibration end is the latest event time among the customers (the
stream's event time), never the wall clock, so the same states give the same
parameters, the same verdict and the same default version.

A fit is *published* only when the sample meets the data requirements
(``streams.models.requirements``) and neither model refused its own
estimates (``FitResult.refusal``); otherwise ``FittedModels.refusals`` says
why, and nothing here raises on the data.

The holdout check needs each customer's purchase days near the end of the
history.  A state keeps its order days for the 365 days before the
customer's last order (``state.days``), which covers every day of the
stream's last 365 days; so a holdout of up to 365 days is exact, except for
the rare customer who bought in the holdout after a gap so long that their
last calibration purchase fell out of the retained days (left out and
counted).  The same retained days give the tracking of repeat purchases per
week over the last year.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..models.diagnostics import HoldoutCheck, Tracking, holdout_check, tracking
from ..models.fitting import FitResult, fit_bgnbd, fit_gamma_gamma
from ..models.params import DAYS_PER_UNIT, ModelParameters
from ..models.requirements import DataRequirements
from .events import DAY_MS
from .prediction import rfm
from .validation import format_time_ms

#: the holdout is this share of the history, at most HOLDOUT_MAX_DAYS
HOLDOUT_SHARE = 1 / 3
HOLDOUT_MAX_DAYS = 365
#: weekly tracking over this many last days (the days every state retains)
TRACKING_DAYS = 365


@dataclass(frozen=True)
class FittedModels:
    parameters: Optional[ModelParameters]  # None when a model had nothing to fit
    bgnbd_fit: FitResult
    gamma_gamma_fit: FitResult
    customers: int
    repeat_buyers: int
    history_days: float = 0.0
    requirements: DataRequirements = DataRequirements()
    refusals: tuple[str, ...] = ()
    holdout: Optional[HoldoutCheck] = None
    holdout_note: str = ""
    tracking: Optional[Tracking] = None
    calibration: dict = field(default_factory=dict, repr=False)  # x, t_x, T, mean_spend arrays

    @property
    def publishable(self) -> bool:
        return not self.refusals and self.parameters is not None

    def may_publish(self, force: bool = False) -> bool:
        """Publishable, or (``force``) short only of the data requirements: never a fit a model refused."""
        if self.publishable:
            return True
        model_refused = (self.parameters is None or self.bgnbd_fit.refusal is not None
                         or self.gamma_gamma_fit.refusal is not None)
        return force and not model_refused

    def verdict(self) -> str:
        if self.publishable:
            return "verdict: publishable (meets " + self.requirements.describe() + ")"
        return "verdict: refused, workers keep their current parameters: " + "; ".join(self.refusals)

    def report(self) -> str:
        unit = self.parameters.time_unit if self.parameters else "weeks"
        title = f"model parameters {self.parameters.version}" if self.parameters else "no model parameters"
        lines = [f"{title} ({self.customers} customers with orders, {self.repeat_buyers} repeat buyers, "
                 f"{self.history_days:.0f} days of history"
                 + (f", time unit: {unit})" if self.parameters else ")")]
        for title, fit in (("BG/NBD", self.bgnbd_fit), ("Gamma-Gamma", self.gamma_gamma_fit)):
            lines.append(f"  {title}: log-likelihood {fit.log_likelihood:.2f}, converged {fit.converged}, "
                         f"{fit.n_customers:.0f} customers in {fit.n_rows} distinct rows"
                         + (f", penalizer {fit.penalizer_coef:g}" if fit.penalizer_coef else ""))
            if fit.params is not None:
                for name, value in fit.params.to_dict().items():
                    se = fit.standard_errors.get(name, math.nan)
                    lines.append(f"    {name:<6} {value:>14.6g}  (s.e. {se:.4g})")
            for note in fit.warnings:
                lines.append(f"    warning: {note}")
            if fit.refusal:
                lines.append(f"    refused: {fit.refusal}")
        if self.holdout is not None:
            lines.append("  " + self.holdout.summary(unit))
        elif self.holdout_note:
            lines.append("  holdout check: " + self.holdout_note)
        lines.append("  " + self.verdict())
        return "\n".join(lines)


def _holdout_split(states, as_of_day: int, holdout_days: int, days_per_unit: float):
    """Calibration (x, t_x, T) at ``as_of_day - holdout_days`` and holdout repeat purchases, per customer."""
    cut = as_of_day - holdout_days
    rows, skipped = [], 0
    for s in states:
        first = s.first_order_ms // DAY_MS
        if first > cut:
            continue  # born in the holdout: not in the calibration cohort
        days = sorted(d for d, bucket in s.days.items() if bucket[0] > 0)
        in_holdout = sum(1 for d in days if d > cut)
        before = [d for d in days if d <= cut]
        x_cal = s.purchase_days - in_holdout - 1
        if before:
            last = before[-1]
        elif x_cal == 0:
            last = first
        elif in_holdout == 0:
            last = s.last_order_ms // DAY_MS
        else:
            skipped += 1  # last calibration purchase no longer in the retained days
            continue
        rows.append((x_cal, (last - first) / days_per_unit, (cut - first) / days_per_unit, in_holdout))
    return np.array(rows, dtype=float).reshape(-1, 4), skipped


def _tracking_from_states(params, states, as_of_day: int, history_days: float, days_per_unit: float):
    """Weekly repeat purchases over the last year (or the whole history if shorter)."""
    span = int(min(TRACKING_DAYS, history_days))
    weeks = span // 7
    if weeks < 2:
        return None
    start = as_of_day + 1 - weeks * 7
    edges = (start + 7 * np.arange(weeks + 1)) / days_per_unit
    births, repeats = [], []
    for s in states:
        first = s.first_order_ms // DAY_MS
        births.append(first / days_per_unit)
        repeats.extend(d / days_per_unit for d, bucket in s.days.items() if bucket[0] > 0 and d != first)
    return tracking(params, births, repeats, edges)


def fit_from_states(states, time_unit: str = "weeks", version: Optional[str] = None,
                    requirements: DataRequirements = DataRequirements(), penalizer_coef: float = 0.0,
                    diagnostics: bool = True) -> FittedModels:
    """Fit BG/NBD and Gamma-Gamma from customer states; never raises on the states' content.

    ``diagnostics`` adds the holdout check (when the history is long enough
    for both a calibration part that meets the requirements and a holdout)
    and the weekly tracking.
    """
    states = [s for s in states if s.purchase_days and s.first_order_ms is not None]
    days_per_unit = DAYS_PER_UNIT[time_unit]
    if not states:
        empty = fit_bgnbd([], [], [])
        return FittedModels(None, empty, fit_gamma_gamma([], []), 0, 0, 0.0, requirements,
                            ("no customer with an order: nothing to fit",))
    as_of = max(s.watermark_ms for s in states)
    as_of_day = as_of // DAY_MS
    history_days = float(as_of_day - min(s.first_order_ms // DAY_MS for s in states))
    rows = np.array([rfm(s, as_of, days_per_unit) for s in states], dtype=float)
    x, t_x, T, spend = rows.T
    repeat_buyers = int((x > 0).sum())
    bg = fit_bgnbd(x, t_x, T, penalizer_coef=penalizer_coef)
    gg = fit_gamma_gamma(x, spend, penalizer_coef=penalizer_coef)
    refusals = requirements.unmet(len(states), history_days, repeat_buyers)
    refusals += [f"{title}: {fit.refusal}" for title, fit in (("BG/NBD", bg), ("Gamma-Gamma", gg)) if fit.refusal]
    parameters = None
    if bg.params is not None and gg.params is not None:
        end = format_time_ms(as_of)
        parameters = ModelParameters(
            version=version or f"{end[:10]}-{len(states)}", time_unit=time_unit, bgnbd=bg.params,
            gamma_gamma=gg.params, fitted_at=end, calibration_end=as_of / DAY_MS / days_per_unit,
            n_customers=len(states),
            extra={"bgnbd_log_likelihood": bg.log_likelihood, "gamma_gamma_log_likelihood": gg.log_likelihood,
                   "bgnbd_standard_errors": dict(bg.standard_errors),
                   "gamma_gamma_standard_errors": dict(gg.standard_errors),
                   "repeat_buyers": repeat_buyers, "history_days": history_days})
    holdout, note, tracked = None, "", None
    if diagnostics:
        holdout_days = int(min(HOLDOUT_MAX_DAYS, history_days * HOLDOUT_SHARE))
        if history_days - holdout_days < requirements.min_history_days or holdout_days < 7:
            note = (f"skipped: {history_days:.0f} days of history leave no calibration part of "
                    f"{requirements.min_history_days:.0f} days beside a holdout of a third")
        else:
            split, skipped = _holdout_split(states, as_of_day, holdout_days, days_per_unit)
            holdout = holdout_check(split[:, 0], split[:, 1], split[:, 2], split[:, 3],
                                    holdout_days / days_per_unit, penalizer_coef)
            if skipped:
                note = f"{skipped} customers left out (last calibration purchase older than the retained days)"
        if bg.params is not None:
            tracked = _tracking_from_states(bg.params, states, as_of_day, history_days, days_per_unit)
    return FittedModels(parameters, bg, gg, len(states), repeat_buyers, history_days, requirements,
                        tuple(refusals), holdout, note, tracked,
                        {"x": x, "t_x": t_x, "T": T, "mean_spend": spend})
