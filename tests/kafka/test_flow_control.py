"""Faust's flow control keeps already fetched events when it is resumed while running
(streams/kafka/flow_control.py): the second resume of its recovery used to drop them."""
from __future__ import annotations

import asyncio

from mode.utils.queues import FlowControlEvent, FlowControlQueue

from streams.kafka.flow_control import keep_events_on_redundant_resume


def queued_after(*steps) -> list:
    async def scenario():
        keep_events_on_redundant_resume()
        flow = FlowControlEvent(initially_suspended=True)
        queue = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        for step in steps:
            step(flow, queue)
        return [queue.get_nowait() for _ in range(queue.qsize())]
    return asyncio.run(scenario())


def put(*events):
    return lambda flow, queue: [queue.put_nowait(e) for e in events]


def resume(flow, queue):
    flow.resume()


def suspend(flow, queue):
    flow.suspend()


def test_a_resume_of_a_running_flow_keeps_the_queued_events():
    # Recovery: resume (changelogs), events fetched after the seek, resume again.
    assert queued_after(resume, put("o361", "o362"), resume) == ["o361", "o362"]


def test_a_resume_after_a_suspension_still_clears_what_the_old_assignment_fetched():
    assert queued_after(resume, put("stale"), suspend, resume) == []
    assert queued_after(resume, put("stale"), suspend, resume, put("fresh"), resume) == ["fresh"]


def test_the_patch_is_applied_once():
    keep_events_on_redundant_resume()
    patched = FlowControlEvent.resume
    keep_events_on_redundant_resume()
    assert FlowControlEvent.resume is patched
