"""`clvstream replay` and `clvstream rebuild`: move the worker group's input offsets, or start over.

Both refuse while the worker group has members: Kafka only accepts offset commits from
outside an empty group, and a running worker would overwrite them with its own commits.

What a rewind does, by design: customer states remember the highest offset applied per
source partition, so rewinding the group of a *live* state replays nothing twice (every
re-read event is recognised as redelivered). Rewinding is for a new application id (a
what-if run from a timestamp) or for skipping ahead; to re-apply history with new logic,
`rebuild` wipes the state first (local store and changelog), like Kafka Streams'
application reset tool.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional

from kafka import TopicPartition
from kafka.admin import OffsetSpec
from kafka.structs import OffsetAndMetadata

from ..kafka.admin import describe_topics, ensure_topics
from ..topics import population_topic_name, rekey_topic_name, source_codes
from .clients import admin, client_config
from .topics import topic_specs


class GroupActive(RuntimeError):
    """The worker group has members: stop every worker first."""


def input_topics(settings) -> List[str]:
    return list(source_codes(settings))


def derived_topics(settings) -> List[str]:
    """Topics a rebuild deletes and recreates: table changelogs, the rekey topic and the population
    figures, all rewritten from the inputs (the redrive topic is an ops action, kept and replayed).
    Population cuts of the previous run would otherwise complete versions before the replay cuts
    them, with figures of the old logic."""
    names = [s.name for s in topic_specs(settings) if s.name.endswith("-changelog")]
    return names + [rekey_topic_name(settings), population_topic_name(settings)]


def parse_timestamp(text: str) -> int:
    """ISO 8601 (a trailing Z allowed; no zone means UTC) -> epoch milliseconds."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def group_members(settings) -> List[str]:
    """The group's members as ``client_id@host`` (worker names, never customer data)."""
    client = admin(settings)
    try:
        group = client.describe_groups([settings.app_id])[settings.app_id]
    finally:
        client.close()
    if group.get("error") and "GroupIdNotFound" in group["error"]:
        return []  # Kafka 4 answers an unknown group so (KIP-1043); older brokers: a "Dead" group, no members
    if group.get("error"):
        raise RuntimeError(f"describe group {settings.app_id}: {group['error']}")
    return [f"{m.get('client_id') or m.get('member_id')}@{(m.get('client_host') or '?').lstrip('/')}"
            for m in group.get("members") or []]


def require_stopped(settings, wait: float = 0.0) -> None:
    """Refuse unless the group is empty, waiting up to ``wait`` seconds for it to empty.

    A worker stopped cleanly leaves at once (streams/kafka/group_leave.py); one that was killed
    stays listed until the broker expires its session (Kafka: the session timeout; tansu 0.6
    never expires it: ``--force`` once every worker is known to be stopped).
    """
    deadline = time.monotonic() + wait
    members = group_members(settings)
    while members and time.monotonic() < deadline:
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        members = group_members(settings)
    if members:
        waited = f" after waiting {wait:.0f} s" if wait > 0 else ""
        raise GroupActive(f"group {settings.app_id} still has {len(members)} member(s){waited} "
                          f"({', '.join(sorted(members)[:5])}): stop every worker first. A worker killed "
                          f"without leaving stays listed until the broker expires its session (never on "
                          f"tansu): --force when every worker is known to be stopped")


@dataclass
class ResetPlan:
    group: str
    moves: Dict[TopicPartition, tuple] = field(default_factory=dict)  # tp -> (current or None, target)

    def lines(self, dry_run: bool) -> List[str]:
        verb = "would move" if dry_run else "moved"
        out = [f"{verb} group {self.group} on {len(self.moves)} partitions:"]
        for tp, (current, target) in sorted(self.moves.items()):
            out.append(f"  {tp.topic}[{tp.partition}] {'-' if current is None else current} -> {target}")
        return out

    @property
    def events(self) -> int:
        """Events the worker will (re)read because of this move (backwards moves only)."""
        return sum(max(0, (cur or 0) - target) for cur, target in self.moves.values())


