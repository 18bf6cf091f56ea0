"""Every segmentation policy runs live on broker traffic, and the what-if replay compares two policies.

Live: a worker with CLV_POLICY_FILE set must publish exactly the segment changes of the pure pipeline
over the same records (tests/integration/harness.Expected). The worker's population view stays None
here (its first publication is an hour away; test_population_live covers the view), so the relative
policies use their fallback cut-offs, and the expected pipeline does the same: no change carries a
population_version. (On tansu the 5 s default happened to pass; on Apache Kafka the view formed
mid-run and later changes used population cut-offs.)
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from streams.core.policies import load_policy_file
from streams.kafka.partitioning import partition_for
from streams.kafka.produce import encode_value, producer, send_events
from streams.kafka.read import read_to_end
from streams.pipeline import Record
from streams.whatif import compare, default_output_topic, what_if
from tests.integration.harness import (Expected, Worker, client_config, input_topics, json_values, make_settings,
                                       read_topic)
from tests.integration.test_worker import comparable, generated, send

pytestmark = pytest.mark.integration
POLICIES = Path(__file__).resolve().parents[2] / "deploy" / "policies"


@pytest.mark.parametrize("kind", ["matrix", "criteria", "rfm"])
def test_policy_runs_live_with_fallback_cut_offs(kind, kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path):
    settings = replace(make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state"),
                       policy_file=str(POLICIES / f"{kind}.yaml"), population_publish_interval_s=3600.0)
    events = generated(seed=21, customers=80, limit=1500)
    want = Expected(settings).feed(events).changes
    policy = settings.engine_config().policy
    assert len({c["segment"] for c in want}) >= 3, "the scenario reaches several segments"
    assert all("population_version" not in c and c["policy"] == policy.name for c in want)
    worker = Worker(settings, tmp_path).start()
    try:
        send(settings, events, single_topic=True)
        got = json_values(read_topic(settings.bootstrap, settings.topic_segment_changes,
                                     lambda rs: len(rs) >= len(want), timeout=120, what="segment changes",
                                     config=client_config(settings)))
        assert sorted(map(comparable, got)) == sorted(map(comparable, want)), worker.log()[-3000:]
        assert {c["service_level"]["delivery_days"] for c in got} >= {1 if kind != "criteria" else 2, 5}
    finally:
        worker.stop()


def as_records(settings, events):
    """The records as the broker holds them (single input topic, producer partitioner, offsets from 0)."""
    topics, offsets, out = input_topics(settings, True), {}, []
    for ev in events:
        topic, key = topics[ev.topic_role], ev.key.encode()
        p = partition_for(key, settings.partitions)
        offsets[(topic, p)] = offsets.get((topic, p), -1) + 1
        out.append(Record(topic, p, offsets[(topic, p)], key, encode_value(ev.value), ev.event_time_ms))
    return out


def test_what_if_prints_the_transition_matrix_without_touching_live_output(kafka_bootstrap, broker_kind,
                                                                            unique_topic_prefix, tmp_path):
    settings = make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state")
    Worker(settings, tmp_path)  # creates the topics; no worker runs
    events = generated(seed=22, customers=60, limit=1000)
    # one record per batch: tansu's end offsets are exact only then, and the replay reads to the end offsets
    prod = producer(settings.bootstrap, batch_size=1, **client_config(settings))
    try:
        send_events(prod, input_topics(settings, True), events)
    finally:
        prod.close()
    new_policy = load_policy_file(POLICIES / "criteria.yaml")
    want = compare(settings, new_policy, as_records(settings, events))
    customers = len({e.key for e in events})
    assert sum(want.transitions.values()) == customers and want.changes_new > 0

    report = what_if(settings, new_policy, write=True, client_config=client_config(settings))
    assert report.transitions == want.transitions and report.records == len(events)
    written = read_topic(settings.bootstrap, default_output_topic(settings),
                         lambda rs: len(rs) >= report.written, what="what-if changes", config=client_config(settings))
    assert report.written == want.changes_new == len(written)
    assert {c["policy"] for c in json_values(written)} == {new_policy.name}
    with pytest.raises(ValueError, match="live topic"):
        what_if(settings, new_policy, output_topic=settings.topic_segment_changes, write=True)

    # the command line, as an operator runs it
    env = {**os.environ, **settings.with_env()}
    run = subprocess.run([sys.executable, "-m", "streams.app", "what-if", "--policy", str(POLICIES / "rfm.yaml")],
                         env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    rfm = compare(settings, load_policy_file(POLICIES / "rfm.yaml"), as_records(settings, events))
    assert rfm.render() in run.stdout
    assert "transition matrix (customers, current -> new)" in run.stdout
    per_new = Counter({s: n for s, n in rfm.counts(1).items()})
    assert sum(per_new.values()) == customers
    # nothing reached the live output topic
    assert list(read_to_end(settings.bootstrap, settings.topic_segment_changes, 30, **client_config(settings))) == []


def test_a_bad_policy_file_stops_every_command_at_start_up(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text((POLICIES / "rfm.yaml").read_text().replace("recency: [5, 5], fm: [4, 5]",
                                                                "recency: [5, 5], fm: [4, 6]"))
    env = {**os.environ, "CLV_POLICY_FILE": str(bad)}
    for command in (["show-settings"], ["what-if", "--policy", str(bad)], ["worker"]):
        run = subprocess.run([sys.executable, "-m", "streams.app", *command], env=env, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode != 0
        assert "line 17, field segments[0].fm[1]: 6 is greater than the maximum of 5" in run.stderr, run.stderr[-2000:]
