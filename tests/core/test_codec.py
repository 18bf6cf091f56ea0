import msgpack
import pytest

from streams.core import codec
from streams.core.events import DAY_MS
from streams.core.state import CustomerState, apply
from tests.core.builders import nps, order, refund, signup


def test_round_trip_and_compact():
    s = CustomerState("cust-000123")
    for ev in (signup(1, 0, big_name=True, ideal_customer_fit=3), order(1, 1), order(2, 40), refund(1, 41, 10, 2),
               nps(1, 42, 8)):
        apply(s, ev, 7 * DAY_MS, ("o3", 10))
    s.segment, s.sequence, s.segment_since_ms = "High Value / High Loyalty", 2, 123
    blob = codec.encode(s)
    assert codec.decode(blob) == s
    assert len(blob) < 300, len(blob)


def test_unknown_format_version_is_refused():
    row = msgpack.unpackb(codec.encode(CustomerState("c")), strict_map_key=False)
    row[0] = 99  # the first element is the format version
    with pytest.raises(ValueError, match="unknown customer state format 99"):
        codec.decode(msgpack.packb(row))
