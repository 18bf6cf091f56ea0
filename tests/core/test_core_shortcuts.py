"""Shortcuts in the core's hot path against the full computations they replace (the same results)."""
from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.clv import ClvFigures
from streams.core.events import DAY_MS
from streams.core.exact_population import ExactPopulation
from streams.core.policies.base import Assessment
from streams.core.policies.matrix import (HV_HL, HV_LL, LV_HL, LV_LL, VALUE, Decision, MatrixPolicy, _assess,
                                          _lapse_times, value_of)
from streams.core.state import CustomerState
from tests.core.histogram_checks import check_shifts_equal_two_steps

T0 = 1_700_000_000_000


def _assess_reference(policy, state, clv, as_of_ms, population):
    """The matrix assessment as it was written before ``_decide`` / ``_explain`` (one function)."""
    was = state.segment
    was_high_value = was in (HV_HL, HV_LL)
    was_high_loyalty = was in (HV_HL, LV_HL)
    value = value_of(clv, policy.value_metric)
    threshold, population_version = policy.value_cut_off(population)
    value_cut = threshold * ((1 - policy.hysteresis) if was_high_value else 1)
    high_value = value >= value_cut
    orders_365, _ = state.window(365, as_of_ms)
    recency = None if state.last_order_ms is None else (as_of_ms - state.last_order_ms) / DAY_MS
    min_orders = policy.loyalty_min_orders_365d
    max_recency = policy.loyalty_max_recency_days * ((1 + policy.hysteresis) if was_high_loyalty else 1)
    detractor = state.last_nps is not None and state.last_nps < policy.loyalty_min_last_nps
    loyal_checks = {
        "repeat_buying": orders_365 >= min_orders,
        "recent_order": recency is not None and recency <= max_recency,
        "not_detractor": not detractor,
        "probably_alive": clv.p_alive is None or clv.p_alive >= policy.at_risk_p_alive,
    }
    high_loyalty = all(loyal_checks.values())
    segment = (HV_HL if high_loyalty else HV_LL) if high_value else (LV_HL if high_loyalty else LV_LL)
    criteria = {"value_metric": policy.value_metric, "value": round(value, 2),
                "high_value_threshold": round(threshold, 2), "orders_365d": orders_365,
                "days_since_last_order": None if recency is None else round(recency, 1),
                "last_nps": state.last_nps, "p_alive": None if clv.p_alive is None else round(clv.p_alive, 4)}
    if policy.high_value_top_share is not None:
        criteria["high_value_top_share"] = policy.high_value_top_share
        criteria["cut_off"] = "population" if population_version is not None else "fallback"
    reasons = []
    if was is None:
        reasons.append("first assessment")
    if was is None or high_value != was_high_value:
        cmp = ">=" if high_value else "<"
        where = (f" (top {policy.high_value_top_share:.0%} cut-off)" if population_version is not None else "")
        reasons.append(f"value {'high' if high_value else 'low'}: {policy.value_metric} CLV {value:.2f} {cmp} "
                       f"{value_cut:.2f}{where}")
    if was is None or high_loyalty != was_high_loyalty:
        if high_loyalty:
            reasons.append(f"loyalty high: {orders_365} orders in 365 days, last order {recency:.0f} days ago")
        else:
            failed = [k for k, ok in loyal_checks.items() if not ok]
            detail = {"repeat_buying": f"{orders_365} orders in 365 days < {min_orders}",
                      "recent_order": ("no order yet" if recency is None
                                       else f"last order {recency:.0f} days ago > {max_recency:.0f}"),
                      "not_detractor": f"last NPS {state.last_nps} < {policy.loyalty_min_last_nps}",
                      "probably_alive": (f"at risk of churn: P(alive) {clv.p_alive or 0:.3f} < "
                                         f"{policy.at_risk_p_alive:.3f}")}
            reasons.append("loyalty low: " + ", ".join(detail[k] for k in failed))
    return Assessment(segment, "; ".join(reasons), criteria, population_version)


def _lapse_window_reference(state, policy):
    order_days = sorted((d for d, (n, _) in state.days.items() for _ in range(n)), reverse=True)
    k = policy.loyalty_min_orders_365d
    return (order_days[k - 1] + 365) * DAY_MS if len(order_days) >= k else None


money = st.floats(min_value=-5_000, max_value=50_000, allow_nan=False)


