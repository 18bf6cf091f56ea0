"""A minimal Faust app for the client-compatibility tests (tests/kafka/test_apache.py).

Counts records per key into a RocksDB table whose changelog topic Faust creates itself
(``topic_allow_declare`` at its default), and sends each new count to an output topic.
Everything else is Faust's default, with the two patches the project's worker applies to
Faust itself (streams/worker.py, streams/topology.py): as shipped, Faust's recovery drops events it
has already fetched (seen in CI: a record produced before the second start never counted), and
its producer-buffer flush can let a commit run ahead of the changelog. So what passes here is
Faust on that broker as the worker runs it.
Run: ``python tests/kafka/faust_probe.py worker`` with the PROBE_* variables set.
"""

import os

import faust

from streams.kafka.faust_private import flush_producer_buffer_fully, restart_streams_at_committed_offsets
from streams.kafka.flow_control import keep_events_on_redundant_resume

keep_events_on_redundant_resume()
flush_producer_buffer_fully()
restart_streams_at_committed_offsets()

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
