"""Topic provisioning over the Kafka protocol (kafka-python admin client).

Create topics **before** anything produces to them: tansu and the librdkafka
mock both auto-create an unknown topic with 4 partitions on a producer's
metadata request, and neither supports adding partitions afterwards.  Metadata
look-ups here never auto-create (kafka-python's admin client sends
``allow_auto_topic_creation=False``; both embedded brokers honour it).

The librdkafka mock has no CreateTopics API; for a mock started by this process
(:class:`streams.kafka.broker.EmbeddedBroker`) :func:`ensure_topics` creates the
topics through the launcher's control pipe instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import kafka.errors as Errors
from kafka import KafkaAdminClient

from streams.kafka import broker as _broker


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 1
    config: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class EnsureReport:
    created: tuple[str, ...]
    existing: tuple[str, ...]
    partitions: Mapping[str, int]  # as seen in metadata after the wait


def _admin(bootstrap: str, timeout: float, client_config: Mapping[str, Any] | None) -> KafkaAdminClient:
    config = dict(client_config) if client_config is not None else _client_config_for(bootstrap)
    ms = int(max(1.0, timeout) * 1000)
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=ms,
                            bootstrap_timeout_ms=ms, **config)


def _client_config_for(bootstrap: str) -> dict[str, Any]:
    embedded = _broker.lookup(bootstrap)
    return embedded.kafka_python_config() if embedded is not None else {}


def _partition_counts(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    counts = {}
    for topic in admin.describe_topics(names):
        if topic.get("error_code", 0) == 0 and topic.get("partitions"):
            ready = all(p.get("error_code", 0) == 0 and p.get("leader_id", -1) >= 0
                        for p in topic["partitions"])
            if ready:
                counts[topic["name"]] = len(topic["partitions"])
    return counts


def describe_topics(bootstrap: str, names: Iterable[str], *, timeout: float = 10.0,
                    client_config: Mapping[str, Any] | None = None) -> dict[str, int]:
    """Partition counts of the named topics that exist (missing ones are left out)."""
    names = list(names)
    admin = _admin(bootstrap, timeout, client_config)
    try:
        return _partition_counts(admin, names)
    finally:
        admin.close()


def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], timeout: float = 30.0, *,
                  client_config: Mapping[str, Any] | None = None) -> EnsureReport:
    """Create missing topics, then wait until metadata shows each with its partitions.

    Idempotent: topics that already exist are reported under ``existing``.  An
    existing topic whose partition count differs from its spec raises
    ``ValueError`` (neither embedded broker can add partitions).
    """
    specs = list(specs)
    if not specs:
        return EnsureReport((), (), {})
    deadline = time.monotonic() + timeout
    names = [s.name for s in specs]
    admin = _admin(bootstrap, timeout, client_config)
    try:
        before = _partition_counts(admin, names)
        missing = [s for s in specs if s.name not in before]
        created: list[str] = []
        embedded = _broker.lookup(bootstrap)
        if missing and embedded is not None and not embedded.traits.create_topics_api:
            for s in missing:
                if embedded.create_topic(s.name, s.partitions, s.replication_factor):
                    created.append(s.name)
        elif missing:
            request = {s.name: {"num_partitions": s.partitions,
                                "replication_factor": s.replication_factor,
                                "configs": {k: str(v) for k, v in s.config.items()}}
                       for s in missing}
            response = admin.create_topics(request, timeout_ms=int(timeout * 1000), raise_errors=False)
            for result in response["topics"]:
                error = Errors.for_code(result["error_code"])
                if error is Errors.NoError:
                    created.append(result["name"])
                elif error is not Errors.TopicAlreadyExistsError:
                    raise error(f"creating topic {result['name']!r}: {result.get('error_message')}")

        while True:
            counts = _partition_counts(admin, names)
            if len(counts) == len(names):
                break
            if time.monotonic() >= deadline:
                raise TimeoutError(f"topics not visible after {timeout}s: {sorted(set(names) - set(counts))}")
            time.sleep(0.05)
    finally:
        admin.close()

    wrong = {s.name: (counts[s.name], s.partitions) for s in specs if counts[s.name] != s.partitions}
    if wrong:
        raise ValueError(f"topics exist with other partition counts (have, want): {wrong}")
    existing = tuple(n for n in names if n not in created)
    return EnsureReport(created=tuple(created), existing=existing, partitions=counts)


__all__ = ["EnsureReport", "TopicSpec", "describe_topics", "ensure_topics"]
