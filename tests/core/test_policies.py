"""Criteria scoring (seed 003), the matrix's relative cut-off and RFM, on small hand-checked populations."""
import json
from dataclasses import replace
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from streams.core.clv import ClvFigures
from streams.core.engine import EngineConfig, Outcome, process, review, review_time_ms
from streams.core.events import DAY_MS
from streams.core.exact_population import ExactPopulation
from streams.core.policies import (CriteriaPolicy, Criterion, ExitRule, MatrixPolicy, RfmPolicy, ScoredSegment,
                                   load_policy_file)
from streams.core.policies.criteria import TOTAL
from streams.core.policies.matrix import HV_HL, LV_HL, LV_LL
from streams.core.policies.rfm import STANDARD_RULES, check_coverage
from streams.core.state import CustomerState
from tests.core.builders import T0, nps, order, signup

ROOT = Path(__file__).resolve().parents[2]
LEVEL = {"delivery_days": 1}


def figures(revenue=0.0, margin=0.0):
    return ClvFigures(revenue, margin, formula=0.0, purchases_per_year=0.0, value_per_order=0.0)


def customer(cid="c1", referrals=0, segment=None, signup_days_ago=400):
    s = CustomerState(cid, watermark_ms=T0, signup_ms=T0 - signup_days_ago * DAY_MS, referrals=referrals)
    s.segment = segment
    return s


# Three criteria, 3-4 categories each: revenue 1..4, margin 1..4, referrals 1..3.
ABC = CriteriaPolicy(
    name="abc", version="t",
    criteria=(Criterion("revenue", "net_revenue", (100, 500, 1000)),
              Criterion("margin", "margin", (50, 200, 400)),
              Criterion("referrals", "referrals", (1, 3))),
    ranked=(ScoredSegment("A", LEVEL, {"*": 3}), ScoredSegment("B", LEVEL), ScoredSegment("C", LEVEL)),
    fallback_cut_offs=(9, 6),
    exit=ExitRule("Exit", LEVEL, lowest_on_at_least=3),
    min_population=3, hysteresis=0.0)


def test_criterion_categories_are_scored_one_to_n_by_bounds():
    c = Criterion("r", "net_revenue", (100, 500, 1000))
    assert [c.score(v) for v in (0, 99.99, 100, 499, 500, 1000, 5000)] == [1, 1, 2, 2, 3, 4, 4]
    lower_better = Criterion("complaints", "complaints", (1, 3), higher_is_better=False)
    assert [lower_better.score(v) for v in (0, 1, 2, 3, 10)] == [3, 2, 2, 1, 1]
    assert Criterion("n", "last_nps", (7, 9), missing_score=2).score(None) == 2


def test_exit_is_lowest_category_on_nearly_all_criteria():
    # revenue 50 (1), margin 20 (1), referrals 0 (1): lowest on 3 of 3 -> exit
    low = ABC.assess(customer(), figures(50, 20), T0, None)
    assert low.segment == "Exit" and "lowest category on 3 of 3" in low.reason
    # one referral lifts it out of the lowest category on one criterion: 2 of 3 is not enough ...
    assert ABC.assess(customer(referrals=1), figures(50, 20), T0, None).segment == "C"
    # ... unless "nearly all" is set to 2
    nearly = replace(ABC, exit=ExitRule("Exit", LEVEL, lowest_on_at_least=2))
    assert nearly.assess(customer(referrals=1), figures(50, 20), T0, None).segment == "Exit"
    # exit customers are left out of the ranking
    assert ABC.population_metrics(customer(), figures(50, 20)) == {}
    assert ABC.population_metrics(customer(referrals=1), figures(50, 20)) == {TOTAL: 4.0}


def test_grace_period_keeps_new_customers_out_of_exit():
    graced = replace(ABC, exit=ExitRule("Exit", LEVEL, lowest_on_at_least=3, grace_days=30))
    young = customer(signup_days_ago=10)
    assert graced.assess(young, figures(50, 20), T0, None).segment == "C"
    assert graced.review_time_ms(young, T0, None) == young.signup_ms + 30 * DAY_MS


