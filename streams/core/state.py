"""Per-customer state and the pure function that applies one event to it.

Design choices (why):
- Integer cents and epoch milliseconds only: sums commute exactly, so the state
  after a set of events does not depend on the order they arrived in.
- Idempotence: ids of events within the allowed lateness of their source's
  watermark are remembered (as 64-bit hashes). An event older than
  ``source watermark - lateness`` is *late* and never applied, so an id that
  has been forgotten can never be applied a second time from that source.
- Watermarks per source (topic-partition), not per customer: a worker reads the
  orders, interactions and customers topics at different speeds (a backlog or a
  replay can put one topic days ahead of another), and that skew must not make
  an in-order event "late". Within one source, producers append roughly in
  event-time order, which is what the lateness bound is about.
- Source positions: the shell may pass (source, offset). A record at or below the
  highest offset already applied from that source is a redelivery (at-least-once
  after a crash or rebalance) and is skipped whatever its event time.
- Rolling windows: one bucket per UTC day with orders or refunds, kept for 365
  days behind the latest such day (orders and refunds share a topic, so a
  bucket that is needed again is never pruned). Windows are exact at day
  granularity and cost O(active days).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .events import DAY_MS, CustomerProfile, Event, Interaction, Order, Refund

WINDOW_DAYS = (30, 90, 365)
RETAIN_DAYS = max(WINDOW_DAYS)

APPLIED, DUPLICATE, LATE, REDELIVERED = "applied", "duplicate", "late", "redelivered"


def id_hash(event_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big", signed=True)


@dataclass(slots=True)
class CustomerState:
    customer_id: str
    watermark_ms: Optional[int] = None  # highest event time applied for this customer (the as-of time)
    first_seen_ms: Optional[int] = None
    # orders
    first_order_ms: Optional[int] = None
    last_order_ms: Optional[int] = None
    order_count: int = 0
    revenue_cents: int = 0  # gross order amounts
    cost_cents: int = 0  # goods + service + logistics
    refund_count: int = 0
    refund_cents: int = 0
    refund_margin_loss_cents: int = 0  # refunds minus restocked cost
    purchase_days: int = 0  # distinct UTC days with an order (BG/NBD purchase occasions)
    first_order_day_cents: int = 0  # revenue of the first purchase day (excluded from repeat spend)
    # day index -> [orders, net revenue cents] for the last RETAIN_DAYS days
    days: Dict[int, List[int]] = field(default_factory=dict)
    # interactions
    contacts: int = 0
    complaints: int = 0
    nps_count: int = 0
    nps_sum: int = 0
    last_nps: Optional[int] = None
    last_nps_key: Optional[Tuple[int, int]] = None  # (event time, id hash): latest answer wins
    ces_count: int = 0
    ces_sum: int = 0
    referrals: int = 0
    reviews: int = 0
    rating_sum: int = 0
    # profile
    signup_ms: Optional[int] = None
    signup_key: Optional[Tuple[int, int]] = None  # first signup wins (first touch)
    acquisition_channel: Optional[str] = None
    acquisition_cost_cents: Optional[int] = None
    attributes_key: Optional[Tuple[int, int]] = None  # latest attributes win, wholesale
    attributes: Dict[str, object] = field(default_factory=dict)
    # idempotence
    recent_ids: Dict[int, Tuple[int, str]] = field(default_factory=dict)  # id hash -> (event time, source)
    source_watermarks: Dict[str, int] = field(default_factory=dict)  # source -> highest event time applied
    positions: Dict[str, int] = field(default_factory=dict)  # source -> highest offset applied
    # segment bookkeeping (written by the engine, not by apply())
    segment: Optional[str] = None
    segment_since_ms: Optional[int] = None
    sequence: int = 0
    scored_by: Optional[str] = None  # which model (parameter version) produced the last CLV figures
    # what the last assessment contributed to the population figures and cannot be derived later
    # (CLV figures, churn, policy metric values): see aggregation.record_assessment
    population_record: Optional[list] = None

    # -- derived figures -------------------------------------------------
    @property
    def net_revenue_cents(self) -> int:
        return self.revenue_cents - self.refund_cents

    @property
    def margin_cents(self) -> int:
        return self.revenue_cents - self.cost_cents - self.refund_margin_loss_cents

    @property
    def tenure_start_ms(self) -> Optional[int]:
        candidates = [t for t in (self.signup_ms, self.first_order_ms, self.first_seen_ms) if t is not None]
        return min(candidates) if candidates else None

    def window(self, days: int, as_of_ms: Optional[int] = None) -> Tuple[int, int]:
        """(orders, net revenue cents) in the ``days`` UTC days up to and including as-of's day."""
        as_of_ms = self.watermark_ms if as_of_ms is None else as_of_ms
        if as_of_ms is None:
            return 0, 0
        lo = as_of_ms // DAY_MS - days + 1
        orders = revenue = 0
        for day, (n, cents) in self.days.items():
            if day >= lo:
                orders += n
                revenue += cents
        return orders, revenue

    def business_view(self) -> dict:
        """Everything except idempotence bookkeeping: what must match a batch recomputation."""
        from dataclasses import asdict

        view = asdict(self)
        for k in ("recent_ids", "source_watermarks", "positions", "segment", "segment_since_ms", "sequence",
                  "scored_by", "population_record"):
            view.pop(k)
        return view


