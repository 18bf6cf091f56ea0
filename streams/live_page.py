"""The data behind the worker's live page (/ui): history of the segment figures, the Pareto
curve, the flow between segments. Pure (no Faust, no clock): the views hand it the summary,
the population view, the transition counts and the wall-clock time of a sample.

The page is operational, like the metrics: its history is sampled on the wall clock by the
worker (every ``SAMPLE_EVERY_S``), kept in memory for ``HISTORY_SAMPLES`` samples and lost on
restart. The engine's state and decisions never depend on it.
"""
from __future__ import annotations

from collections import deque
from importlib import resources
from typing import Iterable, Mapping, Optional, Tuple

SAMPLE_EVERY_S = 2.0
HISTORY_SAMPLES = 900  # 30 minutes at one sample every 2 s
PARETO_POINTS = 50
PARETO_METRIC = "historical_revenue"

# name -> content type of the files the page may load (nothing else under streams/ui is served)
ASSETS = {"page.js": "application/javascript", "page.css": "text/css",
          "chart.umd.js": "application/javascript", "chart.js-LICENSE.md": "text/plain"}


def asset(name: str) -> Optional[Tuple[bytes, str]]:
    """A file of the page (HTML, script, style, the vendored Chart.js and its license), or None."""
    if name != "index.html" and name not in ASSETS:
        return None
    folder = resources.files("streams") / "ui"
    path = folder / "vendor" / name if name.startswith("chart") else folder / name
    return path.read_bytes(), ASSETS.get(name, "text/html")


def segment_figures(summary) -> dict:
    """Per segment: customers, CLV sums and averages, churn, NPS, CES (None where not defined)."""
    out = {}
    for name, f in sorted(summary.segments.items()):
        per = (lambda total: round(total / f.customers, 2) if f.customers else None)  # noqa: E731
        out[name] = {"customers": f.customers,
                     "clv_sum": {"formula": round(f.formula_clv, 2), "predicted": round(f.predicted_clv, 2),
                                 "potential": round(f.potential_clv, 2)},
                     "clv_average": {"formula": per(f.formula_clv), "predicted": per(f.predicted_clv),
                                     "potential": per(f.potential_clv)},
                     "revenue_share": summary.revenue_share(name),
                     "churn_rate": f.churn_rate, "nps": f.nps, "average_ces": f.average_ces}
    return out


def pareto_curve(view, metric: str = PARETO_METRIC, points: int = PARETO_POINTS) -> Optional[dict]:
    """Share of the metric's total from the top x of customers, for x from 0 to 1; the 80/20 point.

    ``view`` is a population view with ``top_share`` (the global ``PopulationSnapshot``).
    None while no customer has a positive total.
    """
    if view is None or view.size(metric) == 0 or view.top_share(metric, 1.0) is None:
        return None
    curve = [{"customers": 0.0, "share": 0.0}]
    for i in range(1, points + 1):
        x = i / points
        curve.append({"customers": round(x, 4), "share": round(min(1.0, view.top_share(metric, x)), 4)})
    top20 = view.top_share(metric, 0.2)
    # the smallest share of customers that brings 80% of the total (the "80" of 80/20, as measured)
    eighty = next((p["customers"] for p in curve if p["share"] >= 0.8), 1.0)
    return {"metric": metric, "customers": view.size(metric), "curve": curve,
            "top20_share": None if top20 is None else round(top20, 4), "customers_for_80": eighty}


def flow(transitions: Iterable[Tuple[str, str, float]]) -> list:
    """Moves between segments, largest first; first assessments come from "none"."""
    rows = [{"from": a, "to": b, "customers": int(n)} for a, b, n in transitions if n]
    return sorted(rows, key=lambda r: (-r["customers"], r["from"], r["to"]))


class History:
    """The last ``HISTORY_SAMPLES`` samples of the per-segment figures and the consumer lag."""

    def __init__(self, size: int = HISTORY_SAMPLES):
        self.samples: deque = deque(maxlen=size)

    def sample(self, wall_ms: int, summary, lag: Optional[float]) -> None:
        segments = {} if summary is None else {
            name: {"customers": f["customers"], "clv_average": f["clv_average"], "churn_rate": f["churn_rate"]}
            for name, f in segment_figures(summary).items()}
        self.samples.append({"t": wall_ms, "segments": segments, "lag": lag})

    def to_list(self) -> list:
        return list(self.samples)


def page_document(history: History, summary, view, transitions: Iterable[Tuple[str, str, float]],
                  lag: Optional[float], worker: Mapping) -> dict:
    """What /ui/data answers: everything the page draws."""
    return {"worker": dict(worker), "lag": lag,
            "policy": None if summary is None else {"name": summary.policy, "version": summary.policy_version},
            "customers": None if summary is None else summary.customers,
            "segments": {} if summary is None else segment_figures(summary),
            "pareto": pareto_curve(view), "flow": flow(transitions), "history": history.to_list()}
