"""The Faust worker class the app runs: Faust's own, with the root logger left at the chosen level.

Faust's ``Worker.on_setup_root_logger`` adds a terminal spinner handler and, whenever the level is
WARN or above (the project's default, ``-l warn``), sets the *root logger* to DEBUG so the spinner
turns on every message. After that every ``log.debug`` in aiokafka and Faust (a few per record
sent or fetched) builds a ``LogRecord`` and walks the handlers, which drop it: 8 % of the worker's
samples in a py-spy profile on Apache Kafka (bench/README.md). The spinner only decorates start-up
on a terminal; it still gets every message at the chosen level.
"""
from __future__ import annotations

import logging

import faust


class Worker(faust.Worker):
    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        if level:
            logger.setLevel(level)  # Faust set DEBUG for its spinner: back to the level asked for
