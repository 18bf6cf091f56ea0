"""Topic provisioning on every available broker."""

from __future__ import annotations

import os

import pytest
from kafka import KafkaProducer

from streams.kafka.admin import TopicSpec, describe_topics, ensure_topics
from streams.kafka.broker import BROKER_TRAITS, kafka_python_config_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

KINDS = ["tansu", "rdkafka-mock"] + (["external"] if os.environ.get("KAFKA_BOOTSTRAP") else [])


@pytest.fixture(params=KINDS)
def broker(request):
    """(kind, bootstrap) for each broker the suite can reach."""
    if request.param == "external":
        return "external", request.getfixturevalue("kafka_bootstrap")
    fixture = {"tansu": "tansu_broker", "rdkafka-mock": "rdkafka_mock_broker"}[request.param]
    return request.param, request.getfixturevalue(fixture).bootstrap


def test_ensure_topics_creates_with_partition_counts_and_is_idempotent(broker, unique_topic_prefix):
    kind, bootstrap = broker
    p = unique_topic_prefix
    specs = [TopicSpec(p + "one", 1), TopicSpec(p + "three", 3),
             TopicSpec(p + "eight", 8, config={"cleanup.policy": "compact"})]
    want = {s.name: s.partitions for s in specs}

    report = ensure_topics(bootstrap, specs, timeout=20)
    assert sorted(report.created) == sorted(want) and report.existing == ()
    assert dict(report.partitions) == want
    assert describe_topics(bootstrap, list(want) + [p + "missing"]) == want

    again = ensure_topics(bootstrap, specs + [TopicSpec(p + "new", 2)], timeout=20)
    assert again.created == (p + "new",)
    assert sorted(again.existing) == sorted(want)
    # describing a missing topic must not auto-create it
    assert describe_topics(bootstrap, [p + "missing"]) == {}
    assert describe_topics(bootstrap, [p + "missing"]) == {}


def test_ensure_topics_rejects_a_different_partition_count(broker, unique_topic_prefix):
    kind, bootstrap = broker
    name = unique_topic_prefix + "t"
    ensure_topics(bootstrap, [TopicSpec(name, 2)])
    with pytest.raises(ValueError, match="partition counts"):
        ensure_topics(bootstrap, [TopicSpec(name, 5)])


@pytest.mark.parametrize("kind", ["tansu", "rdkafka-mock"])
def test_producing_to_an_unknown_topic_auto_creates_it(request, kind, unique_topic_prefix):
    """The gap ensure_topics exists for: producers auto-create unknown topics."""
    bootstrap = request.getfixturevalue({"tansu": "tansu_broker",
                                         "rdkafka-mock": "rdkafka_mock_broker"}[kind]).bootstrap
    name = unique_topic_prefix + "implicit"
    producer = KafkaProducer(bootstrap_servers=bootstrap, **kafka_python_config_for(kind))
    try:
        producer.send(name, b"x").get(timeout=10)
    finally:
        producer.close(5)
    assert describe_topics(bootstrap, [name]) == {name: BROKER_TRAITS[kind].auto_create_partitions}


def test_ensure_topics_with_no_specs_is_a_no_op(kafka_bootstrap):
    report = ensure_topics(kafka_bootstrap, [])
    assert report.created == () and report.existing == ()
