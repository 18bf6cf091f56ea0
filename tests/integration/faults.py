"""Shared pieces of the fault tests: traffic in the background, convergence, dedup, figures."""
from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from typing import Dict, List

from streams.kafka.produce import producer, send_events
from tests.integration.harness import (Expected, changelog_states, client_config, input_topics, json_values,
                                       read_topic)

CUSTOMER_ID = re.compile(rb"cust-\d{6}")


class Traffic:
    """Send events on one merged input topic from a thread at a steady rate."""

    def __init__(self, settings, events, rate: float):
        self.settings, self.events, self.rate = settings, events, rate
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True, name="traffic")

    def _run(self):
        prod = producer(self.settings.bootstrap, request_timeout_ms=60000, **client_config(self.settings))
        try:
            send_events(prod, input_topics(self.settings, True), self.events, self.rate,
                        on_sent=lambda ev: setattr(self, "sent", self.sent + 1))
        finally:
            prod.close()

    def start(self) -> "Traffic":
        self.thread.start()
        return self

    def join(self, timeout: float = 120.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "traffic did not finish"


def wait_for_changes(settings, count: int, timeout: float = 60.0) -> List:
    return read_topic(settings.bootstrap, settings.topic_segment_changes, lambda rs: len(rs) >= count,
                      timeout=timeout, what="segment changes", config=client_config(settings))


def read_available(settings, until, timeout: float) -> List:
    """Segment changes from the start until ``until(records)`` or the timeout; never raises, so a
    failing test still reports its figures."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False,
                             **client_config(settings))
    topic = settings.topic_segment_changes
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    records: List = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(records):
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def comparable(change: dict) -> str:
    return json.dumps(change, sort_keys=True)


def dedup(changes: List[dict]):
    """Keep the first change per (customer_id, sequence): what a downstream consumer does.
    Returns (kept, duplicates); a duplicate must be the same event, byte for byte in content."""
    first: Dict[tuple, dict] = {}
    duplicates = 0
    for c in changes:
        key = (c["customer_id"], c["sequence"])
        if key in first:
            assert comparable(first[key]) == comparable(c), \
                f"two different changes share {key}:\n{comparable(first[key])}\n{comparable(c)}"
            duplicates += 1
        else:
            first[key] = c
    return list(first.values()), duplicates


def state_view(state) -> dict:
    return {**state.business_view(), "segment": state.segment, "sequence": state.sequence}


def converge(settings, expected: Expected, timeout: float = 90.0) -> dict:
    """Wait until the changelog holds the expected customers with their watermarks, then compare.

    Returns the figures the issue asks for: lost and double-counted orders (by customer totals)."""
    want = expected.states
    try:
        states = changelog_states(settings, lambda s: set(s) >= set(want) and all(
            state_view(s[c]) == state_view(w) for c, w in want.items()), timeout=timeout)
    except AssertionError:
        states = changelog_states(settings, lambda s: True)
    lost = sum(max(0, w.order_count - (states[c].order_count if c in states else 0)) for c, w in want.items())
    double = sum(max(0, states[c].order_count - w.order_count) for c, w in want.items() if c in states)
    differing = [c for c, w in want.items() if c not in states or state_view(states[c]) != state_view(w)]
    return {"states": states, "orders_lost": lost, "orders_double_counted": double, "customers_differing": differing}


def check_changes(settings, expected: Expected, timeout: float = 60.0) -> dict:
    """Every expected segment change present after dedup by (customer_id, sequence), nothing else."""
    want = {(c["customer_id"], c["sequence"]): c for c in expected.changes}
    def complete(rs):
        return len({(d["customer_id"], d["sequence"]) for d in json_values(rs)}) >= len(want)

    records = read_available(settings, complete, timeout)
    if complete(records):
        time.sleep(1.0)  # let late duplicates land, so the figure counts them
        records = read_available(settings, lambda rs: len(rs) >= len(records), timeout)
    kept, duplicates = dedup(json_values(records))
    got = {(c["customer_id"], c["sequence"]): c for c in kept}
    lost = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    wrong = [k for k in want if k in got and comparable(got[k]) != comparable(want[k])]
    return {"changes_expected": len(want), "changes_read": len(records), "change_duplicates": duplicates,
            "changes_lost": len(lost), "changes_unexpected": len(extra), "changes_different": len(wrong),
            "examples": (lost + extra + wrong)[:3]}


def explain_differences(settings, expected: Expected, states: dict, customers: List[str], limit: int = 3) -> str:
    """For a failure message: per differing customer, the expected order count, every changelog
    record of its key (partition@offset, broker time, orders, sequence, input positions applied) and
    its input records (topic code + partition @ offset), so a reader can tell a missing input, a stale
    state written after a newer one, or a restore from an older state apart."""
    from streams.core import codec
    from streams.kafka.read import read_to_end
    from streams.topology import STATE_TABLE, source_codes

    wanted = {c.encode() for c in customers[:limit]}
    lines: List[str] = []
    history: Dict[bytes, list] = {}
    changelog = f"{settings.app_id}-{STATE_TABLE}-changelog"
    for r in read_to_end(settings.bootstrap, changelog, 60, **client_config(settings)):
        if r.key in wanted and r.value is not None:
            st = codec.decode(r.value)
            history.setdefault(r.key, []).append(f"{r.partition}@{r.offset} t={r.timestamp} orders={st.order_count} "
                                                 f"seq={st.sequence} positions={dict(sorted(st.positions.items()))}")
    inputs: Dict[bytes, list] = {}
    codes = source_codes(settings)
    for topic in sorted(set(codes)):
        for r in read_to_end(settings.bootstrap, topic, 60, **client_config(settings)):
            if r.key in wanted:
                try:
                    doc = json.loads(r.value) if r.value else {}
                except ValueError:
                    doc = {"type": "malformed"}
                inputs.setdefault(r.key, []).append(f"{codes[topic]}{r.partition}@{r.offset}:{doc.get('type')}")
    for customer in customers[:limit]:
        want, have = expected.states.get(customer), states.get(customer)
        lines.append(f"{customer}: expected orders={getattr(want, 'order_count', None)} "
                     f"seq={getattr(want, 'sequence', None)}; changelog latest orders="
                     f"{getattr(have, 'order_count', None)} seq={getattr(have, 'sequence', None)}")
        lines += [f"  changelog {h}" for h in history.get(customer.encode(), [])]
        lines.append(f"  inputs {' '.join(inputs.get(customer.encode(), []))}")
    return "\n".join(lines)


def customer_ids_in(log: bytes) -> Counter:
    return Counter(CUSTOMER_ID.findall(log))


def report(name: str, **figures) -> None:
    """One greppable line per fault (pytest -s shows it; the closing note quotes them)."""
    print(f"\nFAULT-FIGURES {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
