"""Metrics without a worker: results counted, per-segment gauges from hand-built summaries."""
from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams import metrics
from streams.core.population import PopulationSummary, SegmentFigures
from streams.pipeline import Result

HV, LV = "High Value / High Loyalty", "Low Value / Low Loyalty"


def samples(registry) -> dict:
    """{(name, frozenset(labels)): value} of an exposition, parsed as Prometheus would."""
    text = generate_latest(registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(source) -> dict:
    registry = CollectorRegistry()
    registry.register(metrics.PopulationCollector(source))
    return samples(registry)


def summary() -> PopulationSummary:
    return PopulationSummary(
        policy="value-loyalty-matrix", policy_version="1",
        segments={HV: SegmentFigures(customers=3, historical_revenue=900.0, historical_margin=300.0, formula_clv=2100.0,
                                     predicted_clv=1500.0, potential_clv=1800.0, churned=0, nps_responses=2,
                                     nps_promoters=2, ces_responses=1, ces_sum=2.0),
                  LV: SegmentFigures(customers=5, historical_revenue=100.0, historical_margin=-20.0, formula_clv=250.0,
                                     churned=2, nps_responses=4, nps_promoters=1, nps_detractors=2)},
        revenue_share_top20=0.72, margin_share_top20=0.95, partitions=(0, 2))


def test_segment_gauges_follow_the_summary():
    got = scrape(summary)
    seg = lambda name, **kw: frozenset({"segment": name, **kw}.items())  # noqa: E731
    assert got[("clvstream_segment_customers", seg(HV))] == 3
    assert got[("clvstream_segment_customers", seg(LV))] == 5
    assert got[("clvstream_segment_clv", seg(HV, form="formula"))] == 2100.0
    assert got[("clvstream_segment_clv", seg(HV, form="predicted"))] == 1500.0
    assert got[("clvstream_segment_clv", seg(HV, form="potential"))] == 1800.0
    assert got[("clvstream_segment_clv", seg(LV, form="historical_margin"))] == -20.0
    assert got[("clvstream_segment_clv", seg(LV, form="historical_revenue"))] == 100.0
    assert got[("clvstream_segment_churned_customers", seg(LV))] == 2
    assert got[("clvstream_segment_churn_ratio", seg(LV))] == pytest.approx(0.4)
    assert got[("clvstream_segment_churn_ratio", seg(HV))] == 0.0
    assert got[("clvstream_segment_nps", seg(HV))] == 100.0
    assert got[("clvstream_segment_nps", seg(LV))] == pytest.approx(-25.0)
    assert got[("clvstream_segment_nps_customers", seg(LV, answer="passive"))] == 1
    assert got[("clvstream_segment_ces_average", seg(HV))] == 2.0
    assert ("clvstream_segment_ces_average", seg(LV)) not in got  # no answers: no sample, not a made-up 0
    assert got[("clvstream_segment_revenue_share_ratio", seg(HV))] == pytest.approx(0.9)
    assert got[("clvstream_segment_margin_share_ratio", seg(HV))] == pytest.approx(300 / 280)
    assert got[("clvstream_pareto_top20_share_ratio", frozenset({"measure": "revenue"}.items()))] == 0.72
    assert got[("clvstream_pareto_top20_share_ratio", frozenset({"measure": "margin"}.items()))] == 0.95
    assert got[("clvstream_population_partitions", frozenset())] == 2
    info = frozenset({"policy": "value-loyalty-matrix", "policy_version": "1"}.items())
    assert got[("clvstream_population_info", info)] == 1


def test_no_source_or_no_summary_declares_the_families_without_samples():
    for source in (None, lambda: None):
        registry = CollectorRegistry()
        registry.register(metrics.PopulationCollector(source))
        text = generate_latest(registry).decode()
        assert "# TYPE clvstream_segment_customers gauge" in text
        assert not samples(registry)


def test_empty_population_has_no_ratios():
    empty = PopulationSummary(policy="p", policy_version="1", segments={HV: SegmentFigures()})
    got = scrape(lambda: empty)
    assert got[("clvstream_segment_customers", frozenset({"segment": HV}.items()))] == 0
    assert not [k for k in got if k[0].endswith("_ratio") or k[0] in ("clvstream_segment_nps",)]


def test_summary_changes_show_at_the_next_scrape():
    current = {"s": summary()}
    registry = CollectorRegistry()
    registry.register(metrics.PopulationCollector(lambda: current["s"]))
    assert samples(registry)[("clvstream_segment_customers", frozenset({"segment": HV}.items()))] == 3
    current["s"] = PopulationSummary(policy="p", policy_version="2", segments={HV: SegmentFigures(customers=4)})
    got = samples(registry)
    assert got[("clvstream_segment_customers", frozenset({"segment": HV}.items()))] == 4
    assert ("clvstream_segment_customers", frozenset({"segment": LV}.items())) not in got


def test_observe_counts_results_and_event_lag():
    def value(name, **labels):
        return metrics.REGISTRY.get_sample_value(name, labels) or 0.0

    before = (value("clvstream_events_total", type="order", outcome="applied"),
              value("clvstream_events_total", type="unknown", outcome="invalid"),
              value("clvstream_dead_letter_events_total", reason="schema"),
              value("clvstream_segment_transitions_total", from_segment="none", to_segment=LV),
              value("clvstream_event_lag_seconds_count"), value("clvstream_event_lag_seconds_sum"))
    change = {"previous_segment": None, "segment": LV}
    metrics.observe(Result("applied", event_type="order", changes=[change], event_time_ms=1_000_000), now_s=1_030.0)
    metrics.observe(Result("invalid", reason="schema"), now_s=1_030.0)  # no event time: no lag sample
    after = (value("clvstream_events_total", type="order", outcome="applied"),
             value("clvstream_events_total", type="unknown", outcome="invalid"),
             value("clvstream_dead_letter_events_total", reason="schema"),
             value("clvstream_segment_transitions_total", from_segment="none", to_segment=LV),
             value("clvstream_event_lag_seconds_count"), value("clvstream_event_lag_seconds_sum"))
    assert [a - b for a, b in zip(after, before)] == [1, 1, 1, 1, 1, 30.0]


def test_worker_collector_without_an_app_declares_its_families():
    registry = CollectorRegistry()
    registry.register(metrics.WorkerCollector())
    text = generate_latest(registry).decode()
    for name in ("clvstream_consumer_lag_records", "clvstream_recovery_remaining_records", "clvstream_ready"):
        assert f"# TYPE {name} gauge" in text
    assert not samples(registry)


def _lag_bucket_counts() -> dict:
    """{upper bound: cumulative count} of the event-lag histogram in the worker's registry."""
    return {s.labels["le"]: s.value for family in text_string_to_metric_families(metrics.exposition().decode())
            if family.name == "clvstream_event_lag_seconds" for s in family.samples if s.name.endswith("_bucket")}


@pytest.mark.parametrize("age_s", [30 * 86400 + 5, 200 * 86400, 3 * 365 * 86400, 4.9 * 365 * 86400])
def test_event_lag_of_months_or_years_lands_in_a_finite_bucket(age_s):
    """A replay or the demo processes events months or years old: +Inf alone would say nothing."""
    now_s = 2_000_000_000.0
    before = _lag_bucket_counts()
    metrics.observe(Result("applied", event_type="order", event_time_ms=int((now_s - age_s) * 1000)), now_s=now_s)
    after = _lag_bucket_counts()
    grew = sorted((float(le) for le in after if after[le] - before.get(le, 0.0) == 1), key=float)
    assert grew[0] != float("inf"), "the sample landed only in +Inf"
    assert grew[0] >= age_s  # the smallest bucket holding it is an upper bound of it...
    finite = sorted(float(le) for le in after if le != "+Inf")
    below = [b for b in finite if b < grew[0]]
    assert not below or below[-1] < age_s  # ...and the tightest one: buckets are cumulative
    assert grew[0] <= 3.5 * age_s  # log-spaced: about three buckets a decade, so the bound is informative


def test_event_lag_buckets_reach_five_years_and_stay_few():
    bounds = metrics.EVENT_LAG_BUCKETS_S
    assert list(bounds) == sorted(bounds) and bounds[0] <= 1 and bounds[-1] >= 5 * 365 * 86400
    assert len(bounds) <= 25  # every bucket is one series per worker


def test_no_created_series_in_the_worker_exposition():
    """prometheus_client's default `_created` companion of each counter/histogram doubles the series."""
    metrics.observe(Result("applied", event_type="order", changes=[{"previous_segment": None, "segment": LV}],
                           event_time_ms=1_000_000), now_s=1_030.0)
    text = metrics.exposition().decode()
    assert "clvstream_events_total{" in text  # the counters are there...
    assert "_created" not in text  # ...without their creation-time series
