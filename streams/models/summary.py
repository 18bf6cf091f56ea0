"""From raw transactions to the per-customer statistics the models need.

Follows the construction used by Fader, Hardie & Lee for CDNOW (and by
lifetimes' ``summary_data_from_transaction_data``):

* transactions of a customer on the same calendar day are one *purchase
  occasion* whose value is the sum of the amounts;
* the first occasion (the customer's "birth") is not a repeat purchase:
  ``x`` counts the repeat occasions up to the calibration end;
* ``t_x`` = day of the last occasion minus day of the first, ``T`` =
  calibration end day minus day of the first, converted to ``time_unit``;
* ``mean_spend`` is the mean value of the repeat occasions only (the first
  purchase is excluded, as in the Gamma-Gamma note), 0.0 when ``x == 0``.

Time.  Transaction times are numbers on one axis in ``input_unit`` ("days":
e.g. ``date.toordinal()`` or epoch seconds / 86400; "weeks": weeks).  They
are converted to days and floored to the calendar day for grouping, so the
statistics are whole days expressed in ``time_unit`` - the unit the model
must be fitted and scored in.  ``calibration_end``, ``observation_start``
and ``holdout_end`` are on the same axis as the transaction times;
calibration includes the calibration end day.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Hashable, Iterable, Sequence

import numpy as np

from .params import DAYS_PER_UNIT, TIME_UNITS

Transaction = Sequence  # (customer_id, time, amount)


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    """Calibration-period statistics of one customer (see module docstring)."""

    customer_id: Hashable
    x: int
    t_x: float
    T: float
    mean_spend: float
    first_purchase_day: int


def _check_unit(name: str, unit: str) -> float:
    if unit not in TIME_UNITS:
        raise ValueError(f"{name} must be one of {TIME_UNITS}, got {unit!r}")
    return DAYS_PER_UNIT[unit]


def _day(time: float, days_per_input_unit: float) -> int:
    # The tiny offset keeps e.g. (3/7 weeks) * 7 = 2.9999999999999996 on day 3.
    return math.floor(time * days_per_input_unit + 1e-9)


def purchase_occasions(transactions: Iterable[Transaction], input_unit: str = "days",
                       observation_start: float | None = None) -> dict[Hashable, list[tuple[int, float]]]:
    """Per customer, the sorted ``(day, value)`` purchase occasions.

    Same-day transactions are merged, their amounts summed.  Transactions
    before ``observation_start`` (if given) are outside the observed window
    and dropped.
    """
    per_input = _check_unit("input_unit", input_unit)
    start_day = None if observation_start is None else _day(observation_start, per_input)
    by_day: dict[Hashable, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for customer_id, time, amount in transactions:
        day = _day(float(time), per_input)
        if start_day is not None and day < start_day:
            continue
        by_day[customer_id][day] += float(amount)
    return {cid: sorted(days.items()) for cid, days in by_day.items()}


def summarize(transactions: Iterable[Transaction], calibration_end: float,
              observation_start: float | None = None, time_unit: str = "weeks",
              input_unit: str = "days") -> list[CustomerSummary]:
    """Build ``(x, t_x, T, mean_spend)`` per customer first seen by ``calibration_end``.

    Customers whose first occasion falls after the calibration end are not
    in the calibration sample and are left out.  Output order follows the
    first appearance of each customer in ``transactions``.
    """
    per_input = _check_unit("input_unit", input_unit)
    days_per_unit = _check_unit("time_unit", time_unit)
    end_day = _day(calibration_end, per_input)
    summaries = []
    for customer_id, occasions in purchase_occasions(transactions, input_unit, observation_start).items():
        first_day = occasions[0][0]
        if first_day > end_day:
            continue
        repeats = [(day, value) for day, value in occasions[1:] if day <= end_day]
        x = len(repeats)
        last_day = repeats[-1][0] if repeats else first_day
        mean_spend = sum(value for _, value in repeats) / x if x else 0.0
        summaries.append(CustomerSummary(
            customer_id=customer_id,
            x=x,
            t_x=(last_day - first_day) / days_per_unit,
            T=(end_day - first_day) / days_per_unit,
            mean_spend=mean_spend,
            first_purchase_day=first_day,
        ))
    return summaries


def holdout_purchases(transactions: Iterable[Transaction], calibration_end: float,
                      holdout_end: float, observation_start: float | None = None,
                      input_unit: str = "days") -> dict[Hashable, int]:
    """Repeat purchase occasions in (calibration_end, holdout_end] per calibration customer.

    Only customers first seen by the calibration end are counted (others are
    not in the cohort); those with no holdout purchase map to 0.
    """
    per_input = _check_unit("input_unit", input_unit)
    end_day = _day(calibration_end, per_input)
    stop_day = _day(holdout_end, per_input)
    counts = {}
    for customer_id, occasions in purchase_occasions(transactions, input_unit, observation_start).items():
        if occasions[0][0] > end_day:
            continue
        counts[customer_id] = sum(1 for day, _ in occasions if end_day < day <= stop_day)
    return counts


def as_arrays(summaries: Sequence[CustomerSummary]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, t_x, T, mean_spend)`` columns for the vectorized model functions."""
    return (
        np.array([s.x for s in summaries], dtype=float),
        np.array([s.t_x for s in summaries], dtype=float),
        np.array([s.T for s in summaries], dtype=float),
        np.array([s.mean_spend for s in summaries], dtype=float),
    )
