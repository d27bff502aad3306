"""One telemetry request, start to answer: key, admission, body, validation, rate, publish.

Transport-neutral: it takes the request's headers and body chunks and returns the answer, so
the documented FastAPI routes and the ASGI fast lane (api_gateway/lane.py) share every rule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import structlog

from api_gateway import metrics
from api_gateway.coalescer import Coalescer, Overloaded
from api_gateway.ingest import Kind, RequestError, Window, accept
from api_gateway.ratelimit import RateLimiter
from api_gateway.settings import GatewaySettings
from common.broker import BrokerUnavailable
from common.keys import ApiKey, find_key

log = structlog.get_logger("api_gateway")
UNAUTHENTICATED = {"WWW-Authenticate": "ApiKey"}


@dataclass(frozen=True, slots=True)
class Answer:
    """What to send back: status, JSON body, extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _refuse(status: int, detail: object, retry_after_s: float | None = None) -> Answer:
    headers = {} if retry_after_s is None else {"Retry-After": str(int(retry_after_s))}
    return Answer(status, {"detail": detail}, headers)


class TelemetryIntake:
    """The gateway's telemetry endpoint, bound to its settings, publishing lanes and limiter."""

    def __init__(
        self, *, settings: GatewaySettings, lanes: dict[Kind, Coalescer], limiter: RateLimiter
    ) -> None:
        self._settings, self._lanes, self._limiter = settings, lanes, limiter
        self._in_flight = 0  # requests being read, validated or published right now
        self._bytes_in_flight = 0  # the body bytes they have received

    @property
    def requests_in_flight(self) -> int:
        """Requests admitted and not answered yet."""
        return self._in_flight

    @property
    def bytes_in_flight(self) -> int:
        """The body bytes the requests in flight have received so far."""
        return self._bytes_in_flight

    async def handle(
        self,
        kind: Kind,
        *,
        api_key: str | None,
        content_type: str | None,
        content_length: str | None,
        chunks: AsyncIterator[bytes],
    ) -> Answer:
        """Answer one request; every refusal is an Answer, never an exception."""
        answer = await self._handle(kind, api_key, content_type, content_length, chunks)
        metrics.REQUESTS.labels(kind, str(answer.status)).inc()
        return answer

    async def _handle(
        self,
        kind: Kind,
        api_key: str | None,
        content_type: str | None,
        content_length: str | None,
        chunks: AsyncIterator[bytes],
    ) -> Answer:
        if not api_key:
            return Answer(401, {"detail": "missing X-API-Key header"}, UNAUTHENTICATED)
        key = find_key(self._settings.device_api_keys, api_key)
        if key is None:
            return Answer(401, {"detail": "unknown API key"}, UNAUTHENTICATED)
        settings = self._settings
        if self._in_flight and (
            self._in_flight >= settings.max_requests_in_flight
            or self._bytes_in_flight >= settings.max_bytes_in_flight
        ):
            return _refuse(503, "gateway is overloaded; retry shortly", 1)
        self._in_flight += 1
        held = [0]  # body bytes this request has received (a stalled upload holds none)
        try:
            counted = self._counted(chunks, held)
            return await self._admitted(kind, key, content_type, content_length, counted)
        except RequestError as error:
            return _refuse(error.status, error.detail)
        finally:
            self._in_flight -= 1
            self._bytes_in_flight -= held[0]

    async def _counted(self, chunks: AsyncIterator[bytes], held: list[int]) -> AsyncIterator[bytes]:
        """The body's chunks, each counted into the gateway's bytes in flight as it arrives."""
        async for chunk in chunks:
            held[0] += len(chunk)
            self._bytes_in_flight += len(chunk)
            yield chunk

    async def _admitted(
        self,
        kind: Kind,
        key: ApiKey,
        content_type: str | None,
        content_length: str | None,
        chunks: AsyncIterator[bytes],
    ) -> Answer:
        settings = self._settings
        try:
            async with asyncio.timeout(settings.body_read_timeout_s):
                body = await read_body(chunks, settings.max_body_bytes, content_length)
        except TimeoutError:
            raise RequestError(
                408, f"the body did not arrive within {settings.body_read_timeout_s:g} s"
            ) from None
        window = Window(
            settings.max_batch_readings, time.time_ns() // 1000, settings.retention_days
        )
        accepted = accept(kind=kind, body=body, content_type=content_type, key=key, window=window)
        wait_s = self._limiter.take(key.name, accepted.readings)
        if wait_s:
            return _refuse(429, f"rate limit of key {key.name!r} exceeded", wait_s)
        started = time.perf_counter()
        try:
            await self._lanes[kind].submit(accepted.envelope, accepted.readings)
        except Overloaded:
            return _refuse(503, "gateway is overloaded; retry shortly", 1)
        except BrokerUnavailable as error:
            log.warning("publish_failed", kind=kind, key=key.name, error=str(error))
            return _refuse(503, "message broker unavailable; nothing was accepted", 2)
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
        metrics.READINGS.labels(kind).inc(accepted.readings)
        return Answer(202, {"accepted": accepted.readings, "batch_id": accepted.batch_id})


async def read_body(chunks: AsyncIterator[bytes], limit: int, declared: str | None) -> bytes:
    """Read the body, refusing with 413 as soon as it passes `limit` bytes."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"body of {declared} bytes is over the {limit}-byte limit")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"body is over the {limit}-byte limit")
        parts.append(chunk)
    return b"".join(parts)