def test_equal_split_over_the_ranked_population_and_minimum_scores():
    # Nine ranked customers with totals 3..11 (hand-made): thirds are {3,4,5}, {6,7,8}, {9,10,11}.
    population = ExactPopulation.of({f"p{t}": {TOTAL: float(t)} for t in range(3, 12)}, version="snap-1")
    assert [population.quantile(TOTAL, q) for q in (2 / 3, 1 / 3)] == [9.0, 6.0]
    # revenue 700 (3) + margin 250 (3) + 3 referrals (3) = 9: top third and >= 3 on every criterion -> A
    a = ABC.assess(customer(referrals=3), figures(700, 250), T0, population)
    assert a.segment == "A" and a.population_version == "snap-1"
    assert a.criteria["cut_offs"] == [9.0, 6.0] and a.criteria[TOTAL] == 9
    # revenue 2000 (4) + margin 500 (4) + 0 referrals (1) = 9: top third but referrals 1 < 3 -> falls to B
    b = ABC.assess(customer(referrals=0), figures(2000, 500), T0, population)
    assert b.segment == "B" and "A needs referrals >= 3 (scores 1)" in b.reason
    # revenue 300 (2) + margin 100 (2) + 1 referral (2) = 6 -> B; 5 -> C
    assert ABC.assess(customer(referrals=1), figures(300, 100), T0, population).segment == "B"
    assert ABC.assess(customer(referrals=0), figures(300, 100), T0, population).segment == "C"


def test_ties_on_a_cut_off_go_to_the_higher_segment():
    # Six customers: totals 4, 6, 6, 6, 6, 9. The top third cut (rank ceil(4) = 4) is 6: everyone with 6 is "top".
    population = ExactPopulation.of({f"p{i}": {TOTAL: t} for i, t in enumerate((4, 6, 6, 6, 6, 9))})
    two = replace(ABC, ranked=(ScoredSegment("A", LEVEL), ScoredSegment("B", LEVEL)), fallback_cut_offs=(7,))
    cut = population.quantile(TOTAL, 0.5)
    assert cut == 6.0
    assert two.assess(customer(referrals=1), figures(300, 100), T0, population).segment == "A"  # total 6


def test_fallback_cut_offs_without_a_large_enough_population():
    small = ExactPopulation.of({"p1": {TOTAL: 100.0}})  # one customer < min_population 3
    for population in (None, small):
        v = ABC.assess(customer(referrals=3), figures(700, 250), T0, population)
        assert v.segment == "A" and v.population_version is None and v.criteria["cut_off_source"] == "fallback"


def test_manual_override_wins_and_is_not_held_by_dwell():
    policy = replace(ABC, overrides={"vip": "A"}, min_dwell_days=30)
    v = policy.assess(customer("vip"), figures(50, 20), T0, None)
    assert v.segment == "A" and v.manual and "manual override" in v.reason


def test_hysteresis_band_on_the_total_score():
    banded = replace(ABC, hysteresis=0.25, ranked=(ScoredSegment("A", LEVEL), *ABC.ranked[1:]))
    # total 7 (revenue 3, margin 2, referrals 2) < A's fallback cut 9, but >= 9 x 0.75 for a customer already in A
    assert banded.assess(customer(referrals=1, segment="A"), figures(700, 100), T0, None).segment == "A"
    assert banded.assess(customer(referrals=1, segment="B"), figures(700, 100), T0, None).segment == "B"


# -- matrix: relative value cut-off ------------------------------------------------------------
TOP20 = MatrixPolicy(value_metric="historical_revenue", high_value_top_share=0.2, high_value_threshold=1000,
                     min_population=5, hysteresis=0.0)


