"""`clvstream workers --processes 2`: two worker processes of one machine share the partitions
and together compute what one worker would."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from streams.generator import EventGenerator, GeneratorConfig
from streams.ops import offsets, topics
from streams.processes import process_settings
from tests.integration.faults import converge
from tests.integration.harness import Expected, make_settings, stable_assignment
from tests.integration.test_worker import send

pytestmark = pytest.mark.integration


class _Child:
    """What stable_assignment needs of a worker; restarting one child alone is not possible here."""

    def __init__(self, settings):
        self.settings = settings

    def stop(self):
        pass

    def start(self):
        pass


def test_two_processes_share_the_partitions_and_agree_with_the_pipeline(kafka_bootstrap, broker_kind,
                                                                         unique_topic_prefix, tmp_path):
    settings = make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state")
    topics.provision(settings)
    events = list(EventGenerator(GeneratorConfig(seed=47, customers=120, share_duplicates=0.02)).events(limit=1500))
    expected = Expected(settings).feed(events)
    env = {**os.environ, **settings.with_env(), "CLV_LOG_LEVEL": "warn"}
    proc = subprocess.Popen([sys.executable, "-m", "streams.app", "workers", "--processes", "2",
                             "--log-dir", str(tmp_path)], env=env, start_new_session=True)
    try:
        children = [_Child(settings=process_settings(settings, i)) for i in range(2)]
        owners = stable_assignment(children, settings.partitions)
        assert {w.settings.web_port for w in owners.values()} == {settings.web_port, settings.web_port + 1}
        send(settings, events, single_topic=True)
        result = converge(settings, expected)
        assert not result["customers_differing"], result["customers_differing"][:3]
        assert sorted(os.listdir(settings.data_dir)) == ["p0", "p1"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0
    assert not offsets.group_members(settings)  # both left the group on the way out
