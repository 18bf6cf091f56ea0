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

from dataclasses import fields

import msgpack

from .state import CustomerState

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
_FIELDS = [f.name for f in fields(CustomerState)]
_PAIR_KEYS = {"last_nps_key", "signup_key", "attributes_key"}


def encode(state: CustomerState) -> bytes:
    row = [FORMAT_VERSION]
    for name in _FIELDS:
        value = getattr(state, name)
        if name == "days":
            value = [x for d, (n, c) in sorted(value.items()) for x in (d, n, c)]
        elif name == "recent_ids":
            # sources are few per customer: store each once and refer to it by index
            sources = sorted({src for _, src in value.values()})
            index = {src: i for i, src in enumerate(sources)}
            value = [sources, [x for h, (t, src) in value.items() for x in (h, t, index[src])]]
        row.append(value)
    return msgpack.packb(row, use_bin_type=True)


def decode(blob: bytes) -> CustomerState:
    row = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    if not row or row[0] not in READABLE_VERSIONS:
        raise ValueError(f"unknown customer state format {row[0] if row else None!r}")
    values = dict(zip(_FIELDS, row[1:]))
    days = values["days"]
    values["days"] = {days[i]: [days[i + 1], days[i + 2]] for i in range(0, len(days), 3)}
    sources, ids = values["recent_ids"]
    values["recent_ids"] = {ids[i]: (ids[i + 1], sources[ids[i + 2]]) for i in range(0, len(ids), 3)}
    for k in _PAIR_KEYS:
        if values[k] is not None:
            values[k] = tuple(values[k])
    return CustomerState(**values)
