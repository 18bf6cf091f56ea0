"""Streaming scores equal batch scores of the same events; the at-risk drift fires on event time."""

import pytest

from streams.core.clv import formula_clv
from streams.core.engine import EngineConfig, process, review, review_time_ms
from streams.core.events import DAY_MS
from streams.core.fit import fit_from_states
from streams.core.prediction import ModelScorer, PredictionConfig, rfm
from streams.core.segments import HV_HL, HV_LL, MatrixPolicy
from streams.core.state import CustomerState
from streams.generator import EventGenerator, GeneratorConfig
from streams.models import bgnbd
from streams.models.clv import clv as model_clv
from streams.models.params import BgNbdParams, GammaGammaParams, ModelParameters
from streams.models.summary import summarize
from streams.core.validation import decode
from streams.kafka.produce import encode_value

# CDNOW parameters (Fader, Hardie & Lee 2005; Fader & Hardie 2013), weeks
CDNOW = ModelParameters("cdnow", "weeks", BgNbdParams(0.243, 4.414, 0.793, 2.426), GammaGammaParams(6.25, 3.74, 15.44))


@pytest.fixture(scope="module")
def streamed():
    """States of a generated shop, built event by event through the engine."""
    gen = EventGenerator(GeneratorConfig(seed=3, customers=400))
    cfg = EngineConfig()
    states, log = {}, []
    for ev in gen.events(until="2026-01-01T00:00:00Z"):
        event = decode(encode_value(ev.value))
        state = states.setdefault(event.customer_id, CustomerState(event.customer_id))
        assert process(state, event, cfg).status == "applied"
        log.append(event)
    return states, log


def test_streaming_score_equals_batch_score(streamed):
    states, log = streamed
    as_of = max(s.watermark_ms for s in states.values())
    orders = [(e.customer_id, e.event_time_ms / DAY_MS, e.amount_cents / 100) for e in log if e.type == "order"]
    batch = {b.customer_id: b for b in summarize(orders, as_of / DAY_MS, time_unit="weeks", input_unit="days")}
    scorer = ModelScorer(CDNOW, PredictionConfig(basis="revenue"))
    compared = 0
    for cid, b in batch.items():
        s = states[cid]
        x, t_x, T, mean_spend = rfm(s, as_of, 7.0)
        refund_share = s.refund_cents / s.revenue_cents
        assert (x, t_x, T) == (b.x, pytest.approx(b.t_x), pytest.approx(b.T))
        assert mean_spend == pytest.approx(b.mean_spend * (1 - refund_share))
        figures = scorer(s, formula_clv(s, EngineConfig().formula, as_of), as_of)
        want_pred, want_pot = model_clv(CDNOW.bgnbd, CDNOW.gamma_gamma, b.x, b.t_x, b.T,
                                        b.mean_spend * (1 - refund_share), scorer.horizon, scorer.rate_per_step, 12)
        assert figures.predicted == pytest.approx(want_pred, rel=1e-9)
        assert figures.potential == pytest.approx(want_pot, rel=1e-9)
        assert figures.p_alive == pytest.approx(bgnbd.p_alive(CDNOW.bgnbd, b.x, b.t_x, b.T))
        assert figures.predicted <= figures.potential + 1e-9
        compared += 1
    assert compared > 300


def test_margin_basis_scales_by_margin_ratio(streamed):
    states, _ = streamed
    s = next(s for s in states.values() if s.purchase_days > 3)
    as_of = s.watermark_ms
    base = formula_clv(s, EngineConfig().formula, as_of)
    rev = ModelScorer(CDNOW, PredictionConfig(basis="revenue"))(s, base, as_of)
    mar = ModelScorer(CDNOW, PredictionConfig(basis="margin"))(s, base, as_of)
    assert mar.predicted == pytest.approx(rev.predicted * s.margin_cents / s.net_revenue_cents)


def test_fit_from_states_recovers_the_generators_story(streamed):
    states, _ = streamed
    fitted = fit_from_states(states.values(), "weeks")
    assert fitted.bgnbd_fit.converged and fitted.gamma_gamma_fit.converged
    p = fitted.parameters
    assert p.version == fitted.parameters.fitted_at[:10] + f"-{fitted.customers}"
    # the generator's dropout is Beta(0.8, 6): mean 0.12; the fit finds the same order of magnitude
    assert 0.03 < p.bgnbd.a / (p.bgnbd.a + p.bgnbd.b) < 0.4
    assert "log-likelihood" in fitted.report()
    again = fit_from_states(states.values(), "weeks")
    assert again.parameters == p  # deterministic: same state, same parameters


def test_silent_customer_crosses_p_alive_threshold_on_event_time():
    from tests.core.builders import order

    cfg = EngineConfig(policy=MatrixPolicy(value_metric="predicted", high_value_threshold=100,
                                           loyalty_min_orders_365d=2, loyalty_max_recency_days=10_000,
                                           at_risk_p_alive=0.5))
    scorer = ModelScorer(CDNOW, PredictionConfig(basis="revenue"))
    s = CustomerState("c1")
    for n, day in enumerate((0, 7, 14, 21, 28)):  # weekly buyer, then silence
        process(s, order(n, day, amount=200), cfg, scorer=scorer)
    assert s.segment == HV_HL
    due = review_time_ms(s, cfg, scorer)
    x, t_x, _, _ = rfm(s, s.watermark_ms, 7.0)
    first_day = s.first_order_ms // DAY_MS
    p_at = lambda ms: bgnbd.p_alive(CDNOW.bgnbd, x, t_x, (ms // DAY_MS - first_day) / 7)
    assert p_at(due) < 0.5 <= p_at(due - DAY_MS)
    assert review(s, cfg, due - DAY_MS, scorer).change is None
    change = review(s, cfg, due, scorer).change
    assert (change["previous_segment"], change["segment"]) == (HV_HL, HV_LL)
    assert "at risk of churn: P(alive)" in change["reason"]
    assert change["clv"]["model"] == "bgnbd-gg:cdnow" and s.scored_by == "bgnbd-gg:cdnow"


def test_without_parameters_the_formula_is_used_and_said():
    from tests.core.builders import order

    s = CustomerState("c1")
    change = process(s, order(1, 0), EngineConfig()).change
    assert change["clv"]["model"] == "formula" and change["clv"]["predicted"] is None
