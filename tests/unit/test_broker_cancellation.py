"""Work cancelled by a closing broker connection is a broker failure, not the task's end.

aiormq cancels what is pending on a connection that closes (a lost node, a missed heartbeat),
so an awaited confirm or RPC raises CancelledError in a task nobody cancelled. Found by
`make cluster-chaos`: the control service's sweeper re-raised it and never ran again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from common.broker import Broker, BrokerUnavailable
from common.topology import Names
from control_service.delivery import every


async def _cancelled_from_inside() -> None:
    """Await a future that something else cancels, as aiormq does to pending work on close."""
    pending = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(pending.cancel)
    await pending


async def test_a_run_cancelled_by_a_closed_channel_does_not_end_the_periodic_job() -> None:
    runs = 0
    second_run = asyncio.Event()

    async def job() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            await _cancelled_from_inside()
        second_run.set()

    task = asyncio.create_task(every(0.01, job, name="sweep"))
    await asyncio.wait_for(second_run.wait(), 5)
    assert not task.done()
    task.cancel()  # a real cancellation still stops it
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


class _Open:
    is_closed = False


class _Exchange:
    async def publish(self, *args: Any, **kwargs: Any) -> None:
        await _cancelled_from_inside()


async def test_a_publish_whose_confirm_is_cancelled_by_the_connection_is_unavailable() -> None:
    broker = Broker("amqp://guest:guest@127.0.0.1:1/", Names("x."), declare=lambda ch, n: _noop())
    broker._connection, broker._channel = _Open(), _Open()  # type: ignore[assignment]
    broker._exchanges["x.telemetry"] = _Exchange()  # type: ignore[assignment]
    with pytest.raises(BrokerUnavailable, match="connection closed"):
        await broker.publish("x.telemetry", "megapack", b"r")


async def test_cancelling_a_publishing_task_still_cancels_it() -> None:
    started = asyncio.Event()

    class _Hanging:
        async def publish(self, *args: Any, **kwargs: Any) -> None:
            started.set()
            await asyncio.Event().wait()

    broker = Broker("amqp://guest:guest@127.0.0.1:1/", Names("x."), declare=lambda ch, n: _noop())
    broker._connection, broker._channel = _Open(), _Open()  # type: ignore[assignment]
    broker._exchanges["x.telemetry"] = _Hanging()  # type: ignore[assignment]
    task = asyncio.create_task(broker.publish("x.telemetry", "megapack", b"r"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _noop() -> None:
    return None
