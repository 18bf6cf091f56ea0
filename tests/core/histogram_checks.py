"""A check shared by the distribution tests: ``LogHistogram.shift_cents`` against the two steps it replaces."""
from __future__ import annotations

import random
from typing import Callable, List, Optional

from streams.core.distribution import LogHistogram


def _contents(h: LogHistogram) -> tuple:
    return h.count, h.zeros, list(h.positive.items()), list(h.negative.items())  # dict order included


def check_shifts_equal_two_steps(rnd: random.Random, values: List[int], propose: Callable[[int], int],
                                 width: Optional[float] = None, moves: int = 20_000) -> LogHistogram:
    """Two histograms of ``values``; ``moves`` times a random value moves to ``propose(old)``, in one by
    ``shift_cents(old, new)``, in the other by ``add_cents(old, -1)`` then ``add_cents(new, 1)``: the
    two are equal after every move. Returns the shifted one; ``values`` holds what it holds."""
    a, b = LogHistogram(0.01, width), LogHistogram(0.01, width)
    for v in values:
        a.add_cents(v)
        b.add_cents(v)
    assert _contents(a) == _contents(b) and a.count == len(values)
    for _ in range(moves):
        i = rnd.randrange(len(values))
        old = values[i]
        new = propose(old)
        a.shift_cents(old, new)
        b.add_cents(old, -1)
        b.add_cents(new, 1)
        values[i] = new
        assert _contents(a) == _contents(b)
    return a
