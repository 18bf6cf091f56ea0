import json

from streams.core.validation import EdgeRules
from streams.pipeline import Record, dead_letter_envelope
from streams.core.validation import Rejection
from streams.redrive import decide

ORDER = json.dumps({"type": "order", "schema_version": 1, "event_id": "e1", "event_time": "2025-01-01T10:00:00Z",
                    "customer_id": "c9", "order_id": "o1", "amount": 10.0, "currency": "JPY"}).encode()
RECORD = Record("clv.orders", 2, 41, b"c9", ORDER, 1735725600500)


def envelope(reason):
    return dead_letter_envelope(RECORD, Rejection(reason, "x"))


def test_fixed_rule_resends_original_to_its_source():
    d = decide(envelope("unsupported_currency"), EdgeRules(accepted_currencies=frozenset({"EUR", "JPY"})), "app-redrive")
    assert d.resend and (d.topic, d.key, d.value, d.timestamp_ms) == ("app-redrive", b"c9", ORDER, 1735725600500)


def test_still_invalid_is_counted_with_its_current_reason():
    d = decide(envelope("unsupported_currency"), EdgeRules(), "app-redrive")
    assert not d.resend and d.reason == "unsupported_currency"


def test_late_needs_opt_in_and_garbage_envelope_is_named():
    assert decide(envelope("late"), EdgeRules(frozenset({"JPY"})), "t").reason == "late"
    assert decide(envelope("late"), EdgeRules(frozenset({"JPY"})), "t", include_late=True).resend
    assert decide(b"nonsense", EdgeRules(), "t").reason == "unreadable_envelope"
