"""Deterministic generator of realistic shop events (pure Python, no Kafka).

Drives the live demo, the integration tests and the benchmarks.  The same
:class:`GeneratorConfig` (seed included) always yields the same stream; time
is a simulated clock starting at ``config.start`` (default
2025-01-01T00:00:00Z), never the wall clock.

Customer population model
-------------------------
*Arrivals.*  ``config.customers`` customers sign up uniformly over the first
``initial_signup_days``; afterwards new customers arrive as a Poisson process
of ``arrival_per_day``, plus customers referred by others.  Each signup is a
``customer`` event (kind ``signup``) with an ``acquisition_channel`` drawn from
organic/search/social/affiliate/email/offline/sales (``referral`` is reserved
for referred customers) and an ``acquisition_cost`` whose mean depends on the
channel (0 EUR organic ... ~350 EUR sales-led, a fixed 10 EUR referral
reward).  About ``share_strategic`` of the customers (60 % of sales-led ones)
carry strategic ``attributes`` (reference_customer, strategic_account,
big_name, ideal_customer_fit 1-4); a rare ``update`` event re-assesses them.

*Purchasing (BG/NBD).*  Each customer draws a purchase rate
``lambda ~ Gamma(r, alpha)`` (per day, ``alpha`` a rate) and a dropout
probability ``p ~ Beta(a, b)``.  The first ("birth") order follows the signup
within hours; while alive, repeat orders follow a Poisson process of rate
lambda, and after each *repeat* order the customer becomes inactive for good
with probability p -- exactly the BG/NBD story, so a fitted model has the
true ``TrueParameters`` to find.  Defaults: median ~2.8 orders/year, a long
tail of heavy buyers, mean p ~0.12.

*Order value (Gamma-Gamma).*  ``nu ~ Gamma(q, gamma)`` per customer and each
order's value ``z ~ Gamma(p, nu)`` (Gamma-Gamma's own ``p``, not the dropout
p), mean ~60 EUR.  Frequency and spend heterogeneity give a Pareto-like
concentration: over a year the top 20 % of customers bring ~2/3 of the
revenue.  Amounts are whole cents; 1-4 ``items`` whose
``unit_price * quantity`` add up to the amount exactly; ``cost_of_goods``
45-70 % of the amount, ``logistics_cost`` 2.90-7.90 (not for store orders),
``service_cost`` on ~8 % of orders.  The channel is mostly the customer's
preferred one (sales_rep for strategic accounts).

*Refunds.*  ``refund_rate + refund_dissatisfaction * d`` (~4 %) of orders get
one ``refund`` 1-30 days later, 40 % full, otherwise 10-90 % of the amount.

*Interactions.*  A per-customer dissatisfaction trait ``d ~ Beta(1.2, 5)``
drives: service contacts after ~10 % of orders (more for high d), each
followed by a CES answer (1-7, rising with d) 35 % of the time and possibly
escalated into a complaint; complaints (probability rising with d^2); NPS
answers 3-14 days after 12 % of orders (0-10, falling with d); reviews
(rating 1-5, falling with d) after 4 % of orders; referrals -- mostly 30 % of
promoters (NPS 9-10) -- carry a fresh ``referred_customer_id`` that signs up
0-14 days later with acquisition_channel ``referral``.

*Transport noise* (separate RNG and id space: the valid events are the same
whatever the noise): ``share_duplicates`` re-emits an event with the same
event_id up to ``max_duplicate_delay_seconds`` later; ``share_out_of_order``
holds an event back by up to ``max_disorder_seconds`` (its event_time stays);
``share_malformed`` inserts bad payloads (see :mod:`.malformed`) as
``GeneratedEvent(kind="malformed", value=bytes, expected_rejection=reason)``.

Ids: ``event_id`` ``evt-<seed>-<n>`` (malformed ``evt-<seed>-m<n>``),
customers ``cust-000001``, orders ``ord-00000001``.  ``truth(customer_id)``
and ``report()`` give the latent parameters, the alive flag and the totals of
the emitted stream (unique events only) for checks against the engine.
"""

from .events import TOPIC_ROLES, EventGenerator, GeneratedEvent, GenerationReport
from .malformed import (
    MALFORMED_CASES,
    MAX_PAYLOAD_BYTES,
    MONEY_FIELDS,
    REJECTION_CLASSES,
    make_malformed,
    malformed_payload,
)
from .population import CustomerTruth, GeneratorConfig, TrueParameters

__all__ = [
    "CustomerTruth",
    "EventGenerator",
    "GeneratedEvent",
    "GenerationReport",
    "GeneratorConfig",
    "MALFORMED_CASES",
    "MAX_PAYLOAD_BYTES",
    "MONEY_FIELDS",
    "REJECTION_CLASSES",
    "TOPIC_ROLES",
    "TrueParameters",
    "make_malformed",
    "malformed_payload",
]
