"""Prometheus metrics. Labels are bounded sets (event type, outcome, reason,
segment); customer ids never become labels."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter("clvstream_events_total", "Input records by event type and outcome",
                 ["type", "outcome"], registry=REGISTRY)
DEAD_LETTERS = Counter("clvstream_dead_letter_events_total", "Records sent to the dead-letter topic by reason",
                       ["reason"], registry=REGISTRY)
SEGMENT_TRANSITIONS = Counter("clvstream_segment_transitions_total", "Segment changes by from/to segment",
                              ["from_segment", "to_segment"], registry=REGISTRY)
PROCESSING_SECONDS = Histogram("clvstream_processing_seconds", "Time to handle one input record",
                               buckets=(0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
                               registry=REGISTRY)

MODEL_INFO = Gauge("clvstream_model_parameters_info", "Version of the BG/NBD + Gamma-Gamma parameters in use (1)",
                   ["version"], registry=REGISTRY)


def observe(result) -> None:
    EVENTS.labels(result.event_type or "unknown", result.outcome).inc()
    if result.reason:
        DEAD_LETTERS.labels(result.reason).inc()
    for change in result.changes:
        SEGMENT_TRANSITIONS.labels(change["previous_segment"] or "none", change["segment"]).inc()


def exposition() -> bytes:
    return generate_latest(REGISTRY)
