"""The live worker's Faust application, built from the environment's settings.

The CLI (``streams/app.py``, ``clvstream ...``) runs it; its topology (agent, table,
timers) is in ``topology.py``.
"""
from __future__ import annotations

from pathlib import Path

from .kafka.flow_control import keep_events_on_redundant_resume
from .kafka.group_leave import leave_group_at_generation_zero
from .runtime import tune_garbage_collector
from .settings import Settings
from .topology import build_topology, create_app

tune_garbage_collector()  # every CLI command runs in a process that imports this module (streams/runtime.py)
# A stopped worker must leave its group at once (tansu's first generation is 0, which aiokafka
# does not leave from): the ops tools refuse to reset a group that still lists members.
leave_group_at_generation_zero()
# Faust's recovery resumes its flow twice and the second resume drops events already fetched
# (lost, the consumer is past them): see streams/kafka/flow_control.py.
keep_events_on_redundant_resume()
settings = Settings.from_env()
Path(settings.data_dir).parent.mkdir(parents=True, exist_ok=True)  # Faust needs the parent to exist
app = create_app(settings)
topology = build_topology(app, settings)
