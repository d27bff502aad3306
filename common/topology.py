"""Every exchange and queue of the system, declared in this one module.

All names live under `AMQP_PREFIX`. Queues are durable quorum queues: replicated on a
cluster, with a delivery limit for poison messages and at-least-once dead-lettering.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

DELIVERY_LIMIT = 10
# The dead-letter queue must never drop what it holds, however often it is inspected.
DEAD_LETTER_DELIVERY_LIMIT = 1_000_000
INGEST_MAX_LENGTH = 500_000  # messages; past it publishes are refused (the gateway answers 503)
# Replicas of every quorum queue: three on a cluster of three or more nodes (any one node can
# be lost), as many as there are nodes on a smaller one (a single node holds the only replica).
QUORUM_REPLICAS = 3


@dataclass(frozen=True, slots=True)
class Names:
    """Broker names under one prefix."""

    prefix: str

    @property
    def telemetry(self) -> str:
        return f"{self.prefix}telemetry"

    @property
    def ingest_queue(self) -> str:
        return f"{self.prefix}ingest.telemetry"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}telemetry.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}ingest.telemetry.dlq"

    @property
    def commands(self) -> str:
        return f"{self.prefix}commands"

    @property
    def command_acks(self) -> str:
        return f"{self.prefix}command_acks"

    @property
    def acks_queue(self) -> str:
        return f"{self.prefix}control.acks"

    @property
    def acks_dead_letters(self) -> str:
        return f"{self.prefix}command_acks.dlx"

    @property
    def acks_dead_letter_queue(self) -> str:
        return f"{self.prefix}control.acks.dlq"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}alerts"

    @property
    def alert_notifications(self) -> str:
        """The notifier's queue of alert events (webhooks)."""
        return f"{self.prefix}alerts.notify"

    def agent_queue(self, agent: str) -> str:
        """The command queue of one unit agent (a simulator process)."""
        return f"{self.prefix}agent.{agent}"

    @property
    def exchanges(self) -> tuple[str, ...]:
        return (
            self.telemetry,
            self.dead_letters,
            self.commands,
            self.command_acks,
            self.acks_dead_letters,
            self.alerts,
        )

    @property
    def queues(self) -> tuple[str, ...]:
        return (
            self.ingest_queue,
            self.dead_letter_queue,
            self.acks_queue,
            self.acks_dead_letter_queue,
            self.alert_notifications,
        )


def quorum_arguments(
    *,
    dead_letter_exchange: str | None = None,
    max_length: int | None = None,
    message_ttl_ms: int | None = None,
    delivery_limit: int = DELIVERY_LIMIT,
) -> dict[str, aio_pika.abc.FieldValue]:
    """Arguments of a quorum queue; dead-lettering is at-least-once (needs reject-publish)."""
    arguments: dict[str, aio_pika.abc.FieldValue] = {
        "x-queue-type": "quorum",
        "x-quorum-initial-group-size": QUORUM_REPLICAS,
        "x-delivery-limit": delivery_limit,
    }
    if dead_letter_exchange is not None:
        arguments["x-dead-letter-exchange"] = dead_letter_exchange
        arguments["x-dead-letter-strategy"] = "at-least-once"
        arguments["x-overflow"] = "reject-publish"
    if max_length is not None:
        arguments["x-max-length"] = max_length
        arguments["x-overflow"] = "reject-publish"
    if message_ttl_ms is not None:
        arguments["x-message-ttl"] = message_ttl_ms
    return arguments


async def declare_exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    """Declare one durable topic exchange (all of ours are)."""
    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


async def _declare_dead_letters(channel: AbstractChannel, exchange: str, queue: str) -> None:
    """A dead-letter exchange and the quorum queue that keeps everything sent to it."""
    dead_letters = await declare_exchange(channel, exchange)
    dlq = await channel.declare_queue(
        queue, durable=True, arguments=quorum_arguments(delivery_limit=DEAD_LETTER_DELIVERY_LIMIT)
    )
    await dlq.bind(dead_letters, routing_key="#")


async def declare_telemetry(channel: AbstractChannel, names: Names) -> AbstractQueue:
    """Telemetry exchange, the ingest queue and its dead-letter queue; returns the ingest queue."""
    telemetry = await declare_exchange(channel, names.telemetry)
    await _declare_dead_letters(channel, names.dead_letters, names.dead_letter_queue)
    queue = await channel.declare_queue(
        names.ingest_queue,
        durable=True,
        arguments=quorum_arguments(
            dead_letter_exchange=names.dead_letters, max_length=INGEST_MAX_LENGTH
        ),
    )
    await queue.bind(telemetry, routing_key="#")
    return queue


async def declare_commands(channel: AbstractChannel, names: Names) -> AbstractQueue:
    """Commands and command-ack exchanges and the control service's ack queue.

    An answer the control service could not store within its delivery limit (a long database
    outage) is dead-lettered to `control.acks.dlq`, which the service also consumes: a unit's
    answer is never dropped, however long the database is away.
    """
    await declare_exchange(channel, names.commands)
    acks = await declare_exchange(channel, names.command_acks)
    await _declare_dead_letters(channel, names.acks_dead_letters, names.acks_dead_letter_queue)
    queue = await channel.declare_queue(
        names.acks_queue,
        durable=True,
        arguments=quorum_arguments(dead_letter_exchange=names.acks_dead_letters),
    )
    await queue.bind(acks, routing_key="#")
    return queue


async def declare_agent(channel: AbstractChannel, names: Names, agent: str) -> AbstractQueue:
    """A unit agent's command queue and the two exchanges it uses; the agent binds the queue
    to `commands` once per unit it plays (routing key `<kind>.<unit_id>`)."""
    await declare_exchange(channel, names.commands)
    await declare_exchange(channel, names.command_acks)
    return await channel.declare_queue(
        names.agent_queue(agent), durable=True, arguments=quorum_arguments()
    )


async def declare_alert_notifications(channel: AbstractChannel, names: Names) -> AbstractQueue:
    """The `alerts` exchange and the notifier's queue of every alert event.

    One consumer at a time (single active consumer) keeps the events of an alert in order
    across several monitoring instances. The notifier retries a webhook itself rather than
    requeueing, but a message is returned on every restart or broker loss: a delivery limit
    as high as the dead-letter queue's never drops one for that.
    """
    alerts = await declare_exchange(channel, names.alerts)
    arguments = quorum_arguments(delivery_limit=DEAD_LETTER_DELIVERY_LIMIT)
    arguments["x-single-active-consumer"] = True
    queue = await channel.declare_queue(
        names.alert_notifications, durable=True, arguments=arguments
    )
    await queue.bind(alerts, routing_key="alert.#")
    return queue


async def declare_all(channel: AbstractChannel, names: Names) -> None:
    """Declare the whole topology (idempotent)."""
    await declare_telemetry(channel, names)
    await declare_commands(channel, names)
    await declare_alert_notifications(channel, names)


async def delete_all(
    channel: AbstractChannel, names: Names, *, extra_queues: tuple[str, ...] = ()
) -> None:
    """Delete every exchange and queue under the prefix (tests and teardown)."""
    for queue in (*names.queues, *extra_queues):
        await channel.queue_delete(queue)
    for exchange in names.exchanges:
        await channel.exchange_delete(exchange)
