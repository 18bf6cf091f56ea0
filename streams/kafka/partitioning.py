"""Where a record keyed by customer id lands: Kafka's default (murmur2) partitioner,
as kafka-python, aiokafka and the Java client compute it. The review scheduler and
the tests that replay the pipeline in-process need the same answer as the producer."""
from kafka.partitioner.default import murmur2


def partition_for(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions
