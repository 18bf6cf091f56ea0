"""An exact ``PopulationView``: every customer's metric values kept sorted in memory.

For tests and for the what-if replay (one process sees every customer). The
streaming workers use the mergeable per-partition view instead. ``update``
replaces a customer's values (a customer counts once per metric).

Quantile definition (the one relative policies are written against): with the
n values sorted ascending, ``quantile(q)`` is the value at 0-based rank
``ceil(q x n)`` (capped at n - 1): the smallest value with at least q x n
values before it. So "value >= quantile(1 - s)" selects the top share s,
rounded down, plus everyone tied with the cut-off.
"""
from __future__ import annotations

import math
from bisect import bisect_left, insort
from typing import Dict, List, Mapping, Optional


class ExactPopulation:
    def __init__(self, version: str = "exact"):
        self.version = version
        self._sorted: Dict[str, List[float]] = {}
        self._by_customer: Dict[str, Dict[str, float]] = {}

    @classmethod
    def of(cls, values: Mapping[str, Mapping[str, float]], version: str = "exact") -> "ExactPopulation":
        """From {customer id: {metric: value}}."""
        view = cls(version)
        for cid, metrics in values.items():
            view.update(cid, metrics)
        return view

    def update(self, customer_id: str, metrics: Mapping[str, float]) -> None:
        old = self._by_customer.get(customer_id, {})
        for metric, value in old.items():
            values = self._sorted[metric]
            del values[bisect_left(values, value)]
        for metric, value in metrics.items():
            insort(self._sorted.setdefault(metric, []), float(value))
        self._by_customer[customer_id] = {m: float(v) for m, v in metrics.items()}

    def size(self, metric: str) -> int:
        return len(self._sorted.get(metric, ()))

    def quantile(self, metric: str, q: float) -> Optional[float]:
        values = self._sorted.get(metric)
        if not values:
            return None
        return values[min(len(values) - 1, max(0, math.ceil(q * len(values) - 1e-9)))]

    def fraction_below(self, metric: str, value: float) -> Optional[float]:
        values = self._sorted.get(metric)
        if not values:
            return None
        return bisect_left(values, value) / len(values)
