"""`clvstream rebuild` then a replay of the same merged input log gives the same state and the
same sequence of segment changes, marked ``"replay": true`` (CLV_REPLAY) so downstream
consumers can tell them from live ones (docs/operations.md: replayed changes are marked,
not suppressed)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import pytest

from streams.generator import EventGenerator, GeneratorConfig
from streams.ops import offsets, topics
from tests.integration.faults import converge, wait_for_changes
from tests.integration.harness import Expected, Worker, json_values, make_settings
from tests.integration.test_worker import send

pytestmark = pytest.mark.integration


def per_partition(records):
    """Segment changes in log order per output partition (all of a customer's are in one)."""
    out = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        out[r.partition].append(json_values([r])[0])
    return out


def test_rebuild_replays_the_same_changes_marked_as_replay(kafka_bootstrap, broker_kind, unique_topic_prefix,
                                                            tmp_path):
    settings = make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state")
    topics.provision(settings)
    events = list(EventGenerator(GeneratorConfig(seed=41, customers=150, share_duplicates=0.02,
                                                 share_malformed=0.01)).events(limit=2500))
    expected = Expected(settings).feed(events)
    worker = Worker(settings, tmp_path).start()
    try:
        send(settings, events, single_topic=True)
        live = wait_for_changes(settings, len(expected.changes))
        assert not converge(settings, expected)["customers_differing"]
        worker.stop()  # a clean stop leaves the group (also at tansu's generation 0): no --force
        assert not offsets.group_members(settings)
        offsets.rebuild(settings)
        worker.settings = replace(settings, replay=True)
        worker.start()
        both = wait_for_changes(settings, 2 * len(live), timeout=90)
        rebuilt = converge(settings, expected)
    finally:
        worker.stop()
    assert not rebuilt["customers_differing"], rebuilt["customers_differing"][:3]
    first, second = defaultdict(list), defaultdict(list)
    for partition, changes in per_partition(both).items():
        for change in changes:
            (second if change["replay"] else first)[partition].append(change)
    assert sum(map(len, first.values())) == sum(map(len, second.values())) == len(expected.changes)
    for partition in first:  # same changes in the same order, only the marker differs
        assert [{**c, "replay": True} for c in first[partition]] == second[partition]
