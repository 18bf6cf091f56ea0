"""Progress of long work with rate and ETA (tqdm): a worker group catching up on its inputs.

After `replay` or `rebuild` the worker does the long part; `clvstream lag --follow` shows
how far it has come, from the group's committed offsets against the inputs' end offsets.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Dict, Optional

from kafka import TopicPartition
from kafka.admin import OffsetSpec
from tqdm import tqdm

from ..kafka.admin import describe_topics
from .clients import admin, client_config
from .offsets import input_topics


def lag(settings) -> Dict[TopicPartition, tuple]:
    """(committed, end) per input partition of the worker group (committed None if never)."""
    topics = input_topics(settings)
    counts = describe_topics(settings.bootstrap, topics, client_config=client_config(settings))
    tps = [TopicPartition(t, p) for t in topics if t in counts for p in range(counts[t])]
    client = admin(settings)
    try:
        ends = client.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
        committed = client.list_group_offsets({settings.app_id: tps}).get(settings.app_id, {})
    finally:
        client.close()
    out = {}
    for tp in tps:
        meta = committed.get(tp)
        out[tp] = (meta.offset if meta is not None and meta.offset >= 0 else None, ends[tp].offset)
    return out


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
