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


# -- the positional codec against the by-name one it replaced (same bytes, same states) -----------
_FIELDS = [f.name for f in __import__("dataclasses").fields(CustomerState)]


def _reference_encode(state: CustomerState) -> bytes:
    row = [codec.FORMAT_VERSION]
    for name in _FIELDS:
        value = getattr(state, name)
        if name == "days":
            value = [x for d, (n, c) in sorted(value.items()) for x in (d, n, c)]
        elif name == "recent_ids":
            sources = sorted({src for _, src in value.values()})
            index = {src: i for i, src in enumerate(sources)}
            value = [sources, [x for h, (t, src) in value.items() for x in (h, t, index[src])]]
        row.append(value)
    return msgpack.packb(row, use_bin_type=True)


def _reference_decode(blob: bytes) -> CustomerState:
    row = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    values = dict(zip(_FIELDS, row[1:]))
    days = values["days"]
    values["days"] = {days[i]: [days[i + 1], days[i + 2]] for i in range(0, len(days), 3)}
    sources, ids = values["recent_ids"]
    values["recent_ids"] = {ids[i]: (ids[i + 1], sources[ids[i + 2]]) for i in range(0, len(ids), 3)}
    for k in ("last_nps_key", "signup_key", "attributes_key"):
        if values[k] is not None:
            values[k] = tuple(values[k])
    return CustomerState(**values)


def _generated_states():
    from streams.generator import EventGenerator, GeneratorConfig
    from streams.kafka.produce import encode_value
    from streams.pipeline import Pipeline, Record
    from streams.settings import Settings
    from streams.topology import source_codes

    settings = Settings()
    pipeline = Pipeline(settings.engine_config(), settings.edge_rules(), source_codes(settings))
    store = {}
    config = GeneratorConfig(seed=5, customers=150, share_duplicates=0.05, share_out_of_order=0.05)
    for i, ev in enumerate(EventGenerator(config).events(limit=2500)):
        topic = (settings.topic_orders, settings.topic_interactions, settings.topic_customers)[i % 3]
        record = Record(topic, i % 4, i, ev.key.encode(), encode_value(ev.value), ev.event_time_ms)
        store.update(pipeline.handle(record, store.get).writes)
    return [_reference_decode(blob) for blob in store.values()]


def test_the_positional_codec_writes_and_reads_what_the_by_name_codec_did():
    states = _generated_states()
    assert any(len({src for _, src in s.recent_ids.values()}) > 1 for s in states)  # several sources
    for state in states:
        blob = codec.encode(state)
        assert blob == _reference_encode(state)
        assert codec.decode(blob) == _reference_decode(blob) == state


def test_a_format_1_state_decodes_as_it_did():
    """States written before population records (format 1: no last field) still sit in changelogs."""
    for state in _generated_states():
        row = msgpack.unpackb(_reference_encode(state), raw=False, strict_map_key=False)
        old = msgpack.packb([1] + row[1:-1], use_bin_type=True)
        decoded = codec.decode(old)
        assert decoded == _reference_decode(old)
        assert decoded.population_record is None and decoded.customer_id == state.customer_id


# -- msgspec's encoder against msgpack.packb (the same bytes for any state) -----------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# every integer width msgpack has (fixint, 8/16/32/64 bits, signed and unsigned), at its edges too
_ints = st.one_of(st.integers(-2**63, 2**64 - 1), st.sampled_from(
    [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1,
     -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]))
_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)  # str8/16 lengths too
_maybe_int = st.one_of(st.none(), _ints)


@st.composite
def arbitrary_states(draw):
    sources = draw(st.lists(_texts, min_size=1, max_size=4, unique=True))
    state = CustomerState(
        draw(_texts), watermark_ms=draw(_maybe_int), first_seen_ms=draw(_maybe_int),
        order_count=draw(_ints), revenue_cents=draw(_ints), cost_cents=draw(_ints),
        days={draw(_ints): [draw(_ints), draw(_ints)] for _ in range(draw(st.integers(0, 20)))},
        last_nps=draw(st.one_of(st.none(), st.integers(0, 10))),
        last_nps_key=draw(st.one_of(st.none(), st.tuples(_ints, _ints))),
        acquisition_channel=draw(st.one_of(st.none(), _texts)),
        attributes=draw(st.dictionaries(_texts, st.one_of(st.booleans(), _ints), max_size=4)),
        recent_ids={draw(_ints): (draw(_ints), draw(st.sampled_from(sources)))
                    for _ in range(draw(st.integers(0, 20)))},
        source_watermarks=draw(st.dictionaries(_texts, _ints, max_size=20)),
        positions=draw(st.dictionaries(_texts, _ints, max_size=20)),
        segment=draw(st.one_of(st.none(), _texts)), sequence=draw(_ints),
        population_record=draw(st.one_of(st.none(), st.lists(_maybe_int, min_size=4, max_size=4),
                                         st.tuples(_ints, _ints, _maybe_int, _maybe_int,
                                                   st.dictionaries(_texts, _ints, max_size=5)).map(list))))
    return state


@settings(max_examples=1000, deadline=None)
@given(arbitrary_states())
def test_the_encoder_writes_the_bytes_msgpack_packb_wrote(state):
    blob = codec.encode(state)
    assert blob == _reference_encode(state)
    assert codec.decode(blob) == _reference_decode(blob)
