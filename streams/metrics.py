"""Prometheus metrics, all named ``clvstream_*`` in base units (seconds, records, ratios).

Labels are bounded sets (event type, outcome, reason, segment, input topic and
partition); customer ids never become labels. Three kinds of series:

* instruments updated from the pipeline's ``Result`` objects (``observe``), so the
  agent loop only hands results over;
* per-segment figures read at scrape time from a ``PopulationSummary``
  (``PopulationCollector``; the topology registers the callable that returns it);
* worker state read at scrape time from Faust (``WorkerCollector``: consumer lag,
  changelog recovery, rebalancing, readiness).

Money is in the engine's currency (the first of ``CLV_CURRENCIES``), in units, not cents.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable, Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily

from .core.population import PopulationSummary

# prometheus_client adds a `<name>_created` timestamp series beside every counter and histogram by
# default: one useless series per labelled child, doubling what a scrape carries. Prometheus itself
# ignores it (it tracks resets on its own). The switch is read at exposition time, process-wide.
disable_created_metrics()

DAY_S = 86400
YEAR_S = 365 * DAY_S
#: Upper bounds of the event-lag histogram: sub-second live lag up to five-year-old history (a replay
#: or the demo's back-dated events), about three buckets per decade, each a round human duration.
EVENT_LAG_BUCKETS_S = (0.1, 0.3, 1, 3, 10, 30, 60, 300, 900, 3600, 3 * 3600, 12 * 3600, DAY_S, 3 * DAY_S,
                       7 * DAY_S, 30 * DAY_S, 91 * DAY_S, 182 * DAY_S, YEAR_S, 2 * YEAR_S, 5 * YEAR_S)

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter("clvstream_events_total",
                 "Input records by event type and outcome (applied, duplicate, late, redelivered, invalid, rekeyed)",
                 ["type", "outcome"], registry=REGISTRY)
DEAD_LETTERS = Counter("clvstream_dead_letter_events_total", "Records sent to the dead-letter topic by reason",
                       ["reason"], registry=REGISTRY)
SEGMENT_TRANSITIONS = Counter("clvstream_segment_transitions_total", "Segment changes by from/to segment",
                              ["from_segment", "to_segment"], registry=REGISTRY)
PROCESSING_SECONDS = Histogram("clvstream_processing_seconds", "Time to handle one input record",
                               buckets=(0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
                               registry=REGISTRY)
# Operational only: the core never reads the wall clock. Large values are normal for a replay or a backlog.
EVENT_LAG_SECONDS = Histogram(
    "clvstream_event_lag_seconds",
    "Wall clock at processing minus the event's event time (applied, duplicate and late events)",
    buckets=EVENT_LAG_BUCKETS_S,
    registry=REGISTRY)

MODEL_INFO = Gauge("clvstream_model_parameters_info", "Version of the BG/NBD + Gamma-Gamma parameters in use (1)",
                   ["version"], registry=REGISTRY)


def observe(result, now_s: Optional[float] = None) -> None:
    """Count one pipeline ``Result`` (``streams.pipeline.Result``)."""
    EVENTS.labels(result.event_type or "unknown", result.outcome).inc()
    if result.reason:
        DEAD_LETTERS.labels(result.reason).inc()
    for change in result.changes:
        SEGMENT_TRANSITIONS.labels(change["previous_segment"] or "none", change["segment"]).inc()
    event_time_ms = getattr(result, "event_time_ms", None)
    if event_time_ms is not None:
        now_s = time.time() if now_s is None else now_s
        EVENT_LAG_SECONDS.observe(max(0.0, now_s - event_time_ms / 1000))


def observe_processing(seconds: float) -> None:
    PROCESSING_SECONDS.observe(seconds)


def exposition() -> bytes:
    return generate_latest(REGISTRY)


# --------------------------------------------------------------------------- population (per segment)

SummarySource = Callable[[], Optional[PopulationSummary]]

_CLV_FORMS = ("historical_revenue", "historical_margin", "formula", "predicted", "potential")


class PopulationCollector:
    """Per-segment gauges from the ``PopulationSummary`` a callable returns at scrape time.

    The summary of a worker covers the partitions it owns, so the additive series
    (customers, money totals, response counts) sum across workers in PromQL; the
    ratio series (churn, NPS, CES, shares, Pareto) are of those partitions. Without
    a source, or while it returns None, every family is declared with no samples.
    """

    def __init__(self, source: Optional[SummarySource] = None):
        self.source = source

    def describe(self):
        return self._families(None)

    def collect(self):
        return self._families(self.source() if self.source is not None else None)

    @staticmethod
    def _families(summary: Optional[PopulationSummary]):
        seg = ["segment"]
        customers = GaugeMetricFamily("clvstream_segment_customers", "Customers in the segment", labels=seg)
        clv = GaugeMetricFamily(
            "clvstream_segment_clv", "Sum of a CLV form over the segment's customers, in currency units "
            "(form: historical_revenue, historical_margin, formula, predicted, potential)", labels=seg + ["form"])
        churned = GaugeMetricFamily("clvstream_segment_churned_customers", "Customers counted as churned",
                                    labels=seg)
        churn = GaugeMetricFamily("clvstream_segment_churn_ratio", "Churned customers / customers", labels=seg)
        nps = GaugeMetricFamily("clvstream_segment_nps", "Net Promoter Score (-100..100) of the latest answers",
                                labels=seg)
        nps_answers = GaugeMetricFamily(
            "clvstream_segment_nps_customers", "Customers with an NPS answer by latest answer "
            "(answer: promoter 9-10, passive 7-8, detractor 0-6)", labels=seg + ["answer"])
        ces = GaugeMetricFamily("clvstream_segment_ces_average", "Average customer-effort score", labels=seg)
        ces_responses = GaugeMetricFamily("clvstream_segment_ces_responses", "Customer-effort answers", labels=seg)
        ces_sum = GaugeMetricFamily("clvstream_segment_ces_sum", "Sum of customer-effort scores", labels=seg)
        revenue_share = GaugeMetricFamily("clvstream_segment_revenue_share_ratio",
                                          "Segment's share of the historical net revenue", labels=seg)
        margin_share = GaugeMetricFamily("clvstream_segment_margin_share_ratio",
                                         "Segment's share of the historical margin", labels=seg)
        pareto = GaugeMetricFamily("clvstream_pareto_top20_share_ratio",
                                   "Share of historical revenue or margin from the top 20% of customers by it",
                                   labels=["measure"])
        info = GaugeMetricFamily("clvstream_population_info", "Segmentation policy of the figures (1)",
                                 labels=["policy", "policy_version"])
        partitions = GaugeMetricFamily("clvstream_population_partitions",
                                       "Partitions the per-segment figures of this worker cover")
        families = [customers, clv, churned, churn, nps, nps_answers, ces, ces_responses, ces_sum,
                    revenue_share, margin_share, pareto, info, partitions]
        if summary is not None:
            info.add_metric([summary.policy, summary.policy_version], 1)
            partitions.add_metric([], len(summary.partitions))
            for name, f in sorted(summary.segments.items()):
                customers.add_metric([name], f.customers)
                for form in _CLV_FORMS:
                    clv.add_metric([name, form], getattr(f, form if form.startswith("historical") else f"{form}_clv"))
                churned.add_metric([name], f.churned)
                nps_answers.add_metric([name, "promoter"], f.nps_promoters)
                nps_answers.add_metric([name, "detractor"], f.nps_detractors)
                nps_answers.add_metric([name, "passive"], f.nps_responses - f.nps_promoters - f.nps_detractors)
                ces_responses.add_metric([name], f.ces_responses)
                ces_sum.add_metric([name], f.ces_sum)
                for family, value in ((churn, f.churn_rate), (nps, f.nps), (ces, f.average_ces),
                                      (revenue_share, summary.revenue_share(name)),
                                      (margin_share, summary.margin_share(name))):
                    if value is not None:  # no customers / answers / revenue: no sample rather than a fake 0
                        family.add_metric([name], value)
            for measure, value in (("revenue", summary.revenue_share_top20), ("margin", summary.margin_share_top20)):
                if value is not None:
                    pareto.add_metric([measure], value)
        return families


POPULATION = PopulationCollector()
REGISTRY.register(POPULATION)


def set_population_source(source: Optional[SummarySource]) -> None:
    """Where the per-segment gauges come from (the topology registers it; None: no segment figures)."""
    POPULATION.source = source


# --------------------------------------------------------------------------- worker state (Faust)

class WorkerCollector:
    """Consumer lag, changelog recovery and readiness read from a running Faust app at scrape time.

    Lag per assigned input partition is the end offset the consumer last fetched minus the
    offset it last read (Faust's monitor), so it costs nothing per event. A stalled partition is
    one whose lag stays above zero while its read offset does not move (the alert rules say how
    long); an idle partition has lag 0. Without an app (``watch_worker`` not called) every
    family is declared with no samples.
    """

    def __init__(self, app=None, input_topics: Iterable[str] = ()):
        self.app, self.inputs = app, frozenset(input_topics)

    def describe(self):
        return self._families()

    @staticmethod
    def _families():
        tp = ["topic", "partition"]
        return (
            GaugeMetricFamily("clvstream_consumer_lag_records",
                              "Records behind the end of an assigned input partition", labels=tp),
            GaugeMetricFamily("clvstream_consumer_read_offset", "Last offset read from an assigned input partition",
                              labels=tp),
            GaugeMetricFamily("clvstream_recovery_active", "1 while table state is being restored from the changelog"),
            GaugeMetricFamily("clvstream_recovery_remaining_records",
                              "Changelog records still to restore (kind: active, standby)", labels=["kind"]),
            GaugeMetricFamily("clvstream_recovery_restored_offset",
                              "Sum over changelog partitions of the offset restored up to; rate() gives records "
                              "restored per second (kind: active, standby)", labels=["kind"]),
            GaugeMetricFamily("clvstream_rebalancing", "1 while the consumer group rebalances"),
            GaugeMetricFamily("clvstream_ready", "1 when recovery is finished and no rebalance is under way"),
        )

    def collect(self):
        families = self._families()
        app = self.app
        if app is None:
            return families
        lag, read, recovering, remaining, restored, rebalancing, ready = families
        try:
            assigned = {tp for tp in app.assignor.assigned_actives() if tp.topic in self.inputs}
        except Exception:  # noqa: BLE001 - no assignment yet
            assigned = set()
        monitor = app.monitor
        for tp in sorted(assigned):
            labels = [tp.topic, str(tp.partition)]
            offset = monitor.tp_read_offsets.get(tp)
            end = monitor.tp_end_offsets.get(tp)  # the next offset to be written (high watermark)
            if offset is not None:
                read.add_metric(labels, offset)
            if end is not None:
                lag.add_metric(labels, max(0, end - (offset if offset is not None else -1) - 1))
        status = worker_status(app)
        recovering.add_metric([], 1 if status["recovering"] else 0)
        rebalancing.add_metric([], 1 if status["rebalancing"] else 0)
        ready.add_metric([], 1 if status["ready"] else 0)
        recovery = app.tables.recovery
        remaining.add_metric(["active"], recovery.active_remaining_total())
        remaining.add_metric(["standby"], recovery.standby_remaining_total())
        restored.add_metric(["active"], sum(o for o in recovery.active_offsets.values() if o and o > 0))
        restored.add_metric(["standby"], sum(o for o in recovery.standby_offsets.values() if o and o > 0))
        return families


def worker_status(app) -> dict:
    """Liveness/readiness facts of a Faust app: ready = recovery finished and not rebalancing."""
    recovery = app.tables.recovery
    recovering = bool(recovery.in_recovery)
    rebalancing = bool(app.rebalancing)
    recovered = recovery.completed.is_set()
    return {"recovering": recovering, "rebalancing": rebalancing, "recovered": recovered,
            "remaining_records": recovery.active_remaining_total(),
            "ready": recovered and not recovering and not rebalancing}


WORKER = WorkerCollector()
REGISTRY.register(WORKER)


def watch_worker(app, input_topics: Iterable[str]) -> None:
    """Expose lag, recovery and readiness of ``app`` (one Faust app per worker process)."""
    WORKER.app, WORKER.inputs = app, frozenset(input_topics)
