"""`clvstream topics provision | check`: the engine's topics with their partition counts and configs.

Roles decide configs: state-like topics (table changelogs, model parameters, any topic
already declared compacted such as a population view) are compacted, so the latest value
per key is kept forever; event topics get time retention. Inputs are kept forever by
default (CLV_INPUT_RETENTION_DAYS=-1) because `clvstream rebuild` replays them from the
start; outputs (segment changes, dead letters) expire (CLV_OUTPUT_RETENTION_DAYS).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional

from kafka.admin import ConfigResource, ConfigResourceType

from ..topics import topic_specs as engine_topic_specs
from ..kafka.admin import TopicSpec, describe_topics, ensure_topics
from ..kafka.broker import BROKER_TRAITS
from ..topics import rekey_topic_name, redrive_topic_name
from .clients import admin, client_config

DAY_MS = 86_400_000


def _retention_ms(days: float) -> str:
    return "-1" if days < 0 else str(int(days * DAY_MS))


def is_state_like(spec: TopicSpec, settings) -> bool:
    return (spec.name.endswith("-changelog") or spec.name == settings.topic_model_parameters
            or spec.config.get("cleanup.policy") == "compact")


def topic_specs(settings) -> List[TopicSpec]:
    """Every topic of the engine with its wanted config (partition counts from streams.topics.topic_specs)."""
    inputs = {settings.topic_orders, settings.topic_interactions, settings.topic_customers,
              rekey_topic_name(settings), redrive_topic_name(settings)}
    outputs = {settings.topic_segment_changes, settings.topic_dead_letter}
    specs = []
    for spec in engine_topic_specs(settings):
        if is_state_like(spec, settings):
            config = {"cleanup.policy": "compact"}
        elif spec.name in inputs:
            config = {"cleanup.policy": "delete", "retention.ms": _retention_ms(settings.input_retention_days)}
        elif spec.name in outputs:
            config = {"cleanup.policy": "delete", "retention.ms": _retention_ms(settings.output_retention_days)}
        else:
            config = dict(spec.config)
        specs.append(replace(spec, config=config))
    return specs


@dataclass
class Drift:
    topic: str
    what: str  # "missing" | "partitions" | config key
    have: Optional[str]
    want: Optional[str]

    def __str__(self) -> str:
        if self.what == "missing":
            return f"{self.topic}: missing (want {self.want} partitions)"
        return f"{self.topic}: {self.what} is {self.have}, want {self.want}"


@dataclass
class CheckReport:
    drifts: List[Drift] = field(default_factory=list)
    checked: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)  # what could not be checked, and why

    @property
    def ok(self) -> bool:
        return not self.drifts

    def lines(self) -> List[str]:
        out = [f"checked {len(self.checked)} topics: " + ("no drift" if self.ok else f"{len(self.drifts)} drifts")]
        out += [f"  DRIFT {d}" for d in self.drifts]
        out += [f"  note: {n}" for n in self.notes]
        return out


def _configs_supported(settings) -> bool:
    traits = BROKER_TRAITS.get(settings.broker_kind)
    return traits is None or traits.create_topics_api  # the mock has neither CreateTopics nor DescribeConfigs


def topic_configs(settings, names: List[str]) -> Dict[str, Dict[str, str]]:
    client = admin(settings)
    try:
        answer = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names],
                                         config_filter="all")
    finally:
        client.close()
    return {name: {k: v["value"] for k, v in entries.items()} if isinstance(entries, dict) else {}
            for name, entries in answer.get("topic", {}).items()}


def check(settings, specs: Optional[List[TopicSpec]] = None) -> CheckReport:
    specs = specs if specs is not None else topic_specs(settings)
    report = CheckReport(checked=[s.name for s in specs])
    counts = describe_topics(settings.bootstrap, [s.name for s in specs], client_config=client_config(settings))
    for s in specs:
        if s.name not in counts:
            report.drifts.append(Drift(s.name, "missing", None, str(s.partitions)))
        elif counts[s.name] != s.partitions:
            report.drifts.append(Drift(s.name, "partitions", str(counts[s.name]), str(s.partitions)))
    present = [s for s in specs if s.name in counts]
    if not _configs_supported(settings):
        report.notes.append(f"configs not checked: {settings.broker_kind} has no DescribeConfigs API")
        return report
    have = topic_configs(settings, [s.name for s in present]) if present else {}
    for s in present:
        for key, want in sorted(s.config.items()):
            value = have.get(s.name, {}).get(key)
            if value != want:
                report.drifts.append(Drift(s.name, key, value, want))
    return report


@dataclass
class ProvisionPlan:
    create: List[TopicSpec]
    alter: Dict[str, Dict[str, str]]  # topic -> the full wanted config (config drift only)
    unfixable: List[Drift]  # partition counts cannot be changed here
    notes: List[str]

    def lines(self, dry_run: bool) -> List[str]:
        verb = "would " if dry_run else ""
        out = [f"{verb}create {s.name} ({s.partitions} partitions, {dict(s.config)})" for s in self.create]
        out += [f"{verb}set config of {name}: {config}" for name, config in self.alter.items()]
        out += [f"cannot fix {d} (partition counts are not changed by this tool)" for d in self.unfixable]
        out += [f"note: {n}" for n in self.notes]
        return out or ["nothing to do: every topic matches its spec"]


def plan(settings, specs: Optional[List[TopicSpec]] = None) -> ProvisionPlan:
    specs = specs if specs is not None else topic_specs(settings)
    report = check(settings, specs)
    by_name = {s.name: s for s in specs}
    missing = [by_name[d.topic] for d in report.drifts if d.what == "missing"]
    alter = {d.topic: dict(by_name[d.topic].config) for d in report.drifts if d.what not in ("missing", "partitions")}
    unfixable = [d for d in report.drifts if d.what == "partitions"]
    return ProvisionPlan(missing, alter, unfixable, report.notes)


def provision(settings, dry_run: bool = False, specs: Optional[List[TopicSpec]] = None) -> ProvisionPlan:
    """Create missing topics and set drifted configs; idempotent (a second run plans nothing)."""
    specs = specs if specs is not None else topic_specs(settings)
    todo = plan(settings, specs)
    if dry_run:
        return todo
    if todo.create:
        ensure_topics(settings.bootstrap, todo.create, client_config=client_config(settings))
    if todo.alter:
        client = admin(settings)
        try:
            client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, config)
                                  for name, config in todo.alter.items()])
        finally:
            client.close()
        _wait_configs_applied(settings, todo.alter)
    return todo


def _wait_configs_applied(settings, wanted: Dict[str, Dict[str, str]], timeout: float = 30.0) -> None:
    """Until DescribeConfigs shows ``wanted``: a KRaft broker answers AlterConfigs before its metadata
    has the change (measured on Kafka 4.3: the old value for ~0.5 s), so a ``check`` right after a
    ``provision`` would report the drift just fixed."""
    deadline = time.monotonic() + timeout
    while True:
        current = topic_configs(settings, list(wanted))
        if all(current.get(name, {}).get(k) == str(v) for name, config in wanted.items() for k, v in config.items()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic configs not applied after {timeout:.0f} s: wanted {wanted}, broker has "
                               f"{ {n: {k: current.get(n, {}).get(k) for k in c} for n, c in wanted.items()} }")
        time.sleep(0.2)