def test_matrix_top_20_percent_is_high_value():
    population = ExactPopulation.of({f"p{i}": {"value": float(v)} for i, v in
                                     enumerate((10, 20, 30, 40, 50, 60, 70, 80, 90, 100))}, version="v7")
    assert population.quantile("value", 0.8) == 90.0  # 90 and 100: the top 2 of 10
    cfg = EngineConfig(policy=TOP20)
    s = CustomerState("c1")
    out = process(s, order(1, 0, amount=95), cfg, population=population)
    assert s.segment.startswith("High Value")
    assert out.change["population_version"] == "v7" and out.change["criteria"]["high_value_threshold"] == 90.0
    assert out.metrics == {"value": 95.0}
    # without a population (or too small), the absolute threshold 1000 is the fallback
    s2 = CustomerState("c2")
    out2 = process(s2, order(1, 0, amount=95, cid="c2"), cfg)
    assert s2.segment.startswith("Low Value") and "population_version" not in out2.change
    assert out2.change["criteria"]["cut_off"] == "fallback"


def test_default_matrix_declares_no_population_metrics():
    out = process(CustomerState("c1"), order(1, 0), EngineConfig())
    assert out.metrics == {} and isinstance(out, Outcome)


# -- RFM ------------------------------------------------------------------------------------------
def test_standard_rfm_grid_covers_every_cell():
    check_coverage(STANDARD_RULES)
    p = RfmPolicy()
    assert p.segment_of(5, 5) == "Champions" and p.segment_of(1, 1) == "Lost" and p.segment_of(2, 1) == "Hibernating"
    assert p.segment_of(1, 5) == "Can't Lose Them" and p.segment_of(2, 3) == "At Risk"
    assert p.segment_of(5, 1) == "New" and p.segment_of(4, 1) == "Promising" and p.segment_of(3, 3) == "Need Attention"
    assert p.segment_of(3, 2) == "About to Sleep" and p.segment_of(4, 3) == "Potential Loyalist"
    assert p.segment_of(3, 4) == "Loyal"


def rfm_state(cid, last_day, orders, revenue_cents):
    s = CustomerState(cid, watermark_ms=T0 + 100 * DAY_MS, last_order_ms=T0 + last_day * DAY_MS,
                      order_count=orders, revenue_cents=revenue_cents)
    return s


def test_rfm_quintiles_over_the_population():
    policy = RfmPolicy(min_population=10, hysteresis=0.0)
    # ten customers: last order on day 10, 20, ..., 100; 1..10 orders; 100..1000 revenue
    states = [rfm_state(f"p{i}", 10 * i, i, 10000 * i) for i in range(1, 11)]
    population = ExactPopulation.of({s.customer_id: policy.population_metrics(s, figures(s.net_revenue_cents / 100))
                                     for s in states}, version="rfm-1")
    as_of = T0 + 100 * DAY_MS
    best = policy.assess(states[-1], figures(1000), as_of, population)
    assert best.criteria["r"] == best.criteria["f"] == best.criteria["m"] == 5 and best.segment == "Champions"
    assert best.population_version == "rfm-1"
    worst = policy.assess(states[0], figures(100), as_of, population)
    assert (worst.criteria["r"], worst.criteria["fm"], worst.segment) == (1, 1, "Lost")
    # recency rank 3 (day 50: 4 of 10 earlier -> 1 + floor(2.0) = 3), F 1, M 1 -> About to Sleep
    mid = rfm_state("x", 50, 1, 10000)
    assert policy.assess(mid, figures(100), as_of, population).segment == "About to Sleep"


def test_rfm_fallback_bounds_and_customers_without_orders():
    policy = RfmPolicy(hysteresis=0.0)
    s = rfm_state("c", 95, 1, 5000)  # 5 days since the last order, 1 order, 50 revenue
    v = policy.assess(s, figures(50), T0 + 100 * DAY_MS, None)
    assert (v.criteria["r"], v.criteria["f"], v.criteria["m"], v.segment) == (5, 1, 1, "New")
    assert v.criteria["cut_off_source"] == "fallback"
    # recency falls as days pass: reviewed when 30 days have passed since the last order
    assert policy.review_time_ms(s, T0 + 100 * DAY_MS) == s.last_order_ms + 30 * DAY_MS
    assert policy.assess(CustomerState("n", watermark_ms=T0), figures(), T0, None).segment == "Prospect"


