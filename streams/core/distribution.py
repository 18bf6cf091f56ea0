"""A mergeable, removable, bounded-size distribution of money values: log buckets.

Relative policies need cut-offs over all customers ("top 20% of CLV") and the
seeds' Pareto figures need "share of revenue from the top 20% of customers".
Customers change value all the time, so the structure must also *remove* a
customer's previous value exactly, and partitions must merge into one.

Values are quantized to integer cents first (the unit money is kept in), then
put in a bucket by the magnitude's logarithm: bucket keys come from DDSketch's
``LogarithmicMapping`` (the ``ddsketch`` package), so every value in a bucket is
within ``relative_accuracy`` of the bucket's representative value. Per bucket
we keep the count and the exact sum in cents (DDSketch's own stores keep counts
only and cannot give a Pareto share). Integer counts and sums make add, remove
and merge exact and order-independent: a merge of partitions equals the one big
histogram, bit for bit, and its serialization is canonical.

Size: one bucket per occupied 2 x accuracy band of magnitude; with 1% accuracy,
values from 0.01 to 10 million take at most ~1,040 buckets per sign, whatever
the number of customers.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from ddsketch.mapping import LogarithmicMapping

DEFAULT_RELATIVE_ACCURACY = 0.01

_MAPPINGS: Dict[float, LogarithmicMapping] = {}


def _mapping(relative_accuracy: float) -> LogarithmicMapping:
    m = _MAPPINGS.get(relative_accuracy)
    if m is None:
        m = _MAPPINGS[relative_accuracy] = LogarithmicMapping(relative_accuracy)
    return m


class LinearMapping:
    """Fixed-width buckets, for values whose error must be absolute: event times.

    A 1% relative error on an epoch timestamp is months; RFM's recency quintiles need days.
    Same interface as DDSketch's mappings (``key``/``value``) over the magnitudes it is given.
    """

    __slots__ = ("width",)

    def __init__(self, width: float):
        if width <= 0:
            raise ValueError("bucket width must be positive")
        self.width = width

    def key(self, magnitude: float) -> int:
        return int(magnitude // self.width)

    def value(self, key: int) -> float:
        return (key + 0.5) * self.width


# Keys of recent magnitudes, per (multiplier, offset): a customer's value removed at one update is the
# one added at its previous update, so most removals (and unmoved values) find their key here instead of
# taking a logarithm. Bounded: emptied when full (a key is a pure function of the magnitude).
_KEY_CACHE_SIZE = 1 << 16
_LOG_KEYS: Dict[Tuple[float, float], Callable[[float], int]] = {}


def _key_function(mapping) -> Callable[[float], int]:
    """``mapping.key`` as one closure: the same arithmetic without two method calls per value (a key is
    computed for every value added or removed), remembered for recent magnitudes. ``LogarithmicMapping.key``
    is ``int(ceil(log(v, 2) * multiplier) + offset)`` (tests/core/test_distribution.py compares the two)."""
    if type(mapping) is LogarithmicMapping:
        log, ceil, multiplier, offset = math.log, math.ceil, mapping._multiplier, mapping._offset
        key = _LOG_KEYS.get((multiplier, offset))
        if key is not None:
            return key
        cache: Dict[float, int] = {}
        get = cache.get

        def key(magnitude: float) -> int:
            k = get(magnitude)
            if k is None:
                k = int(ceil(log(magnitude, 2) * multiplier) + offset)  # raises as before for 0 or less
                if len(cache) >= _KEY_CACHE_SIZE:
                    cache.clear()
                cache[magnitude] = k
            return k
        _LOG_KEYS[(multiplier, offset)] = key
        return key
    return mapping.key


def histogram_for(metric: str, relative_accuracy: float) -> "LogHistogram":
    """The distribution a named metric is kept in: names ending in ``_ms`` are event times
    (epoch milliseconds) bucketed by UTC day; every other metric in log buckets."""
    if metric.endswith("_ms"):
        return LogHistogram(relative_accuracy, linear_width=86_400_000)
    return LogHistogram(relative_accuracy)


def to_cents(value: float) -> int:
    return int(round(value * 100))


def _add_at(bins: Dict[int, List[int]], key: int, cents: int, n: int) -> None:
    """``n`` values of ``cents`` into the bucket ``bins[key]`` (n = -1 removes one; removing what is not
    there raises): the bucket step of ``add_cents`` and ``shift_cents``. The caller keeps the count."""
    b = bins.get(key)
    if b is None:
        if n < 0:
            raise ValueError("removing a value that is not in the histogram")
        bins[key] = [n, n * cents]
        return
    if b[0] + n < 0:
        raise ValueError("removing a value that is not in the histogram")
    b[0] += n
    b[1] += n * cents
    if b[0] == 0:
        del bins[key]


class LogHistogram:
    """Counts and cent sums per log bucket of positive and negative values, plus zeros."""

    __slots__ = ("relative_accuracy", "linear_width", "_mapping", "_key", "positive", "negative", "zeros", "count")

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY, linear_width: Optional[float] = None):
        self.relative_accuracy = relative_accuracy
        self.linear_width = linear_width  # set: fixed-width buckets (see LinearMapping) instead of log buckets
        self._mapping = _mapping(relative_accuracy) if linear_width is None else LinearMapping(linear_width)
        self._key = _key_function(self._mapping)
        self.positive: Dict[int, List[int]] = {}  # key of the value -> [count, sum of cents]
        self.negative: Dict[int, List[int]] = {}  # key of -value -> [count, sum of cents (negative)]
        self.zeros = 0
        self.count = 0  # values held (kept up to date: asked after every update)

    # -- updates ------------------------------------------------------------
    def add_cents(self, cents: int, n: int = 1) -> None:
        """Add ``n`` values of ``cents`` (n = -1 removes one; removing what is not there raises)."""
        if cents > 0:
            _add_at(self.positive, self._key(cents / 100), cents, n)
        elif cents < 0:
            _add_at(self.negative, self._key(-cents / 100), cents, n)
        else:
            if self.zeros + n < 0:
                raise ValueError("removing a value that is not in the histogram")
            self.zeros += n
        self.count += n

    def shift_cents(self, old_cents: int, new_cents: int) -> None:
        """One value moves from ``old_cents`` to ``new_cents``: ``add_cents(old, -1)`` then ``add_cents(new, 1)``.

        Most moves stay in their bucket (a customer's figure changes by a little): then only the bucket's
        sum changes. Where the bucket holds just this value, the two steps would delete and recreate it,
        so they are taken as they are (the same buckets, in the same dict order)."""
        if old_cents > 0 and new_cents > 0:
            bins, old_magnitude, new_magnitude = self.positive, old_cents, new_cents
        elif old_cents < 0 and new_cents < 0:
            bins, old_magnitude, new_magnitude = self.negative, -old_cents, -new_cents
        else:  # zero or a change of sign: another bucket
            self.add_cents(old_cents, -1)
            self.add_cents(new_cents, 1)
            return
        key = self._key(old_magnitude / 100)
        b = bins.get(key)
        if b is None:  # not there: add_cents(old, -1) refuses it
            raise ValueError("removing a value that is not in the histogram")
        new_key = self._key(new_magnitude / 100)
        if b[0] > 1 and new_key == key:
            b[1] += new_cents - old_cents
            return
        # another bucket (most moves): the two steps with the keys known, the removal from the bucket in
        # hand (it holds at least one value: emptied buckets are deleted); the count is unchanged
        b[0] -= 1
        b[1] -= old_cents
        if b[0] == 0:
            del bins[key]
        _add_at(bins, new_key, new_cents, 1)

    def add(self, value: float, n: int = 1) -> None:
        self.add_cents(to_cents(value), n)

    def remove(self, value: float) -> None:
        self.add_cents(to_cents(value), -1)

    def merge(self, other: "LogHistogram") -> "LogHistogram":
        """Add ``other`` into this histogram (same accuracy); returns self."""
        if (other.relative_accuracy, other.linear_width) != (self.relative_accuracy, self.linear_width):
            raise ValueError("cannot merge histograms of different accuracy or bucket width")
        self.zeros += other.zeros
        self.count += other.count
        for mine, theirs in ((self.positive, other.positive), (self.negative, other.negative)):
            for key, (n, s) in theirs.items():
                b = mine.get(key)
                if b is None:
                    mine[key] = [n, s]
                else:
                    b[0] += n
                    b[1] += s
        return self

    # -- figures --------------------------------------------------------------
    @property
    def total_cents(self) -> int:
        return sum(b[1] for b in self.positive.values()) + sum(b[1] for b in self.negative.values())

    @property
    def total(self) -> float:
        return self.total_cents / 100

    def _ascending(self) -> Iterator[Tuple[float, int, int]]:
        """(representative value, count, cent sum) per bucket from the lowest value up."""
        value = self._mapping.value
        for key in sorted(self.negative, reverse=True):
            n, s = self.negative[key]
            yield -value(key), n, s
        if self.zeros:
            yield 0.0, self.zeros, 0
        for key in sorted(self.positive):
            n, s = self.positive[key]
            yield value(key), n, s

    def quantile(self, q: float) -> Optional[float]:
        """The value at rank q x (count - 1), within the relative accuracy; None when empty."""
        if not 0 <= q <= 1:
            raise ValueError("quantile must be in [0, 1]")
        total = self.count
        if not total:
            return None
        rank = q * (total - 1)
        seen = 0
        for v, n, _ in self._ascending():
            seen += n
            if seen > rank:
                return v
        return v  # pragma: no cover - seen == total > rank always returns above

    def fraction_below(self, value: float) -> Optional[float]:
        """Share of values below ``value``; the values in its own bucket count half."""
        total = self.count
        if not total:
            return None
        cents = to_cents(value)
        below = same = 0
        if cents > 0:
            key = self._mapping.key(cents / 100)
            below = self.zeros + sum(b[0] for b in self.negative.values())
            below += sum(b[0] for k, b in self.positive.items() if k < key)
            same = self.positive.get(key, (0, 0))[0]
        elif cents < 0:
            key = self._mapping.key(-cents / 100)
            below = sum(b[0] for k, b in self.negative.items() if k > key)
            same = self.negative.get(key, (0, 0))[0]
        else:
            below = sum(b[0] for b in self.negative.values())
            same = self.zeros
        return (below + same / 2) / total

    def top_share(self, fraction: float = 0.2) -> Optional[float]:
        """Pareto: share of the total that comes from the top ``fraction`` of values.

        Where the cut falls inside a bucket, that bucket contributes its average
        value per customer taken. None when the total is not positive (a share of
        a loss is not a Pareto figure).
        """
        total = self.total_cents
        if total <= 0:
            return None
        remaining = fraction * self.count
        taken = 0.0
        for _, n, s in reversed(list(self._ascending())):
            if remaining <= 0:
                break
            take = min(n, remaining)
            taken += s * take / n
            remaining -= take
        return taken / total

    # -- encoding ------------------------------------------------------------
    def to_list(self) -> list:
        """Canonical plain form: [accuracy, zeros, [key, count, sum...] positive, same negative(, width)]."""
        flat = lambda bins: [x for k in sorted(bins) for x in (k, *bins[k])]  # noqa: E731
        row = [self.relative_accuracy, self.zeros, flat(self.positive), flat(self.negative)]
        return row if self.linear_width is None else row + [self.linear_width]

    @classmethod
    def from_list(cls, row: list) -> "LogHistogram":
        h = cls(row[0], row[4] if len(row) > 4 else None)
        h.zeros = row[1]
        for bins, flat in ((h.positive, row[2]), (h.negative, row[3])):
            for i in range(0, len(flat), 3):
                bins[flat[i]] = [flat[i + 1], flat[i + 2]]
                h.count += flat[i + 1]
        h.count += h.zeros
        return h

    def __eq__(self, other) -> bool:
        return isinstance(other, LogHistogram) and self.to_list() == other.to_list()

    def __repr__(self) -> str:
        return f"LogHistogram(count={self.count}, total={self.total:.2f}, buckets={len(self.positive) + len(self.negative)})"
