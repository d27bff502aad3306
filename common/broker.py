"""The broker connection every service uses: robust, confirming, connecting in the background."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from common.topology import Names, declare_exchange

log = structlog.get_logger("common.broker")

Declare = Callable[[AbstractChannel, Names], Awaitable[object]]


class BrokerUnavailable(Exception):
    """The broker is unreachable or did not confirm a publish in time."""


class Unroutable(BrokerUnavailable):
    """The broker confirmed a `require_route` message but returned it: no queue took it."""


class Broker:
    """One robust connection and one channel with publisher confirms."""

    def __init__(
        self, url: str, names: Names, *, declare: Declare, publish_timeout_s: float = 5.0
    ) -> None:
        self.url = url
        self.names = names
        self._declare = declare
        self._publish_timeout_s = publish_timeout_s
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start connecting in the background; the service runs (not ready) until it succeeds."""
        self._task = asyncio.create_task(self._connect_loop(), name="broker-connect")

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until the first connection is made (raises TimeoutError)."""
        await asyncio.wait_for(self._connected.wait(), timeout_s)

    async def _connect_loop(self) -> None:
        delay_s = 0.5
        while True:
            try:
                connection = await aio_pika.connect_robust(
                    self.url, timeout=5, reconnect_interval=1
                )
                channel = await connection.channel(publisher_confirms=True)
                await self._declare(channel, self.names)
            except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as error:
                log.warning("broker_connect_failed", error=str(error), retry_in_s=delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)
                continue
            self._connection, self._channel = connection, channel
            self._connected.set()
            log.info("broker_connected", prefix=self.names.prefix)
            return

    @property
    def channel(self) -> AbstractChannel:
        """The channel (raises BrokerUnavailable before the first connection)."""
        if self._channel is None:
            raise BrokerUnavailable("not connected to the broker yet")
        return self._channel

    @property
    def ready(self) -> bool:
        """Connected now (false while the robust connection is reconnecting)."""
        connection, channel = self._connection, self._channel
        return (
            connection is not None
            and channel is not None
            and not connection.is_closed
            and not channel.is_closed
        )

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        expiration_s: float | None = None,
        message_id: str | None = None,
        content_type: str = "application/x-protobuf",
        timeout_s: float | None = None,
        require_route: bool = False,
    ) -> None:
        """Publish a persistent message and wait for the broker's confirm.

        With `require_route`, a message no queue takes (returned by the broker) is a failure.
        """
        if not self.ready:
            raise BrokerUnavailable("broker connection is down")
        message = aio_pika.Message(
            body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type=content_type,
            message_id=message_id,
            expiration=expiration_s,
        )
        try:
            target = self._exchanges.get(exchange)
            if target is None:
                target = self._exchanges[exchange] = await declare_exchange(self.channel, exchange)
            confirmation = await asyncio.wait_for(
                target.publish(message, routing_key, mandatory=True),
                timeout_s or self._publish_timeout_s,
            )
        except (
            aio_pika.exceptions.AMQPError,
            aio_pika.exceptions.ChannelInvalidStateError,
            ConnectionError,
        ) as error:
            raise BrokerUnavailable(f"publish not confirmed: {error!r}") from error
        except TimeoutError:
            raise BrokerUnavailable("publish not confirmed in time") from None
        if require_route and isinstance(confirmation, aiormq.abc.DeliveredMessage):
            raise Unroutable(f"no queue is bound to {exchange!r} for {routing_key!r}")

    async def close(self) -> None:
        """Stop connecting and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            await self._connection.close()
