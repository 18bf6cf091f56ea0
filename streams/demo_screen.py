"""What the demo prints: a tally of the output topics and the lines made from it.

Pure (no Kafka, no clock): the demo's shell feeds it segment changes, dead letters and
the worker's metrics, and asks for lines. Only the moves that matter get a line (a value
or loyalty tier change, at risk of churn, exit); first assessments are counted in the
status line instead, because every new customer gets one and they would drown the moves.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Mapping, Optional

SHORT = {"High Value / High Loyalty": "HV/HL", "High Value / Low Loyalty": "HV/LL",
         "Low Value / High Loyalty": "LV/HL", "Low Value / Low Loyalty": "LV/LL"}


def short(segment: Optional[str]) -> str:
    return "-" if segment is None else SHORT.get(segment, segment)


def move_kind(previous: str, segment: str, reason: str) -> str:
    """What kind of move this is, in a user's words."""
    if "at risk of churn" in reason:
        return "at risk"
    if "exit" in segment.lower():
        return "exit"
    if previous in SHORT and segment in SHORT:
        (value_was, loyalty_was), (value_now, loyalty_now) = (SHORT[previous].split("/"), SHORT[segment].split("/"))
        kinds = []
        if value_was != value_now:
            kinds.append("value up" if value_now == "HV" else "value down")
        if loyalty_was != loyalty_now:
            kinds.append("loyalty up" if loyalty_now == "HL" else "loyalty down")
        return " + ".join(kinds) or "move"
    return "move"


def decided_clv(change: Mapping) -> str:
    """The CLV figure the decision used (the policy's value metric), not another form."""
    criteria = change.get("criteria") or {}
    if isinstance(criteria.get("value"), (int, float)) and criteria.get("value_metric"):
        text = f"{criteria['value_metric']} CLV {criteria['value']:>9.2f}"
    else:  # policies without a single value figure (criteria scoring, RFM): the formula CLV
        text = f"formula CLV {change['clv']['formula']:>9.2f}"
    p_alive = change["clv"].get("p_alive")
    return text + (f"  P(alive) {p_alive:.2f}" if p_alive is not None else "")


def thousands(n: float) -> str:
    return f"{n:,.0f}"


@dataclass
class WorkerFigures:
    """Read from the worker's /metrics: input records handled and records still to read."""
    processed: float
    lag: float


@dataclass
class DemoTally:
    customers_at_start: int
    sent: int = 0
    customers: set = field(default_factory=set)
    first_assessments: int = 0
    moves: Counter = field(default_factory=Counter)
    dead_letters: Counter = field(default_factory=Counter)
    population: Counter = field(default_factory=Counter)
    event_date: str = ""  # the latest event date seen in a segment change
    first_event_date: str = ""

    def on_sent(self, customer_id: str) -> None:
        self.sent += 1
        self.customers.add(customer_id)

    def on_dead_letter(self, doc: Mapping) -> None:
        self.dead_letters[doc.get("reason", "unknown")] += 1

    def on_change(self, change: Mapping) -> Optional[str]:
        """Count a segment change; return the line to print for a move that matters, else None."""
        previous, segment = change["previous_segment"], change["segment"]
        self.event_date = max(self.event_date, change["event_time"][:10])
        self.first_event_date = min(self.first_event_date or self.event_date, change["event_time"][:10])
        if previous is not None:
            self.population[previous] -= 1
        self.population[segment] += 1
        if previous is None:
            self.first_assessments += 1
            return None
        kind = move_kind(previous, segment, change["reason"])
        self.moves[kind] += 1
        return (f"{change['event_time'][:10]}  {change['customer_id']:>12}  {short(previous):>5} -> "
                f"{short(segment):<5}  {kind:<12}  {decided_clv(change)}  {change['reason']}")

    def history_days(self) -> int:
        """Days of event time the engine has seen so far (from the segment changes)."""
        if not self.first_event_date:
            return 0
        return (date.fromisoformat(self.event_date) - date.fromisoformat(self.first_event_date)).days

    def segments_text(self) -> str:
        counts = [(short(s), n) for s, n in sorted(self.population.items()) if n]
        return "  ".join(f"{s} {n}" for s, n in counts) if counts else "no customer assessed yet"

    def status(self, elapsed_s: float, send_rate: float, worker: Optional[WorkerFigures],
               processed_rate: Optional[float]) -> str:
        """One line, every field filled in whatever the traffic."""
        minutes, seconds = divmod(int(elapsed_s), 60)
        if worker is None:
            read = "worker starting"
        elif worker.processed == 0 and worker.lag == 0:
            read = "worker joining its group"
        else:
            rate = "" if processed_rate is None else f" ({processed_rate:,.0f}/s)"
            read = f"read {thousands(worker.processed)}{rate}, lag {thousands(worker.lag)}"
        dead = sum(self.dead_letters.values())
        return (f"[{minutes:02d}:{seconds:02d}] sent {thousands(self.sent)} ({send_rate:,.0f}/s) | {read} | "
                f"customers {thousands(len(self.customers))}, first assessed {thousands(self.first_assessments)}"
                f" | moves {thousands(sum(self.moves.values()))} | dead letters {dead} | "
                f"at {self.event_date or 'no event yet'} | {self.segments_text()}")

    def summary(self, elapsed_s: float) -> list:
        moves = ", ".join(f"{k} {n}" for k, n in self.moves.most_common()) or "none"
        dead = ", ".join(f"{r} {n}" for r, n in self.dead_letters.most_common()) or "none"
        return [
            f"stopped after {elapsed_s:.0f} s: {self.sent} events sent, "
            f"{self.first_assessments + sum(self.moves.values())} segment changes, "
            f"{sum(self.dead_letters.values())} dead letters",
            f"  customers    {len(self.customers)} ({self.customers_at_start} at the start, the rest arrived "
            f"or were referred later); first assessments {self.first_assessments}",
            f"  moves        {moves}",
            f"  dead letters {dead}",
            f"  segments     {self.segments_text()}",
        ]


def parse_worker_metrics(text: str) -> WorkerFigures:
    """Input records handled and consumer lag from a Prometheus exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    processed = lag = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "clvstream_events_total":
                processed += sample.value
            elif sample.name == "clvstream_consumer_lag_records":
                lag += sample.value
    return WorkerFigures(processed, lag)