# -- stability -----------------------------------------------------------------------------------
def test_oscillating_around_a_cut_off_changes_at_most_the_configured_number_of_times():
    """Revenue crosses the value cut-off every day for 60 days; with no hysteresis, a 20-day dwell
    time allows at most one move per 20 days of event time (first assessment included)."""
    from tests.core.builders import refund

    dwell_days, days = 20, 60
    policy = MatrixPolicy(value_metric="historical_revenue", high_value_threshold=1000, hysteresis=0.0,
                          min_dwell_days=dwell_days, loyalty_max_recency_days=10_000, loyalty_min_orders_365d=1)
    cfg = EngineConfig(policy=policy)
    s = CustomerState("c1")
    changes = []
    process(s, order(0, 0, amount=950), cfg)
    for n in range(1, days):
        ev = order(n, n, amount=100) if n % 2 else refund(n, n, 100, n - 1)
        out = process(s, ev, cfg)
        changes += [out.change] if out.change else []
    assert 1 <= len(changes) <= days // dwell_days
    times = [c["event_time"] for c in changes]
    assert times == sorted(times)
    undamped = EngineConfig(policy=replace(policy, min_dwell_days=0))
    s2, flips = CustomerState("c1"), 0
    process(s2, order(0, 0, amount=950), undamped)
    for n in range(1, days):
        flips += process(s2, order(n, n, amount=100) if n % 2 else refund(n, n, 100, n - 1), undamped).change is not None
    assert flips >= days - 2  # without dwell or hysteresis it flaps on every event


def test_a_move_held_by_the_dwell_time_happens_at_its_end():
    policy = MatrixPolicy(value_metric="historical_revenue", high_value_threshold=1000, hysteresis=0.0,
                          min_dwell_days=10, loyalty_max_recency_days=10_000, loyalty_min_orders_365d=1)
    cfg = EngineConfig(policy=policy)
    s = CustomerState("c1")
    assert process(s, order(1, 0, amount=100), cfg).change["segment"] == LV_HL
    held = process(s, order(2, 3, amount=2000), cfg)  # high value now, but only 3 days in LV/HL
    assert held.change is None and s.segment == LV_HL
    due = T0 + 12 * 3_600_000 + 10 * DAY_MS  # segment since day 0 noon + 10 days
    assert held.review_at_ms == due == review_time_ms(s, cfg)
    moved = review(s, cfg, due)
    assert moved.change["segment"] == HV_HL and moved.change["cause"]["type"] == "review"
    assert review_time_ms(s, cfg, after_ms=due) == due + 10 * DAY_MS  # the next dwell end
    assert review(s, cfg, due + 10 * DAY_MS).change is None
    # no dwell end left: the next review is the loyalty lapse (the last order leaving the 365-day window)
    assert review_time_ms(s, cfg, after_ms=due + 10 * DAY_MS) == (s.last_order_ms // DAY_MS + 365) * DAY_MS


# -- contract --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["matrix", "criteria", "rfm"])
def test_segment_changes_of_every_policy_match_the_schema(kind):
    schema = json.loads((ROOT / "schemas/v1/segment_change.schema.json").read_text())
    validator = Draft202012Validator(schema)
    policy = load_policy_file(ROOT / "deploy/policies" / f"{kind}.yaml")
    cfg = EngineConfig(policy=policy)
    population = None
    if kind != "criteria":
        population = ExactPopulation.of({f"p{i}": {m: float(i) for m in ("value", "last_order_ms", "orders",
                                                                            "net_revenue")} for i in range(200)})
    s = CustomerState("c1")
    changes = [process(s, e, cfg, population=population).change
               for e in (signup(1, 0, big_name=True), order(1, 1, amount=900), order(2, 5, amount=900),
                         nps(1, 6, 10))]
    changes = [c for c in changes if c]
    assert changes
    for c in changes:
        validator.validate(c)
        assert c["policy"] == policy.name and c["policy_version"] == policy.version
        assert c["service_level"] == policy.service_levels[c["segment"]]
