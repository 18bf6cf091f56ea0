"""Typed input events of the functional core.

Parsing happens once at the edge (see ``validation``); from here on money is in
integer cents and time in integer epoch milliseconds, so that sums are exact and
applying the same events in any order gives bit-identical state (float addition
is not associative, integer addition is).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Order:
    event_id: str
    event_time_ms: int
    customer_id: str
    order_id: str
    amount_cents: int
    cost_cents: int  # cost of goods + service + logistics: margin = amount - cost
    channel: Optional[str] = None
    type: str = "order"


@dataclass(frozen=True, slots=True)
class Refund:
    event_id: str
    event_time_ms: int
    customer_id: str
    order_id: str
    amount_cents: int
    restocked_cost_cents: int = 0  # goods back on the shelf soften the margin loss
    type: str = "refund"


@dataclass(frozen=True, slots=True)
class Interaction:
    event_id: str
    event_time_ms: int
    customer_id: str
    kind: str  # service_contact | complaint | nps | ces | referral | review
    nps_score: Optional[int] = None
    effort_score: Optional[int] = None
    rating: Optional[int] = None
    type: str = "interaction"


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    event_id: str
    event_time_ms: int
    customer_id: str
    kind: str  # signup | update
    acquisition_channel: Optional[str] = None
    acquisition_cost_cents: Optional[int] = None
    reference_customer: Optional[bool] = None
    strategic_account: Optional[bool] = None
    big_name: Optional[bool] = None
    ideal_customer_fit: Optional[int] = None
    type: str = "customer"


Event = Union[Order, Refund, Interaction, CustomerProfile]
