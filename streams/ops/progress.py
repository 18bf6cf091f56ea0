"""Progress of long work with rate and ETA (tqdm): a worker group catching up on its inputs.

After `replay` or `rebuild` the worker does the long part; `clvstream lag --follow` shows
how far it has come, from the group's committed offsets against the inputs' end offsets.

On a broker whose end offsets are inexact after multi-record batches (tansu answers "first
offset of the last batch + 1": ``BrokerTraits.exact_end_offsets_with_batching``) the end is
the last offset that can be read: the tail of each partition is fetched from the offset the
broker names minus one (the first offset of its last batch) and the last record read + 1 is
the end. One fetch of one batch per non-empty partition: cheap enough for every refresh.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Dict, Optional

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import OffsetSpec
from tqdm import tqdm

from ..kafka.admin import describe_topics
from ..kafka.broker import BROKER_TRAITS
from .clients import admin, client_config
from .offsets import input_topics


def lag(settings) -> Dict[TopicPartition, tuple]:
    """(committed, end) per input partition of the worker group (committed None if never)."""
    topics = input_topics(settings)
    counts = describe_topics(settings.bootstrap, topics, client_config=client_config(settings))
    tps = [TopicPartition(t, p) for t in topics if t in counts for p in range(counts[t])]
    client = admin(settings)
    try:
        ends = {tp: o.offset for tp, o in client.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps}).items()}
        if not end_offsets_exact(settings):
            starts = {tp: o.offset for tp, o in
                      client.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps}).items()}
        committed = client.list_group_offsets({settings.app_id: tps}).get(settings.app_id, {})
    finally:
        client.close()
    if not end_offsets_exact(settings):
        ends = readable_ends(settings, ends, starts)
    out = {}
    for tp in tps:
        meta = committed.get(tp)
        out[tp] = (meta.offset if meta is not None and meta.offset >= 0 else None, ends[tp])
    return out


def end_offsets_exact(settings) -> bool:
    """False on brokers whose listed end offsets can fall short after multi-record batches."""
    traits = BROKER_TRAITS.get(settings.broker_kind)
    return traits is None or traits.exact_end_offsets_with_batching  # real Kafka ("kafka"): exact


def readable_ends(settings, listed: Dict[TopicPartition, int], starts: Dict[TopicPartition, int],
                  timeout: float = 10.0) -> Dict[TopicPartition, int]:
    """Per partition, the offset after the last record that can be read (never below ``listed``)."""
    tails = {tp: max(starts.get(tp, 0), end - 1) for tp, end in listed.items() if end > starts.get(tp, 0)}
    ends = dict(listed)
    if not tails:
        return ends
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                             request_timeout_ms=int(timeout * 1000) + 1000, **client_config(settings))
    try:
        consumer.assign(list(tails))
        for tp, offset in tails.items():
            consumer.seek(tp, offset)
        pending = set(tails)
        deadline = time.monotonic() + timeout
        # Each partition's last batch comes whole in one fetch; a partition that still grows is read
        # until a fetch brings nothing new (the figure is a snapshot either way).
        while pending and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            for tp, records in batch.items():
                if records:
                    ends[tp] = max(ends[tp], records[-1].offset + 1)
            pending = {tp for tp in pending if consumer.position(tp) < ends[tp] or tp in batch}
    finally:
        consumer.close()
    return ends


def remaining(positions: Dict[TopicPartition, tuple]) -> int:
    return sum(max(0, end - (done or 0)) for done, end in positions.values())


def follow(settings, interval: float = 1.0, timeout: Optional[float] = None, out=sys.stderr,
           read: Callable = lag) -> int:
    """Show a progress bar until the group has no lag (or timeout); return the final lag."""
    first = remaining(read(settings))
    bar = tqdm(total=first, unit="ev", desc=f"{settings.app_id} catch-up", file=out, dynamic_ncols=True)
    started = time.monotonic()
    try:
        while True:
            left = remaining(read(settings))
            bar.total = max(bar.total, bar.n + left)  # inputs may still grow
            bar.update(max(0, bar.total - left - bar.n))
            if left == 0 or (timeout is not None and time.monotonic() - started > timeout):
                return left
            time.sleep(interval)
    finally:
        bar.close()
