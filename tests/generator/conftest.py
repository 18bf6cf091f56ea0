from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from streams.generator import EventGenerator, GeneratedEvent, GenerationReport, GeneratorConfig

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "v1"
EVENT_TYPES = ("order", "refund", "interaction", "customer")


@pytest.fixture(scope="session")
def validators() -> dict[str, Draft202012Validator]:
    out = {}
    for name in EVENT_TYPES:
        schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
        Draft202012Validator.check_schema(schema)
        out[name] = Draft202012Validator(schema)
    return out


@dataclass
class Run:
    config: GeneratorConfig
    events: list[GeneratedEvent]
    report: GenerationReport
    generator: EventGenerator


def make_run(until_days: float | None = None, limit: int | None = None, **kw) -> Run:
    cfg = GeneratorConfig(**kw)
    gen = EventGenerator(cfg)
    until = timedelta(days=until_days) if until_days is not None else None
    events = list(gen.events(until=until, limit=limit))
    return Run(cfg, events, gen.report(), gen)


@pytest.fixture(scope="session")
def run_2000() -> Run:
    """2,000 initial customers plus arrivals over half a year, no noise."""
    return make_run(until_days=180, seed=7, customers=2000, arrival_per_day=5)


@pytest.fixture(scope="session")
def run_5000() -> Run:
    """A closed 5,000-customer cohort over one year, no noise."""
    return make_run(until_days=365, seed=11, customers=5000, arrival_per_day=0)


@pytest.fixture(scope="session")
def run_factory():
    """``run_factory(until_days=..., limit=..., **GeneratorConfig fields) -> Run``"""
    return make_run
