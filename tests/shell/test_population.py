"""Population figures in the record seam: incremental == rebuilt from the table; two pipelines
owning halves of the partitions publish, receive, and agree on the global view."""
from dataclasses import replace

import pytest

from streams.core import codec
from streams.core.aggregation import PopulationAggregate
from streams.generator import EventGenerator, GeneratorConfig
from streams.kafka.partitioning import partition_for
from streams.kafka.produce import encode_value
from streams.pipeline import Pipeline, Record
from streams.settings import Settings
from streams.topology import source_codes

SETTINGS = replace(Settings(), partitions=4, churn_days=10.0)


def run(events, pipeline=None, store=None, owned=None):
    """Feed generated events through a pipeline (only partitions in ``owned``); return (pipeline, store)."""
    pipeline = pipeline or Pipeline(SETTINGS.engine_config(), SETTINGS.edge_rules(), source_codes(SETTINGS),
                                    population_config=SETTINGS.population_config())
    store = {} if store is None else store
    offsets = {}
    for ev in events:
        key = ev.key.encode()
        p = partition_for(key, SETTINGS.partitions)
        offsets[p] = offsets.get(p, -1) + 1
        if owned is not None and p not in owned:
            continue
        result = pipeline.handle(Record(SETTINGS.topic_orders, p, offsets[p], key, encode_value(ev.value),
                                        ev.event_time_ms), store.get)
        store.update(result.writes)
    return pipeline, store


@pytest.fixture(scope="module")
def events():
    return list(EventGenerator(GeneratorConfig(seed=5, customers=150, share_duplicates=0.03)).events(limit=2500))


@pytest.fixture(scope="module")
def whole(events):
    """One pipeline owning every partition, and its store."""
    return run(events)


def _states(store):
    return [codec.decode(b) for b in store.values()]


def _contribution(state, pipeline):
    from streams.core.aggregation import contribution_of

    return contribution_of(state, pipeline.population_config)


def by_partition(store):
    parts = {}
    for key, blob in store.items():
        parts.setdefault(partition_for(key, SETTINGS.partitions), []).append(codec.decode(blob))
    return parts


def test_incremental_figures_equal_the_figures_of_the_stored_states(whole):
    pipeline, store = whole
    cfg = pipeline.population_config
    for p, states in by_partition(store).items():
        assert pipeline.aggregates[p] == PopulationAggregate.of(states, cfg), p
    summary = pipeline.population_summary()
    assert summary.customers == len(store) and summary.partitions == (0, 1, 2, 3)
    assert sum(f.churned for f in summary.segments.values()) > 0  # churn_days=10 over two months of history
    assert pipeline.population_summary([1]).customers == len(by_partition(store)[1])


def test_rebuild_recounts_the_same_figures_and_drops_partitions_no_longer_owned(whole):
    pipeline, store = whole
    fresh = Pipeline(SETTINGS.engine_config(), SETTINGS.edge_rules(), source_codes(SETTINGS),
                     population_config=SETTINGS.population_config())
    fresh.rebuild(lambda k: partition_for(k, SETTINGS.partitions), store.items(), [0, 2])
    assert set(fresh.aggregates) == {0, 2}
    assert fresh.aggregates[0] == pipeline.aggregates[0] and fresh.aggregates[2] == pipeline.aggregates[2]
    assert set(fresh.population_updates()) == {0, 2} and fresh.population_updates() == {}


def test_two_pipelines_publish_and_agree_on_the_global_view(events, whole):
    whole, store = whole
    halves = [run(events, owned={0, 1})[0], run(events, owned={2, 3})[0]]
    published = [blob for half in halves for blob in half.population_updates().values()]
    published.append(b"not msgpack at all \xc1")
    for half in halves:
        assert half.receive_population(published) == 1  # the bad record is skipped
    want = whole.population_summary()
    for half in halves:
        assert half.global_summary == want
        assert half.population.version == halves[0].population.version
    exact = sorted(dict(c.metrics)["clv"] / 100 for s in _states(store) for c in [_contribution(s, whole)])
    assert halves[0].population.quantile("clv", 0.8) == pytest.approx(exact[int(0.8 * (len(exact) - 1))], rel=0.01)
    view = halves[0].population
    assert view.size("clv") == want.customers
    # nothing changed since: nothing to publish; a change publishes its partition only
    assert halves[0].population_updates() == {}
