"""Per-segment figures kept incrementally: hand-checked populations, remove/add, merge, encoding."""
import pytest

from streams.core import codec
from streams.core.aggregation import (PopulationAggregate, PopulationConfig, PopulationSnapshot, contribution_of,
                                      decode_published, encode_published, merge_published, record_assessment)
from streams.core.clv import ClvFigures
from streams.core.events import DAY_MS
from streams.core.state import CustomerState, apply
from tests.core.builders import T0, nps, order

CFG = PopulationConfig()


def customer(cid, segment, orders=(), last_nps=None, clv=None, ces=(), day=0, metrics=None, cfg=CFG):
    """A customer assessed on ``day`` with ``orders`` = [(day, amount, cost)] and the given CLV figures."""
    s = CustomerState(cid)
    for n, (d, amount, cost) in enumerate(orders):
        apply(s, order(n, d, amount, cost, cid=cid), 7 * DAY_MS)
    if last_nps is not None:
        apply(s, nps(99, day, last_nps, cid=cid), 7 * DAY_MS)
    for score in ces:
        s.ces_count += 1
        s.ces_sum += score
    s.segment = segment
    if clv is not None:
        record_assessment(s, clv, T0 + day * DAY_MS, cfg, metrics)
    return s


def figures(formula, predicted=None, potential=None, p_alive=None):
    return ClvFigures(0, 0, formula, 1, 1, predicted, potential, p_alive)


@pytest.fixture
def population():
    return [
        customer("a", "A", [(0, 100, 40), (10, 50, 20)], last_nps=10, clv=figures(300), ces=(2, 4), day=20),
        customer("b", "A", [(0, 200, 150)], last_nps=5, clv=figures(120, 90, 150, 0.4), day=20),
        customer("c", "B", [(0, 30, 10)], last_nps=8, clv=figures(40), day=400),  # no order for 400 days: churned
        customer("d", "B", [], clv=figures(25), day=400),  # no orders: not churned
    ]


def test_hand_checked_segment_figures(population):
    agg = PopulationAggregate.of(population, CFG)
    a, b = agg.figures()["A"], agg.figures()["B"]
    assert (a.customers, a.historical_revenue, a.historical_margin) == (2, 350.0, 140.0)
    assert (a.formula_clv, a.predicted_clv, a.potential_clv) == (420.0, 90.0, 150.0)
    assert a.churned == 1  # b: P(alive) 0.4 below the at-risk 0.5
    assert (a.nps_responses, a.nps_promoters, a.nps_detractors, a.nps) == (2, 1, 1, 0.0)
    assert (a.ces_responses, a.average_ces) == (2, 3.0)
    assert (b.customers, b.historical_revenue, b.churned, b.churn_rate) == (2, 30.0, 1, 0.5)
    assert (b.nps_responses, b.nps_promoters, b.nps_detractors) == (1, 0, 0)
    summary = agg.summary("p", "1", [0])
    assert summary.customers == 4 and summary.revenue_share("A") == pytest.approx(350 / 380)
    # Pareto: top 20% of 4 customers = 0.8 of the biggest spender (200 of 380 revenue; 60 of 160 margin)
    assert summary.revenue_share_top20 == pytest.approx(0.8 * 200 / 380)
    assert summary.margin_share_top20 == pytest.approx(0.8 * 90 / 160)


def test_value_metric_and_declared_metrics_are_distributions(population):
    cfg = PopulationConfig(value_metric="predicted")
    s = customer("e", "A", [(0, 10, 1)], clv=figures(80, 60), metrics={"score": 7, "historical_revenue": 10},
                 cfg=cfg)
    assert s.population_record[4] == {"score": 700}  # derivable values are not stored twice
    c = contribution_of(s, cfg)
    assert dict(c.metrics) == {"clv": 6000, "historical_revenue": 1000, "historical_margin": 900, "score": 700}
    agg = PopulationAggregate.of(population, CFG)
    view = PopulationSnapshot(agg, [0])
    assert view.size("clv") == 4 and view.quantile("clv", 1) == pytest.approx(300, rel=0.01)
    assert view.fraction_below("clv", 100) == pytest.approx(0.5)
    assert view.size("nothing") == 0 and view.quantile("nothing", 0.5) is None


def test_update_removes_the_previous_contribution_exactly(population):
    agg = PopulationAggregate.of(population, CFG)
    stored = codec.decode(codec.encode(population[0]))  # what the table holds
    before = contribution_of(stored, CFG)
    apply(stored, order(7, 30, 500, 100, cid="a"), 7 * DAY_MS)
    stored.segment = "B"
    record_assessment(stored, figures(900), T0 + 30 * DAY_MS, CFG)
    assert agg.update(before, contribution_of(stored, CFG))
    assert agg == PopulationAggregate.of([stored, *population[1:]], CFG)
    assert not agg.update(contribution_of(stored, CFG), contribution_of(stored, CFG))


def test_removing_everyone_leaves_nothing(population):
    agg = PopulationAggregate.of(population, CFG)
    for s in population:
        agg.add(contribution_of(s, CFG), -1)
    assert agg == PopulationAggregate() and not agg.segments and not agg.metrics
    with pytest.raises(ValueError):
        agg.add(contribution_of(population[0], CFG), -1)


def test_state_written_before_records_still_counts():
    s = customer("old", "A", [(0, 100, 40)])  # assessed by a version that kept no record
    c = contribution_of(s, CFG)
    assert c.figures[:4] == (1, 10000, 6000, 0) and "clv" not in dict(c.metrics)
    assert contribution_of(CustomerState("new"), CFG) is None  # no segment yet: not counted


def test_merge_of_partitions_equals_one_aggregate_and_encoding_round_trips(population):
    parts = [PopulationAggregate.of(population[:1], CFG), PopulationAggregate.of(population[1:], CFG)]
    blobs = {p: decode_published(encode_published(a, p, "pol", "1")) for p, a in enumerate(parts)}
    assert blobs[1].aggregate == parts[1] and blobs[1].partition == 1
    view, summary = merge_published(blobs, "pol", "1")
    whole = PopulationAggregate.of(population, CFG)
    assert view.aggregate == whole and summary == whole.summary("pol", "1", [0, 1])
    assert view.partitions == (0, 1) and summary.partitions == (0, 1)
    again, _ = merge_published(dict(reversed(list(blobs.items()))), "pol", "1")
    assert again.version == view.version  # the version is a function of the content
    other, summary = merge_published(blobs, "pol", "2")  # published under another policy version: left out
    assert other.partitions == () and summary.customers == 0 and other.version != view.version
    with pytest.raises(ValueError, match="unknown population aggregate format"):
        decode_published(b"\x93\x07\x00\x00")


def test_record_costs_few_bytes_and_old_blobs_decode():
    import msgpack

    s = customer("cust-000123", "A", [(0, 100, 40), (3, 60, 20)], last_nps=9, clv=figures(412.37, 388.1, 402.9, 0.93))
    blob = codec.encode(s)
    row = msgpack.unpackb(blob, strict_map_key=False)
    v1 = msgpack.packb([1, *row[1:-1]])  # a format-1 row: no record at the end
    old = codec.decode(v1)
    assert old.population_record is None and old.business_view() == s.business_view()
    assert len(blob) - len(v1) <= 16
