"""Log-bucket distributions: exact add/remove/merge, accuracy of cut-offs and Pareto shares."""
import numpy as np
import pytest

from streams.core.distribution import LogHistogram
from tests.core.histogram_checks import check_shifts_equal_two_steps


def histogram(values, accuracy=0.01):
    h = LogHistogram(accuracy)
    for v in values:
        h.add(float(v))
    return h


def test_small_population_by_hand():
    h = histogram([0, 10, 20, 30, 40, -5])
    assert h.count == 6 and h.total == 95.0
    assert h.quantile(0) == pytest.approx(-5, rel=0.01)
    assert h.quantile(1) == pytest.approx(40, rel=0.01)
    assert h.quantile(0.5) == pytest.approx(10, rel=0.01)  # rank 2.5 -> third value (-5, 0, 10)
    assert h.fraction_below(15) == pytest.approx(3 / 6)  # -5, 0, 10
    assert h.fraction_below(10) == pytest.approx(2.5 / 6)  # its own bucket counts half
    assert h.fraction_below(-100) == 0 and h.fraction_below(1000) == 1
    # top 20% of 6 customers = 1.2 customers: 40 + 0.2 x 30 of a total of 95
    assert h.top_share(0.2) == pytest.approx(46 / 95)


def test_remove_restores_exactly_and_refuses_what_is_not_there():
    h = histogram([1.23, 4.56, 4.56, 0, -7.5])
    h.remove(4.56)
    h.remove(-7.5)
    h.remove(0)
    assert h == histogram([1.23, 4.56])
    h.remove(1.23)
    h.remove(4.56)
    assert h == LogHistogram() and h.count == 0 and not h.positive
    with pytest.raises(ValueError):
        h.remove(3.0)
    assert h.quantile(0.5) is None and h.fraction_below(1) is None and h.top_share() is None


def test_serialization_round_trip_is_canonical():
    a = histogram([3, 1, 2, -1, 0])
    b = histogram([0, -1, 2, 1, 3])
    assert a.to_list() == b.to_list()
    assert LogHistogram.from_list(a.to_list()) == a


@pytest.fixture(scope="module")
def spend():
    """100k customers' spend: lognormal, a few refunds below zero, some without orders."""
    rng = np.random.default_rng(42)
    values = np.round(rng.lognormal(mean=4.0, sigma=1.2, size=100_000), 2)
    values[rng.random(values.size) < 0.1] = 0.0
    values[rng.random(values.size) < 0.01] *= -0.2
    return np.round(values, 2)


def test_cut_offs_are_within_the_relative_accuracy_of_exact_quantiles(spend):
    h = histogram(spend, accuracy=0.01)
    assert h.count == spend.size
    for q in (0.01, 0.1, 0.2, 0.25, 0.5, 0.75, 0.8, 0.9, 0.95, 0.99, 0.999):
        exact = float(np.quantile(spend, q, method="lower"))
        assert h.quantile(q) == pytest.approx(exact, rel=0.01, abs=0.005), q
        # the interpolated quantile (numpy's default) is as close: neighbouring values differ by far less
        assert h.quantile(q) == pytest.approx(float(np.quantile(spend, q)), rel=0.011, abs=0.005), q
    # fraction_below at the exact cut-offs is within the share of customers in one bucket
    for q in (0.2, 0.5, 0.8):
        assert h.fraction_below(float(np.quantile(spend, q))) == pytest.approx(q, abs=0.01)


def test_pareto_share_matches_the_exact_top_20_percent(spend):
    h = histogram(spend)
    top = np.sort(spend)[::-1][: int(0.2 * spend.size)]
    exact = top.sum() / spend.sum()
    assert h.top_share(0.2) == pytest.approx(exact, abs=0.002)
    assert h.total == pytest.approx(spend.sum(), abs=1e-6)  # sums are exact (cents)


def test_merged_partitions_equal_one_big_distribution(spend):
    parts = [histogram(spend[i::8]) for i in range(8)]
    merged = LogHistogram()
    for part in parts:
        merged.merge(part)
    assert merged == histogram(spend)
    assert merged.to_list() == histogram(spend).to_list()


def test_size_is_bounded_by_the_value_range_not_the_population(spend):
    h = histogram(spend)
    # ~1% buckets over 0.01..1e5: well under the ~1,040 per sign of the module docstring
    assert len(h.positive) + len(h.negative) < 2 * 1040
    assert len(h.positive) < len(set(spend.tolist())) / 5


def test_event_time_metrics_are_bucketed_by_day_not_by_magnitude():
    """A 1% relative error on an epoch timestamp would be months; RFM recency needs days."""
    import numpy as np
    from streams.core.distribution import histogram_for

    rng = np.random.default_rng(3)
    day = 86_400_000
    last_orders = 1_700_000_000_000 + rng.integers(0, 700 * day, size=20_000)
    h = histogram_for("last_order_ms", 0.01)
    for t in last_orders:
        h.add(float(t))
    for q in (0.2, 0.4, 0.6, 0.8):
        exact = float(np.quantile(last_orders, q, method="lower"))
        assert abs(h.quantile(q) - exact) <= day
    assert abs(h.fraction_below(float(np.median(last_orders))) - 0.5) < 0.01
    again = type(h).from_list(h.to_list())
    assert again == h and again.linear_width == day
    assert histogram_for("clv", 0.01).linear_width is None


def test_the_inlined_bucket_key_is_the_mappings_key():
    """``LogHistogram`` computes DDSketch's ``LogarithmicMapping.key`` in one closure: the same keys."""
    import random

    from streams.core.distribution import _key_function, _mapping

    rnd = random.Random(5)
    for accuracy in (0.01, 0.02, 0.005):
        mapping = _mapping(accuracy)
        key = _key_function(mapping)
        values = [rnd.randint(1, 10**9) / 100 for _ in range(20_000)] + [0.01, 1.0, 1e7, 123456.78]
        values += [mapping.value(k) for k in range(-50, 2000, 7)]  # bucket representatives, near the edges
        assert [key(v) for v in values] == [mapping.key(v) for v in values]


def test_a_shift_equals_a_removal_then_an_addition():
    """``shift_cents`` (the same-bucket shortcut) leaves the histogram as the two steps do, dict order included."""
    import random

    rnd = random.Random(9)
    for width in (None, 86_400_000):
        values = [rnd.choice([0, rnd.randint(-10**6, 10**6), rnd.randint(1, 300)]) for _ in range(400)]
        a = check_shifts_equal_two_steps(rnd, values, lambda old: rnd.choice(
            [0, -old, old + rnd.randint(-3, 3), int(old * rnd.uniform(0.9, 1.1)), rnd.randint(-10**6, 10**6)]),
            width=width)
        before = (a.count, a.zeros, list(a.positive.items()), list(a.negative.items()))
        for missing in (10**15 + 7, -(10**15 + 7)):  # not there: refused, as add_cents(old, -1) refuses it
            with pytest.raises(ValueError, match="not in the histogram"):
                a.shift_cents(missing, 5 if missing > 0 else -5)
        assert (a.count, a.zeros, list(a.positive.items()), list(a.negative.items())) == before
