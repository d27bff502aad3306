"""Coalesce concurrent requests into shared publishes; answer each once its publish is confirmed.

A request hands over its serialized `TelemetryEnvelope`; serialized envelopes concatenate into
one valid envelope, so a publish is one `b"".join`. While publishes are in flight new requests
queue up and leave together in the next one: batching grows with load, without a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Publish = Callable[[bytes], Awaitable[None]]


class Overloaded(Exception):
    """More readings are waiting for the broker than the gateway will hold."""


@dataclass(slots=True)
class _Pending:
    body: bytes
    readings: int
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Coalescer:
    """One publishing lane (one routing key)."""

    def __init__(
        self,
        *,
        publish: Publish,
        max_pending_readings: int,
        max_in_flight: int = 8,
        max_message_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self._publish = publish
        self._max_pending = max_pending_readings
        self._max_bytes = max_message_bytes
        self._slots = asyncio.Semaphore(max_in_flight)
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self.pending_readings = 0
        self.publishes = 0

    def start(self) -> None:
        """Start the publishing loop."""
        self._task = asyncio.create_task(self._run(), name="coalescer")

    async def submit(self, body: bytes, readings: int) -> None:
        """Queue a request's envelope; return once it is confirmed (raise if it was not)."""
        if self.pending_readings + readings > self._max_pending:
            raise Overloaded
        pending = _Pending(body, readings)
        self.pending_readings += readings
        self._queue.put_nowait(pending)
        await asyncio.shield(pending.done)

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            size = len(group[0].body)
            while not self._queue.empty() and size < self._max_bytes:
                item = self._queue.get_nowait()
                group.append(item)
                size += len(item.body)
            for _ in group:
                self._queue.task_done()
            await self._slots.acquire()
            task = asyncio.create_task(self._send(group))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _send(self, group: list[_Pending]) -> None:
        try:
            await self._publish(b"".join(item.body for item in group))
        except Exception as error:  # every waiter gets the publisher's failure
            for item in group:
                if not item.done.done():
                    item.done.set_exception(error)
                    item.done.exception()  # mark retrieved if its request went away
        else:
            self.publishes += 1
            for item in group:
                if not item.done.done():
                    item.done.set_result(None)
        finally:
            self.pending_readings -= sum(item.readings for item in group)
            self._slots.release()

    async def close(self) -> None:
        """Publish what is queued, wait for in-flight confirms, then stop."""
        await self._queue.join()
        if self._in_flight:
            await asyncio.wait(self._in_flight)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
