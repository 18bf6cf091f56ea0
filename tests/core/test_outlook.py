"""Klaviyo-style order outlook: next order date, gap between orders, churn probability, orders in 365 days."""
from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pytest
from scipy import integrate, stats
from scipy.special import hyp2f1

from streams.core.clv import formula_clv
from streams.core.engine import EngineConfig, process
from streams.core.events import DAY_MS
from streams.core.outlook import average_days_between_orders, outlook
from streams.core.prediction import ModelScorer, rfm
from streams.core.state import CustomerState
from streams.lookup import customer_document
from streams.models import bgnbd
from streams.models.params import BgNbdParams, GammaGammaParams, ModelParameters
from tests.core.builders import T0, order, signup

ROOT = Path(__file__).resolve().parents[2]
# CDNOW parameters (Fader, Hardie & Lee 2005), weeks
PAPER = BgNbdParams(0.243, 4.414, 0.793, 2.426)
CDNOW = ModelParameters("cdnow", "weeks", PAPER, GammaGammaParams(6.25, 3.74, 15.44))


def eq10(p: BgNbdParams, t, x, t_x, T):
    """E[Y(t) | x, t_x, T] exactly as printed in Fader, Hardie & Lee (2005), eq. (10)."""
    r, alpha, a, b = p.r, p.alpha, p.a, p.b
    head = (a + b + x - 1) / (a - 1)
    tail = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    dead = (a / (b + x - 1)) * ((alpha + T) / (alpha + t_x)) ** (r + x) if x > 0 else 0.0
    return head * tail / (1 + dead)


def test_the_closed_form_of_the_test_matches_the_published_figures():
    """The reference of the tests below reproduces Hardie's spreadsheet and lifetimes."""
    assert eq10(PAPER, 39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)
    x = [2, 1, 0, 7, 1, 2]
    t_x = [30.43, 1.71, 0, 29.43, 5.00, 35.71]
    lifetimes_e52 = [1.5587208064, 0.2598234649, 0.2520730223, 4.1988555849, 0.3856122103, 1.6836024443]
    for xi, ti, want in zip(x, t_x, lifetimes_e52):
        assert eq10(PAPER, 52, xi, ti, 38.86) == pytest.approx(want, rel=1e-8)


def customer(*order_days, cid="c1"):
    state = CustomerState(cid)
    for n, day in enumerate(order_days, start=1):
        process(state, order(n, day, 80, 30, cid=cid), EngineConfig())
    return state


def test_model_figures_against_the_closed_forms():
    # x = 2 repeat occasions, t_x = 213 days = 30.43 weeks, T = 272 days = 38.86 weeks: the paper's customer
    state = customer(0, 100, 213)
    as_of = T0 + 272 * DAY_MS + 12 * 3_600_000
    scorer = ModelScorer(CDNOW)
    clv = scorer(state, formula_clv(state, EngineConfig().formula, as_of), as_of)
    got = outlook(state, clv, as_of, CDNOW)
    x, t_x, T, _ = rfm(state, as_of, 7.0)
    assert (x, t_x, T) == (2, pytest.approx(30.43, abs=0.01), pytest.approx(38.86, abs=0.01))
    assert got.basis == "bgnbd:cdnow"
    assert got.predicted_orders_365d == pytest.approx(eq10(PAPER, 365 / 7, x, t_x, T), rel=1e-9)
    assert got.churn_probability == pytest.approx(1 - bgnbd.p_alive(PAPER, x, t_x, T))
    assert got.churn_probability == pytest.approx(1 - 0.7265785701, abs=1e-4)  # lifetimes: P(alive) at T=38.86 (ours 38.857)
    assert got.average_days_between_orders == 106.5  # (213 - 0) / 2 gaps
    # next order: the median wait of an active customer, counted from the assessment's event time
    wait_weeks = bgnbd.median_wait_if_alive(PAPER, x, T)
    assert got.expected_next_order_date == _date_of(as_of + wait_weeks * 7 * DAY_MS)
    doc = json.loads(json.dumps(got.to_dict()))
    assert set(doc) == {"expected_next_order_date", "average_days_between_orders", "churn_probability",
                        "predicted_orders_365d", "basis"}


def _date_of(ms):
    import datetime
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc).date().isoformat()


