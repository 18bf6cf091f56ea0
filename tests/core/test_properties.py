"""Property: any arrival order within the allowed lateness, with duplicates,
gives the same state as a batch recomputation from the deduplicated log."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.events import DAY_MS, CustomerProfile, Interaction, Order, Refund
from streams.core.state import APPLIED, DUPLICATE, CustomerState, apply
from tests.core.builders import T0

LATENESS = 3 * DAY_MS
HOUR = 3_600_000


@st.composite
def event_logs(draw):
    n = draw(st.integers(min_value=1, max_value=40))
    events = []
    for i in range(n):
        t = T0 + draw(st.integers(min_value=0, max_value=800 * 24)) * HOUR
        kind = draw(st.sampled_from(["order", "order", "refund", "nps", "ces", "complaint", "referral", "signup"]))
        eid = f"e{i}"
        if kind == "order":
            events.append(Order(eid, t, "c", f"o{i}", draw(st.integers(0, 500_00)), draw(st.integers(0, 200_00))))
        elif kind == "refund":
            amount = draw(st.integers(1, 100_00))
            events.append(Refund(eid, t, "c", "o0", amount, draw(st.integers(0, amount))))
        elif kind == "nps":
            events.append(Interaction(eid, t, "c", "nps", nps_score=draw(st.integers(0, 10))))
        elif kind == "ces":
            events.append(Interaction(eid, t, "c", "ces", effort_score=draw(st.integers(1, 7))))
        elif kind == "signup":
            events.append(CustomerProfile(eid, t, "c", "signup", "search", draw(st.integers(0, 100_00)),
                                          strategic_account=draw(st.booleans())))
        else:
            events.append(Interaction(eid, t, "c", kind))
    # Arrival = event time plus a delay of at most the allowed lateness: every
    # event then arrives within the lateness of everything seen before it.
    delays = draw(st.lists(st.integers(0, LATENESS), min_size=n, max_size=n))
    arrival = [e for _, _, e in sorted(zip((e.event_time_ms + d for e, d in zip(events, delays)), range(n), events))]
    dup_positions = draw(st.lists(st.integers(0, n - 1), max_size=10))
    for pos in dup_positions:  # an at-least-once producer re-sends soon after
        arrival.insert(min(len(arrival), pos + 1), arrival[pos])
    return events, arrival


def batch(events) -> CustomerState:
    s = CustomerState("c")
    for e in sorted(events, key=lambda e: (e.event_time_ms, e.event_id)):
        assert apply(s, e, LATENESS) == APPLIED
    return s


@settings(max_examples=300, deadline=None)
@given(event_logs())
def test_arrival_order_and_duplicates_do_not_change_state(log):
    events, arrival = log
    streamed = CustomerState("c")
    outcomes = [apply(streamed, e, LATENESS) for e in arrival]
    assert outcomes.count(APPLIED) == len(events)
    assert outcomes.count(DUPLICATE) == len(arrival) - len(events)
    expected = batch(events)
    assert streamed.business_view() == expected.business_view()
    assert streamed.recent_ids == expected.recent_ids
    # and an independent recount of the headline figures
    orders = [e for e in events if isinstance(e, Order)]
    refunds = [e for e in events if isinstance(e, Refund)]
    assert streamed.order_count == len(orders)
    assert streamed.revenue_cents == sum(o.amount_cents for o in orders)
    assert streamed.margin_cents == (sum(o.amount_cents - o.cost_cents for o in orders)
                                     - sum(r.amount_cents - r.restocked_cost_cents for r in refunds))
    assert streamed.purchase_days == len({o.event_time_ms // DAY_MS for o in orders})
    if orders:
        assert streamed.last_order_ms == max(o.event_time_ms for o in orders)
        wm = max(e.event_time_ms for e in events)
        assert streamed.window(365)[0] == sum(1 for o in orders if o.event_time_ms // DAY_MS > wm // DAY_MS - 365)
