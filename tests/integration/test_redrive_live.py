"""Dead letters are redriven after a fix and then applied exactly once."""
from dataclasses import replace

import pytest

from streams.generator import EventGenerator, GeneratorConfig
from streams.redrive import redrive
from tests.integration.harness import Worker, changelog_states, json_values, make_settings, read_topic
from tests.integration.test_worker import send

pytestmark = pytest.mark.integration


def test_redrive_after_accepting_a_new_currency(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path):
    settings = make_settings(kafka_bootstrap, broker_kind, unique_topic_prefix, tmp_path / "state")
    events = list(EventGenerator(GeneratorConfig(seed=5, customers=40)).events(limit=400))
    orders = [e for e in events if e.kind == "order"]
    for e in orders[::4]:  # a shop that starts taking yen before the engine accepts them
        e.value["currency"] = "JPY"
    in_yen = len(orders[::4])
    worker = Worker(settings, tmp_path).start()
    try:
        send(settings, events, single_topic=True)
        dead = json_values(read_topic(settings.bootstrap, settings.topic_dead_letter,
                                      lambda rs: len(rs) >= in_yen, what="dead letters"))
        assert {d["reason"] for d in dead} == {"unsupported_currency"} and len(dead) == in_yen
        # Wait for the orders, not only for a state per customer: under load the last checkpoints' states
        # reach the changelog after every customer already has an earlier one.
        states = changelog_states(settings, lambda s: len(s) >= len({e.key for e in events})
                                  and sum(x.order_count for x in s.values()) >= len(orders) - in_yen)
        before = sum(s.order_count for s in states.values())
        assert before == len(orders) - in_yen
        worker.stop()

        fixed = replace(settings, currencies="EUR,JPY")
        assert redrive(fixed, dry_run=True)["resent"] == {"unsupported_currency": in_yen}
        assert redrive(fixed)["resent"] == {"unsupported_currency": in_yen}
        assert redrive(fixed)["resent"] == {}  # each dead letter is redriven once
        worker.settings = fixed
        worker.start()
        after = changelog_states(settings, lambda s: sum(x.order_count for x in s.values()) >= len(orders))
        assert sum(s.order_count for s in after.values()) == len(orders)
    finally:
        worker.stop()
