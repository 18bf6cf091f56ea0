"""The bulk rebuild (streams/bulk) against a live worker on the same log.

1. A live worker processes a log; its customer states are read back from the changelog.
2. `rebuild` wipes them and the bulk path recomputes them from the same log, in batches.
3. The changelog then holds byte-identical states, the segment changes are the live ones
   marked as replay, and the group's offsets stand at the end of the inputs.
4. A worker started afterwards restores from the bulk changelog and goes on with new events
   exactly as if it had processed the whole log itself.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import pytest

from streams.bulk.run import rebuild as bulk_rebuild
from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.read import latest_values
from streams.ops import offsets, progress, topics
from streams.topics import state_changelog_topic
from tests.integration.faults import converge, wait_for_changes
from tests.integration.harness import Expected, Worker, client_config, json_values, make_settings
from tests.integration.test_worker import send

pytestmark = pytest.mark.integration


def states_bytes(settings):
    return latest_values(settings.bootstrap, state_changelog_topic(settings.app_id), **client_config(settings))


def test_bulk_rebuild_gives_the_live_workers_state_byte_for_byte(kafka_bootstrap, broker_kind,
                                                                 unique_topic_prefix, tmp_path):
    settings = make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state")
    topics.provision(settings)
    events = list(EventGenerator(GeneratorConfig(seed=43, customers=150, share_duplicates=0.02,
                                                 share_malformed=0.01)).events(limit=3000))
    history, later = events[:2500], events[2500:]
    expected = Expected(settings).feed(history)
    worker = Worker(settings, tmp_path).start()
    try:
        send(settings, history, single_topic=True)
        live_changes = wait_for_changes(settings, len(expected.changes))
        assert not converge(settings, expected)["customers_differing"]
        live = states_bytes(settings)
        worker.stop()
        assert not offsets.group_members(settings)

        offsets.rebuild(settings)
        assert states_bytes(settings) == {}
        report = bulk_rebuild(settings, progress=False)
        assert report.events == len(history)
        assert report.customers == len(live)
        rebuilt = states_bytes(settings)
        assert rebuilt.keys() == live.keys()
        differing = [k for k in live if rebuilt[k] != live[k]]
        assert not differing, f"{len(differing)} customers differ, e.g. {differing[:3]}"
        assert progress.remaining(progress.lag(settings)) == 0  # the group goes on after the rebuilt part

        both = wait_for_changes(settings, 2 * len(live_changes))
        first, second = defaultdict(list), defaultdict(list)
        for r in sorted(both, key=lambda r: (r.partition, r.offset)):
            change = json_values([r])[0]
            (second if change["replay"] else first)[r.partition].append(change)
        assert sum(map(len, second.values())) == len(expected.changes)
        for partition in first:  # the live changes again, in the same order, marked as replay
            assert [{**c, "replay": True} for c in first[partition]] == second[partition]

        worker.settings = replace(settings, replay=False)
        worker.start()  # restores the bulk changelog, reads only what comes next
        expected.feed(later)
        send(settings, later, single_topic=True)
        after = converge(settings, expected)
    finally:
        worker.stop()
    assert not after["customers_differing"], after["customers_differing"][:3]
    assert after["orders_double_counted"] == 0 and after["orders_lost"] == 0
