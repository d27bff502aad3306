"""The broker connection every service uses: robust, confirming, connecting in the background.

`AMQP_URL` may list several nodes of one cluster: the connection goes to the first that answers
and, when that node is lost, the robust connection moves on round the list (FailoverConnection).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    UnderlayConnection,
)
from yarl import URL

from common.amqp_urls import node_label, redact, split_amqp_urls, with_heartbeat
from common.topology import Names, declare_exchange

log = structlog.get_logger("common.broker")

Declare = Callable[[AbstractChannel, Names], Awaitable[object]]


CONNECT_ERRORS = (TimeoutError, OSError, aio_pika.exceptions.AMQPError)
# Consecutive nacked publishes after which publishing moves to a fresh channel, at most once per
# RENEW_EVERY_S: after a quorum queue's leader node died, RabbitMQ 3.10 was seen nacking every
# publish of a channel for minutes while a new channel's publishes were confirmed at once.
NACKS_BEFORE_NEW_CHANNEL = 5
RENEW_EVERY_S = 5.0


def cancelled_from_inside() -> bool:
    """Whether the CancelledError being handled came from an awaited future, not this task.

    When a connection closes (a node lost, a heartbeat missed), aiormq cancels the work
    pending on it: an RPC or a confirm awaited there raises CancelledError although nobody
    cancelled the awaiting task. That is a broker failure, to be handled as one; a task that
    *is* being cancelled has `cancelling()` above zero and must be let go.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() == 0


class BrokerUnavailable(Exception):
    """The broker is unreachable or did not confirm a publish in time."""


class Unroutable(BrokerUnavailable):
    """The broker confirmed a `require_route` message but returned it: no queue took it."""


class FailoverConnection(aio_pika.RobustConnection):
    """A robust connection that tries the next URL of its list on every reconnection attempt.

    aio-pika's robust connection takes one URL (its multi-host proposal, mosquito/aio-pika#680,
    was not merged). Each attempt starts by resetting `transport` to None and then connects to
    `self.url`; moving `self.url` along the list at that moment makes every retry after a lost
    node, or after a failed attempt, go to the next node while channels, consumers and the
    declarations made through them are restored as usual.
    """

    _armed = False
    _attempted = False

    def __init__(self, urls: Sequence[str], **kwargs: Any) -> None:
        self._urls = tuple(URL(with_heartbeat(url)) for url in urls)
        self._index = 0
        super().__init__(self._urls[0], **kwargs)
        self._armed = True

    @property
    def transport(self) -> UnderlayConnection | None:
        return self._transport

    @transport.setter
    def transport(self, value: UnderlayConnection | None) -> None:
        if value is None and self._armed and not self._close_called:
            if self._attempted and len(self._urls) > 1:
                self._index = (self._index + 1) % len(self._urls)
                self.url = self._urls[self._index]
                log.info("broker_failover", node=node_label(str(self.url)))
            self._attempted = True
        self._transport = value

    @property
    def node(self) -> str:
        """`host:port` of the node this connection uses (or tries) now."""
        return node_label(str(self.url))


async def connect_failover(
    url_list: str | Sequence[str], *, timeout_s: float = 5.0, reconnect_interval_s: float = 1.0
) -> FailoverConnection:
    """Connect to the first broker of the list that answers (raises the last error if none)."""
    urls = split_amqp_urls(url_list) if isinstance(url_list, str) else tuple(url_list)
    error: BaseException | None = None
    for start in range(len(urls)):
        connection = FailoverConnection(
            (*urls[start:], *urls[:start]), reconnect_interval=reconnect_interval_s
        )
        try:
            await connection.connect(timeout=timeout_s)
        except CONNECT_ERRORS as failed:
            error = failed
            log.warning("broker_node_unreachable", url=redact(urls[start]), error=str(failed))
            await connection.close()
            continue
        log.info("broker_node_connected", node=connection.node, nodes=len(urls))
        return connection
    assert error is not None
    raise error


class Broker:
    """One robust connection and one channel with publisher confirms."""

    def __init__(
        self, url: str, names: Names, *, declare: Declare, publish_timeout_s: float = 5.0
    ) -> None:
        self.urls = split_amqp_urls(url)
        self.names = names
        self._declare = declare
        self._publish_timeout_s = publish_timeout_s
        self._connection: FailoverConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._nacks = 0
        self._renewed_at = 0.0
        self._renewing = False

    async def start(self) -> None:
        """Start connecting in the background; the service runs (not ready) until it succeeds."""
        self._task = asyncio.create_task(self._connect_loop(), name="broker-connect")

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until the first connection is made (raises TimeoutError)."""
        await asyncio.wait_for(self._connected.wait(), timeout_s)

    async def _connect_loop(self) -> None:
        delay_s = 0.5
        while True:
            connection: FailoverConnection | None = None
            try:
                connection = await connect_failover(self.urls)
                channel = await connection.channel(publisher_confirms=True)
                await self._declare(channel, self.names)
            except CONNECT_ERRORS as error:
                if connection is not None:  # connected, but the declarations failed
                    await connection.close()
                log.warning("broker_connect_failed", error=str(error), retry_in_s=delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 5.0)
                continue
            self._connection, self._channel = connection, channel
            self._connected.set()
            log.info("broker_connected", prefix=self.names.prefix, node=connection.node)
            return

    @property
    def channel(self) -> AbstractChannel:
        """The channel (raises BrokerUnavailable before the first connection)."""
        if self._channel is None:
            raise BrokerUnavailable("not connected to the broker yet")
        return self._channel

    @property
    def node(self) -> str | None:
        """`host:port` of the broker node in use (or being tried) now; None before the first."""
        return None if self._connection is None else self._connection.node

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
        except aiormq.exceptions.DeliveryError as error:  # nacked: the queue did not take it
            await self._nacked()
            raise BrokerUnavailable(f"publish not confirmed: {error!r}") from error
        except (
            aio_pika.exceptions.AMQPError,
            aio_pika.exceptions.ChannelInvalidStateError,
            ConnectionError,
        ) as error:
            raise BrokerUnavailable(f"publish not confirmed: {error!r}") from error
        except TimeoutError:
            raise BrokerUnavailable("publish not confirmed in time") from None
        except asyncio.CancelledError:
            if not cancelled_from_inside():
                raise
            raise BrokerUnavailable("publish not confirmed: the connection closed") from None
        self._nacks = 0
        if require_route and isinstance(confirmation, aiormq.abc.DeliveredMessage):
            raise Unroutable(f"no queue is bound to {exchange!r} for {routing_key!r}")

    async def _nacked(self) -> None:
        """Count a nack; after several in a row, publish on a fresh channel.

        The old channel stays open: a consumer started on it (the control service's) goes on.
        """
        self._nacks += 1
        loop_now = asyncio.get_running_loop().time()
        if (
            self._nacks < NACKS_BEFORE_NEW_CHANNEL
            or self._renewing
            or loop_now - self._renewed_at < RENEW_EVERY_S
            or self._connection is None
        ):
            return
        self._renewing, self._renewed_at = True, loop_now
        try:
            channel = await self._connection.channel(publisher_confirms=True)
            await self._declare(channel, self.names)
        except (*CONNECT_ERRORS, aio_pika.exceptions.ChannelInvalidStateError) as error:
            log.warning("broker_channel_renew_failed", error=str(error))
            return
        finally:
            self._renewing = False
        log.warning("broker_channel_renewed", after_nacks=self._nacks, node=self.node)
        self._channel, self._exchanges, self._nacks = channel, {}, 0

    async def close(self) -> None:
        """Stop connecting and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._connection is not None:
            await self._connection.close()