@st.composite
def cases(draw):
    as_of = T0 + draw(st.integers(0, 400)) * DAY_MS
    days = {}
    for day in draw(st.lists(st.integers(-400, 400), max_size=12)):
        days[T0 // DAY_MS + day] = [draw(st.integers(0, 3)), draw(st.integers(-10_000, 100_000))]
    last_order = draw(st.one_of(st.none(), st.integers(T0 - 400 * DAY_MS, as_of)))
    state = CustomerState("c", watermark_ms=as_of, last_order_ms=last_order, days=days,
                          last_nps=draw(st.one_of(st.none(), st.integers(0, 10))))
    state.segment = draw(st.sampled_from([None, HV_HL, HV_LL, LV_HL, LV_LL]))
    predicted = draw(st.one_of(st.none(), money))
    clv = ClvFigures(draw(money), draw(money), draw(money), 1.0, 1.0, predicted=predicted,
                     potential=None if predicted is None else predicted,
                     p_alive=draw(st.one_of(st.none(), st.floats(0, 1), st.just(float("nan")))))
    policy = MatrixPolicy(value_metric=draw(st.sampled_from(["formula", "predicted", "historical_margin",
                                                              "historical_revenue"])),
                          high_value_threshold=draw(st.sampled_from([0.0, 500.0, 1234.5])),
                          high_value_top_share=draw(st.sampled_from([None, 0.2])),
                          min_population=draw(st.sampled_from([1, 5])),
                          loyalty_min_orders_365d=draw(st.integers(1, 6)),
                          hysteresis=draw(st.sampled_from([0.0, 0.1, 0.25])))
    population = None
    if draw(st.booleans()):
        values = draw(st.lists(money, min_size=1, max_size=8))
        population = ExactPopulation.of({f"p{i}": {VALUE: v} for i, v in enumerate(values)}, version="v7")
    return policy, state, clv, as_of, population


@settings(max_examples=500, deadline=None)
@given(cases())
def test_decide_then_explain_is_the_full_assessment(case):
    policy, state, clv, as_of, population = case
    expected = _assess_reference(policy, state, clv, as_of, population)
    decision = policy.decide(state, clv, as_of, population)
    assert (decision[0], decision[1]) == (expected.segment, expected.manual)
    assert type(decision) is Decision and (decision.segment, decision.manual) == (expected.segment, expected.manual)
    # repr: a NaN P(alive) is a NaN criterion, which no == matches
    assert repr(policy.explain(state, clv, decision)) == repr(expected)
    assert repr(_assess(policy, state, clv, as_of, population)) == repr(expected)
    assert repr(policy.assess(state, clv, as_of, population)) == repr(expected)


@settings(max_examples=500, deadline=None)
@given(cases())
def test_lapse_window_walks_to_the_kth_latest_order_day(case):
    policy, state, _, _, _ = case
    for segment in (HV_HL, LV_HL):
        state = replace(state, segment=segment, last_order_ms=state.last_order_ms or T0)
        times = _lapse_times(state, policy, None)
        lapse_recency = state.last_order_ms + int(policy.loyalty_max_recency_days * (1 + policy.hysteresis)
                                                  * DAY_MS) + 1
        window = _lapse_window_reference(state, policy)
        assert times == [t for t in (lapse_recency, window) if t is not None]


def test_remembered_bucket_keys_are_the_mappings_keys(monkeypatch):
    """``_key_function`` remembers keys of recent magnitudes (emptied when full): always the mapping's key."""
    import random

    import streams.core.distribution as distribution

    monkeypatch.setattr(distribution, "_KEY_CACHE_SIZE", 64)  # fill and empty it many times
    monkeypatch.setattr(distribution, "_LOG_KEYS", {})
    rnd = random.Random(3)
    for accuracy in (0.01, 0.02):
        mapping = distribution._mapping(accuracy)
        key = distribution._key_function(mapping)
        assert distribution._key_function(mapping) is key  # one per (multiplier, offset)
        values = [rnd.choice([rnd.randint(1, 10**9), rnd.randint(1, 200)]) / 100 for _ in range(20_000)]
        values += [mapping.value(k) for k in range(-50, 2000, 7)]
        assert [key(v) for v in values] == [mapping.key(v) for v in values]
        assert [key(v) for v in reversed(values)] == [mapping.key(v) for v in reversed(values)]


def test_shifts_between_sparse_buckets_equal_a_removal_then_an_addition():
    """``shift_cents`` across buckets (known keys, emptied and new buckets) as the two ``add_cents`` steps."""
    import random

    rnd = random.Random(11)
    values = [rnd.choice([rnd.randint(-10**5, 10**5), rnd.randint(1, 50)]) or 1 for _ in range(60)]
    h = check_shifts_equal_two_steps(rnd, values, lambda old: rnd.choice(
        [old + rnd.randint(-3, 3), int(old * rnd.uniform(0.5, 2.0)), -old, rnd.randint(-10**5, 10**5)]))
    assert h.count == len(values)
