import pytest


@pytest.fixture(params=["tansu", "rdkafka-mock"])
def any_broker(request, kafka_bootstrap, broker_kind):
    """(bootstrap, kind) for tests worth running on both embedded brokers.

    tansu is a separate broker process (closest to a real deployment) but needs
    one record per producer batch for exact changelog recovery; the librdkafka
    mock has exact end offsets and runs Faust with default batching. With
    KAFKA_BOOTSTRAP set, the tansu case runs on that real Kafka instead.
    """
    if request.param == "tansu":
        return kafka_bootstrap, broker_kind
    return request.getfixturevalue("rdkafka_mock_bootstrap"), "rdkafka-mock"
