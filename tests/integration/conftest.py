import pytest


@pytest.fixture
def any_broker(kafka_bootstrap, broker_kind):
    """(bootstrap, kind) of the suite's broker: Apache Kafka (``KAFKA_BOOTSTRAP`` when set).

    The suite runs on the real thing; tansu keeps a smoke set of its own (``tansu_broker``
    in test_demo and test_worker) because it stays the zero-install broker of ``make demo``.
    The librdkafka mock left the matrix: it cannot honour transactions and answered a late
    follower's SyncGroup with INVALID_REQUEST (issue 12).
    """
    return kafka_bootstrap, broker_kind


@pytest.fixture
def tansu_smoke(tansu_broker):
    """(bootstrap, "tansu") for the smoke tests of the ``make demo`` broker."""
    return tansu_broker.bootstrap, "tansu"
