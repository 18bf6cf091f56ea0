"""Redrive dead letters after a fix: re-validate each one with the current rules
and send those that now pass to the worker's redrive topic; count the rest.

The redrive topic is an input of its own (co-partitioned, keyed by customer):
redriven events are old, and lateness is measured per source, so they are
applied rather than rejected again as late, while a redriven event sent twice
is still recognised by its id.

The decision is pure (``decide``); ``redrive`` wraps it in a kafka-python loop
with its own consumer group, so every dead letter is considered once per fix
and a second run only sees letters that arrived since.
"""
from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass
from typing import Optional

from .core.validation import EdgeRules, Rejection, decode


@dataclass(frozen=True)
class Decision:
    resend: bool
    reason: str  # the original dead-letter reason, or why it still fails
    topic: Optional[str] = None
    key: Optional[bytes] = None
    value: Optional[bytes] = None
    timestamp_ms: Optional[int] = None


def decide(envelope: bytes, rules: EdgeRules, target_topic: str, include_late: bool = False) -> Decision:
    try:
        doc = json.loads(envelope)
        original = base64.b64decode(doc["original_base64"])
        source = doc["source"]
        reason = doc["reason"]
    except (ValueError, KeyError, TypeError):
        return Decision(False, "unreadable_envelope")
    if reason == "late" and not include_late:
        # Late events were valid: whether to apply them after all is an ops decision.
        return Decision(False, "late")
    event = decode(original, rules, source.get("timestamp_ms"))
    if isinstance(event, Rejection):
        return Decision(False, event.reason)
    return Decision(True, reason, target_topic, event.customer_id.encode(), original, source.get("timestamp_ms"))


def redrive(settings, dry_run: bool = False, include_late: bool = False, timeout: float = 120.0) -> dict:
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

    from .kafka.produce import producer
    from .ops.clients import client_config
    from .topology import redrive_topic_name

    rules, target = settings.edge_rules(), redrive_topic_name(settings)
    config = client_config(settings)  # broker work-arounds and SASL/SSL, like every ops client
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=f"{settings.app_id}-redrive",
                             enable_auto_commit=False, auto_offset_reset="earliest", **config)
    resent, still_failing = Counter(), Counter()
    prod = None if dry_run else producer(settings.bootstrap, **config)
    try:
        parts = consumer.partitions_for_topic(settings.topic_dead_letter) or set()
        tps = [TopicPartition(settings.topic_dead_letter, p) for p in sorted(parts)]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        for tp in tps:
            committed = consumer.committed(tp)
            consumer.seek(tp, committed if committed is not None else 0)
        pending = {tp for tp in tps if consumer.position(tp) < ends[tp]}
        import time

        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    if r.offset >= ends[tp]:
                        continue
                    d = decide(r.value, rules, target, include_late)
                    if d.resend:
                        resent[d.reason] += 1
                        if prod is not None:
                            prod.send(d.topic, key=d.key, value=d.value, timestamp_ms=d.timestamp_ms)
                    else:
                        still_failing[d.reason] += 1
                if consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        if pending:
            raise TimeoutError(f"dead-letter topic not read to the end within {timeout} s")
        if prod is not None:
            prod.flush()  # sent before the offsets move on: a crash re-sends, never loses (ids dedupe)
            consumer.commit({tp: OffsetAndMetadata(ends[tp], "", -1) for tp in tps})
    finally:
        if prod is not None:
            prod.close()
        consumer.close()
    return {"resent": dict(resent), "still_failing": dict(still_failing), "dry_run": dry_run}
