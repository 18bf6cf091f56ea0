"""Builders for the pure core: events as the edge would produce them."""
from __future__ import annotations


from streams.core.events import DAY_MS, CustomerProfile, Interaction, Order, Refund

T0 = 1_735_689_600_000  # 2025-01-01T00:00:00Z


def order(n, day, amount=100.0, cost=40.0, cid="c1", hour=12):
    return Order(f"o-{n}", T0 + day * DAY_MS + hour * 3_600_000, cid, f"ord-{n}", round(amount * 100), round(cost * 100))


def refund(n, day, amount, order_n, restocked=0.0, cid="c1"):
    return Refund(f"r-{n}", T0 + day * DAY_MS + 13 * 3_600_000, cid, f"ord-{order_n}", round(amount * 100),
                  round(restocked * 100))


def nps(n, day, score, cid="c1"):
    return Interaction(f"n-{n}", T0 + day * DAY_MS + 14 * 3_600_000, cid, "nps", nps_score=score)


def signup(n, day, cost=30.0, cid="c1", **attrs):
    return CustomerProfile(f"s-{n}", T0 + day * DAY_MS, cid, "signup", "search", round(cost * 100), **attrs)


