"""Segment-change documents go out through msgspec's JSON encoder where it writes the stdlib's bytes
(``pipeline._segment_change_json``); everywhere else through the stdlib, so the bytes never change."""
from __future__ import annotations

import enum
import json
import math
import random
from decimal import Decimal

import pytest

from streams.pipeline import _compact_json, _msgspec_writes_as_json_does, _segment_change_json


def stdlib(doc) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


class Level(enum.IntEnum):
    GOLD = 2


class Name(str):
    pass


# each of these makes msgspec write other bytes than the stdlib (or none): the stdlib's bytes go out
FALLBACKS = [
    1e16, -1e16, 1.2345678901234568e+17, 1e22, 1.7976931348623157e308,  # exponent: 1e+16 / 1e16
    1e-05, 9.999999999999999e-05, -2.5e-05, 5e-324,  # 1e-05 / 0.00001
    math.nan, math.inf, -math.inf,  # NaN / Infinity / -Infinity there, null here
    "caf\u00e9", "\u2028", "\x7f", "tab\there", "line\n", "\x00", 'a "quote"', "back\\slash", "\U0001f600",
    (1, 2.5), Level.GOLD, Name("x"), 10 ** 30, -(10 ** 30),
]


@pytest.mark.parametrize("value", FALLBACKS, ids=repr)
def test_values_msgspec_writes_otherwise_get_the_stdlibs_bytes(value):
    doc = {"type": "segment_change", "clv": {"formula": 1.5, "odd": value}, "list": [value]}
    assert _segment_change_json(doc) == stdlib(doc)


def test_documents_the_stdlib_refuses_are_refused_as_it_refuses_them():
    for doc in ({"amount": Decimal("1.5")}, {"when": {1, 2}}, {"b": b"x"}):
        with pytest.raises(TypeError):
            _compact_json(doc)
        with pytest.raises(TypeError):
            _segment_change_json(doc)
    cyclic: dict = {"a": 1}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError, match="Circular reference"):
        _segment_change_json(cyclic)
    with pytest.raises(ValueError):
        _segment_change_json({"huge": 10 ** 5000})  # beyond Python's int-to-str digit limit


def test_non_string_keys_are_the_stdlibs():
    doc = {1: "a", 2.5: "b", None: "c", True: "d"}
    assert not _msgspec_writes_as_json_does(doc)
    assert _segment_change_json(doc) == stdlib(doc)


def _random_float(rnd: random.Random) -> float:
    return rnd.choice([
        0.0, -0.0, rnd.uniform(-1, 1), round(rnd.uniform(-1e6, 1e6), rnd.randint(0, 4)),
        rnd.choice([1, -1]) * 10 ** rnd.uniform(-6, 18), 1e-4, 1e16, math.nextafter(1e16, 0),
        math.nextafter(1e-4, 0), math.nextafter(1e-4, 1), rnd.choice([math.nan, math.inf]),
    ])


def _random_value(rnd: random.Random, depth: int = 0):
    choice = rnd.randrange(9 if depth < 3 else 6)
    if choice == 0:
        return _random_float(rnd)
    if choice == 1:
        return rnd.choice([0, 1, -7, 2 ** 63, -(2 ** 63) - 1, rnd.randint(-10 ** 20, 10 ** 20)])
    if choice == 2:
        return rnd.choice([True, False, None])
    if choice in (3, 4, 5):
        alphabet = "abc XYZ-:/.,0123456789e+" + rnd.choice(["", "\u00e9", "\x7f", "\n", '"', "\\", "\x01"])
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 12)))
    if choice in (6, 7):
        return {f"k{i}": _random_value(rnd, depth + 1) for i in range(rnd.randint(0, 5))}
    return [_random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]


def test_random_documents_give_the_stdlibs_bytes():
    rnd = random.Random(2026)
    fast = 0
    for _ in range(20_000):
        doc = {"type": "segment_change", "value": _random_value(rnd), "more": _random_value(rnd)}
        assert _segment_change_json(doc) == stdlib(doc), doc
        fast += _msgspec_writes_as_json_does(doc)
    assert fast > 5_000  # the msgspec path was taken often enough to mean something


def test_every_float_in_the_shared_range_prints_as_repr():
    """The range the check lets through: msgspec prints the shortest round-trip digits there, as repr."""
    rnd = random.Random(7)
    for _ in range(200_000):
        x = rnd.choice([1, -1]) * 10 ** rnd.uniform(-4, 16)
        if rnd.random() < 0.5:
            x = round(x, rnd.randint(0, 4))
        if x == 0 or 1e-4 <= abs(x) < 1e16:
            assert _segment_change_json({"x": x}) == b'{"x":' + repr(x).encode() + b"}"


def test_the_pipelines_change_documents_take_the_msgspec_path_with_the_same_bytes():
    from streams.generator import EventGenerator, GeneratorConfig
    from streams.kafka.produce import encode_value
    from streams.pipeline import SEGMENT_CHANGES, Pipeline, Record
    from streams.settings import Settings
    from streams.topology import source_codes

    settings = Settings()
    pipeline = Pipeline(settings.engine_config(), settings.edge_rules(), source_codes(settings))
    store, docs = {}, 0
    for i, ev in enumerate(EventGenerator(GeneratorConfig(seed=3, customers=100)).events(limit=1500)):
        result = pipeline.handle(Record(settings.topic_orders, 0, i, ev.key.encode(), encode_value(ev.value),
                                        ev.event_time_ms), store.get)
        store.update(result.writes)
        sent = [value for role, _, value in result.outputs if role == SEGMENT_CHANGES]
        assert sent == [stdlib(change) for change in result.changes]
        for change in result.changes:
            assert _msgspec_writes_as_json_does(change)
            docs += 1
    assert docs > 100
