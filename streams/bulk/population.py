"""The bulk path's population handling, all in one place.

A bulk rebuild sees every partition, so it keeps the figures of all of them (one
``PopulationAggregate`` per partition inside the ``Pipeline``) and publishes them at the
end, as the owners of those partitions would have.

What the rebuild does *not* do yet is move the global view (``Pipeline.population``, used
for relative cut-offs) while it runs: it stays what it was at the start (none: the
policy's fallbacks), because a view refreshed at batch boundaries would make the result
depend on batching. An event-time versioned view belongs in ``before``: given the record
about to be applied, install the snapshot valid at its event time.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable

from ..pipeline import Pipeline, Record


class BulkPopulation:
    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline

    def start(self, partition_of: Callable[[bytes], int], partitions: Iterable[int]) -> None:
        """Empty figures (and review heaps) for every partition: the store starts empty."""
        self.pipeline.rebuild(partition_of, (), partitions)

    def before(self, record: Record) -> None:
        """Hook for an event-time versioned population view (see the module docstring)."""

    def published(self) -> Dict[int, bytes]:
        """The figures of every partition that changed, encoded for the population topic."""
        return self.pipeline.population_updates()
