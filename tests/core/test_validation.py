import json

import pytest

from streams.core.events import Order, Refund
from streams.core.validation import EdgeRules, Rejection, decode, format_time_ms, parse_time_ms, to_cents

GOOD = {"type": "order", "schema_version": 1, "event_id": "e1", "event_time": "2025-03-01T10:00:00Z",
        "customer_id": "c1", "order_id": "o1", "amount": 19.99, "currency": "EUR",
        "cost_of_goods": 8.5, "logistics_cost": 3.25, "service_cost": 0.25, "channel": "web",
        "items": [{"sku": "A", "quantity": 1, "unit_price": 19.99}]}
RECORD_TS = parse_time_ms("2025-03-01T10:00:01Z")


def raw(**changes):
    doc = {**GOOD, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def test_valid_order_becomes_typed_event_in_cents():
    ev = decode(raw(), record_time_ms=RECORD_TS)
    assert ev == Order("e1", parse_time_ms("2025-03-01T10:00:00Z"), "c1", "o1", 1999, 850 + 325 + 25, "web")


def test_refund_parses_restocked_cost():
    doc = {"type": "refund", "schema_version": 1, "event_id": "r1", "event_time": "2025-03-02T10:00:00+01:00",
           "customer_id": "c1", "order_id": "o1", "amount": 5.0, "currency": "EUR", "restocked_cost": 2.0}
    ev = decode(json.dumps(doc).encode())
    assert ev == Refund("r1", parse_time_ms("2025-03-02T09:00:00Z"), "c1", "o1", 500, 200)


@pytest.mark.parametrize("payload,reason", [
    (b"{not json", "malformed_json"),
    (b"\xff\xfe\x00", "malformed_json"),
    (raw(event_id="@@").replace(b"@@", b"evt-\xed\xa0\x80-x"), "malformed_json"),  # UTF-8-encoded surrogate
    (raw(event_id="@@").replace(b"@@", b"evt-\\ud800-x"), "malformed_json"),  # escaped lone surrogate
    (b"[1, 2]", "schema_invalid"),
    (raw(type="coupon"), "unknown_type"),
    (raw(schema_version=2), "unsupported_schema_version"),
    (raw(amount="19.99"), "schema_invalid"),
    (raw(amount=-1), "invalid_value"),
    (raw(amount=10_000_001), "invalid_value"),
    (raw(customer_id=...), "schema_invalid"),
    (raw(surprise=1), "schema_invalid"),
    (raw(event_time="yesterday"), "schema_invalid"),
    (raw(currency="JPY"), "unsupported_currency"),
    (raw(amount=1.001), "invalid_value"),
    (raw(event_time="2999-01-01T00:00:00Z"), "event_time_out_of_range"),
    (raw(event_time="1970-01-02T00:00:00Z"), "event_time_out_of_range"),
    (b"{" + b" " * 70_000 + b"}", "too_large"),
    (b"[" * 30_000 + b"]" * 30_000, "malformed_json"),  # deeper than the parser's recursion limit
    (b'{"type":"order","items":' + b"[" * 20_000 + b"]" * 20_000 + b"}", "malformed_json"),
    (raw(amount=...)[:-1] + b',"amount":1e999}', "invalid_value"),  # json reads 1e999 as infinity
    (raw(service_cost=...)[:-1] + b',"service_cost":1e999}', "invalid_value"),
    (None, "malformed_json"),
])
def test_bad_input_is_rejected_with_its_reason(payload, reason):
    result = decode(payload, EdgeRules(), record_time_ms=RECORD_TS)
    assert isinstance(result, Rejection), result
    assert result.reason == reason
    assert result.error


REFUND = {"type": "refund", "schema_version": 1, "event_id": "r1", "event_time": "2025-03-01T09:00:00Z",
          "customer_id": "c1", "order_id": "o1", "amount": 5.0, "currency": "EUR", "restocked_cost": 2.0}
CUSTOMER = {"type": "customer", "schema_version": 1, "event_id": "p1", "event_time": "2025-03-01T09:00:00Z",
            "customer_id": "c1", "kind": "signup", "acquisition_cost": 25.0}


@pytest.mark.parametrize("literal", [float("nan"), float("inf"), float("-inf")], ids=["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("doc,field", [(GOOD, "amount"), (GOOD, "cost_of_goods"), (GOOD, "service_cost"),
                                       (GOOD, "logistics_cost"), (REFUND, "amount"), (REFUND, "restocked_cost"),
                                       (CUSTOMER, "acquisition_cost"), (GOOD, "channel")])
def test_nan_and_infinity_are_not_json(doc, field, literal):
    """Python's json.dumps writes them and json.loads reads them back, but they are not JSON,
    and NaN passes every minimum/maximum (a hypothesis run found a NaN restocked_cost that
    made decode raise instead of answering)."""
    payload = json.dumps({**doc, field: literal}).encode()
    assert (b"NaN" in payload) or (b"Infinity" in payload)
    assert decode(json.dumps(doc).encode(), record_time_ms=RECORD_TS).__class__ is not Rejection  # only the literal
    result = decode(payload, EdgeRules(), record_time_ms=RECORD_TS)
    assert isinstance(result, Rejection) and result.reason == "malformed_json", result
    assert "RFC 8259" in result.error


def test_to_cents_answers_none_for_non_finite_and_overflowing_amounts():
    assert to_cents(12.34) == 1234 and to_cents(0.1 + 0.2) == 30
    assert to_cents(12.345) is None
    for amount in (float("nan"), float("inf"), float("-inf"), 1e308):
        assert to_cents(amount) is None


def test_interaction_requires_score_for_its_kind():
    doc = {"type": "interaction", "schema_version": 1, "event_id": "i1", "event_time": "2025-03-01T10:00:00Z",
           "customer_id": "c1", "kind": "nps"}
    assert decode(json.dumps(doc).encode()).reason == "schema_invalid"
    doc["nps_score"] = 9
    assert decode(json.dumps(doc).encode()).nps_score == 9


def test_time_round_trip():
    assert format_time_ms(parse_time_ms("2025-03-01T10:00:00.123Z")) == "2025-03-01T10:00:00.123Z"


def test_escaped_surrogate_pair_is_valid_text():
    ev = decode(raw(event_id="@@").replace(b"@@", b"evt-\\ud83d\\ude00"), EdgeRules(), record_time_ms=RECORD_TS)
    assert not isinstance(ev, Rejection) and ev.event_id == "evt-\U0001F600"
def test_surrogates_are_not_text():
    """An encoded surrogate (invalid UTF-8 that json.loads(bytes) lets through) or a lone escaped
    surrogate would crash hashing the event id later: both are malformed JSON at the edge."""
    import json as _json

    from streams.core.validation import Rejection, decode

    base = b'{"type":"order","schema_version":1,"event_id":"evt-@-x"}'
    for bad in (b"\xed\xa0\x80", b"\\ud800"):
        out = decode(base.replace(b"@", bad))
        assert isinstance(out, Rejection) and out.reason == "malformed_json"
    pair = decode(base.replace(b"@", b"\\ud83d\\ude00"))  # a valid pair is fine at this step
    assert not (isinstance(pair, Rejection) and pair.reason == "malformed_json")
    assert _json.loads(b'"\\ud83d\\ude00"') == "\U0001F600"


def test_format_time_ms_gives_the_text_of_the_float_timestamp_path():
    """The integer path must write what datetime.fromtimestamp(ms / 1000) wrote, to the byte."""
    import random
    from datetime import datetime, timezone

    from streams.core.validation import format_time_ms

    def reference(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds") \
            .replace("+00:00", "Z")

    rng = random.Random(3)
    limit = 2 ** 32 * 1000
    samples = [0, 1, 999, 1000, 946_684_800_000, 1_735_689_600_123, limit - 1, limit, limit + 1,
               253_402_300_799_999]  # 9999-12-31T23:59:59.999Z
    samples += [rng.randrange(0, limit) for _ in range(50_000)]
    samples += [rng.randrange(limit, 253_402_300_800_000) for _ in range(2_000)]
    for ms in samples:
        assert format_time_ms(ms) == reference(ms), ms
