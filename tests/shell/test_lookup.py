"""The query API's answers, computed from stored state without a worker."""
from __future__ import annotations

import json

from streams.core import codec
from streams.core.engine import EngineConfig, process
from streams.core.population import PopulationSummary, SegmentFigures
from streams.core.segments import HV_HL, HV_LL, LV_LL, MatrixPolicy
from streams.core.state import CustomerState
from streams.lookup import customer_document, explain_segment, summary_document, valid_customer_id
from tests.core.builders import nps, order, refund, signup


def customer(*events, cfg=EngineConfig()):
    state = CustomerState("c1")
    changes = []
    for event in events:
        outcome = process(state, event, cfg)
        if outcome.change:
            changes.append(outcome.change)
    return state, changes


def test_reason_explains_both_dimensions_and_leaves_state_untouched():
    cfg = EngineConfig()
    state, changes = customer(signup(1, 0), order(1, 1, 400, 50), order(2, 30, 400, 50), order(3, 60, 400, 50), cfg=cfg)
    assert state.segment == HV_HL
    stored = codec.encode(state)
    explained = explain_segment(state, cfg)
    assert codec.encode(state) == stored  # read-only
    assert explained["segment"] == HV_HL and explained["consistent"]
    assert explained["reason"].startswith("value high: formula CLV") and "loyalty high: 3 orders in 365 days" in explained["reason"]
    assert explained["criteria"]["orders_365d"] == 3
    assert explained["clv"]["historical_revenue"] == 1200.0 and explained["assessed_at"].startswith("2025-03-02")


def test_hysteresis_is_named_when_it_keeps_the_segment():
    cfg = EngineConfig(policy=MatrixPolicy(value_metric="historical_margin", high_value_threshold=1000.0,
                                           hysteresis=0.5))
    state, _ = customer(order(1, 1, 1200, 0), refund(1, 2, 500, 1), cfg=cfg)  # margin 1200, then 700
    assert state.segment == HV_LL  # 700 is below the cut-off but inside the band
    explained = explain_segment(state, cfg)
    assert explained["segment"] == HV_LL and explained["consistent"]
    assert explained["reason"].startswith("value low: historical_margin CLV 700.00 < 1000.00")
    assert explained["reason"].endswith("kept in High Value / Low Loyalty within the 50% hysteresis band")


def test_customer_document_is_json_with_service_level():
    cfg = EngineConfig()
    state, _ = customer(order(1, 1, 30, 20), nps(1, 2, 3), cfg=cfg)
    doc = json.loads(json.dumps(customer_document(state, cfg)))
    assert doc["segment"] == LV_LL and doc["service_level"]["tier"] == "bronze"
    assert "last NPS 3 < 7" in doc["reason"]
    assert doc["state"]["order_count"] == 1 and "recent_ids" not in doc["state"]
    assert doc["clv"]["model"] == "formula" and doc["clv"]["p_alive"] is None
    assert "note" not in doc


def test_settings_changed_since_the_decision_are_flagged():
    state, _ = customer(order(1, 1, 30, 20), order(2, 5, 30, 20))
    doc = customer_document(state, EngineConfig(policy=MatrixPolicy(high_value_threshold=1.0)))
    assert doc["segment"] != "High Value / High Loyalty" and "note" in doc


def test_customer_ids():
    assert valid_customer_id("cust-000412") and valid_customer_id("a.b_c:d@e")
    for bad in ("", " x", "a b", "x" * 129, "-x", "<script>", "a/b"):
        assert not valid_customer_id(bad), bad


def test_summary_document():
    summary = PopulationSummary("value-loyalty-matrix", "1",
                                {HV_HL: SegmentFigures(customers=1, historical_revenue=300.0, historical_margin=90.0,
                                                       nps_responses=1, nps_promoters=1),
                                 LV_LL: SegmentFigures(customers=3, historical_revenue=100.0, historical_margin=10.0,
                                                       churned=1)},
                                revenue_share_top20=0.75, partitions=(0, 1))
    doc = json.loads(json.dumps(summary_document(summary)))
    assert doc["customers"] == 4 and doc["partitions"] == [0, 1]
    assert doc["pareto"] == {"revenue_share_top20": 0.75, "margin_share_top20": None}
    assert doc["segments"][HV_HL]["revenue_share"] == 0.75 and doc["segments"][HV_HL]["nps"] == 100.0
    assert doc["segments"][LV_LL]["churn_rate"] == 1 / 3 and doc["segments"][LV_LL]["average_ces"] is None
    assert doc["segments"][LV_LL]["share_of_customers"] == 0.75
