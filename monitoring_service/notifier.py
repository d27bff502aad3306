"""Webhook notifications: consume the alert events, POST each, signed, to every URL.

An event is acknowledged to the broker only once every URL answered 2xx (or it grew older
than the maximum age): a restart of this service or of RabbitMQ redelivers it, with the same
`event_id`. One event is in flight at a time (prefetch 1): a quorum queue redelivers a
returned message before any later one, so the order of publication (that of the database)
holds across every redelivery; with several unacknowledged messages it would not (they come
back in no set order). A webhook that keeps failing therefore holds back the events after it,
for at most ALERT_WEBHOOK_MAX_AGE_S. Nothing here touches the scheduled report.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aio_pika
import httpx
import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from common.topology import Names, declare_alert_notifications
from monitoring_service import metrics

log = structlog.get_logger("monitoring_service.notifier")

PREFETCH = 1
FIRST_RETRY_S = 1.0
LONGEST_RETRY_S = 60.0

Post = Callable[[str, bytes, dict[str, str]], Awaitable[int]]  # url, body, headers -> status
Sleep = Callable[[float], Awaitable[None]]


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the body>`, the `X-Signature` header."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """Where to deliver and for how long to keep trying."""

    urls: tuple[str, ...]
    secret: str
    max_age_s: float


def _event_time(body: bytes) -> tuple[str, datetime | None]:
    try:
        event = json.loads(body)
        return str(event["event_id"]), datetime.fromisoformat(str(event["at"]))
    except (ValueError, KeyError, TypeError):
        return "?", None


async def _attempt(post: Post, url: str, body: bytes, headers: dict[str, str]) -> str | None:
    """One POST; None when answered 2xx, else why not."""
    try:
        status = await post(url, body, headers)
    except httpx.HTTPError as error:
        return type(error).__name__
    return None if 200 <= status < 300 else f"HTTP {status}"


async def deliver(
    body: bytes,
    *,
    policy: WebhookPolicy,
    post: Post,
    sleep: Sleep = asyncio.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> bool:
    """POST one event to every URL until each answered 2xx; false: it grew too old first."""
    event_id, at = _event_time(body)
    headers = {
        "Content-Type": "application/json",
        "X-Signature": signature(policy.secret, body),
        "X-Event-Id": event_id,
        "User-Agent": "megapack-monitoring-notifier",
    }
    pending = list(policy.urls)
    delay_s = FIRST_RETRY_S
    while True:
        answers = await asyncio.gather(*(_attempt(post, url, body, headers) for url in pending))
        for url, reason in zip(list(pending), answers, strict=True):
            if reason is None:
                pending.remove(url)
                metrics.WEBHOOK_DELIVERIES.labels("delivered").inc()
            else:
                metrics.WEBHOOK_DELIVERIES.labels("failed").inc()
                log.info("webhook_failed", url=url, event_id=event_id, reason=reason)
        if not pending:
            return True
        if at is None or (now() - at).total_seconds() > policy.max_age_s:
            metrics.WEBHOOK_DELIVERIES.labels("gave_up").inc(len(pending))
            log.error("webhook_gave_up", event_id=event_id, urls=pending, at=str(at))
            return False
        await sleep(delay_s)
        delay_s = min(delay_s * 2, LONGEST_RETRY_S)


class Notifier:
    """Consumes the notifier queue and delivers each event in turn."""

    def __init__(
        self, *, amqp_url: str, names: Names, policy: WebhookPolicy, timeout_s: float
    ) -> None:
        self._amqp_url = amqp_url
        self._names = names
        self._policy = policy
        self._timeout_s = timeout_s
        # alert id -> its latest delivery: after a lost channel the redelivered copy of an
        # event waits for the first copy still retrying, never overtakes it
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._connection: AbstractRobustConnection | None = None
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and consume in the background (retrying until the broker is there)."""
        self._client = httpx.AsyncClient(timeout=self._timeout_s)
        self._task = asyncio.create_task(self._run(), name="alert-notifier")

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        assert self._client is not None
        response = await self._client.post(url, content=body, headers=headers)
        return response.status_code

    async def _run(self) -> None:
        delay_s = 0.5
        while True:
            try:
                self._connection = await aio_pika.connect_robust(
                    self._amqp_url, timeout=5, reconnect_interval=1
                )
                channel = await self._connection.channel()
                await channel.set_qos(prefetch_count=PREFETCH)
                queue = await declare_alert_notifications(channel, self._names)
                await queue.consume(self._on_message)
            except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as error:
                log.warning("notifier_connect_failed", error=str(error), retry_in_s=delay_s)
                if self._connection is not None:
                    with contextlib.suppress(Exception):
                        await self._connection.close()
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)
                continue
            log.info("notifier_started", urls=len(self._policy.urls))
            return

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            alert = str(json.loads(message.body)["alert_id"])
        except (ValueError, KeyError, TypeError):
            alert = "?"
        before = self._tails.get(alert)
        task = asyncio.create_task(self._in_turn(before, message))
        self._tails[alert] = task
        task.add_done_callback(lambda done: self._forget(alert, done))

    def _forget(self, alert: str, done: asyncio.Task[None]) -> None:
        if self._tails.get(alert) is done:
            del self._tails[alert]

    async def _in_turn(
        self, before: asyncio.Task[None] | None, message: AbstractIncomingMessage
    ) -> None:
        if before is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await before
        await deliver(message.body, policy=self._policy, post=self._post)
        try:
            await message.ack()
        except (aio_pika.exceptions.AMQPError, aio_pika.exceptions.ChannelInvalidStateError,
                ConnectionError, RuntimeError) as error:  # fmt: skip
            # the channel went away: the broker redelivers it (a duplicate, same event_id)
            log.info("notifier_ack_lost", error=type(error).__name__)

    async def close(self) -> None:
        """Stop consuming; deliveries in progress are redelivered after a restart."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        tails = list(self._tails.values())
        for task in tails:
            task.cancel()
        await asyncio.gather(*tails, return_exceptions=True)
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        if self._client is not None:
            await self._client.aclose()
