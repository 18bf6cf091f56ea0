"""The worker class keeps the root logger at the level asked for (streams/kafka/worker_logging.py)."""
import io
import logging

import faust
import pytest

from streams.kafka.worker_logging import Worker


@pytest.mark.parametrize("worker_class, expected", [(faust.Worker, logging.DEBUG), (Worker, logging.WARNING)])
def test_the_root_logger_stays_at_the_chosen_level(worker_class, expected):
    app = faust.App("worker-logging-test")
    worker = worker_class(app, loglevel="warn", stdout=io.StringIO(), stderr=io.StringIO())
    logger = logging.Logger("root-under-test")
    logger.addHandler(logging.StreamHandler(io.StringIO()))
    worker.on_setup_root_logger(logger, logging.WARNING)
    # faust.Worker lowers it to DEBUG for its spinner: every debug call of aiokafka then builds a record
    assert logger.level == expected
    assert any(h.level == logging.WARNING for h in logger.handlers)  # what reaches the log is unchanged
