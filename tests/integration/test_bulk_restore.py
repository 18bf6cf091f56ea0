"""`clvstream restore` fills an empty data dir from the changelog in bulk; a worker started on
it holds every customer's state and goes on with new events as if it had restored itself."""
from __future__ import annotations

import asyncio
import shutil

import pytest

from streams.bulk.restore import OFFSET_KEY, faust_store, restore
from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.read import latest_values
from streams.ops import topics
from streams.topics import state_changelog_topic
from tests.integration.faults import converge
from tests.integration.harness import Expected, Worker, client_config, make_settings
from tests.integration.test_worker import send

pytestmark = pytest.mark.integration


def test_bulk_restore_fills_the_store_a_worker_then_uses(kafka_bootstrap, broker_kind, unique_topic_prefix,
                                                          tmp_path):
    settings = make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state")
    topics.provision(settings)
    events = list(EventGenerator(GeneratorConfig(seed=53, customers=150, share_duplicates=0.02)).events(limit=2000))
    history, later = events[:1600], events[1600:]
    expected = Expected(settings).feed(history)
    worker = Worker(settings, tmp_path).start()
    try:
        send(settings, history, single_topic=True)
        assert not converge(settings, expected)["customers_differing"]
        worker.stop()
        shutil.rmtree(settings.data_dir)
        changelog = latest_values(settings.bootstrap, state_changelog_topic(settings.app_id),
                                  **client_config(settings))

        report = asyncio.run(restore(settings, progress=False))
        assert report.records >= len(changelog)
        store = faust_store(settings)
        restored = {}
        for p in range(settings.partitions):
            db = store.rocksdb_options.open(store.partition_path(p))
            try:
                restored.update((k, v) for k, v in db.items() if k != OFFSET_KEY)
                assert int(db.get(OFFSET_KEY)) == report.offsets[p]  # Faust goes on after it
            finally:
                db.close()
        assert restored == {k: v for k, v in changelog.items() if v is not None}

        worker.start()
        expected.feed(later)
        send(settings, later, single_topic=True)
        after = converge(settings, expected)
    finally:
        worker.stop()
    assert not after["customers_differing"], after["customers_differing"][:3]
    assert after["orders_double_counted"] == 0 and after["orders_lost"] == 0
