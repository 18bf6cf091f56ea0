"""The Faust topology: topics, the customer-state table and the agent.

Built by a function from ``Settings`` so tests and tools build the same topology
with their own configuration (Kafka Streams examples style). The agent is thin:
records in, ``Pipeline.handle`` decides, writes and sends go out.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from datetime import datetime, timezone
from typing import Optional

import faust

from .kafka.broker import faust_settings_for
from .kafka.partitioning import partition_for
from .core.prediction import ModelScorer
from .metrics import MODEL_INFO, PROCESSING_SECONDS, observe, set_population_source, watch_worker
from .models.params import ModelParameters
from .core.aggregation import summary_dict
from .core.snapshots import version_name
from .ops.security import aiokafka_config, faust_credentials
from .pipeline import DEAD_LETTER, POPULATION, REKEY, SEGMENT_CHANGES, Pipeline, Record
from .population_wait import POPULATION_IDLE_TIMEOUT_S, WaitingRecords
from .settings import Settings
from .views import Population, SummarySource, register_views

STATE_TABLE = "customer-state"


def rekey_topic_name(settings: Settings) -> str:
    return f"{settings.app_id}-rekey"


def redrive_topic_name(settings: Settings) -> str:
    """Where redriven dead letters go. A source of its own: its events are old by nature,
    and lateness is measured per source, so they are not "late" against live traffic."""
    return f"{settings.app_id}-redrive"


def population_topic_name(settings: Settings) -> str:
    """Compacted, one partition: the latest figures of each input partition (key = partition number)."""
    return f"{settings.app_id}-population"


@dataclass
class Topology:
    app: faust.App
    settings: Settings
    pipeline: Pipeline
    table: object
    outputs: dict
    population: Population  # what /segments serves
    local_population: Optional[SummarySource] = None  # what the per-segment metrics read


def _raw_topic(app: faust.App, settings: Settings, *names: str, **kw):
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                     partitions=settings.partitions, **kw)


def _wall_clock_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def source_codes(settings: Settings) -> dict:
    """Input topic -> the short code stored in customer state for positions and watermarks.

    Setting the three CLV_TOPIC_* inputs to one topic is allowed (one merged,
    strictly ordered input log); each topic is then consumed once.
    """
    codes = {}
    for name, code in ((settings.topic_orders, "o"), (settings.topic_interactions, "i"),
                       (settings.topic_customers, "c"), (rekey_topic_name(settings), "r"),
                       (redrive_topic_name(settings), "d")):
        codes.setdefault(name, code)
    return codes


def build_topology(app: faust.App, settings: Settings) -> Topology:
    codes = source_codes(settings)
    inputs = tuple(codes)
    pipeline = Pipeline(settings.engine_config(), settings.edge_rules(), codes, replay=settings.replay,
                        clock=_wall_clock_iso, population_config=settings.population_config(),
                        partitions=settings.partitions)
    source = _raw_topic(app, settings, *inputs)
    outputs = {SEGMENT_CHANGES: _raw_topic(app, settings, settings.topic_segment_changes),
               DEAD_LETTER: _raw_topic(app, settings, settings.topic_dead_letter),
               REKEY: _raw_topic(app, settings, rekey_topic_name(settings))}
    table = app.Table(STATE_TABLE, default=None, partitions=settings.partitions,
                      key_type=bytes, value_type=bytes)

    @app.on_partitions_assigned.connect
    async def _on_assigned(sender, assigned, **kwargs):  # noqa: ANN001 - Faust signal signature
        pipeline.needs_rebuild = True

    def partition_of(key: bytes) -> int:
        # The Java/kafka-python default partitioner: where a producer keyed by customer id puts it.
        return partition_for(key, settings.partitions)

    @app.agent(source, name="customer-events")
    async def customer_events(stream):
        async for event in stream.events():
            if app.should_stop:
                # Shutting down: Faust revokes the table partitions before it drains in-flight events,
                # yet would still commit their offsets. Leave this event unacked (it is redelivered
                # after the restart; updates are idempotent) and wait to be cancelled.
                # Needs stream_wait_empty=False (see create_app), else shutdown waits for it.
                await asyncio.Event().wait()
            if pipeline.needs_rebuild:
                mine = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic in inputs}
                pipeline.rebuild(partition_of, table.items(), mine)
            m = event.message
            started = time.perf_counter()
            record = Record(m.topic, m.partition, m.offset, m.key, m.value,
                            None if m.timestamp is None else round(m.timestamp * 1000))
            try:
                result = pipeline.handle(record, table.get)
            except Exception as exc:  # a bug must not stop the partition: park the record, loudly
                app.log.exception("processing failed at %s[%s]@%s", m.topic, m.partition, m.offset)
                result = pipeline.failed(record, exc)
            waiting.hold(m, result)
            sent = [await outputs[role].send(key=key, value=value) for role, key, value in result.outputs]
            if sent and result.writes:
                # Outputs reach the broker before the state that records their cause: the state holds the
                # event's offset, so after a kill -9 a recovered state makes the redelivered event a
                # duplicate that emits nothing, and a change sent after the state write would be lost
                # (measured: 1-2 of ~1,800 on both brokers; the producer gives no order across
                # partitions). Waiting for these acks turns that into a possible duplicate instead,
                # recognisable by (customer_id, sequence). Only events with outputs and a state write
                # wait (segment changes, late events), not invalid or rekeyed ones.
                await asyncio.gather(*sent)
            for key, value in result.writes.items():
                table[key] = value
            PROCESSING_SECONDS.observe(time.perf_counter() - started)
            for done in result.processed():
                observe(done)
            await waiting.release(result)

    parameters_topic = app.topic(settings.topic_model_parameters, partitions=1, compacting=True,
                                 key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    @app.task
    async def follow_model_parameters():
        """Every worker reads the whole parameters topic (no consumer group) and scores with the latest."""
        if settings.model_params_file:
            use_parameters(pipeline, Path(settings.model_params_file).read_bytes(), settings, app.log)
            return
        await parameters_topic.maybe_declare()
        consumer = await _whole_topic_reader(settings, settings.topic_model_parameters)
        try:
            async for msg in consumer:
                use_parameters(pipeline, msg.value, settings, app.log)
        finally:
            await consumer.stop()

    population_topic = app.topic(population_topic_name(settings), partitions=1, compacting=True,
                                 key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    outputs[POPULATION] = population_topic  # versioned cuts, sent with the outputs of the record that made them
    waiting = WaitingRecords(app, pipeline, outputs[REKEY],
                             getattr(settings, "population_idle_timeout_s", POPULATION_IDLE_TIMEOUT_S))

    @app.timer(interval=1.0)
    async def declare_idle_partitions():
        """Wall clock, on purpose: only here may a lagging partition stop holding the others back."""
        await waiting.expire(time.monotonic())

    @app.on_partitions_revoked.connect
    async def _on_revoked(sender, revoked, **kwargs):  # noqa: ANN001 - Faust signal signature
        pipeline.forget_partitions({tp.partition for tp in revoked if tp.topic in inputs})
        waiting.forget({tp.partition for tp in revoked if tp.topic in inputs})

    @app.timer(interval=settings.population_publish_interval_s)
    async def publish_population():
        """Publish the figures of owned partitions that changed; latest per partition wins on the topic."""
        for partition, blob in pipeline.population_updates().items():
            await population_topic.send(key=str(partition).encode(), value=blob)

    @app.task
    async def follow_population():
        """Every worker reads the whole population topic (no consumer group) into the global view."""
        await population_topic.maybe_declare()
        consumer = await _whole_topic_reader(settings, population_topic_name(settings))
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                blobs = [msg.value for msgs in batch.values() for msg in msgs]
                if blobs and pipeline.receive_population(blobs):
                    app.log.error("skipped unreadable population figures on %s", population_topic_name(settings))
                if blobs:
                    await waiting.tick()  # another worker's cut may complete the version a partition waits for
        finally:
            await consumer.stop()

    @app.page("/population")
    async def population(web, request):
        """The global per-segment figures this worker sees (read-only)."""
        return web.json(population_document(pipeline))

    topology = Topology(app, settings, pipeline, table, outputs,
                        register_views(app, table, pipeline, settings.api_token))
    # Per-segment figures: this worker's partitions for the gauges (summed across workers in PromQL),
    # the merged figures of every partition (from the population topic) for /segments.
    use_population(topology, local=pipeline.population_summary, merged=lambda: pipeline.global_summary)

    @app.task
    async def expose_worker_state():
        """Point the process-wide collectors at the app that runs (tasks start only there:
        `python -m streams.app` imports the module twice and builds a second, idle app)."""
        watch_worker(app, inputs)
        set_population_source(lambda: topology.local_population() if topology.local_population else None)

    return topology


def use_population(topology: Topology, local: Optional[SummarySource], merged: Optional[SummarySource]) -> None:
    """Point the per-segment metrics at this worker's partitions (``local``, summed across workers
    in PromQL) and /segments at the summary of every partition (``merged``)."""
    topology.local_population = local
    topology.population.source = merged


async def _whole_topic_reader(settings: Settings, topic: str):
    """A started consumer of a one-partition topic from its start, without a consumer group:
    every worker reads all of it (model parameters, population figures)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", **aiokafka_config(settings))
    await consumer.start()
    consumer.assign([TopicPartition(topic, 0)])
    return consumer


