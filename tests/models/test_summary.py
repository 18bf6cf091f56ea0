"""Transactions -> (x, t_x, T, mean repeat spend), on small hand-made histories."""

from __future__ import annotations

import pytest

from streams.models.summary import as_arrays, holdout_purchases, purchase_occasions, summarize

# (customer, day number, amount)
TRANSACTIONS = [
    ("ann", 100, 10.0),
    ("ann", 100.7, 5.0),   # same calendar day: one occasion worth 15
    ("ann", 114, 20.0),
    ("ann", 128, 40.0),
    ("ann", 200, 99.0),    # after the calibration end
    ("bob", 107, 30.0),    # one-time buyer
    ("cat", 90, 8.0),      # before the observation start: ignored
    ("cat", 121, 12.0),
    ("dan", 150, 1.0),     # first purchase after the calibration end: not in the cohort
]
CALIBRATION_END = 135


def by_id(summaries):
    return {s.customer_id: s for s in summaries}


def test_same_day_transactions_form_one_occasion():
    occasions = purchase_occasions(TRANSACTIONS)
    assert occasions["ann"] == [(100, 15.0), (114, 20.0), (128, 40.0), (200, 99.0)]


def test_weekly_summary():
    s = by_id(summarize(TRANSACTIONS, CALIBRATION_END, observation_start=95, time_unit="weeks"))
    assert set(s) == {"ann", "bob", "cat"}
    ann = s["ann"]
    assert (ann.x, ann.t_x, ann.T) == (2, 4.0, 5.0)
    # the first occasion (15) is excluded from the mean spend
    assert ann.mean_spend == pytest.approx(30.0)
    assert ann.first_purchase_day == 100
    bob = s["bob"]
    assert (bob.x, bob.t_x, bob.T, bob.mean_spend) == (0, 0.0, 4.0, 0.0)
    cat = s["cat"]  # its day-90 purchase is before the window, so day 121 is its first
    assert (cat.x, cat.t_x, cat.T) == (0, 0.0, 2.0)


def test_daily_summary_and_arrays():
    s = summarize(TRANSACTIONS, CALIBRATION_END, time_unit="days")
    ann = by_id(s)["ann"]
    assert (ann.x, ann.t_x, ann.T) == (2, 28.0, 35.0)
    cat = by_id(s)["cat"]  # without an observation start, day 90 is cat's first purchase
    assert (cat.x, cat.t_x, cat.T, cat.mean_spend) == (1, 31.0, 45.0, 12.0)
    x, t_x, T, mean_spend = as_arrays(s)
    assert x.tolist() == [2, 0, 1]
    assert T.tolist() == [35.0, 28.0, 45.0]


def test_times_in_weeks_are_grouped_by_calendar_day():
    in_weeks = [(c, day / 7, amount) for c, day, amount in TRANSACTIONS]
    a = summarize(in_weeks, CALIBRATION_END / 7, observation_start=95 / 7, time_unit="weeks", input_unit="weeks")
    b = summarize(TRANSACTIONS, CALIBRATION_END, observation_start=95, time_unit="weeks")
    assert a == b


def test_holdout_counts():
    counts = holdout_purchases(TRANSACTIONS, CALIBRATION_END, 250)
    assert counts == {"ann": 1, "bob": 0, "cat": 0}
    assert holdout_purchases(TRANSACTIONS, CALIBRATION_END, 199) == {"ann": 0, "bob": 0, "cat": 0}


def test_unknown_units_are_refused():
    with pytest.raises(ValueError):
        summarize(TRANSACTIONS, CALIBRATION_END, time_unit="months")
    with pytest.raises(ValueError):
        summarize(TRANSACTIONS, CALIBRATION_END, input_unit="hours")