def apply(state: CustomerState, event: Event, lateness_ms: int,
          position: Optional[Tuple[str, int]] = None) -> str:
    """Apply ``event`` to ``state`` in place; return applied/duplicate/late/redelivered.

    ``position`` is (source, offset) of the record; without it all events count
    as one source (pure-core use).
    """
    source = ""
    if position is not None:
        source, offset = position
        if offset <= state.positions.get(source, -1):
            return REDELIVERED
        state.positions[source] = offset
    t = event.event_time_ms
    source_wm = state.source_watermarks.get(source)
    if source_wm is not None and t < source_wm - lateness_ms:
        return LATE
    h = id_hash(event.event_id)
    if h in state.recent_ids:
        return DUPLICATE
    state.recent_ids[h] = (t, source)
    if state.first_seen_ms is None or t < state.first_seen_ms:
        state.first_seen_ms = t
    if isinstance(event, Order):
        _apply_order(state, event)
    elif isinstance(event, Refund):
        _apply_refund(state, event)
    elif isinstance(event, Interaction):
        _apply_interaction(state, event, h)
    elif isinstance(event, CustomerProfile):
        _apply_profile(state, event, h)
    else:  # pragma: no cover - validation only produces the four types
        raise TypeError(f"not an event: {event!r}")
    if state.watermark_ms is None or t > state.watermark_ms:
        state.watermark_ms = t
    if source_wm is None or t > source_wm:
        state.source_watermarks[source] = t
        horizon = t - lateness_ms
        for ts, src in state.recent_ids.values():  # a loop, not any(generator): this runs for most events
            if ts < horizon and src == source:
                state.recent_ids = {k: v for k, v in state.recent_ids.items() if v[1] != source or v[0] >= horizon}
                break
    return APPLIED


def _prune_days(state: CustomerState) -> None:
    oldest_day = max(state.days) - RETAIN_DAYS + 1
    if min(state.days) < oldest_day:
        state.days = {d: v for d, v in state.days.items() if d >= oldest_day}


def _apply_order(state: CustomerState, o: Order) -> None:
    day = o.event_time_ms // DAY_MS
    bucket = state.days.get(day)
    if bucket is None:
        bucket = state.days[day] = [0, 0]
    if bucket[0] == 0:
        state.purchase_days += 1
    bucket[0] += 1
    bucket[1] += o.amount_cents
    first_day = None if state.first_order_ms is None else state.first_order_ms // DAY_MS
    if first_day is None or day < first_day:
        state.first_order_day_cents = o.amount_cents
    elif day == first_day:
        state.first_order_day_cents += o.amount_cents
    state.first_order_ms = o.event_time_ms if state.first_order_ms is None else min(state.first_order_ms, o.event_time_ms)
    state.last_order_ms = o.event_time_ms if state.last_order_ms is None else max(state.last_order_ms, o.event_time_ms)
    state.order_count += 1
    state.revenue_cents += o.amount_cents
    state.cost_cents += o.cost_cents
    _prune_days(state)


def _apply_refund(state: CustomerState, r: Refund) -> None:
    state.refund_count += 1
    state.refund_cents += r.amount_cents
    state.refund_margin_loss_cents += r.amount_cents - r.restocked_cost_cents
    bucket = state.days.setdefault(r.event_time_ms // DAY_MS, [0, 0])
    bucket[1] -= r.amount_cents
    _prune_days(state)


def _apply_interaction(state: CustomerState, i: Interaction, h: int) -> None:
    kind = i.kind
    if kind == "service_contact":
        state.contacts += 1
    elif kind == "complaint":
        state.contacts += 1
        state.complaints += 1
    elif kind == "nps":
        state.nps_count += 1
        state.nps_sum += i.nps_score
        key = (i.event_time_ms, h)
        if state.last_nps_key is None or key > state.last_nps_key:
            state.last_nps_key, state.last_nps = key, i.nps_score
    elif kind == "ces":
        state.ces_count += 1
        state.ces_sum += i.effort_score
    elif kind == "referral":
        state.referrals += 1
    elif kind == "review":
        state.reviews += 1
        state.rating_sum += i.rating


_ATTRIBUTES = ("reference_customer", "strategic_account", "big_name", "ideal_customer_fit")


def _apply_profile(state: CustomerState, c: CustomerProfile, h: int) -> None:
    key = (c.event_time_ms, h)
    if c.kind == "signup" and (state.signup_key is None or key < state.signup_key):
        state.signup_key, state.signup_ms = key, c.event_time_ms
        state.acquisition_channel = c.acquisition_channel
        state.acquisition_cost_cents = c.acquisition_cost_cents
    attrs = {a: getattr(c, a) for a in _ATTRIBUTES if getattr(c, a) is not None}
    if attrs and (state.attributes_key is None or key > state.attributes_key):
        state.attributes_key, state.attributes = key, attrs