def plan_reset(settings, *, timestamp_ms: Optional[int] = None, to_earliest: bool = False,
               offset: Optional[int] = None, topics: Optional[List[str]] = None) -> ResetPlan:
    if sum(x is not None and x is not False for x in (timestamp_ms, to_earliest or None, offset)) != 1:
        raise ValueError("choose exactly one of --from-timestamp, --to-earliest, --offset")
    topics = topics or input_topics(settings)
    counts = describe_topics(settings.bootstrap, topics, client_config=client_config(settings))
    tps = [TopicPartition(t, p) for t in topics if t in counts for p in range(counts[t])]
    client = admin(settings)
    try:
        earliest = {tp: o.offset for tp, o in client.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps}).items()}
        latest = {tp: o.offset for tp, o in client.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps}).items()}
        committed = client.list_group_offsets({settings.app_id: tps}).get(settings.app_id, {})
        if timestamp_ms is not None:
            found = client.list_partition_offsets({tp: timestamp_ms for tp in tps})
    finally:
        client.close()
    result = ResetPlan(settings.app_id)
    for tp in tps:
        if to_earliest:
            target = earliest[tp]
        elif offset is not None:
            target = offset
        else:
            hit = found[tp].offset
            target = latest[tp] if hit is None or hit < 0 else hit  # nothing at/after the time: the end
        target = max(earliest[tp], min(target, max(latest[tp], earliest[tp])))
        meta = committed.get(tp)
        current = meta.offset if meta is not None and meta.offset >= 0 else None
        result.moves[tp] = (current, target)
    return result


def apply_reset(settings, reset: ResetPlan, force: bool = False, wait: float = 0.0) -> None:
    if not force:
        require_stopped(settings, wait)
    client = admin(settings)
    try:
        errors = client.alter_group_offsets(settings.app_id, {tp: OffsetAndMetadata(target, "", -1)
                                                              for tp, (_, target) in reset.moves.items()})
    finally:
        client.close()
    failed = {tp: e for tp, e in errors.items() if getattr(e, "__name__", "") != "NoError"}
    if failed:
        raise RuntimeError(f"offset reset refused for {len(failed)} partitions, e.g. {next(iter(failed.items()))}")


def replay(settings, dry_run: bool = False, wait: float = 0.0, force: bool = False, **how) -> ResetPlan:
    """``wait``: seconds to wait for the group to empty (workers still stopping) before refusing."""
    if not force:
        require_stopped(settings, wait)
    reset = plan_reset(settings, **how)
    if not dry_run:
        apply_reset(settings, reset, force)
    return reset


@dataclass
class RebuildPlan:
    data_dir: Path
    data_dir_exists: bool
    recreate: List[str]
    reset: Optional[ResetPlan]  # computed after the topics are recreated

    def lines(self, dry_run: bool) -> List[str]:
        w = "would " if dry_run else ""
        out = [f"{w}wipe local state {self.data_dir}" + ("" if self.data_dir_exists else " (absent)"),
               f"{w}delete and recreate {', '.join(self.recreate)}"]
        if self.reset is not None:
            out += self.reset.lines(dry_run)
        return out


def rebuild(settings, dry_run: bool = False, timeout: float = 30.0, force: bool = False,
            wait: float = 0.0) -> RebuildPlan:
    """Wipe local state and the derived topics, then reset the group to the start of its inputs.

    Run it on each worker host's state directory (or use ephemeral state dirs): a worker that
    keeps an old local store would restore from it instead of replaying. ``wait``: seconds to wait
    for the group to empty; ``force``: skip the check (every worker known to be stopped, the broker
    still lists a killed one).
    """
    if not force:
        require_stopped(settings, wait)
    data_dir = Path(settings.data_dir)
    recreate = derived_topics(settings)
    result = RebuildPlan(data_dir, data_dir.exists(), recreate, None)
    if dry_run:
        result.reset = plan_reset(settings, to_earliest=True)
        return result
    if data_dir.exists():
        shutil.rmtree(data_dir)
    specs = [s for s in topic_specs(settings) if s.name in recreate]
    client = admin(settings)
    try:
        existing = set(client.list_topics())
        doomed = [n for n in recreate if n in existing]
        if doomed:
            client.delete_topics(doomed, timeout_ms=int(timeout * 1000))
        deadline = time.monotonic() + timeout
        while set(doomed) & set(client.list_topics()):  # deletion is asynchronous on Kafka
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics still present after {timeout} s: {doomed}")
            time.sleep(0.2)
    finally:
        client.close()
    ensure_topics(settings.bootstrap, specs, timeout, client_config=client_config(settings))
    result.reset = plan_reset(settings, to_earliest=True)
    apply_reset(settings, result.reset, force)
    return result
