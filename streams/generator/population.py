"""Configuration and the per-customer latent traits of the synthetic shop.

See :mod:`streams.generator` for the story told by these parameters.  Nothing
here reads the wall clock: every draw comes from the ``random.Random`` handed
in by :class:`~streams.generator.events.EventGenerator`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "ACQUISITION_CHANNELS",
    "CustomerState",
    "CustomerTruth",
    "GeneratorConfig",
    "TrueParameters",
    "parse_time_ms",
]

DAY_MS = 86_400_000


@dataclass(frozen=True)
class TrueParameters:
    """The population-level truth the probabilistic models should recover.

    BG/NBD (Fader, Hardie & Lee 2005):
        purchase rate ``lambda ~ Gamma(shape=r, rate=alpha)`` per *day*;
        dropout probability after each repeat purchase ``p ~ Beta(a, b)``.
    Gamma-Gamma (Fader, Hardie & Lee 2005 / Colombo & Jiang 1999):
        ``nu ~ Gamma(shape=q, rate=gamma)``; each order value
        ``z ~ Gamma(shape=p, rate=nu)`` so a customer's mean spend is ``p/nu``
        (population mean ``p*gamma/(q-1)``).

    Defaults: median lambda ~ 2.8 orders/year with a long tail of heavy
    buyers (mean 6/year), mean dropout probability ~0.12, mean order ~60 EUR.
    Over one year of a 5,000-customer cohort the top 20 % of customers bring
    roughly two thirds of the revenue.
    """

    r: float = 0.5
    alpha: float = 30.0
    a: float = 0.8
    b: float = 6.0
    p: float = 6.0
    q: float = 2.5
    gamma: float = 15.0

    def __post_init__(self) -> None:
        for name in ("r", "alpha", "a", "b", "p", "q", "gamma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TrueParameters.{name} must be > 0")


def parse_time_ms(value: Any, start_ms: int | None = None) -> int:
    """datetime | ISO-8601 string | epoch milliseconds (int) -> epoch ms.

    A ``timedelta`` is taken relative to ``start_ms``.
    """
    from datetime import timedelta

    if isinstance(value, bool):
        raise TypeError("time must not be a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, timedelta):
        if start_ms is None:
            raise TypeError("a timedelta needs a start time")
        return start_ms + int(value / timedelta(milliseconds=1))
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        value = datetime.fromisoformat(text)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp() * 1000)
    raise TypeError(f"cannot interpret {value!r} as a time")


@dataclass
class GeneratorConfig:
    """Everything that shapes the stream.  Same config => same stream."""

    seed: int = 0
    #: size of the initial cohort; it signs up uniformly over the first
    #: ``initial_signup_days`` days (0 = all at ``start``).
    customers: int = 1000
    initial_signup_days: float = 30.0
    #: Poisson rate of organically arriving new customers (besides referrals).
    arrival_per_day: float = 10.0
    start: datetime | str | int = datetime(2025, 1, 1, tzinfo=timezone.utc)
    currency: str = "EUR"
    params: TrueParameters = field(default_factory=TrueParameters)

    #: share of signups that never place their first ("birth") order.
    share_signup_without_order: float = 0.0
    #: base refund probability per order; + refund_dissatisfaction * trait.
    refund_rate: float = 0.03
    refund_dissatisfaction: float = 0.05
    #: share of customers carrying strategic ``attributes`` (sales-acquired
    #: customers get them far more often).
    share_strategic: float = 0.05

    # ---- transport noise (drawn from a separate RNG: the valid events are
    # identical whatever these are set to) ----
    share_duplicates: float = 0.0
    max_duplicate_delay_seconds: float = 300.0
    share_out_of_order: float = 0.0
    max_disorder_seconds: float = 60.0
    share_malformed: float = 0.0

    def __post_init__(self) -> None:
        if self.customers < 0:
            raise ValueError("customers must be >= 0")
        if self.arrival_per_day < 0 or self.initial_signup_days < 0:
            raise ValueError("arrival_per_day and initial_signup_days must be >= 0")
        if not (len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper()):
            raise ValueError("currency must be an ISO 4217 code like 'EUR'")
        for name in (
            "share_signup_without_order",
            "refund_rate",
            "share_strategic",
            "share_duplicates",
            "share_out_of_order",
            "share_malformed",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.max_disorder_seconds < 0 or self.max_duplicate_delay_seconds < 0:
            raise ValueError("delays must be >= 0")

    @property
    def start_ms(self) -> int:
        return parse_time_ms(self.start)


# channel: (weight for organic arrivals, mean acquisition cost in major units)
ACQUISITION_CHANNELS: dict[str, tuple[float, float]] = {
    "organic": (0.30, 0.0),
    "search": (0.24, 28.0),
    "social": (0.16, 22.0),
    "affiliate": (0.09, 18.0),
    "email": (0.08, 4.0),
    "offline": (0.10, 35.0),
    "sales": (0.03, 350.0),
    "referral": (0.0, 10.0),  # only customers referred by another customer
}
_ARRIVAL_CHANNELS = [c for c, (w, _) in ACQUISITION_CHANNELS.items() if w > 0]
_ARRIVAL_CUM: list[float] = []
_acc = 0.0
for _c in _ARRIVAL_CHANNELS:
    _acc += ACQUISITION_CHANNELS[_c][0]
    _ARRIVAL_CUM.append(_acc)

ORDER_CHANNELS = ("web", "app", "store", "marketplace", "phone", "sales_rep")
_ORDER_CHANNEL_CUM = (0.45, 0.72, 0.85, 0.95, 0.99, 1.0)


def pick_arrival_channel(rng: random.Random) -> str:
    x = rng.random() * _ARRIVAL_CUM[-1]
    for ch, c in zip(_ARRIVAL_CHANNELS, _ARRIVAL_CUM):
        if x < c:
            return ch
    return _ARRIVAL_CHANNELS[-1]


class CustomerState:
    """Latent traits (the truth) plus what has been emitted for one customer."""

    __slots__ = (
        "customer_id",
        "signup_ms",
        "acquisition_channel",
        "acquisition_cost_cents",
        "attributes",
        "referred_by",
        "lam",
        "p",
        "nu",
        "dissatisfaction",
        "preferred_channel",
        "alive",
        "churned_at_ms",
        # emitted (unique events only)
        "orders",
        "revenue_cents",
        "refunds",
        "refunded_cents",
        "interactions",
        "first_order_ms",
        "last_order_ms",
    )

    def __init__(
        self,
        rng: random.Random,
        config: GeneratorConfig,
        customer_id: str,
        signup_ms: int,
        channel: str,
        referred_by: str | None = None,
    ) -> None:
        tp = config.params
        self.customer_id = customer_id
        self.signup_ms = signup_ms
        self.acquisition_channel = channel
        self.referred_by = referred_by
        mean_cost = ACQUISITION_CHANNELS[channel][1]
        if channel == "referral":
            cost = mean_cost  # fixed referral reward
        else:
            cost = mean_cost * rng.gammavariate(4.0, 0.25)
        self.acquisition_cost_cents = int(round(cost * 100))

        # --- the BG/NBD + Gamma-Gamma truth ---
        self.lam = rng.gammavariate(tp.r, 1.0 / tp.alpha)  # purchases per day
        self.p = rng.betavariate(tp.a, tp.b)  # dropout after each repeat purchase
        self.nu = rng.gammavariate(tp.q, 1.0 / tp.gamma)  # spend rate
        # --- behaviour traits outside the models ---
        self.dissatisfaction = rng.betavariate(1.2, 5.0)

        strategic_share = 0.6 if channel == "sales" else config.share_strategic
        if rng.random() < strategic_share:
            sales = channel == "sales"
            fit_cut = rng.random()
            self.attributes: dict[str, Any] | None = {
                "reference_customer": rng.random() < 0.3,
                "strategic_account": rng.random() < (0.7 if sales else 0.3),
                "big_name": rng.random() < (0.3 if sales else 0.1),
                "ideal_customer_fit": 1 if fit_cut < 0.15 else 2 if fit_cut < 0.45 else 3 if fit_cut < 0.8 else 4,
            }
        else:
            self.attributes = None

        if channel == "sales" or (self.attributes and self.attributes["strategic_account"]):
            self.preferred_channel = "sales_rep"
        else:
            x = rng.random()
            for ch, c in zip(ORDER_CHANNELS, _ORDER_CHANNEL_CUM):
                if x < c:
                    self.preferred_channel = ch
                    break
            else:  # pragma: no cover
                self.preferred_channel = "web"

        self.alive = True
        self.churned_at_ms: int | None = None
        self.orders = 0
        self.revenue_cents = 0
        self.refunds = 0
        self.refunded_cents = 0
        self.interactions = 0
        self.first_order_ms: int | None = None
        self.last_order_ms: int | None = None

    def truth(self, gg_p: float) -> "CustomerTruth":
        return CustomerTruth(
            customer_id=self.customer_id,
            signup_ms=self.signup_ms,
            acquisition_channel=self.acquisition_channel,
            acquisition_cost_cents=self.acquisition_cost_cents,
            referred_by=self.referred_by,
            attributes=dict(self.attributes) if self.attributes else None,
            lam=self.lam,
            p=self.p,
            nu=self.nu,
            mean_spend=gg_p / self.nu,
            dissatisfaction=self.dissatisfaction,
            alive=self.alive,
            churned_at_ms=self.churned_at_ms,
            orders=self.orders,
            revenue_cents=self.revenue_cents,
            refunds=self.refunds,
            refunded_cents=self.refunded_cents,
            interactions=self.interactions,
            first_order_ms=self.first_order_ms,
            last_order_ms=self.last_order_ms,
        )


@dataclass(frozen=True)
class CustomerTruth:
    """Ground truth for one customer (a snapshot).

    ``lam`` (purchases/day), ``p`` (dropout probability) and ``mean_spend``
    are the latent parameters; ``alive`` is False once the customer dropped
    out (after the repeat order at ``churned_at_ms``).  The counters cover the
    *emitted* stream only, each unique event_id once (duplicates and
    malformed records excluded).
    """

    customer_id: str
    signup_ms: int
    acquisition_channel: str
    acquisition_cost_cents: int
    referred_by: str | None
    attributes: dict[str, Any] | None
    lam: float
    p: float
    nu: float
    mean_spend: float
    dissatisfaction: float
    alive: bool
    churned_at_ms: int | None
    orders: int
    revenue_cents: int
    refunds: int
    refunded_cents: int
    interactions: int
    first_order_ms: int | None
    last_order_ms: int | None
