"""The live page's data (streams.live_page) and its self-contained assets."""
from __future__ import annotations

import hashlib
import re

import pytest

from streams.core.aggregation import PopulationAggregate, PopulationSnapshot
from streams.core.distribution import LogHistogram
from streams.core.population import PopulationSummary, SegmentFigures
from streams.live_page import ASSETS, History, asset, flow, page_document, pareto_curve

CHART_JS_SHA256 = "2812cb8825fdc57469eb2f7bb055e9429244e599920511ee477e828499b632cb"  # streams/ui/vendor/README.md


def snapshot(revenues) -> PopulationSnapshot:
    aggregate = PopulationAggregate()
    histogram = LogHistogram()
    for value in revenues:
        histogram.add(value)
    aggregate.metrics["historical_revenue"] = histogram
    return PopulationSnapshot(aggregate, [0])


def summary() -> PopulationSummary:
    return PopulationSummary("matrix", "v1", {
        "High Value / High Loyalty": SegmentFigures(customers=2, historical_revenue=900.0, formula_clv=1500.0,
                                                    predicted_clv=1200.0, potential_clv=1300.0, churned=0,
                                                    nps_responses=2, nps_promoters=2, ces_responses=1, ces_sum=2.0),
        "Low Value / Low Loyalty": SegmentFigures(customers=8, historical_revenue=100.0, formula_clv=400.0,
                                                  churned=2)})


def test_pareto_curve_and_the_80_20_point():
    # 2 customers of 10 bring 900 of 1000: the top 20% bring 90%
    curve = pareto_curve(snapshot([450, 450] + [12.5] * 8), points=10)
    assert curve["customers"] == 10
    assert curve["top20_share"] == pytest.approx(0.9, abs=0.01)
    shares = [p["share"] for p in curve["curve"]]
    assert shares[0] == 0 and shares == sorted(shares) and shares[-1] == pytest.approx(1.0, abs=0.01)
    assert curve["customers_for_80"] == pytest.approx(0.2)
    assert pareto_curve(None) is None and pareto_curve(snapshot([])) is None


def test_flow_is_largest_first_and_skips_empty_pairs():
    rows = flow([("none", "A", 5.0), ("A", "B", 7.0), ("B", "A", 0.0)])
    assert rows == [{"from": "A", "to": "B", "customers": 7}, {"from": "none", "to": "A", "customers": 5}]


def test_history_is_bounded_and_page_document_has_every_chart():
    history = History(size=3)
    for t in range(5):
        history.sample(1000 * t, summary() if t else None, lag=float(t))
    assert [s["t"] for s in history.to_list()] == [2000, 3000, 4000]
    doc = page_document(history, summary(), snapshot([450, 450] + [12.5] * 8), [("none", "A", 3)], 4.0,
                        {"ready": True})
    hv = doc["segments"]["High Value / High Loyalty"]
    assert hv["clv_average"] == {"formula": 750.0, "predicted": 600.0, "potential": 650.0}
    assert hv["nps"] == 100 and hv["average_ces"] == 2.0
    assert doc["segments"]["Low Value / Low Loyalty"]["churn_rate"] == 0.25
    assert doc["customers"] == 10 and doc["lag"] == 4.0 and doc["pareto"] and doc["flow"]
    assert history.to_list()[-1]["segments"]["Low Value / Low Loyalty"]["customers"] == 8
    empty = page_document(History(), None, None, [], None, {"ready": False})
    assert empty["segments"] == {} and empty["pareto"] is None and empty["customers"] is None


def test_assets_are_self_contained_and_only_the_listed_files_are_served():
    html = asset("index.html")[0].decode()
    referenced = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert referenced and all(ref.startswith("/ui/assets/") for ref in referenced), "no CDN, no other origin"
    for ref in referenced:
        assert asset(ref.removeprefix("/ui/assets/")) is not None, ref
    for name in ("../app.py", "vendor/README.md", "README.md", "", "index.htm"):
        assert asset(name) is None, name
    assert set(ASSETS) >= {"page.js", "page.css", "chart.umd.js", "chart.js-LICENSE.md"}


def test_vendored_chart_js_is_the_npm_release_with_its_license():
    body = asset("chart.umd.js")[0]
    assert hashlib.sha256(body).hexdigest() == CHART_JS_SHA256
    assert body.startswith(b"/*!\n * Chart.js v4.4.7")
    assert b"MIT License" in asset("chart.js-LICENSE.md")[0]
    assert "Chart.js 4.4.7" in asset("index.html")[0].decode()
