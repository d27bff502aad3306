"""Posting readings to the gateway: one stream per site and per fleet, retried, bounded, counted.

Each site and each fleet has its own buffer of readings waiting to go and one worker that
posts them in order (a request carries at most `max_batch` readings). 429, 503, timeouts and
connection errors are retried with exponential backoff and full jitter, never sooner than
the gateway's `Retry-After`. A reading leaves the buffer in exactly one of three ways:
accepted (202), rejected (another 4xx: logged and counted) or dropped (the buffer overflowed,
its retry window ran out, or the simulator stopped first: counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import orjson
import structlog

from simulator.fleet import Emission, Reading
from simulator.stats import Stats
from simulator.wire import encode_protobuf

log = structlog.get_logger("simulator.sender")

RETRYABLE = frozenset({429, 502, 503, 504})
Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class Stream:
    """The readings of one site or fleet waiting to be posted."""

    kind: str  # "megapack" or "ev"
    name: str
    queued: deque[Reading] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, for at most `window_s` per request."""

    base_s: float = 0.25
    cap_s: float = 5.0
    window_s: float = 60.0

    def delay_s(self, attempt: int, *, rng: random.Random, retry_after_s: float | None) -> float:
        """How long to wait before retry number `attempt` (1-based)."""
        backoff = min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))
        delay = backoff * (0.5 + rng.random() / 2)
        return max(delay, retry_after_s or 0.0)


class Sender:
    """Buffers emissions and posts them; see the module docstring for the guarantees."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        stats: Stats,
        telemetry_format: str = "json",
        max_batch: int = 5_000,
        buffer_readings: int = 100_000,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._client, self._stats = client, stats
        self._protobuf = telemetry_format == "protobuf"
        self._max_batch, self._buffer_readings = max_batch, buffer_readings
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._streams: dict[tuple[str, str], Stream] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._progress = asyncio.Event()  # set whenever a chunk leaves (accepted or not)

    def submit(self, emission: Emission) -> None:
        """Queue one interval's readings (dropping the oldest queued ones on overflow)."""
        for site_id, readings in emission.sites.items():
            self._enqueue("megapack", site_id, readings)
        for fleet_id, readings in emission.fleets.items():
            self._enqueue("ev", fleet_id, readings)

    def _enqueue(self, kind: str, name: str, readings: list[Reading]) -> None:
        stream = self._streams.get((kind, name))
        if stream is None:
            stream = self._streams[(kind, name)] = Stream(kind, name)
            self._workers[(kind, name)] = asyncio.create_task(
                self._work(stream), name=f"send-{kind}-{name}"
            )
        stream.queued.extend(readings)
        overflow = len(stream.queued) - self._buffer_readings
        if overflow > 0:
            for _ in range(overflow):
                stream.queued.popleft()
            self._stats.dropped += overflow
            log.warning("buffer_overflow", stream=name, dropped=overflow)
        stream.idle.clear()
        stream.wake.set()

    @property
    def buffered(self) -> int:
        """Readings queued or in flight."""
        return sum(len(s.queued) + s.in_flight for s in self._streams.values())

    async def wait_below(self, readings: int) -> None:
        """Wait until at most `readings` are queued or in flight (a replay's back-pressure)."""
        while self.buffered > readings:
            self._progress.clear()
            await self._progress.wait()

    async def _work(self, stream: Stream) -> None:
        while True:
            if not stream.queued:
                stream.idle.set()
                stream.wake.clear()
                await stream.wake.wait()
                continue
            count = min(len(stream.queued), self._max_batch)
            chunk = [stream.queued.popleft() for _ in range(count)]
            stream.in_flight = count
            try:
                await self._deliver(stream, chunk)
            except Exception:  # a bug must cost this chunk (counted), not the whole stream
                self._stats.dropped += count
                log.exception("batch_send_crashed", stream=stream.name, readings=count)
            finally:
                stream.in_flight = 0
                self._progress.set()

    async def _deliver(self, stream: Stream, chunk: list[Reading]) -> None:
        """Post one chunk until it is accepted, rejected, or its retry window is over."""
        body, content_type = self._encode(stream.kind, chunk)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            retry_after_s: float | None = None
            sent_at = time.perf_counter()
            self._stats.sent += len(chunk)
            try:
                response = await self._client.post(
                    f"/v1/telemetry/{stream.kind}",
                    content=body,
                    headers={"Content-Type": content_type},
                )
            except httpx.TransportError as error:
                problem: str = type(error).__name__
            else:
                self._stats.latencies_s.append(time.perf_counter() - sent_at)
                if response.status_code == 202:
                    self._stats.accepted += _accepted(response, len(chunk))
                    return
                if response.status_code not in RETRYABLE:
                    self._stats.rejected += len(chunk)
                    log.error(
                        "batch_rejected",
                        stream=stream.name,
                        status=response.status_code,
                        readings=len(chunk),
                        detail=response.text[:300],
                    )
                    return
                problem = str(response.status_code)
                retry_after_s = _retry_after(response.headers.get("Retry-After"))
            delay = self._retry.delay_s(attempt, rng=self._rng, retry_after_s=retry_after_s)
            if time.monotonic() + delay - started > self._retry.window_s:
                self._stats.dropped += len(chunk)
                log.error("batch_dropped", stream=stream.name, readings=len(chunk), error=problem)
                return
            self._stats.retries += 1
            log.debug("batch_retry", stream=stream.name, error=problem, delay_s=round(delay, 3))
            await self._sleep(delay)

    def _encode(self, kind: str, chunk: list[Reading]) -> tuple[bytes, str]:
        if self._protobuf:
            return encode_protobuf(kind, chunk), "application/x-protobuf"
        return orjson.dumps({"readings": chunk}), "application/json"

    async def drain(self, timeout_s: float) -> None:
        """Wait (bounded) until everything queued is delivered, then stop the workers."""
        idle = [stream.idle.wait() for stream in self._streams.values()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*idle), timeout_s)
        unsent = self.buffered
        for task in self._workers.values():
            task.cancel()
        for task in self._workers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if unsent:
            self._stats.dropped += unsent
            log.warning("unsent_at_stop", dropped=unsent)


def _accepted(response: httpx.Response, default: int) -> int:
    try:
        accepted = orjson.loads(response.content).get("accepted", default)
    except (orjson.JSONDecodeError, AttributeError):
        return default
    return accepted if isinstance(accepted, int) else default


def _retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (HTTP dates are not used by our gateway)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
