"""Compact, versioned binary encoding of ``CustomerState`` (the RocksDB table value).

msgpack of a positional list: no field names on disk and variable-length
integers, so a typical customer costs a few hundred bytes. The first element is
the format version; a reader refuses versions it does not know rather than
guessing (a rolling upgrade must deploy readers before writers).

Versions: 1 = the fields up to ``scored_by``; 2 adds ``population_record`` at the
end. Fields are positional and only ever appended, so an older row decodes with
the newer fields at their defaults.
"""
from __future__ import annotations

import operator
from dataclasses import fields

import msgpack
import msgspec

from .state import CustomerState

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
_FIELDS = [f.name for f in fields(CustomerState)]
_PAIR_KEYS = {"last_nps_key", "signup_key", "attributes_key"}
# Every field in one C call, and the positions of those stored in another shape than in memory:
# the row is built and read by position instead of by name (the same rows, at half the cost).
_VALUES = operator.attrgetter(*_FIELDS)
_DAYS, _RECENT_IDS = _FIELDS.index("days"), _FIELDS.index("recent_ids")
_PAIRS = tuple(i for i, name in enumerate(_FIELDS) if name in _PAIR_KEYS)
_COUNT = len(_FIELDS)
# msgspec's MessagePack encoder writes a row of these types (int, str, bool, None, list, tuple, dict)
# in the same smallest forms as msgpack.packb(use_bin_type=True), about three times cheaper
# (tests/core/test_codec.py compares the bytes over generated and arbitrary states).
_pack = msgspec.msgpack.Encoder().encode


def encode(state: CustomerState) -> bytes:
    row = [FORMAT_VERSION, *_VALUES(state)]
    days = []
    for day, bucket in sorted(state.days.items()):
        days.append(day)
        days.extend(bucket)  # [orders, net revenue cents]
    row[_DAYS + 1] = days
    # sources are few per customer: store each once and refer to it by index
    ids = state.recent_ids
    sources = sorted({src for _, src in ids.values()})
    if len(sources) == 1:  # the common case: every index is 0
        flat = []
        for h, (t, _) in ids.items():
            flat += (h, t, 0)
    else:
        index = {src: i for i, src in enumerate(sources)}
        flat = [x for h, (t, src) in ids.items() for x in (h, t, index[src])]
    row[_RECENT_IDS + 1] = [sources, flat]
    return _pack(row)


def decode(blob: bytes) -> CustomerState:
    row = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    if not row or row[0] not in READABLE_VERSIONS:
        raise ValueError(f"unknown customer state format {row[0] if row else None!r}")
    values = row[1:_COUNT + 1]  # an older format's row is shorter: its missing fields take their defaults
    days = values[_DAYS]
    values[_DAYS] = {days[i]: [days[i + 1], days[i + 2]] for i in range(0, len(days), 3)}
    sources, ids = values[_RECENT_IDS]
    values[_RECENT_IDS] = {ids[i]: (ids[i + 1], sources[ids[i + 2]]) for i in range(0, len(ids), 3)}
    for i in _PAIRS:
        if values[i] is not None:
            values[i] = tuple(values[i])
    return CustomerState(*values)
