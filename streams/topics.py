"""The engine's topics: their names and the partition counts they are provisioned with.

Shared by the live worker (``topology.py``), the bulk path (``streams/bulk``), the ops
tools (``streams/ops``) and the demo, so it imports neither Faust nor a Kafka client.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Dict, List

from .kafka.admin import TopicSpec
from .settings import Settings

STATE_TABLE = "customer-state"


def state_changelog_topic(app_id: str) -> str:
    """The changelog of the customer-state table (Faust names it ``<app id>-<table>-changelog``)."""
    return f"{app_id}-{STATE_TABLE}-changelog"


def rekey_topic_name(settings: Settings) -> str:
    return f"{settings.app_id}-rekey"


def redrive_topic_name(settings: Settings) -> str:
    """Where redriven dead letters go. A source of its own: its events are old by nature,
    and lateness is measured per source, so they are not "late" against live traffic."""
    return f"{settings.app_id}-redrive"


def population_topic_name(settings: Settings) -> str:
    """Compacted, one partition: the latest figures of each input partition (key = partition number)."""
    return f"{settings.app_id}-population"


def source_codes(settings: Settings) -> Dict[str, str]:
    """Input topic -> the short code stored in customer state for positions and watermarks.

    Setting the three CLV_TOPIC_* inputs to one topic is allowed (one merged,
    strictly ordered input log); each topic is then consumed once.
    """
    codes: Dict[str, str] = {}
    for name, code in ((settings.topic_orders, "o"), (settings.topic_interactions, "i"),
                       (settings.topic_customers, "c"), (rekey_topic_name(settings), "r"),
                       (redrive_topic_name(settings), "d")):
        codes.setdefault(name, code)
    return codes


def topic_specs(settings: Settings) -> List[TopicSpec]:
    """Every topic the engine uses, internal ones included: brokers without CreateTopics
    (the librdkafka mock) and locked-down clusters need them provisioned up front."""
    p = settings.partitions
    specs = [TopicSpec(state_changelog_topic(settings.app_id), p, config={"cleanup.policy": "compact"}),
             TopicSpec(f"{settings.app_id}-__assignor-__leader", 1),
             TopicSpec(settings.topic_orders, p), TopicSpec(settings.topic_interactions, p),
             TopicSpec(settings.topic_customers, p), TopicSpec(rekey_topic_name(settings), p),
             TopicSpec(redrive_topic_name(settings), p),
             TopicSpec(settings.topic_segment_changes, p), TopicSpec(settings.topic_dead_letter, p),
             TopicSpec(settings.topic_model_parameters, 1, config={"cleanup.policy": "compact"}),
             TopicSpec(population_topic_name(settings), 1, config={"cleanup.policy": "compact"})]
    # the three inputs may be one merged topic: list each topic once
    return [replace(spec, replication_factor=settings.replication_factor)
            for spec in {spec.name: spec for spec in specs}.values()]
