"""PartitionOwnership: a revocation waits for the checkpoint in flight, and no checkpoint starts
between a revocation and the rebalance's completion (streams/ownership.py)."""
import asyncio

from streams.ownership import PartitionOwnership


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_a_revocation_waits_for_the_checkpoint_in_flight_to_settle():
    async def scenario():
        ownership, log = PartitionOwnership(), []
        outputs_acked = asyncio.Event()

        async def checkpoint():
            async with ownership.settling():
                log.append("outputs sent")
                await outputs_acked.wait()  # the checkpoint awaits its acks when the rebalance begins
                log.append("states written, events acked")

        async def revocation():
            await ownership.revoke()
            log.append("revoked")

        running = asyncio.create_task(checkpoint())
        while log != ["outputs sent"]:
            await asyncio.sleep(0)
        revoking = asyncio.create_task(revocation())
        for _ in range(20):  # the revocation gets every chance to run ahead: it must not
            await asyncio.sleep(0)
        assert log == ["outputs sent"] and not revoking.done()
        outputs_acked.set()
        await asyncio.gather(running, revoking)
        return log, ownership.known

    log, known = run(scenario())
    assert log == ["outputs sent", "states written, events acked", "revoked"]
    assert not known


def test_no_checkpoint_starts_between_a_revocation_and_the_completed_rebalance():
    async def scenario():
        ownership, log = PartitionOwnership(), []
        await ownership.revoke()

        async def checkpoint():
            async with ownership.settling():
                log.append("checkpoint")

        held = asyncio.create_task(checkpoint())
        for _ in range(20):
            await asyncio.sleep(0)
        assert log == [] and not held.done()
        log.append("assigned")
        ownership.assigned()
        await held
        return log

    assert run(scenario()) == ["assigned", "checkpoint"]


def test_a_waiting_revocation_goes_before_the_next_checkpoint():
    """The agent asks for the gate again right after a checkpoint: a revocation already waiting
    is served first (FIFO), so the next batch waits for the new assignment."""
    async def scenario():
        ownership, log = PartitionOwnership(), []
        release_first = asyncio.Event()

        async def checkpoint(name, wait=None):
            async with ownership.settling():
                log.append(name)
                if wait is not None:
                    await wait.wait()

        first = asyncio.create_task(checkpoint("first", release_first))
        while log != ["first"]:
            await asyncio.sleep(0)
        revoking = asyncio.create_task(ownership.revoke())
        await asyncio.sleep(0)
        second = asyncio.create_task(checkpoint("second"))
        await asyncio.sleep(0)
        release_first.set()
        await asyncio.gather(first, revoking)
        for _ in range(20):
            await asyncio.sleep(0)
        assert log == ["first"] and not second.done(), "the second checkpoint ran before the reassignment"
        ownership.assigned()
        await second
        return log

    assert run(scenario()) == ["first", "second"]


def test_a_checkpoint_that_fails_releases_the_gate():
    async def scenario():
        ownership = PartitionOwnership()

        async def failing():
            async with ownership.settling():
                raise RuntimeError("outputs not delivered")

        try:
            await failing()
        except RuntimeError:
            pass
        await ownership.revoke()  # would wait forever if the failed checkpoint kept the gate
        return ownership.known

    assert run(scenario()) is False


def test_a_long_wait_is_logged(caplog):
    async def scenario():
        ownership = PartitionOwnership(warn_after_s=0.01)
        acked = asyncio.Event()

        async def checkpoint():
            async with ownership.settling():
                await acked.wait()

        running = asyncio.create_task(checkpoint())
        await asyncio.sleep(0)
        revoking = asyncio.create_task(ownership.revoke())
        while not caplog.records:
            await asyncio.sleep(0.01)
        acked.set()
        await asyncio.gather(running, revoking)

    with caplog.at_level("WARNING", logger="streams.ownership"):
        run(scenario())
    assert "waited" in caplog.records[0].getMessage()
