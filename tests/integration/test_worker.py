"""The skeleton end to end on a real Kafka-protocol broker over TCP.

Expected results come from running the pure pipeline in-process over the same
records in the order each partition receives them; the worker must produce
exactly that: the same customer states (read back from the table's changelog)
and the same segment-change events.
"""
from __future__ import annotations

import shutil

import pytest

from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.produce import producer, send_events
from tests.integration.harness import (Expected, Worker, changelog_states, client_config, input_topics,
                                       json_values, make_settings, read_topic)

pytestmark = pytest.mark.integration


def generated(customers=150, limit=2500, seed=11, **noise):
    gen = EventGenerator(GeneratorConfig(seed=seed, customers=customers, **noise))
    return list(gen.events(limit=limit))


def expected_outputs(settings, events, single_topic: bool):
    """(states, segment changes, dead-letter reasons) the worker must produce."""
    expected = Expected(settings, single_topic).feed(events)
    return expected.states, expected.changes, expected.dead


def send(settings, events, single_topic: bool):
    prod = producer(settings.bootstrap, **client_config(settings))
    try:
        send_events(prod, input_topics(settings, single_topic), events)
    finally:
        prod.close()


def comparable(change: dict) -> tuple:
    return change["customer_id"], change["sequence"], repr(sorted(change.items()))


def assert_states_equal(actual, expected):
    assert set(actual) == set(expected)
    diffs = [cid for cid in expected if actual[cid].business_view() != expected[cid].business_view()]
    assert not diffs, f"{len(diffs)} customers differ, e.g. {diffs[:3]}"


@pytest.fixture(params=["kafka", "tansu"])
def smoke_broker(request):
    """The suite's broker, plus tansu: this test is the worker round trip of the tansu smoke set."""
    fixture = "any_broker" if request.param == "kafka" else "tansu_smoke"
    return request.getfixturevalue(fixture)


def _worker_env(broker, prefix, tmp_path):
    bootstrap, kind = broker
    settings = make_settings(bootstrap, kind, prefix, tmp_path / "state")
    worker = Worker(settings, tmp_path)
    yield settings, worker
    worker.stop()


@pytest.fixture
def worker_env(any_broker, unique_topic_prefix, tmp_path):
    yield from _worker_env(any_broker, unique_topic_prefix, tmp_path)


@pytest.fixture
def smoke_worker_env(smoke_broker, unique_topic_prefix, tmp_path):
    yield from _worker_env(smoke_broker, unique_topic_prefix, tmp_path)


def test_events_in_state_and_segment_changes_out(smoke_worker_env):
    settings, worker = smoke_worker_env
    events = generated(share_malformed=0.02, share_duplicates=0.02)
    want_states, want_changes, want_dead = expected_outputs(settings, events, single_topic=True)
    assert want_changes and want_dead  # the scenario exercises both paths
    worker.start()
    send(settings, events, single_topic=True)

    changes = json_values(read_topic(settings.bootstrap, settings.topic_segment_changes,
                                     lambda rs: len(rs) >= len(want_changes), what="segment changes", config=client_config(settings)))
    assert sorted(map(comparable, changes)) == sorted(map(comparable, want_changes)), worker.log()[-3000:]
    dead = json_values(read_topic(settings.bootstrap, settings.topic_dead_letter,
                                  lambda rs: len(rs) >= len(want_dead), what="dead letters", config=client_config(settings)))
    assert sorted(d["reason"] for d in dead) == sorted(want_dead)
    malformed = [e for e in events if e.kind == "malformed"]
    assert sorted(d["reason"] for d in dead if d["reason"] != "late") == sorted(e.expected_rejection for e in malformed)
    states = changelog_states(settings, lambda s: len(s) >= len(want_states)
                              and all(s[c].watermark_ms == want_states[c].watermark_ms for c in want_states))
    assert_states_equal(states, want_states)
    assert worker.proc.poll() is None, "the worker must survive bad input"


def test_events_on_their_own_topics_give_the_batch_state(worker_env):
    settings, worker = worker_env
    events = generated(seed=12, share_duplicates=0.05, share_out_of_order=0.05)
    want_states, _, _ = expected_outputs(settings, events, single_topic=False)
    worker.start()
    send(settings, events, single_topic=False)
    states = changelog_states(settings, lambda s: len(s) >= len(want_states)
                              and all(s[c].recent_ids == want_states[c].recent_ids for c in want_states))
    assert_states_equal(states, want_states)


@pytest.mark.parametrize("keep_data_dir", [True, False], ids=["same-data-dir", "data-dir-wiped"])
def test_restart_recovers_the_same_state(worker_env, keep_data_dir):
    settings, worker = worker_env
    events = generated(seed=13, limit=3000)
    first, second = events[:1500], events[1500:]
    worker.start()
    send(settings, first, single_topic=True)
    want_first, _, _ = expected_outputs(settings, first, single_topic=True)
    changelog_states(settings, lambda s: all(c in s and s[c].watermark_ms == w.watermark_ms
                                             for c, w in want_first.items()))
    worker.stop()
    if not keep_data_dir:
        shutil.rmtree(settings.data_dir)
    worker.start()
    send(settings, second, single_topic=True)
    want_states, want_changes, _ = expected_outputs(settings, events, single_topic=True)
    states = changelog_states(settings, lambda s: len(s) >= len(want_states)
                              and all(s[c].recent_ids == want_states[c].recent_ids for c in want_states))
    assert_states_equal(states, want_states)
    changes = json_values(read_topic(settings.bootstrap, settings.topic_segment_changes,
                                     lambda rs: len(rs) >= len(want_changes), what="segment changes", config=client_config(settings)))
    assert sorted(map(comparable, changes)) == sorted(map(comparable, want_changes))


@pytest.mark.parametrize("live_path", ["checkpointed", "per-event"])
def test_live_paths_write_the_per_event_state_bytes_and_changes(any_broker, unique_topic_prefix, tmp_path,
                                                                live_path):
    """Both live paths over the same log: the changelog's latest value of every customer is byte for byte
    the state the pure per-event pipeline computes (positions, review bookkeeping and population record
    included), and the segment changes are the same events."""
    from dataclasses import replace

    from streams.kafka.read import read_to_end
    from streams.topology import STATE_TABLE

    bootstrap, kind = any_broker
    settings = replace(make_settings(bootstrap, kind, unique_topic_prefix, tmp_path / "state"), live_path=live_path,
                       checkpoint_records=200)
    events = generated(seed=14, limit=2500, share_malformed=0.02, share_duplicates=0.03, share_out_of_order=0.03)
    expected = Expected(settings, single_topic=True).feed(events)
    worker = Worker(settings, tmp_path)
    try:
        worker.start()
        send(settings, events, single_topic=True)
        changes = json_values(read_topic(settings.bootstrap, settings.topic_segment_changes,
                                         lambda rs: len(rs) >= len(expected.changes), what="segment changes",
                                         config=client_config(settings)))
        changelog_states(settings, lambda s: set(s) >= {k.decode() for k in expected.store} and all(
            s[k.decode()].positions == expected.states[k.decode()].positions for k in expected.store))
        topic = f"{settings.app_id}-{STATE_TABLE}-changelog"
        latest = {r.key: r.value for r in read_to_end(settings.bootstrap, topic, **client_config(settings))}
    finally:
        worker.stop()
    assert latest == expected.store
    assert sorted(map(comparable, changes)) == sorted(map(comparable, expected.changes))
