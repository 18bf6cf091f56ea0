"""Baselines for the benchmark: the naive Faust agent of issue 7 (one table write per event) and a
Faust agent that does nothing (NAIVE_MODE=nothing: Faust's own per-event cost, the ceiling of any agent).

    python bench/naive_agent.py worker -l warn   (env: NAIVE_BOOTSTRAP, NAIVE_TOPIC, NAIVE_APP, NAIVE_DATADIR,
                                                  NAIVE_PARTITIONS, NAIVE_PORT, NAIVE_EXPECT, NAIVE_OUT,
                                                  NAIVE_MODE=naive|nothing,
                                                  NAIVE_BROKER_KIND=tansu|kafka)

Same Faust version, broker overrides (streams.kafka.broker.faust_settings_for) and RocksDB store as
the engine; the agent decodes the JSON value and stores it under the record key, one ``table[key] =``
per event (no validation, no CLV). Both run in a process set up as the engine's worker is
(streams/worker.py): its ``Worker`` class (the root logger at the level asked for, not Faust's DEBUG)
and its garbage-collector threshold, so a ratio compares the agents' work, not their process settings.
When it has counted NAIVE_EXPECT events it writes
"<first event wall time> <last event wall time> <count>" to NAIVE_OUT.
"""
from __future__ import annotations

import json
import os
import time

import faust

from streams.kafka.broker import faust_settings_for
from streams.kafka.worker_logging import Worker
from streams.runtime import tune_garbage_collector

env = os.environ
EXPECT = int(env.get("NAIVE_EXPECT", "0"))
# The engine's overrides for the broker: tansu's work-arounds (3 s session); none on Apache Kafka.
KIND = env.get("NAIVE_BROKER_KIND", "tansu")
BROKER_OVERRIDES = faust_settings_for(KIND, session_timeout=3.0) if KIND == "tansu" else faust_settings_for(KIND)
WRITE = env.get("NAIVE_MODE", "naive") != "nothing"
app = faust.App(env.get("NAIVE_APP", "naive"), broker=f"kafka://{env.get('NAIVE_BOOTSTRAP', '127.0.0.1:9092')}",
                store="rocksdb://", datadir=env.get("NAIVE_DATADIR", "/tmp/naive"),
                topic_partitions=int(env.get("NAIVE_PARTITIONS", "4")), web_bind="127.0.0.1",
                web_port=int(env.get("NAIVE_PORT", "6099")), consumer_auto_offset_reset="earliest",
                stream_wait_empty=False, Worker=Worker, **BROKER_OVERRIDES)
tune_garbage_collector()
topic = app.topic(env.get("NAIVE_TOPIC", "events"), key_type=bytes, value_type=bytes, key_serializer="raw",
                  value_serializer="raw")
table = app.Table("naive-state", default=None, key_type=bytes, value_type=bytes,
                  partitions=int(env.get("NAIVE_PARTITIONS", "4")))
seen = {"n": 0, "first": None}


@app.agent(topic)
async def naive(stream):
    async for event in stream.events():
        if WRITE:
            doc = json.loads(event.value)
            table[event.key] = json.dumps({"last": doc.get("event_id"), "type": doc.get("type")}).encode()
        seen["n"] += 1
        if seen["first"] is None:
            seen["first"] = time.time()
        if seen["n"] == EXPECT:
            with open(env["NAIVE_OUT"], "w") as f:
                f.write(f"{seen['first']} {time.time()} {seen['n']}\n")


if __name__ == "__main__":
    app.main()
