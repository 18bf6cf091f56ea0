"""The bulk path: rebuild the customer state from the input log in batches, without Faust.

The live path (``streams/topology.py``) handles one event at a time through Faust's
stream, which costs more per event than the whole core. Rebuilding from history needs
none of that: no consumer group, no rebalances, no per-event acks. This package reads
the input topics in large batches with aiokafka (``getmany``), drives the same pure
core (``streams.pipeline.Pipeline``), and writes what a live worker would have written:

* the customer-state changelog, in the exact record format of the Faust table (raw key =
  customer id, raw value = encoded state, partition = the input partition), one record
  per customer per batch; live workers restore their tables from it;
* the outputs (segment changes marked ``"replay": true``, dead letters, rekeyed events);
* the population figures of every partition (``population.py``: the one place where the
  bulk path meets the population view);
* finally the worker group's offsets, at the positions the rebuild read up to, so the
  workers started afterwards go on from there.

Modules: ``merge.py`` orders records deterministically (pure), ``rebuild.py`` applies
them to an in-memory store (pure), ``run.py`` is the Kafka shell around both.
"""