@pytest.mark.parametrize("x, T", [(0, 10.0), (2, 38.86), (7, 20.0)])
def test_median_wait_splits_the_posterior_wait_in_half(x, T):
    """P(W > w) = E[exp(-lambda w)] over lambda ~ Gamma(r+x, rate alpha+T): integrated numerically."""
    w = bgnbd.median_wait_if_alive(PAPER, x, T)
    rate = stats.gamma(PAPER.r + x, scale=1 / (PAPER.alpha + T))
    survival, _ = integrate.quad(lambda lam: math.exp(-lam * w) * rate.pdf(lam), 0, math.inf, limit=200)
    assert survival == pytest.approx(0.5, abs=1e-6)
    assert math.isfinite(w) and w > 0  # finite even where the mean (r+x <= 1) is not


def test_without_a_model_the_figures_come_from_the_history():
    state = customer(0, 30, 90)
    as_of = state.watermark_ms
    clv = formula_clv(state, EngineConfig().formula, as_of)
    got = outlook(state, clv, as_of, None)
    assert got.basis == "history" and got.churn_probability is None
    assert got.average_days_between_orders == 45.0
    assert got.expected_next_order_date == _date_of(T0 + 135 * DAY_MS)  # last order day + the average gap
    assert got.predicted_orders_365d == pytest.approx(clv.purchases_per_year)  # the formula's shrunk rate
    # a published model that was not finite for this customer (p_alive None) falls back the same way
    assert outlook(state, clv, as_of, CDNOW) == got


def test_one_order_and_no_order():
    one = customer(5)
    clv = formula_clv(one, EngineConfig().formula, one.watermark_ms)
    history = outlook(one, clv, one.watermark_ms, None)
    assert history.average_days_between_orders is None and history.expected_next_order_date is None
    scored = ModelScorer(CDNOW)(one, clv, one.watermark_ms + 30 * DAY_MS)
    modelled = outlook(one, scored, one.watermark_ms + 30 * DAY_MS, CDNOW)
    assert modelled.expected_next_order_date is not None and modelled.churn_probability == 0.0  # x=0: alive
    assert 0 < modelled.predicted_orders_365d < 1
    none = CustomerState("c2")
    process(none, signup(1, 0, cid="c2"), EngineConfig())
    blank = outlook(none, formula_clv(none, EngineConfig().formula), none.watermark_ms, CDNOW)
    assert blank.to_dict() == {"expected_next_order_date": None, "average_days_between_orders": None,
                               "churn_probability": None, "predicted_orders_365d": None, "basis": "history"}
    assert average_days_between_orders(none) is None


def test_segment_changes_and_lookups_carry_the_outlook():
    schema = json.loads((ROOT / "schemas/v1/segment_change.schema.json").read_text())
    cfg, scorer = EngineConfig(), ModelScorer(CDNOW)
    state, changes = CustomerState("c1"), []
    for n, day in enumerate((0, 20, 41, 300), start=1):
        result = process(state, order(n, day, 400, 100), cfg, scorer=scorer)
        if result.change:
            changes.append(result.change)
    assert changes
    for change in changes:
        jsonschema.validate(change, schema)
        when = change["event_time"]
        assert change["outlook"]["basis"] == "bgnbd:cdnow"
        assert change["outlook"]["churn_probability"] == pytest.approx(1 - change["clv"]["p_alive"], abs=1e-4)
        assert change["outlook"]["expected_next_order_date"] >= when[:10]
    doc = customer_document(state, cfg, scorer)
    assert doc["outlook"]["basis"] == "bgnbd:cdnow" and doc["outlook"]["average_days_between_orders"] == 100.0
    assert customer_document(state, cfg)["outlook"]["basis"] == "history"  # no model: from the history


def test_the_schema_change_is_additive():
    """A segment change of the earlier revision (no outlook) still validates; a malformed outlook does not."""
    schema = json.loads((ROOT / "schemas/v1/segment_change.schema.json").read_text())
    assert "outlook" not in schema["required"]
    state = CustomerState("c1")
    change = process(state, order(1, 0, 400, 100), EngineConfig()).change
    earlier = {k: v for k, v in change.items() if k != "outlook"}
    jsonschema.validate(earlier, schema)
    bad = {**change, "outlook": {**change["outlook"], "churn_probability": 1.5}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
