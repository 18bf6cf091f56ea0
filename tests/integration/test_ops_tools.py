"""The ops CLI against a real broker: topics provision/check, replay, rebuild, lag.

Runs on Apache Kafka (the suite's broker; CreateTopics, DescribeConfigs, DeleteTopics,
DescribeGroups, OffsetCommit from outside a group).  The librdkafka mock, which has none of
these admin APIs but topic creation through its launcher, left the matrix (issue 12).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from streams.generator import EventGenerator, GeneratorConfig
from streams.ops import offsets, progress, topics
from streams.ops.clients import admin, client_config
from tests.integration.harness import make_settings
from tests.integration.test_worker import send

pytestmark = pytest.mark.integration


@pytest.fixture
def ops_settings(any_broker, unique_topic_prefix, tmp_path):
    bootstrap, kind = any_broker
    return make_settings(bootstrap, kind, unique_topic_prefix, tmp_path / "state")


@pytest.fixture
def admin_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path):
    return make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state")


def cli(settings, *args, timeout=90):
    env = {**os.environ, **settings.with_env(), "PYTHONPATH": os.environ.get("PYTHONPATH", ".")}
    return subprocess.run([sys.executable, "-m", "streams.app", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_provision_is_idempotent_and_check_reports_drift(ops_settings):
    settings = ops_settings
    first = topics.provision(settings, dry_run=True)
    assert {s.name for s in first.create} == {s.name for s in topics.topic_specs(settings)}
    topics.provision(settings)
    assert topics.plan(settings).create == []  # a second run creates nothing
    report = topics.check(settings)
    assert report.ok, report.lines()
    if settings.broker_kind == "rdkafka-mock":
        assert any("configs not checked" in n for n in report.notes)
        return
    # drift: someone shortened the retention of the orders topic and made the changelog deletable
    client = admin(settings)
    changelog = offsets.derived_topics(settings)[0]
    client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topic_orders,
                                         {"cleanup.policy": "delete", "retention.ms": "1000"}),
                          ConfigResource(ConfigResourceType.TOPIC, changelog, {"cleanup.policy": "delete"})])
    client.close()
    # Kafka (KRaft) applies AlterConfigs asynchronously: wait for the drift to be visible
    deadline = time.monotonic() + 30
    while topics.topic_configs(settings, [changelog])[changelog].get("cleanup.policy") != "delete" \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    drifted = topics.check(settings)
    assert {(d.topic, d.what) for d in drifted.drifts} == {(settings.topic_orders, "retention.ms"),
                                                           (changelog, "cleanup.policy")}
    result = cli(settings, "topics", "check")
    assert result.returncode == 1 and "DRIFT" in result.stdout, result.stdout + result.stderr[-2000:]
    dry = cli(settings, "topics", "provision", "--dry-run")
    assert dry.returncode == 0 and "would set config" in dry.stdout
    assert not topics.check(settings).ok  # the dry run changed nothing
    topics.provision(settings)
    assert topics.check(settings).ok
    assert cli(settings, "topics", "check").returncode == 0


def _join_group(settings, topic):
    consumer = KafkaConsumer(topic, group_id=settings.app_id, bootstrap_servers=settings.bootstrap,
                             # the broker's session floor (Kafka: group.min.session.timeout.ms = 6 s)
                             session_timeout_ms=int(settings.session_timeout_s * 1000), heartbeat_interval_ms=500,
                             **client_config(settings))
    deadline = time.monotonic() + 20
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(200)
    assert consumer.assignment()
    return consumer


def test_replay_moves_offsets_only_when_the_group_is_stopped(admin_settings):
    settings = admin_settings
    topics.provision(settings)
    events = list(EventGenerator(GeneratorConfig(seed=3, customers=30)).events(limit=300))
    send(settings, events, single_topic=True)
    member = _join_group(settings, settings.topic_orders)
    try:
        with pytest.raises(offsets.GroupActive):
            offsets.replay(settings, to_earliest=True)
        refused = cli(settings, "replay", "--to-earliest", "--wait", "1")
        assert refused.returncode == 1 and "refused" in refused.stdout and "1 member(s)" in refused.stdout
    finally:
        member.close()
    # a timestamp in the middle of the log: every partition moves to its first event at or after it
    middle = sorted(e.event_time_ms for e in events)[len(events) // 2]
    from datetime import datetime, timezone

    iso = datetime.fromtimestamp(middle / 1000, timezone.utc).isoformat()
    dry = offsets.replay(settings, dry_run=True, timestamp_ms=offsets.parse_timestamp(iso))
    assert dry.moves and all(t >= 0 for _, t in dry.moves.values())
    client = admin(settings)
    orders = [tp for tp in dry.moves if tp.topic == settings.topic_orders]
    before = client.list_group_offsets({settings.app_id: orders})[settings.app_id]
    client.close()
    moved = offsets.replay(settings, to_earliest=True)
    client = admin(settings)
    after = client.list_group_offsets({settings.app_id: orders})[settings.app_id]
    client.close()
    assert all(after[tp].offset == 0 for tp in orders)
    assert any(before[tp].offset > 0 for tp in orders)  # the member had read and committed
    assert moved.events > 0
    out = cli(settings, "replay", "--offset", "2", "--dry-run")
    assert out.returncode == 0 and "would move" in out.stdout


def test_rebuild_wipes_state_and_changelog_and_rewinds(admin_settings):
    settings = admin_settings
    topics.provision(settings)
    from streams.kafka.produce import producer

    changelog = offsets.derived_topics(settings)[0]
    prod = producer(settings.bootstrap)
    prod.send(changelog, key=b"c1", value=b"old state", partition=0)
    prod.flush()
    prod.close()
    os.makedirs(settings.data_dir)
    (open(os.path.join(settings.data_dir, "marker"), "w")).close()
    dry = offsets.rebuild(settings, dry_run=True)
    assert os.path.exists(settings.data_dir)
    assert any("would wipe" in line for line in dry.lines(True))
    offsets.rebuild(settings)
    assert not os.path.exists(settings.data_dir)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, consumer_timeout_ms=1500)
    consumer.assign([TopicPartition(changelog, p) for p in range(settings.partitions)])
    consumer.seek_to_beginning()
    assert list(consumer) == []  # the old changelog is gone
    consumer.close()
    assert topics.check(settings).ok  # recreated with its spec


@pytest.fixture
def tansu_settings(tansu_broker, unique_topic_prefix, tmp_path):
    """On tansu itself: the lag test is about its inexact end offsets (the suite's broker is Apache Kafka)."""
    return make_settings(tansu_broker.bootstrap, "tansu", unique_topic_prefix, tmp_path / "state")


def test_lag_counts_to_the_last_readable_offset_after_multi_record_batches(tansu_settings):
    """tansu answers "first offset of the last batch + 1" as a partition's end: a group one batch
    behind showed lag 0 (issue 14). The lag is measured against the last offset that can be read."""
    from kafka import KafkaProducer
    from kafka.structs import OffsetAndMetadata

    settings = tansu_settings
    topics.provision(settings)
    tp = TopicPartition(settings.topic_orders, 0)
    batched = KafkaProducer(bootstrap_servers=settings.bootstrap, linger_ms=500, batch_size=1 << 20,
                            **client_config(settings))
    try:
        for n in range(2):  # two batches of ten records each on partition 0
            for i in range(10):
                batched.send(settings.topic_orders, key=b"k", value=f"batch {n} record {i}".encode(), partition=0)
            batched.flush()
    finally:
        batched.close()
    client = admin(settings)
    try:
        errors = client.alter_group_offsets(settings.app_id, {tp: OffsetAndMetadata(13, "", -1)})
        assert all(getattr(e, "__name__", "") == "NoError" for e in errors.values()), errors
    finally:
        client.close()
    positions = progress.lag(settings)
    assert positions[tp] == (13, 20)  # 7 records behind, whatever the broker says the end is
    assert progress.remaining({tp: positions[tp]}) == 7
    out = cli(settings, "lag")
    assert out.returncode == 0 and f"{settings.topic_orders}[0] committed 13 end 20" in out.stdout, \
        out.stdout + out.stderr[-2000:]
