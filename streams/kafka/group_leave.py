"""Make aiokafka leave its consumer group on close when the group is at generation 0.

aiokafka (0.14) sends LeaveGroup on close only ``if self.generation > 0``: it treats
generation 0 as "never joined" (its own "no generation" value is -1). Apache Kafka numbers
the first generation 1, so this never matters there, but tansu numbers it 0: a Faust worker
that joined once and stops cleanly never leaves, and tansu keeps listing it as a member
(measured: > 40 s after a clean stop with a 3 s session timeout; tansu does not expire it).
The ops tools then refuse to reset the group's offsets (it is not empty) and Kafka refuses
offset commits from outside a non-empty group (UNKNOWN_MEMBER_ID).

Reproduction (tansu 0.6, aiokafka 0.14): an ``AIOKafkaConsumer`` with a group joins,
``stop()`` logs no "LeaveGroup request succeeded", and ``describe_groups`` keeps one
member; with :func:`leave_group_at_generation_zero` applied the group is empty at once
(tests/kafka/test_group_leave.py).

The patch only adds the missing case (a member id at generation 0, no static membership);
every other case runs aiokafka's own code. Apply it before consumers are created.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_MARK = "_clvstream_leaves_at_generation_zero"


def leave_group_at_generation_zero() -> None:
    """Patch aiokafka's GroupCoordinator (process-wide, idempotent)."""
    import aiokafka.errors as errors
    from aiokafka.consumer.group_coordinator import GroupCoordinator
    from aiokafka.protocol.group import JoinGroupRequest, LeaveGroupRequest

    original = GroupCoordinator._maybe_leave_group
    if getattr(original, _MARK, False):
        return

    async def _maybe_leave_group(self):
        joined_generation_zero = (self.generation == 0 and self._group_instance_id is None
                                  and self.member_id != JoinGroupRequest.UNKNOWN_MEMBER_ID)
        if not joined_generation_zero:
            return await original(self)
        # What aiokafka does for generation > 0: one best-effort LeaveGroup, then forget the generation.
        try:
            await self._send_req(LeaveGroupRequest(self.group_id, self.member_id))
        except errors.KafkaError as err:
            log.error("LeaveGroup request failed: %s", err)
        else:
            log.info("LeaveGroup request succeeded (generation 0)")
        self.reset_generation()

    setattr(_maybe_leave_group, _MARK, True)
    _maybe_leave_group.__doc__ = original.__doc__
    GroupCoordinator._maybe_leave_group = _maybe_leave_group
