"""A stopped aiokafka group consumer (Faust's) leaves its group at once, also on tansu,
which numbers the first generation 0 (streams/kafka/group_leave.py)."""
from __future__ import annotations

import asyncio
import time

import pytest

from streams.kafka.admin import TopicSpec, ensure_topics
from streams.kafka.broker import BROKER_TRAITS
from streams.kafka.group_leave import leave_group_at_generation_zero
from streams.ops.clients import Admin

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def members(bootstrap: str, group: str) -> int:
    admin = Admin(bootstrap_servers=bootstrap)
    try:
        return len(admin.describe_groups([group])[group].get("members") or [])
    finally:
        admin.close()


async def join_then_stop(bootstrap: str, topic: str, group: str, session_timeout_ms: int) -> int:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                session_timeout_ms=session_timeout_ms, heartbeat_interval_ms=500)
    await consumer.start()
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.1)
        return consumer._coordinator.generation
    finally:
        await consumer.stop()


def test_stopped_aiokafka_consumer_leaves_its_group(kafka_bootstrap, broker_kind, unique_topic_prefix):
    """On tansu or a real Kafka (the librdkafka mock drops DescribeGroups connections)."""
    bootstrap, kind = kafka_bootstrap, "kafka" if broker_kind == "external" else broker_kind
    topic, group = unique_topic_prefix + "in", unique_topic_prefix + "group"
    ensure_topics(bootstrap, [TopicSpec(topic, 2)])
    leave_group_at_generation_zero()
    # the broker's session floor: Apache Kafka refuses less than group.min.session.timeout.ms (6 s)
    session_ms = int(BROKER_TRAITS[kind].loaded_session_timeout_s * 1000)
    generation = asyncio.run(join_then_stop(bootstrap, topic, group, session_timeout_ms=session_ms))
    if kind == "tansu":
        assert generation == 0  # the case aiokafka alone does not leave from
    # No waiting for a session timeout: tansu never expires the member (seen > 40 s), only a leave
    # removes it; a second look covers a broker that applies the leave asynchronously.
    left = members(bootstrap, group) == 0 or (time.sleep(1.0) or members(bootstrap, group) == 0)
    assert left, f"{kind} still lists the stopped consumer as a member of {group}"
