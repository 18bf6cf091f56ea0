"""The Faust topology: topics, the customer-state table and the agent.

Built by a function from ``Settings`` so tests and tools build the same topology
with their own configuration (Kafka Streams examples style). The agent is thin:
records in, ``Pipeline.handle`` decides, writes and sends go out.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from datetime import datetime, timezone
from typing import Optional

import faust
from faust.types import TP
from faust.types.enums import ProcessingGuarantee

from .kafka.broker import faust_settings_for
from .kafka.faust_private import (before_table_recovery, delivery_failure, flush_producer_buffer_fully,
                                  restart_streams_at_committed_offsets, in_event_context,
                                  recover_to_last_committed_record, set_fetch_max_wait, set_isolation_level)
from .kafka.partitioning import partition_for
from .kafka.worker_logging import Worker
from .core.prediction import ModelScorer
from .metrics import MODEL_INFO, PROCESSING_SECONDS, observe, set_population_source, watch_worker
from .models.params import ModelParameters
from .core.aggregation import summary_dict
from .core.snapshots import version_name
from .ops.security import aiokafka_config, faust_credentials
from .pipeline import DEAD_LETTER, DEFERRED, POPULATION, REKEY, SEGMENT_CHANGES, Pipeline, Record, StateCache
from . import eos
from .changelog import DirectChangelog
from .ownership import PartitionOwnership
from .population_wait import WaitingRecords
from .settings import Settings
# names re-exported for modules that import them from here
from .topics import (STATE_TABLE, population_topic_name, redrive_topic_name,  # noqa: F401
                     rekey_topic_name, source_codes, state_changelog_topic)
from .views import Population, SummarySource, register_views

EXIT_UNDELIVERED = 75  # the worker's exit status after a record the broker refused (EX_TEMPFAIL: restart it)


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


def build_topology(app: faust.App, settings: Settings) -> Topology:
    codes = source_codes(settings)
    inputs = tuple(codes)
    pipeline = Pipeline(settings.engine_config(), settings.edge_rules(), codes, replay=settings.replay,
                        clock=_wall_clock_iso, population_config=settings.population_config(),
                        partitions=settings.partitions, population_period_ms=settings.population_period_ms())
    source = _raw_topic(app, settings, *inputs)
    outputs = {SEGMENT_CHANGES: _raw_topic(app, settings, settings.topic_segment_changes),
               DEAD_LETTER: _raw_topic(app, settings, settings.topic_dead_letter),
               REKEY: _raw_topic(app, settings, rekey_topic_name(settings))}
    table = app.Table(STATE_TABLE, default=None, partitions=settings.partitions,
                      key_type=bytes, value_type=bytes)

    ownership = PartitionOwnership()  # checkpoints and revocations take turns (streams/ownership.py)
    changelog_name = state_changelog_topic(settings.app_id)
    transactions = None  # exactly once: one transactional producer per owned input partition (streams/eos.py)
    if settings.exactly_once:
        client = aiokafka_config(settings)
        transactions = eos.PartitionTransactions(settings.app_id, app.conf.id, settings.bootstrap,
                                                 changelog_name, client)

        async def _fence_before_recovery(assigned) -> None:
            mine = {tp.partition for tp in assigned if tp.topic in inputs}
            await transactions.revoked(set(transactions.producers) - mine)
            await transactions.assigned(mine)

        before_table_recovery(app, _fence_before_recovery)

        async def _last_committed(tps):
            return await eos.last_committed_records(settings.bootstrap, client, tps)

        recover_to_last_committed_record(_last_committed)
    else:
        recover_to_last_committed_record(None)

    @app.on_partitions_assigned.connect
    async def _on_assigned(sender, assigned, **kwargs):  # noqa: ANN001 - Faust signal signature
        pipeline.needs_rebuild = True

    @app.on_rebalance_complete.connect
    async def _on_rebalance_complete(sender, **kwargs):  # noqa: ANN001 - Faust signal signature
        ownership.assigned()  # the assignment is known and its tables restored

    def partition_of(key: bytes) -> int:
        # The Java/kafka-python default partitioner: where a producer keyed by customer id puts it.
        return partition_for(key, settings.partitions)

    def owned_inputs() -> set:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic in inputs}

    def record_of(event) -> Record:
        m = event.message
        return Record(m.topic, m.partition, m.offset, m.key, m.value,
                      None if m.timestamp is None else round(m.timestamp * 1000))

    async def per_event(event) -> None:
        """One event settled on its own: outputs acknowledged, then the state written."""
        record = record_of(event)
        started = time.perf_counter()
        try:
            result = pipeline.handle(record, table.get)
        except Exception as exc:  # a bug must not stop the partition: park the record, loudly
            app.log.exception("processing failed at %s[%s]@%s", record.topic, record.partition, record.offset)
            result = pipeline.failed(record, exc)
        waiting.hold(event.message, result)
        sent = [await outputs[role].send(key=key, value=value) for role, key, value in result.outputs]
        # Outputs reach the broker before the state that records their cause: the state holds the
        # event's offset, so after a kill -9 a recovered state makes the redelivered event a
        # duplicate that emits nothing, and a change sent after the state write would be lost
        # (measured: 1-2 of ~1,800 on both brokers; the producer gives no order across
        # partitions). Waiting for these acks turns that into a possible duplicate instead,
        # recognisable by (customer_id, sequence). Without writes too: Faust's commit does not
        # wait for these, and a refused one must not be acked.
        await outputs_acknowledged(sent)
        for key, value in result.writes.items():
            table[key] = value
        PROCESSING_SECONDS.observe(time.perf_counter() - started)
        for done in result.processed():
            observe(done)
        await waiting.release(result)

    output_names: dict = {}  # role -> topic name, filled on first send (POPULATION joins ``outputs`` below)
    # At least once: straight to Faust's producer (its Topic.send wraps each record in future-message
    # objects and sensor callbacks, about as costly as our core per output). Exactly once keeps
    # Topic.send, which attaches the send to the partition's transaction.
    direct_sends = app.conf.processing_guarantee != ProcessingGuarantee.EXACTLY_ONCE

    async def send_output(role: str, key: bytes, value: bytes):
        """Hand one output to the producer; returns the future of its acknowledgement."""
        if direct_sends:
            name = output_names.get(role)
            if name is None:
                name = output_names[role] = outputs[role].get_topic_name()
            return await app.producer.send(name, key, value, None, None, None)
        return await outputs[role].send(key=key, value=value)

    def crash_on_failed_delivery(exc: BaseException) -> None:
        # A record the broker did not take (an output, or a changelog record after its events were
        # acked): nothing after it may be committed, and this worker must not go on past it (a later
        # batch would move states beyond events then redelivered as duplicates). Exit at once, as a
        # kill -9 does, which the at-least-once order survives: the restart redelivers from the last
        # commit. Not app.crash(): Faust's graceful stop would then commit acked offsets (its flush
        # raises the failure, faust_private 3./9., only while the buffer runs), and in the test of
        # this (tests/integration/test_direct_changelog.py) the crashed worker had not exited after 120 s.
        app.log.error("a record was not delivered (%s: %s): exiting so its events are redelivered",
                      type(exc).__name__, exc)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_UNDELIVERED)

    async def outputs_acknowledged(sent: list) -> None:
        """Wait for the acks of ``sent``; a refused output ends the worker (its events must be redelivered)."""
        if not sent:
            return
        try:
            await asyncio.gather(*sent)
        except Exception as exc:  # noqa: BLE001 - any refused output
            crash_on_failed_delivery(exc)

    changelog = DirectChangelog(app, table, crash_on_failed_delivery)

    async def stop_taking() -> None:
        # Shutting down: Faust revokes the table partitions before it drains in-flight events,
        # yet would still commit their offsets. Leave these events unacked (redelivered after the
        # restart; updates are idempotent) and wait to be cancelled.
        # Needs stream_wait_empty=False (see create_app), else shutdown waits for it.
        await asyncio.Event().wait()

    async def checkpoint(stream, events) -> None:
        """A batch of events settled together (the Kafka Streams / Quix Streams commit order).

        1. the pure core over the whole batch, customers decoded once (``Pipeline.handle_batch``);
        2. every output sent without waiting, then all acknowledged together;
        3. the changed states written to the table (RocksDB + changelog), each from an event of
           its partition;
        4. the events acknowledged: only now may Faust commit their offsets (its commit flushes
           the producer, changelog included, before it commits).
        A crash before 3 redelivers the batch: the same outputs again, same (customer_id, sequence).
        A crash after 3 leaves states that make the redelivered events redeliveries (no output).
        A record the broker refused (output or changelog) makes the worker exit before anything after it commits.
        """
        failed = delivery_failure(app)
        if failed is not None:  # a record of Faust's buffer failed (the per-event table writes): ack nothing more
            crash_on_failed_delivery(failed)
        started = time.perf_counter()
        records = [record_of(event) for event in events]
        states = StateCache(table.get)
        try:
            results = pipeline.handle_batch(records, states)
        except Exception:  # noqa: BLE001 - a bug in one record: redo the batch record by record
            # The cache holds partly applied states and the pipeline's heaps and figures saw part of
            # the batch: drop both (the table is untouched) and settle each event on its own, which
            # parks the failing record as a processing error.
            pipeline.rebuild(partition_of, table.items(), owned_inputs())
            for event in events:
                await per_event(event)
            for event in events:
                await stream.ack(event)
            return
        for event, result in zip(events, results):
            waiting.hold(event.message, result)  # a record waiting for a population version stays unacked
        sent = [await send_output(role, key, value) for result in results for role, key, value in result.outputs]
        await outputs_acknowledged(sent)
        if app.should_stop:
            await stop_taking()
        # Every partition of this batch is still ours: a revocation waits for this checkpoint (``ownership``).
        last_event = {event.message.partition: event for event in events}
        for partition, writes in states.settle_by_partition().items():
            await changelog.write(partition, writes, last_event[partition])  # store + changelog (streams/changelog.py)
        # No flush here: Faust's commit waits for these changelog records (faust_private 9.) before it
        # commits the offsets of acked events, so the records leave while the next batch is processed.
        for event in events:
            await stream.ack(event)
        share = (time.perf_counter() - started) / len(events)  # the checkpoint's time, spread over its records
        for result in results:
            for done in result.processed():
                PROCESSING_SECONDS.observe(share)
                observe(done)
            await waiting.release(result)  # released waiting records: their states are written now

    def topic_of(role: str) -> str:
        name = output_names.get(role)
        if name is None:
            name = output_names[role] = outputs[role].get_topic_name()
        return name

    def results_one_by_one(records) -> tuple:
        """After a failed batch: each record on its own (a failing one parked as a processing error),
        states chained through the writes of the records before it."""
        pipeline.rebuild(partition_of, table.items(), owned_inputs())
        merged, by_partition, results = {}, {}, []

        def load(key):
            return merged[key] if key in merged else table.get(key)

        for record in records:
            try:
                result = pipeline.handle(record, load)
            except Exception as exc:  # noqa: BLE001 - park the record, loudly
                app.log.exception("processing failed at %s[%s]@%s", record.topic, record.partition, record.offset)
                result = pipeline.failed(record, exc)
            merged.update(result.writes)
            by_partition.setdefault(record.partition, {}).update(result.writes)
            results.append(result)
        return results, by_partition

    async def checkpoint_exactly_once(stream, events) -> None:
        """A batch settled in one transaction per input partition (streams/eos.py):

        1. the pure core over the batch, as ``checkpoint``;
        2. per partition: its outputs, its changelog records and its next input offsets in its
           transaction, committed (partitions in parallel);
        3. for the committed partitions only: the states written to RocksDB without Faust's changelog
           record, the changelog offset kept as the store's persisted offset, the events acknowledged.
        """
        started = time.perf_counter()
        events = [event for event in events if transactions.owns(event.message.partition)]
        if not events:
            return
        records = [record_of(event) for event in events]
        states = StateCache(table.get)
        try:
            results = pipeline.handle_batch(records, states)
            writes = states.settle_by_partition()
        except Exception:  # noqa: BLE001 - a bug in one record: redo the batch record by record
            results, writes = results_one_by_one(records)
        for event, result in zip(events, results):
            waiting.hold(event.message, result)
        if app.should_stop:
            await stop_taking()
        sends: dict = {}
        settled, released = [], set()
        for record, result in zip(records, results):
            sends.setdefault(record.partition, []).extend(
                (topic_of(role), key, value, None) for role, key, value in result.outputs)
            if result.outcome != DEFERRED:
                settled.append((record.topic, record.partition, record.offset))
            for done, _ in result.released:
                released.add((done.topic, done.partition, done.offset))
        held = [key for key in waiting.messages if key not in released]
        offsets = eos.next_offsets(list(settled) + sorted(released), held)
        partitions = sorted(set(sends) | set(writes) | {p for _, p in offsets})
        outcomes = await asyncio.gather(*(
            transactions.commit(p, sends.get(p, []), writes.get(p, {}),
                                {tp: o for tp, o in offsets.items() if tp[1] == p}) for p in partitions),
            return_exceptions=True)
        committed, lost = {}, set()
        for p, outcome in zip(partitions, outcomes):
            if isinstance(outcome, eos.PartitionLost):
                lost.add(p)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                committed[p] = outcome
        if lost:  # nothing of theirs is visible: their next owner (or next assignment) redoes the records
            pipeline.forget_partitions(lost)
            waiting.forget(lost)
        last_event = {event.message.partition: event for event in events}
        store = table.data
        for p, changelog_offset in committed.items():
            with in_event_context(last_event[p]):
                for key, value in writes.get(p, {}).items():
                    store[key] = value  # the store only: the changelog record is in the transaction
            if changelog_offset is not None:
                store.set_persisted_offset(TP(changelog_name, p), changelog_offset)
        for event in events:
            if event.message.partition in committed:
                await stream.ack(event)
        share = (time.perf_counter() - started) / len(events)
        for record, result in zip(records, results):
            if record.partition not in committed:
                continue
            for done in result.processed():
                PROCESSING_SECONDS.observe(share)
                observe(done)
            await waiting.release(result)

    def still_owned(events) -> list:
        """The events of partitions this worker owns after the rebalance that held them back; the
        others are left unacknowledged to their new owner, which reads them again."""
        owned = owned_inputs()
        return [event for event in events if event.message.partition in owned]

    @app.agent(source, name="customer-events")
    async def customer_events(stream):
        if settings.live_path == "per-event":
            async for event in stream.events():
                if app.should_stop:
                    await stop_taking()
                async with ownership.settling():
                    if pipeline.needs_rebuild:
                        pipeline.rebuild(partition_of, table.items(), owned_inputs())
                    if still_owned([event]):
                        await per_event(event)
            return
        # A checkpoint puts up to one changelog record per record of the batch in Faust's producer buffer
        # at once; past max_messages (100) Faust throttles the fetch side until it ebbs.
        buffer = app.producer.buffer
        buffer.max_messages = max(buffer.max_messages, 2 * settings.checkpoint_records)
        async for events in stream.noack_take(settings.checkpoint_records, settings.checkpoint_interval_ms / 1000):
            if app.should_stop:
                await stop_taking()
            async with ownership.settling():
                if pipeline.needs_rebuild:  # after the rebalance: from the restored tables
                    pipeline.rebuild(partition_of, table.items(), owned_inputs())
                events = still_owned(events)
                if events:
                    await (checkpoint_exactly_once if transactions is not None else checkpoint)(stream, events)

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
                             settings.population_idle_timeout_s)

    @app.timer(interval=1.0)
    async def declare_idle_partitions():
        """Wall clock, on purpose: only here may a lagging partition stop holding the others back."""
        await waiting.expire(time.monotonic())

    @app.on_partitions_revoked.connect
    async def _on_revoked(sender, revoked, **kwargs):  # noqa: ANN001 - Faust signal signature
        # The group reassigns nothing before this returns: let the checkpoint in flight write its states
        # while the partitions are still ours, then get them to the changelog the new owner restores from
        # (Faust flushed its producer before this signal, not after that checkpoint).
        await ownership.revoke()
        await app.producer.flush()
        if transactions is not None:  # no transaction of theirs is open now: close their producers
            await transactions.revoked({tp.partition for tp in revoked if tp.topic in inputs})
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

    # exactly once: population cuts are sent in the partitions' transactions; an aborted one is not read
    isolation = "read_committed" if settings.exactly_once else "read_uncommitted"
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", isolation_level=isolation, **aiokafka_config(settings))
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
        topic_replication_factor=settings.replication_factor,  # Faust's own topics: its changelog
        table_standby_replicas=settings.standby_replicas,  # see CLV_STANDBY_REPLICAS: standbys served missing states
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
        Worker=Worker,  # keeps the root logger at the chosen level (streams/kafka/worker_logging.py)
    )
    # Workarounds a test broker needs (e.g. one record per batch on tansu): see streams/kafka/broker.py.
    conf.update(faust_settings_for(settings.broker_profile, session_timeout=settings.session_timeout_s))
    conf.update(faust_credentials(settings))  # SASL/SSL from CLV_* (streams/ops/security.py)
    set_fetch_max_wait(settings.fetch_max_wait_ms)
    # exactly once: neither the stream nor the table recovery may read an aborted record (streams/eos.py)
    set_isolation_level("read_committed" if settings.exactly_once else "read_uncommitted")
    flush_producer_buffer_fully()  # Faust's commit may not run ahead of the changelog
    restart_streams_at_committed_offsets()  # a partition that comes back restarts at its committed offset
    return faust.App(settings.app_id, **conf)
