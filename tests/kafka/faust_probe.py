"""A minimal Faust app for the client-compatibility tests (tests/kafka/test_apache.py).

Counts records per key into a RocksDB table whose changelog topic Faust creates itself
(``topic_allow_declare`` at its default), and sends each new count to an output topic.
Everything else is Faust's default, so what passes here is Faust on that broker as shipped.
Run: ``python tests/kafka/faust_probe.py worker`` with the PROBE_* variables set.
"""

import os

import faust

app = faust.App(
    os.environ["PROBE_APP"],
    broker=f"kafka://{os.environ['PROBE_BOOTSTRAP']}",
    store="rocksdb://",
    datadir=os.environ["PROBE_DATA"],
    web_bind="127.0.0.1",
    web_port=int(os.environ["PROBE_WEB_PORT"]),
    topic_partitions=2,
    consumer_auto_offset_reset="earliest",
    processing_guarantee=os.environ.get("PROBE_GUARANTEE", "at_least_once"),
)
source = app.topic(os.environ["PROBE_SOURCE"], key_type=str, value_type=str)
output = app.topic(os.environ["PROBE_OUTPUT"], key_type=str, value_type=str)
counts = app.Table("counts", default=int, partitions=2)


@app.agent(source)
async def count(stream):
    async for event in stream.events():
        counts[event.key] += 1
        await output.send(key=event.key, value=str(counts[event.key]))


if __name__ == "__main__":
    app.main()