def population_document(pipeline: Pipeline) -> dict:
    view, summary = pipeline.population, pipeline.global_summary
    owned = sorted(pipeline.aggregates)  # partitions whose figures this worker keeps and publishes
    doc = {"version": None, "partitions": [], "owned": owned, "summary": None}
    if view is not None and summary is not None:
        doc.update(version=view.version, partitions=list(view.partitions), summary=summary_dict(summary))
    versions = pipeline.versions
    if versions is not None:  # relative decisions: which version is complete, who waits, who is idle
        done = versions.complete_through
        doc["decisions"] = {"complete_through": None if done is None else version_name(done),
                            "waiting_records": {p: len(q) for p, q in sorted(pipeline.waiting.items())},
                            "lagging_partitions": pipeline.lagging(), "idle_partitions": sorted(versions.idle)}
    return doc


def use_parameters(pipeline: Pipeline, blob: bytes, settings: Settings, log) -> None:
    """Install published model parameters; a bad record is logged and the current scorer kept."""
    try:
        params = ModelParameters.from_dict(json.loads(blob))
        pipeline.set_scorer(ModelScorer(params, settings.prediction_config()))
    except (ValueError, KeyError, TypeError) as exc:
        log.error("ignoring invalid model parameters: %s", exc)
        return
    MODEL_INFO.clear()
    MODEL_INFO.labels(params.version).set(1)
    log.info("scoring with model parameters %s", params.version)


def create_app(settings: Settings) -> faust.App:
    conf = dict(
        broker=settings.broker,
        store=settings.store,
        datadir=settings.data_dir,
        topic_partitions=settings.partitions,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(0.5, settings.session_timeout_s / 10),
        web_bind=settings.web_host,
        web_port=settings.web_port,
        canonical_url=settings.advertised_url,  # table_route forwards lookups to the owner's URL
        # Faust's own /router and /table pages would serve raw table values past the API's token.
        web_router_enabled=False,
        web_tables_enabled=False,
        consumer_auto_offset_reset="earliest",
        # Do not wait for in-flight events at shutdown: the agent stops taking events once the
        # app stops (see customer_events) and they are redelivered.
        stream_wait_empty=False,
    )
    # Workarounds a test broker needs (e.g. one record per batch on tansu): see streams/kafka/broker.py.
    conf.update(faust_settings_for(settings.broker_profile, session_timeout=settings.session_timeout_s))
    conf.update(faust_credentials(settings))  # SASL/SSL from CLV_* (streams/ops/security.py)
    return faust.App(settings.app_id, **conf)
