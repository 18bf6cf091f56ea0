"""A real Prometheus server scrapes a real worker on Apache Kafka; what it stored must match what was sent.

Expected figures come from the pure pipeline over the same records (``harness.Expected``):
events by type and outcome, dead letters by reason, segment transitions, customers per
segment. Prometheus is Debian's ``prometheus`` binary (``.ci/run`` installs it), scraping
every second; assertions go through its HTTP query API.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter

import pytest
import yaml

from streams.demo import stop_process
from tests.deploy.test_deploy_files import (DASHBOARD_FILE, GRAFANA_FUNCTIONS, PROMQL_FUNCTIONS, alert_rules,
                                            dashboard_queries, promql_metric_names)
from tests.integration.harness import Expected, Worker, changelog_states, free_port, make_settings
from tests.integration.test_worker import generated, send

pytestmark = pytest.mark.integration


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail("the `prometheus` binary is missing: apt-get install -y prometheus (.ci/run does)")
    return found


class Prometheus:
    def __init__(self, target: str, workdir):
        self.port = free_port()
        config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                  "scrape_configs": [{"job_name": "clvstream", "static_configs": [{"targets": [target]}]}]}
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        self.proc = subprocess.Popen(
            [prometheus_binary(), f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)

    def query(self, expr: str) -> list:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]["result"]

    def vector(self, expr: str, *labels: str) -> dict:
        """{label values: value} of an instant vector query."""
        return {tuple(r["metric"].get(label, "") for label in labels): float(r["value"][1])
                for r in self.query(expr)}

    def stop(self):
        stop_process(self.proc)


def eventually(what: str, produce, want, timeout: float = 60.0):
    """Poll ``produce()`` until it equals ``want``; fail showing the last value."""
    deadline, got = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            got = produce()
        except OSError as exc:  # Prometheus still starting
            got = exc
        if got == want:
            return
        time.sleep(1.0)
    assert got == want, f"{what} after {timeout:.0f} s"


@pytest.fixture(scope="module")
def scraped(kafka_bootstrap, broker_kind, tmp_path_factory):
    """One worker on the session broker with known traffic, scraped by a real Prometheus."""
    tmp = tmp_path_factory.mktemp("scrape")
    settings = make_settings(kafka_bootstrap, broker_kind, f"scrape-{tmp.name}-", tmp / "state")
    worker = Worker(settings, tmp).start()
    prometheus = Prometheus(f"127.0.0.1:{settings.web_port}", tmp)
    events = generated(customers=120, limit=2000, seed=31, share_malformed=0.03, share_duplicates=0.03)
    expected = Expected(settings, single_topic=True).feed(events)
    try:
        send(settings, events, single_topic=True)
        want = expected.states
        changelog_states(settings, lambda s: all(c in s and s[c].watermark_ms == w.watermark_ms
                                                 for c, w in want.items()), timeout=120)
        yield settings, worker, prometheus, expected
    finally:
        prometheus.stop()
        worker.stop()


def test_scraped_counters_match_what_was_sent(scraped):
    settings, worker, prometheus, expected = scraped
    assert expected.dead and expected.changes and ("order", "duplicate") in expected.outcomes  # all paths used
    eventually("events by type and outcome",
               lambda: prometheus.vector('sum by (type, outcome) (clvstream_events_total{job="clvstream"})',
                                         "type", "outcome"),
               {k: float(v) for k, v in expected.outcomes.items()})
    eventually("dead letters by reason",
               lambda: prometheus.vector('sum by (reason) (clvstream_dead_letter_events_total{job="clvstream"})',
                                         "reason"),
               {(k,): float(v) for k, v in Counter(expected.dead).items()})
    transitions = Counter((c["previous_segment"] or "none", c["segment"]) for c in expected.changes)
    eventually("segment transitions",
               lambda: prometheus.vector('sum by (from_segment, to_segment) '
                                         '(clvstream_segment_transitions_total{job="clvstream"})',
                                         "from_segment", "to_segment"),
               {k: float(v) for k, v in transitions.items()})
    eventually("records processed (histogram count)",
               lambda: prometheus.vector('sum(clvstream_processing_seconds_count{job="clvstream"})'),
               {(): float(sum(expected.outcomes.values()))})
    eventually("worker ready, nothing left to restore, no lag",
               lambda: (prometheus.vector('clvstream_ready{job="clvstream"}'),
                        prometheus.vector('sum(clvstream_recovery_remaining_records{job="clvstream"})'),
                        prometheus.vector('sum(clvstream_consumer_lag_records{job="clvstream"})')),
               ({(): 1.0}, {(): 0.0}, {(): 0.0}))
    assert worker.proc.poll() is None, worker.log()[-3000:]


def test_scraped_segment_populations_match_the_states(scraped):
    settings, worker, prometheus, expected = scraped
    populations = Counter(state.segment for state in expected.states.values())
    eventually("customers per segment",
               lambda: prometheus.vector('sum by (segment) (clvstream_segment_customers{job="clvstream"})', "segment"),
               {(k,): float(v) for k, v in populations.items()}, timeout=20)


def test_dashboard_and_alerts_use_only_series_the_real_worker_exposes(scraped):
    """Every metric name in a dashboard query or an alert rule appears in the worker's /metrics
    after real processing (families without samples, like the segment gauges before any
    summary, are declared with # TYPE lines)."""
    settings, worker, prometheus, expected = scraped
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    exposed = {"up"}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            exposed |= {name, *(f"{name}{s}" for s in {"counter": ("_total",),
                                                      "histogram": ("_bucket", "_sum", "_count")}.get(kind, ()))}
        elif line and not line.startswith("#"):
            exposed.add(line.split("{", 1)[0].split(" ", 1)[0])
    used = {}
    for where, expr in dashboard_queries(json.loads(DASHBOARD_FILE.read_text())):
        names = promql_metric_names(expr, PROMQL_FUNCTIONS | GRAFANA_FUNCTIONS)
        if where.startswith("variable"):
            names -= {expr.rsplit(",", 1)[-1].strip(" )")}
        used[where] = names
    for rule in alert_rules():
        used[f"alert {rule['alert']}"] = promql_metric_names(rule["expr"])
    assert sum(map(len, used.values())) > 20
    missing = {where: sorted(names - exposed) for where, names in used.items() if names - exposed}
    assert not missing, missing
    # and Prometheus stored the worker's series under those names
    assert prometheus.vector('count(clvstream_events_total{job="clvstream"}) > 0')
