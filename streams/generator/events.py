"""The event loop: a heap of per-customer next-event times on a simulated clock."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, NamedTuple

from .malformed import malformed_payload
from .population import (
    DAY_MS,
    CustomerState,
    CustomerTruth,
    GeneratorConfig,
    parse_time_ms,
    pick_arrival_channel,
)

__all__ = ["EventGenerator", "GeneratedEvent", "GenerationReport", "TOPIC_ROLES"]

TOPIC_ROLES = ("orders", "interactions", "customers")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Customers whose next purchase lies beyond this are simply dropped from the
# heap (keeps event_time four-digit-year formattable).
_MAX_MS = parse_time_ms("9000-01-01T00:00:00Z")
HOUR_MS = 3_600_000
_SEQ_BITS = 40

# heap actions
_ARRIVAL = 0  # a = True: organic Poisson arrival (schedules the next one)
_SIGNUP_REFERRED = 1  # a = reserved customer id, b = referrer id
_ORDER = 2  # a = CustomerState, b = True for the first ("birth") order
_REFUND = 3  # a = CustomerState, b = (order_id, amount_cents, cogs_cents)
_INTERACTION = 4  # a = CustomerState, b = (kind, channel)
_UPDATE = 5  # a = CustomerState

_CATEGORIES = ("apparel", "electronics", "home", "beauty", "sports", "books", "toys", "grocery")
_CAT_PREFIX = tuple(c[:3].upper() for c in _CATEGORIES)
_ORDER_CHANNELS = ("web", "app", "store", "marketplace", "phone", "sales_rep")
_REFUND_REASONS = ("damaged", "not_as_described", "wrong_item", "late_delivery", "changed_mind")
_CONTACT_CHANNELS = ("phone", "email", "email", "chat", "chat", "store")
_COMPLAINT_CHANNELS = ("phone", "email", "chat", "social")


class GeneratedEvent(NamedTuple):
    kind: str  # "order" | "refund" | "interaction" | "customer" | "malformed"
    topic_role: str  # "orders" | "interactions" | "customers"
    key: str  # customer id
    value: dict[str, Any] | bytes  # schema-valid event dict, or raw bytes when malformed
    event_time_ms: int
    duplicate: bool = False  # re-emission of an earlier event (same event_id)
    expected_rejection: str | None = None  # dead-letter reason for malformed records


@dataclass(frozen=True)
class GenerationReport:
    """Totals of the emitted stream (unique events only) and per-customer truth."""

    as_of_ms: int  # simulated clock: time of the last processed event
    emitted: int  # records yielded, duplicates and malformed included
    by_kind: dict[str, int]  # unique valid events per type
    duplicates: int
    malformed: int
    delayed: int
    orders: int
    revenue_cents: int
    refunds: int
    refunded_cents: int
    customers: dict[str, CustomerTruth]


def _cents(c: int) -> float:
    return c / 100


class EventGenerator:
    """Deterministic, lazy generator of shop events.  See the package docstring."""

    def __init__(self, config: GeneratorConfig | None = None) -> None:
        self.config = cfg = config if config is not None else GeneratorConfig()
        self._rng = random.Random(cfg.seed)
        # transport noise has its own RNG and id space, so the set of valid
        # events does not depend on the noise settings
        self._noise_rng = random.Random(f"noise:{cfg.seed}")
        self._start_ms = cfg.start_ms
        self._now = self._start_ms
        # heap of int keys (t << _SEQ_BITS | seq): int compares are twice as
        # fast as tuple compares; the payloads live in a dict by key
        self._heap: list[int] = []
        self._payload: dict[int, tuple] = {}
        self._seq = 0
        self._bseq = 0  # emission-buffer tie breaker (kept apart from _seq)
        self._evt_n = 0
        self._mal_n = 0
        self._cust_n = 0
        self._order_n = 0
        self._customers: dict[str, CustomerState] = {}
        self._day_prefix: dict[int, str] = {}
        self._id_prefix = f"evt-{cfg.seed}-"
        # emission state
        self._ready: list[tuple] = []  # fast path leftovers (after `limit`)
        self._buf: list[tuple] = []  # noisy path: (emit_ms, seq, ev, cust, cents)
        self._emitted = 0
        self._by_kind = {"order": 0, "refund": 0, "interaction": 0, "customer": 0}
        self._dups = 0
        self._malformed = 0
        self._delayed = 0
        self._orders = 0
        self._revenue = 0
        self._refunds = 0
        self._refunded = 0

        rng = self._rng
        start = self._start_ms
        spread = cfg.initial_signup_days * DAY_MS
        for _ in range(cfg.customers):
            self._push(start + int(rng.random() * spread), _ARRIVAL, False, None)
        if cfg.arrival_per_day > 0:
            self._push(start + self._exp_ms(cfg.arrival_per_day), _ARRIVAL, True, None)

    # ------------------------------------------------------------------ API

    def events(
        self,
        until: datetime | str | int | timedelta | None = None,
        limit: int | None = None,
    ) -> Iterator[GeneratedEvent]:
        """Yield events in (mostly) event-time order.

        ``until``: stop before the first event later than this (datetime, ISO
        string, epoch ms, or timedelta from ``config.start``); events held
        back by the out-of-order/duplicate noise are flushed at that point.
        ``limit``: stop after this many records.  Calling again resumes.
        """
        until_ms = parse_time_ms(until, self._start_ms) if until is not None else None
        cfg = self.config
        noisy = bool(cfg.share_duplicates or cfg.share_out_of_order or cfg.share_malformed)
        remaining = limit if limit is not None else -1
        if remaining == 0:
            return
        commit = self._commit
        heap = self._heap
        process = self._process
        out: list[tuple] = []

        if not noisy:
            ready = self._ready
            while ready:
                ev, cust, cents = ready.pop(0)
                commit(ev, cust, cents)
                yield ev
                remaining -= 1
                if remaining == 0:
                    return
            heappop = heapq.heappop
            stop_key = None if until_ms is None else (until_ms + 1) << _SEQ_BITS
            while heap:
                if stop_key is not None and heap[0] >= stop_key:
                    return
                process(heappop(heap), out)
                n = len(out)
                for i in range(n):
                    ev, cust, cents = out[i]
                    commit(ev, cust, cents)
                    yield ev
                    remaining -= 1
                    if remaining == 0:
                        if i + 1 < n:
                            self._ready.extend(out[i + 1 :])
                        out.clear()
                        return
                out.clear()
            return

        buf = self._buf
        heappop = heapq.heappop
        while True:
            next_t = heap[0] >> _SEQ_BITS if heap else None
            if next_t is not None and until_ms is not None and next_t > until_ms:
                next_t = None  # nothing more to process: drain
            # release everything due before the next simulated event
            while buf and (next_t is None or buf[0][0] <= next_t):
                _, _, ev, cust, cents = heappop(buf)
                commit(ev, cust, cents)
                yield ev
                remaining -= 1
                if remaining == 0:
                    return
            if next_t is None:
                return
            process(heappop(heap), out)
            self._add_noise(out)
            out.clear()

    def report(self) -> GenerationReport:
        gg_p = self.config.params.p
        return GenerationReport(
            as_of_ms=self._now,
            emitted=self._emitted,
            by_kind=dict(self._by_kind),
            duplicates=self._dups,
            malformed=self._malformed,
            delayed=self._delayed,
            orders=self._orders,
            revenue_cents=self._revenue,
            refunds=self._refunds,
            refunded_cents=self._refunded,
            customers={cid: c.truth(gg_p) for cid, c in self._customers.items()},
        )

    def truth(self, customer_id: str) -> CustomerTruth:
        """Ground truth for one signed-up customer (KeyError if unknown)."""
        return self._customers[customer_id].truth(self.config.params.p)

    @property
    def customer_ids(self) -> list[str]:
        return list(self._customers)

    @property
    def now_ms(self) -> int:
        return self._now

    def format_time(self, ms: int) -> str:
        """Epoch ms -> ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
        day, rem = divmod(ms, DAY_MS)
        prefix = self._day_prefix.get(day)
        if prefix is None:
            prefix = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
            self._day_prefix[day] = prefix
        sec, milli = divmod(rem, 1000)
        return f"{prefix}{_hms()[sec]}.{milli:03d}Z"

    # ------------------------------------------------------------ internals

    def _push(self, t: int, action: int, a: Any, b: Any) -> None:
        self._seq += 1
        key = (t << _SEQ_BITS) | self._seq
        self._payload[key] = (action, a, b)
        heapq.heappush(self._heap, key)

    def _exp_ms(self, rate_per_day: float) -> int:
        return 1 + int(self._rng.expovariate(rate_per_day) * DAY_MS)

    def _days_ms(self, lo: float, hi: float) -> int:
        return int((lo + (hi - lo) * self._rng.random()) * DAY_MS)

    def _next_event_id(self) -> str:
        self._evt_n += 1
        return self._id_prefix + str(self._evt_n)

    def _new_customer_id(self) -> str:
        self._cust_n += 1
        return f"cust-{self._cust_n:06d}"

    def _commit(self, ev: GeneratedEvent, cust: CustomerState | None, cents: int) -> None:
        self._emitted += 1
        if ev.duplicate:
            self._dups += 1
            return
        kind = ev.kind
        if kind == "malformed":
            self._malformed += 1
            return
        self._by_kind[kind] += 1
        if kind == "order":
            cust.orders += 1
            cust.revenue_cents += cents
            t = ev.event_time_ms
            if cust.first_order_ms is None:
                cust.first_order_ms = t
            if cust.last_order_ms is None or t > cust.last_order_ms:
                cust.last_order_ms = t
            self._orders += 1
            self._revenue += cents
        elif kind == "refund":
            cust.refunds += 1
            cust.refunded_cents += cents
            self._refunds += 1
            self._refunded += cents
        elif kind == "interaction":
            cust.interactions += 1

    def _add_noise(self, out: list[tuple]) -> None:
        cfg = self.config
        nr = self._noise_rng
        buf = self._buf
        push = heapq.heappush
        for ev, cust, cents in out:
            emit = ev.event_time_ms
            if cfg.share_out_of_order and nr.random() < cfg.share_out_of_order:
                emit += 1 + int(nr.random() * cfg.max_disorder_seconds * 1000)
                self._delayed += 1
            self._bseq += 1
            push(buf, (emit, self._bseq, ev, cust, cents))
            if cfg.share_duplicates and nr.random() < cfg.share_duplicates:
                dup = ev._replace(value=_copy_value(ev.value), duplicate=True)
                self._bseq += 1
                push(buf, (emit + 1 + int(nr.random() * cfg.max_duplicate_delay_seconds * 1000), self._bseq, dup, None, 0))
            if cfg.share_malformed and nr.random() < cfg.share_malformed:
                base = dict(ev.value)
                self._mal_n += 1
                base["event_id"] = f"{self._id_prefix}m{self._mal_n}"
                payload, reason = malformed_payload(nr, base, cfg.currency)
                mal = GeneratedEvent("malformed", ev.topic_role, ev.key, payload, ev.event_time_ms, False, reason)
                self._bseq += 1
                push(buf, (emit, self._bseq, mal, None, 0))

    # ---------------------------------------------------------- processes

    def _process(self, key: int, out: list) -> None:
        action, a, b = self._payload.pop(key)
        self._now = t = key >> _SEQ_BITS
        if action == _ORDER:
            self._order(t, a, b, out)
        elif action == _INTERACTION:
            self._interaction(t, a, b, out)
        elif action == _ARRIVAL:
            if a:
                self._push(t + self._exp_ms(self.config.arrival_per_day), _ARRIVAL, True, None)
            self._signup(t, self._new_customer_id(), pick_arrival_channel(self._rng), None, out)
        elif action == _REFUND:
            self._refund(t, a, b, out)
        elif action == _SIGNUP_REFERRED:
            self._signup(t, a, "referral", b, out)
        elif action == _UPDATE:
            self._update(t, a, out)

    def _signup(self, t: int, cid: str, channel: str, referred_by: str | None, out: list) -> None:
        cfg = self.config
        rng = self._rng
        cust = CustomerState(rng, cfg, cid, t, channel, referred_by)
        self._customers[cid] = cust
        value = {
            "type": "customer",
            "schema_version": 1,
            "event_id": self._next_event_id(),
            "event_time": self.format_time(t),
            "customer_id": cid,
            "kind": "signup",
            "acquisition_channel": channel,
            "acquisition_cost": cust.acquisition_cost_cents / 100,
            "currency": cfg.currency,
        }
        if cust.attributes is not None:
            value["attributes"] = dict(cust.attributes)
        out.append((GeneratedEvent("customer", "customers", cid, value, t), cust, 0))
        if not (cfg.share_signup_without_order and rng.random() < cfg.share_signup_without_order):
            # the BG/NBD "birth": first purchase shortly after signing up
            delay = 60_000 + int(rng.expovariate(1.0) * 2 * HOUR_MS)
            self._push(t + delay, _ORDER, cust, True)

    def _order(self, t: int, cust: CustomerState, birth: bool, out: list) -> None:
        rng = self._rng
        rand = rng.random
        cfg = self.config
        push = self._push
        cid = cust.customer_id

        # ---- value: Gamma-Gamma ----
        z = rng.gammavariate(cfg.params.p, 1.0 / cust.nu)
        target = max(100, int(round(z * 100)))
        x = rand()
        k = 1 if x < 0.5 else 2 if x < 0.78 else 3 if x < 0.93 else 4
        items = []
        total = 0
        if k == 1:
            lines = (target,)
        else:
            w = [0.3 + rand() for _ in range(k)]
            sw = sum(w)
            lines = [int(target * wi / sw) for wi in w[:-1]]
            lines.append(target - sum(lines))
        for line in lines:
            y = rand()
            qty = 1 if y < 0.8 else 2 if y < 0.94 else 3
            unit = line // qty
            if unit == 0:
                qty, unit = 1, line
            total += unit * qty
            c = int(rand() * 8)
            items.append(
                {
                    "sku": f"{_CAT_PREFIX[c]}-{int(rand() * 5000):04d}",
                    "quantity": qty,
                    "unit_price": unit / 100,
                    "category": _CATEGORIES[c],
                }
            )
        channel = cust.preferred_channel if rand() < 0.8 else _ORDER_CHANNELS[int(rand() * 6)]
        cogs = int(total * (0.45 + 0.25 * rand()))
        self._order_n += 1
        order_id = f"ord-{self._order_n:08d}"
        value = {
            "type": "order",
            "schema_version": 1,
            "event_id": self._next_event_id(),
            "event_time": self.format_time(t),
            "customer_id": cid,
            "order_id": order_id,
            "amount": total / 100,
            "currency": cfg.currency,
            "cost_of_goods": cogs / 100,
            "channel": channel,
            "items": items,
        }
        if channel != "store":
            value["logistics_cost"] = (290 + int(rand() * 500)) / 100
        if rand() < 0.08:
            value["service_cost"] = (150 + int(rand() * 2350)) / 100
        out.append((GeneratedEvent("order", "orders", cid, value, t), cust, total))

        # ---- BG/NBD: dropout after each repeat purchase, else next purchase
        if not birth and rand() < cust.p:
            cust.alive = False
            cust.churned_at_ms = t
        elif cust.alive:
            nxt = t + 1 + int(rng.expovariate(cust.lam) * DAY_MS)
            if nxt < _MAX_MS:
                push(nxt, _ORDER, cust, False)

        # ---- follow-ups ----
        d = cust.dissatisfaction
        if rand() < cfg.refund_rate + cfg.refund_dissatisfaction * d:
            if rand() < 0.4:
                r_cents = total
            else:
                r_cents = max(1, int(total * (0.1 + 0.8 * rand())))
            push(t + self._days_ms(1, 30), _REFUND, cust, (order_id, r_cents, cogs * r_cents // total))
        if rand() < 0.04 + 0.3 * d:
            ch = _CONTACT_CHANNELS[int(rand() * 6)]
            push(t + HOUR_MS + int(rng.expovariate(0.5) * DAY_MS), _INTERACTION, cust, ("service_contact", ch))
        if rand() < 0.002 + 0.15 * d * d:
            ch = _COMPLAINT_CHANNELS[int(rand() * 4)]
            push(t + self._days_ms(0.5, 10), _INTERACTION, cust, ("complaint", ch))
        if rand() < 0.12:
            push(t + self._days_ms(3, 14), _INTERACTION, cust, ("nps", "email" if rand() < 0.7 else "web"))
        if rand() < 0.04:
            push(t + self._days_ms(3, 21), _INTERACTION, cust, ("review", "web"))
        if rand() < 0.003:  # the odd referral by a non-surveyed customer
            push(t + self._days_ms(1, 30), _INTERACTION, cust, ("referral", "web"))
        if rand() < 0.003:
            push(t + self._days_ms(0, 30), _UPDATE, cust, None)

    def _interaction(self, t: int, cust: CustomerState, spec: tuple, out: list) -> None:
        rng = self._rng
        rand = rng.random
        kind, channel = spec
        d = cust.dissatisfaction
        cid = cust.customer_id
        value = {
            "type": "interaction",
            "schema_version": 1,
            "event_id": self._next_event_id(),
            "event_time": self.format_time(t),
            "customer_id": cid,
            "kind": kind,
            "channel": channel,
        }
        if kind == "nps":
            score = int(round(10.0 - 11.0 * d + rng.gauss(0.0, 1.3)))
            score = 0 if score < 0 else 10 if score > 10 else score
            value["nps_score"] = score
            if score >= 9 and rand() < 0.3:
                ch = ("web", "email", "social")[int(rand() * 3)]
                self._push(t + self._days_ms(1, 30), _INTERACTION, cust, ("referral", ch))
        elif kind == "service_contact":
            if rand() < 0.35:
                self._push(t + HOUR_MS + self._days_ms(0, 2), _INTERACTION, cust, ("ces", channel if rand() < 0.5 else "email"))
            if rand() < 0.05 + 0.3 * d:
                self._push(t + self._days_ms(0.1, 5), _INTERACTION, cust, ("complaint", _COMPLAINT_CHANNELS[int(rand() * 4)]))
        elif kind == "ces":
            score = int(round(1.0 + 6.0 * d + rng.gauss(0.0, 1.0)))
            value["effort_score"] = 1 if score < 1 else 7 if score > 7 else score
        elif kind == "review":
            score = int(round(5.3 - 5.0 * d + rng.gauss(0.0, 0.8)))
            value["rating"] = 1 if score < 1 else 5 if score > 5 else score
        elif kind == "referral":
            ref_id = self._new_customer_id()
            value["referred_customer_id"] = ref_id
            self._push(t + self._days_ms(0.05, 14), _SIGNUP_REFERRED, ref_id, cid)
        out.append((GeneratedEvent("interaction", "interactions", cid, value, t), cust, 0))

    def _refund(self, t: int, cust: CustomerState, spec: tuple, out: list) -> None:
        rand = self._rng.random
        order_id, r_cents, restock_cents = spec
        cid = cust.customer_id
        value = {
            "type": "refund",
            "schema_version": 1,
            "event_id": self._next_event_id(),
            "event_time": self.format_time(t),
            "customer_id": cid,
            "order_id": order_id,
            "amount": r_cents / 100,
            "currency": self.config.currency,
            "reason": _REFUND_REASONS[int(rand() * 5)],
        }
        if rand() < 0.6:
            value["restocked_cost"] = int(restock_cents * (0.5 + 0.5 * rand())) / 100
        out.append((GeneratedEvent("refund", "orders", cid, value, t), cust, r_cents))

    def _update(self, t: int, cust: CustomerState, out: list) -> None:
        rand = self._rng.random
        attrs = dict(cust.attributes) if cust.attributes else {}
        attrs["ideal_customer_fit"] = 1 + int(rand() * 4)
        if rand() < 0.3:
            attrs["strategic_account"] = not attrs.get("strategic_account", False)
        if rand() < 0.2:
            attrs["reference_customer"] = not attrs.get("reference_customer", False)
        cust.attributes = attrs
        value = {
            "type": "customer",
            "schema_version": 1,
            "event_id": self._next_event_id(),
            "event_time": self.format_time(t),
            "customer_id": cust.customer_id,
            "kind": "update",
            "attributes": dict(attrs),
        }
        out.append((GeneratedEvent("customer", "customers", cust.customer_id, value, t), cust, 0))


_HMS: list[str] = []


def _hms() -> list[str]:
    if not _HMS:
        _HMS.extend(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400))
    return _HMS


def _copy_value(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy_value(x) for x in v]
    return v
