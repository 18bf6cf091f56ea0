"""Fitting from the engine's states: the demo stream's short prefixes are refused, never raised on.

Issue 14 item 2: on the demo's own stream (seed 7, 2,000 customers), 12 of 21 fits over its first
1,500-6,000 records raised ValueError (the MLE put a near 1e-8, the numerical Hessian stepped below
zero, BgNbdParams refused it) and others were published with a=3e-6, b=5,952.
"""
import itertools
import math
import warnings

import pytest

from streams.core.engine import EngineConfig, process
from streams.core.fit import fit_from_states
from streams.core.state import CustomerState
from streams.core.validation import Rejection, decode
from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.produce import encode_value
from streams.models.fitting import FitWarning
from streams.models.requirements import DataRequirements


def states_after(events, n):
    states, cfg = {}, EngineConfig()
    for ev in events[:n]:
        # the record time is the generator's event time, as the demo's producer sends it
        event = decode(encode_value(ev.value), record_time_ms=ev.event_time_ms)
        if isinstance(event, Rejection):
            continue  # the demo's malformed records (e.g. dated 2999): dead letters, not state
        state = states.setdefault(event.customer_id, CustomerState(event.customer_id))
        process(state, event, cfg)
    return states.values()


@pytest.fixture(scope="module")
def demo_events():
    gen = EventGenerator(GeneratorConfig(seed=7, customers=2000, share_duplicates=0.01, share_malformed=0.002))
    return list(itertools.islice(gen.events(), 6000))


# the prefixes that raised before (1500..3300, 5325..6000) and the ones published degenerate (3750, 4650)
@pytest.mark.parametrize("records", [1500, 1950, 3300, 3750, 4650, 5325, 6000])
def test_demo_prefix_fit_is_refused_with_reasons_not_raised(demo_events, records):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = fit_from_states(states_after(demo_events, records), "weeks")
    assert not fitted.publishable and not fitted.may_publish(force=False)
    assert any("days of history" in r for r in fitted.refusals), fitted.refusals  # ~1 month of events
    bg = fitted.bgnbd_fit
    assert bg.params is not None and bg.refusal, bg  # the model refuses its own estimates too
    assert not fitted.may_publish(force=True)  # --force never publishes those
    for name in bg.at_bound:
        assert math.isnan(bg.standard_errors[name])
        assert any(issubclass(w.category, FitWarning) and name in str(w.message) for w in caught)
    report = fitted.report()
    assert "verdict: refused, workers keep their current parameters" in report and "log-likelihood" in report


def test_a_parameter_at_a_bound_has_nan_standard_error(demo_events):
    # on these prefixes the likelihood climbs towards a = 0 or b = 0 (no one seen to drop out)
    fits = [fit_from_states(states_after(demo_events, n), "weeks").bgnbd_fit for n in (1500, 1950, 2175)]
    at_bound = [fit for fit in fits if fit.at_bound]
    assert at_bound, [fit.params for fit in fits]
    for fit in at_bound:
        for name in fit.at_bound:
            assert math.isnan(fit.standard_errors[name])
            assert f"no standard error at a bound: {name}" in fit.warnings
        assert "bound" in fit.refusal
        assert all(math.isfinite(fit.standard_errors[n]) for n in ("r", "alpha"))


def test_a_year_of_the_demo_is_published_with_diagnostics():
    gen = EventGenerator(GeneratorConfig(seed=21, customers=200))
    states = {}
    for ev in gen.events(until="2025-10-01T00:00:00Z"):
        event = decode(encode_value(ev.value))
        process(states.setdefault(event.customer_id, CustomerState(event.customer_id)), event, EngineConfig())
    fitted = fit_from_states(states.values(), "weeks")
    assert fitted.publishable, fitted.refusals
    assert fitted.customers >= 500 and fitted.repeat_buyers >= 100 and fitted.history_days >= 180
    check = fitted.holdout
    assert check is not None and check.calibration_fit.usable
    assert check.customers > 1000 and abs(check.relative_error) < 0.15, check.summary("weeks")
    assert sum(row[1] for row in check.by_frequency) == check.customers
    assert fitted.tracking is not None and fitted.tracking.actual.sum() > 0
    report = fitted.report()
    for needle in ("log-likelihood", "(s.e. ", "repeat buyers", "holdout check", "verdict: publishable"):
        assert needle in report, report
    # the same states, stricter requirements: refused, but --force may publish (the models are fine)
    strict = fit_from_states(states.values(), "weeks", requirements=DataRequirements(min_customers=10**6))
    assert not strict.publishable and strict.may_publish(force=True)


def test_no_state_with_an_order_is_refused():
    fitted = fit_from_states([CustomerState("c1")], "weeks")
    assert fitted.parameters is None and not fitted.may_publish(force=True)
    assert "nothing to fit" in fitted.report()
