"""The checkpoint's direct changelog writes (streams/changelog.py) on real Kafka: the store and its
persisted changelog offsets as Faust's own ``table[key] = value`` leaves them, and a record the broker
refuses (changelog or output) never lets the input offsets of its events be committed."""
from __future__ import annotations

import shutil
import time
from dataclasses import replace

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from streams.bulk.restore import OFFSET_KEY, faust_store
from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.partitioning import partition_for
from streams.kafka.read import latest_values
from streams.ops import topics
from streams.ops.progress import lag
from streams.topics import state_changelog_topic
from streams.topology import EXIT_UNDELIVERED
from tests.integration.faults import check_changes, converge
from tests.integration.harness import Expected, Worker, client_config, make_settings
from tests.integration.test_worker import send

pytestmark = pytest.mark.integration


def generated(seed: int, limit: int):
    return list(EventGenerator(GeneratorConfig(seed=seed, customers=150, share_duplicates=0.02)).events(limit=limit))


def store_contents(settings) -> tuple:
    """(key -> value of every partition's RocksDB, partition -> persisted changelog offset) of a stopped worker."""
    store = faust_store(settings)
    values, persisted = {}, {}
    for p in range(settings.partitions):
        db = store.rocksdb_options.open(store.partition_path(p))
        try:
            values.update((k, v) for k, v in db.items() if k != OFFSET_KEY)
            offset = db.get(OFFSET_KEY)
            persisted[p] = None if offset is None else int(offset)
        finally:
            db.close()
    return values, persisted


def changelog_last_offsets(settings) -> dict:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, **client_config(settings))
    try:
        topic = state_changelog_topic(settings.app_id)
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(settings.partitions)])
        return {tp.partition: (end - 1 if end else None) for tp, end in ends.items()}
    finally:
        consumer.close()


@pytest.mark.parametrize("live_path", ["checkpointed", "per-event"])
def test_store_and_persisted_offsets_are_what_fausts_table_writes_leave(kafka_bootstrap, broker_kind,
                                                                        unique_topic_prefix, tmp_path, live_path):
    """per-event writes ``table[key] = value`` (Faust's path), checkpointed the store and the changelog
    directly: both leave every state in RocksDB and each partition's persisted offset at its changelog's
    last record, and a restart on that store goes on from there with nothing lost or counted twice."""
    settings = replace(make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state"),
                       live_path=live_path, checkpoint_records=200)
    events = generated(seed=61, limit=2400)
    first, later = events[:1600], events[1600:]
    expected = Expected(settings).feed(first)
    worker = Worker(settings, tmp_path).start()
    try:
        send(settings, first, single_topic=True)
        assert not converge(settings, expected)["customers_differing"]
        worker.stop()
        assert worker.proc.returncode == 0, worker.log()[-3000:]
        values, persisted = store_contents(settings)
        changelog = latest_values(settings.bootstrap, state_changelog_topic(settings.app_id), **client_config(settings))
        assert values == changelog == expected.store
        last = changelog_last_offsets(settings)
        assert all(offset is not None for offset in last.values()), last  # every partition holds states
        assert persisted == last

        worker.start()  # same data dir: Faust's recovery reads the changelog after the persisted offsets
        expected.feed(later)
        send(settings, later, single_topic=True)
        after = converge(settings, expected)
    finally:
        worker.stop()
    assert not after["customers_differing"], after["customers_differing"][:3]
    assert after["orders_lost"] == 0 and after["orders_double_counted"] == 0


def set_max_message_bytes(settings, topic: str, value: int) -> None:
    """Records larger than ``value`` on ``topic`` are refused by the broker (MESSAGE_TOO_LARGE, not retried)."""
    client = topics.admin(settings)
    try:
        client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(value)})])
    finally:
        client.close()
    deadline = time.monotonic() + 30
    while topics.topic_configs(settings, [topic])[topic].get("max.message.bytes") != str(value):
        assert time.monotonic() < deadline, "the topic config did not change"
        time.sleep(0.2)


KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1048588


def committed_offsets(settings) -> dict:
    """Per partition of the (single) input topic: the group's committed offset, None if never."""
    return {tp.partition: committed for tp, (committed, _) in lag(settings).items() if tp.topic == settings.topic_orders}


def first_offsets_with_changes(settings, events) -> dict:
    """Per input partition: the offset of its first record that sends a segment change."""
    expected = Expected(settings)
    first: dict = {}
    for ev in events:
        p = partition_for(ev.key.encode(), settings.partitions)
        offset = expected._offsets.get((settings.topic_orders, p), -1) + 1  # as the broker assigns them
        before = len(expected.changes)
        expected.feed([ev])
        if len(expected.changes) > before:
            first.setdefault(p, offset)
    return first


@pytest.mark.parametrize("refused", ["changelog", "segment-changes"])
def test_a_refused_record_commits_none_of_its_input_offsets(kafka_bootstrap, broker_kind, unique_topic_prefix,
                                                            tmp_path, refused):
    """The broker refuses every record of one topic (a real MESSAGE_TOO_LARGE): the worker crashes
    without committing the input offsets of the events behind them; restarted on a fresh data dir
    once the topic takes them again, it redelivers them and ends with every state and change."""
    settings = make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state")
    topics.provision(settings)
    topic = state_changelog_topic(settings.app_id) if refused == "changelog" else settings.topic_segment_changes
    events = generated(seed=62, limit=1200)
    expected = Expected(settings).feed(events)
    worker = Worker(settings, tmp_path)
    set_max_message_bytes(settings, topic, 100)  # below any state or change with its batch header
    try:
        worker.start()
        send(settings, events, single_topic=True)
        assert worker.proc.wait(120) == EXIT_UNDELIVERED  # a refused record makes the worker exit
        log = worker.log()
        assert "was not delivered" in log, log[-3000:]
        committed = committed_offsets(settings)
        if refused == "changelog":  # every record writes a state: nothing may be committed
            assert not any(committed.values()), committed
        else:  # nothing past a record whose change was refused
            first = first_offsets_with_changes(settings, events)
            assert all(offset is None or offset <= first[p] for p, offset in committed.items()), (committed, first)

        set_max_message_bytes(settings, topic, KAFKA_DEFAULT_MAX_MESSAGE_BYTES)
        shutil.rmtree(settings.data_dir)  # a fresh node: only the changelog and the committed offsets count
        worker.start()
        after = converge(settings, expected)
        changes = check_changes(settings, expected)
    finally:
        worker.stop()
    assert not after["customers_differing"], after["customers_differing"][:3]
    assert after["orders_lost"] == 0 and after["orders_double_counted"] == 0
    assert changes["changes_lost"] == changes["changes_unexpected"] == changes["changes_different"] == 0, changes
