import pytest

from streams.core.clv import FormulaConfig, formula_clv
from streams.core.events import DAY_MS
from streams.core.state import CustomerState, apply
from tests.core.builders import order, signup

L = 7 * DAY_MS


def test_formula_is_aov_times_rate_times_lifetime_minus_acquisition():
    s = CustomerState("c1")
    apply(s, signup(1, 0, cost=30), L)
    for n, day in enumerate(range(0, 730, 73)):  # 10 orders over two years
        apply(s, order(n, day, amount=100, cost=40), L)
    cfg = FormulaConfig(basis="revenue", expected_lifetime_years=3, prior_purchases_per_year=2, prior_weight_years=1)
    as_of = s.tenure_start_ms + int(2 * 365.25 * DAY_MS)
    clv = formula_clv(s, cfg, as_of)
    per_year = (10 + 2 * 1) / (2 + 1)
    assert clv.purchases_per_year == pytest.approx(per_year)
    assert clv.formula == pytest.approx(100 * per_year * 3 - 30)
    margin = formula_clv(s, FormulaConfig(basis="margin", prior_weight_years=1), as_of)
    assert margin.value_per_order == pytest.approx(60)
    assert margin.historical_revenue == 1000 and margin.historical_margin == 600


def test_little_history_uses_documented_defaults():
    s = CustomerState("c1")
    apply(s, signup(1, 0, cost=0), L)
    cfg = FormulaConfig(default_order_value=25, prior_purchases_per_year=2, expected_lifetime_years=3)
    clv = formula_clv(s, cfg)
    assert clv.formula == pytest.approx(25 * 2 * 3)
    apply(s, order(1, 0, amount=100, cost=40), L)  # one order today is not 365 a year
    half_day = 0.5 / 365.25  # the order came 12 hours after signup
    assert formula_clv(s, cfg).purchases_per_year == pytest.approx(3 / (1 + half_day))


def test_bad_basis_is_refused():
    with pytest.raises(ValueError):
        FormulaConfig(basis="profit")
