from streams.core.events import DAY_MS
from streams.core.state import APPLIED, DUPLICATE, LATE, REDELIVERED, CustomerState, apply
from tests.core.builders import T0, nps, order, refund, signup

LATENESS = 7 * DAY_MS


def fresh():
    return CustomerState("c1")


def test_lifetime_aggregates_and_margin():
    s = fresh()
    for ev in (signup(1, 0, cost=30), order(1, 1, 100, 40), order(2, 10, 50, 20), refund(1, 12, 20, 2, restocked=5)):
        assert apply(s, ev, LATENESS) == APPLIED
    assert (s.order_count, s.revenue_cents, s.cost_cents) == (2, 15000, 6000)
    assert s.net_revenue_cents == 13000
    assert s.margin_cents == 15000 - 6000 - (2000 - 500)
    assert s.first_order_ms == T0 + DAY_MS + 12 * 3_600_000
    assert s.last_order_ms == T0 + 10 * DAY_MS + 12 * 3_600_000
    assert s.tenure_start_ms == T0
    assert s.acquisition_cost_cents == 3000
    assert s.purchase_days == 2 and s.first_order_day_cents == 10000


def test_duplicate_event_id_applies_once():
    s = fresh()
    assert apply(s, order(1, 1), LATENESS) == APPLIED
    assert apply(s, order(1, 1), LATENESS) == DUPLICATE
    assert s.order_count == 1


def test_late_event_is_refused_and_redelivery_skipped_by_offset():
    s = fresh()
    apply(s, order(1, 30), LATENESS, ("o0", 5))
    assert apply(s, order(2, 20), LATENESS, ("o0", 6)) == LATE
    assert apply(s, order(3, 29), LATENESS, ("o0", 7)) == APPLIED  # within lateness
    assert apply(s, order(9, 31), LATENESS, ("o0", 7)) == REDELIVERED
    assert s.order_count == 2


def test_rolling_windows_follow_event_time():
    s = fresh()
    for n, day in enumerate((0, 200, 300, 340, 360)):
        apply(s, order(n, day, amount=10), LATENESS)
    assert s.window(30) == (2, 2000)
    assert s.window(90) == (3, 3000)
    assert s.window(365) == (5, 5000)
    apply(s, order(9, 400, amount=10), LATENESS)  # day 0 leaves the 365-day window
    assert s.window(365) == (5, 5000)
    assert min(s.days) > 0
    assert s.purchase_days == 6


def test_same_day_orders_are_one_purchase_occasion():
    s = fresh()
    apply(s, order(1, 5, 10, hour=9), LATENESS)
    apply(s, order(2, 5, 20, hour=18), LATENESS)
    apply(s, order(3, 4, 5, hour=9), LATENESS)  # late but earlier first day
    assert s.purchase_days == 2
    assert s.first_order_day_cents == 500


def test_last_nps_is_latest_by_event_time_not_arrival():
    s = fresh()
    apply(s, nps(1, 10, 9), LATENESS)
    apply(s, nps(2, 8, 3), LATENESS)
    assert s.last_nps == 9 and s.nps_count == 2 and s.nps_sum == 12


def test_signup_first_touch_and_latest_attributes():
    s = fresh()
    apply(s, signup(2, 3, cost=50, strategic_account=True), LATENESS)
    apply(s, signup(1, 1, cost=20, reference_customer=True), LATENESS)
    assert s.acquisition_cost_cents == 2000
    assert s.attributes == {"strategic_account": True}
