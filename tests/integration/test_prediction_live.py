"""Predicted CLV live: fit from the worker's own state, publish, and the running
worker scores with the new parameters (no restart); silent customers drift to
"at risk" on event time."""
from __future__ import annotations

import urllib.request

import pytest

from streams.commands import fit_and_publish
from streams.core import codec
from streams.core.prediction import ModelScorer
from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.partitioning import partition_for
from tests.integration.harness import Expected, Worker, changelog_states, json_values, make_settings, read_topic
from tests.integration.test_worker import comparable, send

pytestmark = pytest.mark.integration


def wait_for_metric(port: int, needle: str, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            if needle in body:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{needle!r} never appeared in /metrics")


def test_worker_picks_up_parameters_and_scores_predicted_clv(tansu_smoke, unique_topic_prefix, tmp_path):
    # Still on tansu, not on the suite's Apache Kafka: on Kafka 4.3.1 the first wait (14,274 history
    # events, 3,029 customers) never converged, neither in 60 s nor in 240 s (2,200 customers after
    # 60 s; machine load average 12-25). Not yet explained: an open item of issue 12.
    kafka_bootstrap, broker_kind = tansu_smoke
    settings = make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state")
    worker = Worker(settings, tmp_path).start()
    try:
        gen = EventGenerator(GeneratorConfig(seed=21, customers=200))
        history = list(gen.events(until="2025-10-01T00:00:00Z"))
        recent = list(gen.events(until="2026-06-01T00:00:00Z"))
        expected = Expected(settings).feed(history)
        store, want = expected.store, expected.changes
        send(settings, history, single_topic=True)
        changelog_states(settings, lambda s: len(s) >= len(store)
                         and all(s[k.decode()].watermark_ms == codec.decode(v).watermark_ms for k, v in store.items()))

        fitted = fit_and_publish(settings, "weeks", "it-1", True, out=lambda *_: None)
        wait_for_metric(settings.web_port, 'clvstream_model_parameters_info{version="it-1"} 1.0')
        expected.pipeline.set_scorer(ModelScorer(fitted.parameters, settings.prediction_config()))
        expected.pipeline.rebuild(lambda k: partition_for(k, settings.partitions), store.items(),
                                  range(settings.partitions))
        expected.feed(recent)
        send(settings, recent, single_topic=True)

        got = json_values(read_topic(settings.bootstrap, settings.topic_segment_changes,
                                     lambda rs: len(rs) >= len(want), timeout=90, what="segment changes"))
        assert sorted(map(comparable, got)) == sorted(map(comparable, want)), worker.log()[-2000:]
        scored = [c for c in got if c["clv"]["model"] == "bgnbd-gg:it-1"]
        assert scored and all(c["clv"]["predicted"] <= c["clv"]["potential"] + 0.01 for c in scored)
        at_risk = [c for c in scored if c["cause"]["type"] == "review" and "at risk of churn" in c["reason"]]
        assert at_risk, "some silent customer should drift below the P(alive) threshold on event time"
        print(f"\n{len(got)} segment changes, {len(scored)} scored by BG/NBD+GG, "
              f"{len(at_risk)} at-risk transitions fired by event time")
    finally:
        worker.stop()
