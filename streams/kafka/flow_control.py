"""Keep events Faust has already fetched when its flow control is resumed while already running.

Faust (0.15) drops every event queued for the agents whenever ``app.flow_control.resume()``
is called (mode's ``FlowControlEvent.resume`` always clears the queues), and its recovery
calls it a second time after the flow is already running: when a worker restores tables
from their changelogs, recovery resumes the flow to read the changelogs, then resumes the
stream partitions, seeks them to the committed offsets (an await during which the fetcher
fills the agents' queues from the new position) and resumes the flow again, which empties
the queues. The consumer is already past those events, so they are never processed:
measured on tansu (tests/integration/test_worker.py, changelog-only restart with events
arriving during recovery): offsets 361-369 of every partition skipped, 48 of 1,500 events
lost, the committed offsets moving past them. This is the "at-least-once loses a few events
around rebalances" that issue 6's spike saw.

Clearing is only needed when the flow was suspended (a rebalance began: what was queued was
fetched for the old assignment; Faust also clears explicitly when it suspends). The patch keeps
that and makes a resume of a flow that is already active leave the queues alone.
"""
from __future__ import annotations

_MARK = "_clvstream_clears_only_when_suspended"


def keep_events_on_redundant_resume() -> None:
    """Patch mode's FlowControlEvent.resume (process-wide, idempotent)."""
    from mode.utils.queues import FlowControlEvent

    original = FlowControlEvent.resume
    if getattr(original, _MARK, False):
        return

    def resume(self) -> None:
        was_suspended = self._suspend.is_set()
        self._suspend.clear()
        self._resume.set()
        if was_suspended:
            self.clear()

    setattr(resume, _MARK, True)
    resume.__doc__ = original.__doc__
    FlowControlEvent.resume = resume
