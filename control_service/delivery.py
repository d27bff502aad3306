"""Broker side of the control service: publish commands, consume answers, run the sweeper."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aio_pika
import structlog
from aio_pika.abc import AbstractIncomingMessage
from google.protobuf.message import DecodeError

from common.broker import Broker, BrokerUnavailable, Unroutable, cancelled_from_inside
from common.db import TRANSIENT_DB_ERRORS
from common.topology import declare_commands
from control_service.delivering import DeliveryFailed
from control_service.delivering import Unroutable as NoQueue
from control_service.handlers import Answer
from control_service.model import CommandRecord
from proto.megapack.v1 import commands_pb2

log = structlog.get_logger("control_service")

_ANSWER_STATUSES = {
    commands_pb2.COMMAND_ACK_STATUS_ACKNOWLEDGED: "acknowledged",
    commands_pb2.COMMAND_ACK_STATUS_COMPLETED: "completed",
    commands_pb2.COMMAND_ACK_STATUS_REJECTED: "rejected",
    commands_pb2.COMMAND_ACK_STATUS_FAILED: "failed",
    commands_pb2.COMMAND_ACK_STATUS_SUPERSEDED: "superseded",
    commands_pb2.COMMAND_ACK_STATUS_LAPSED: "lapsed",
}
# Database trouble worth waiting out while holding the answer (it is acked only once stored).
MIN_EXPIRATION_S = 0.001


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def encode_command(command: CommandRecord) -> bytes:
    """The protobuf a unit agent receives."""
    return commands_pb2.Command(
        command_id=str(command.command_id),
        unit_id=command.unit_id,
        kind=command.kind,
        type=command.type,
        params_json=json.dumps(command.params, separators=(",", ":")),
        issued_at_ms=_epoch_ms(command.created_at),
        expires_at_ms=_epoch_ms(command.expires_at),
        requested_by=command.requested_by,
        seq=command.seq,
    ).SerializeToString()


def decode_answer(body: bytes) -> Answer | None:
    """A unit's CommandAck as an Answer, or None when it is not one we can use."""
    try:
        ack = commands_pb2.CommandAck.FromString(body)
        command_id = uuid.UUID(ack.command_id)
    except (DecodeError, ValueError):
        return None
    status = _ANSWER_STATUSES.get(ack.status)
    if status is None or not ack.unit_id:
        return None
    return Answer(
        command_id=command_id,
        unit_id=ack.unit_id,
        status=status,
        reason=ack.reason or None,
        agent_id=ack.agent_id or None,
        unit_at=datetime.fromtimestamp(ack.at_ms / 1000, UTC) if ack.at_ms > 0 else None,
    )


class BrokerPublisher:
    """Publishes commands persistently, with confirms, carrying their expiry."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    @property
    def ready(self) -> bool:
        """The broker connection is up."""
        return self._broker.ready

    async def publish(self, command: CommandRecord) -> None:
        """Publish and wait for the confirm (raises DeliveryFailed)."""
        remaining_s = command.expires_at.timestamp() - time.time()
        if remaining_s <= 0:
            raise DeliveryFailed("expired before it could be published")
        try:
            await self._broker.publish(
                self._broker.names.commands,
                f"{command.kind}.{command.unit_id}",
                encode_command(command),
                expiration_s=max(remaining_s, MIN_EXPIRATION_S),
                message_id=str(command.command_id),
                require_route=True,
            )
        except Unroutable as error:
            raise NoQueue(f"no unit agent queue takes it: {error}") from error
        except BrokerUnavailable as error:
            raise DeliveryFailed(str(error)) from error


class AnswerConsumer:
    """Consumes `control.acks` and its dead-letter queue; an answer is acked only once stored.

    An answer the database cannot take within `retry_for_s` goes back to `control.acks`; past
    the queue's delivery limit the broker moves it to `control.acks.dlq`, where it is retried
    for as long as it takes (held, never requeued): no outage length loses an answer.
    """

    def __init__(
        self,
        broker: Broker,
        *,
        apply: Callable[[Answer], Awaitable[bool]],
        prefetch: int,
        retry_for_s: float = 30.0,
    ) -> None:
        self._broker = broker
        self._apply = apply
        self._prefetch = prefetch
        self._retry_for_s = retry_for_s
        # aio-pika runs each delivery in its own task; answers are applied one at a time, in
        # the order they arrived (the lock is fair), so ACKNOWLEDGED never overtakes COMPLETED.
        self._in_order = asyncio.Lock()
        self.consuming = False
        self._caught_up = False
        self._unfinished = 0  # delivered to us, not yet applied and acked
        self.dead_lettered_applied = 0  # answers that came back from the dead-letter queue

    async def run(self) -> None:
        """Wait for the broker, then consume (the robust channel resumes after reconnects)."""
        names = self._broker.names
        while not self.consuming:
            try:
                await self._broker.wait_connected(timeout_s=3600)
                channel = self._broker.channel
                await channel.set_qos(prefetch_count=self._prefetch)
                queue = await declare_commands(channel, names)
                dlq = await channel.get_queue(names.acks_dead_letter_queue)
                await queue.consume(self._on_message)
                await dlq.consume(self._on_dead_letter)
            except TimeoutError:
                continue
            except (
                aio_pika.exceptions.AMQPError,
                aio_pika.exceptions.ChannelInvalidStateError,
                ConnectionError,
                BrokerUnavailable,
            ) as error:  # the connection dropped while subscribing: try again
                log.warning("answer_consumer_failed", error=f"{type(error).__name__}: {error}")
                await asyncio.sleep(1)
                continue
            self.consuming = True
            log.info("consuming_answers", queue=names.acks_queue, dlq=names.acks_dead_letter_queue)

    async def caught_up(self) -> bool:
        """True once the answers queued before we started are applied, and the broker is up.

        Until then the sweeper must not expire anything: the answer proving a command was
        acknowledged in time may be waiting in `control.acks` or its dead-letter queue (after
        a restart or an outage).
        """
        if not (self.consuming and self._broker.ready):
            self._caught_up = False
            return False
        if not self._caught_up:
            # The raw channel: aio-pika answers a passive declare of a known queue from cache.
            raw = await self._broker.channel.get_underlay_channel()
            waiting = 0
            for name in (self._broker.names.acks_queue, self._broker.names.acks_dead_letter_queue):
                waiting += (await raw.queue_declare(name, passive=True)).message_count or 0
            self._caught_up = waiting == 0 and self._unfinished == 0
            if self._caught_up:
                log.info("answers_caught_up")
        return self._caught_up

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        await self._consume(message, retry_for_s=self._retry_for_s)

    async def _on_dead_letter(self, message: AbstractIncomingMessage) -> None:
        await self._consume(message, retry_for_s=None)

    async def _consume(
        self, message: AbstractIncomingMessage, *, retry_for_s: float | None
    ) -> None:
        self._unfinished += 1
        try:
            async with self._in_order:
                await self._handle(message, retry_for_s=retry_for_s)
        finally:
            self._unfinished -= 1

    async def _handle(self, message: AbstractIncomingMessage, *, retry_for_s: float | None) -> None:
        answer = decode_answer(message.body)
        if answer is None:
            log.warning(
                "answer_undecodable", routing_key=message.routing_key, size=len(message.body)
            )
            await message.reject(requeue=False)
            return
        deadline = None if retry_for_s is None else time.monotonic() + retry_for_s
        delay_s = 0.2
        while True:
            try:
                await self._apply(answer)
                break
            except TRANSIENT_DB_ERRORS as error:
                self._caught_up = False  # after the outage, answers first, then the sweeper
                if deadline is not None and time.monotonic() > deadline:
                    log.warning(
                        "answer_requeued", command_id=str(answer.command_id), error=str(error)
                    )
                    await message.nack(requeue=True)
                    return
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 2.0)
        if retry_for_s is None:
            self.dead_lettered_applied += 1
            log.info("answer_from_dead_letter_queue", command_id=str(answer.command_id))
        try:
            await message.ack()
        except (
            aio_pika.exceptions.AMQPError,
            aio_pika.exceptions.ChannelInvalidStateError,
        ) as error:
            # Redelivered later; applying the same answer again changes nothing.
            log.warning("answer_ack_failed", error=str(error))


async def every(interval_s: float, job: Callable[[], Awaitable[object]], *, name: str) -> None:
    """Run `job` every `interval_s` forever; a failing run is logged and the next one goes on."""
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            if not cancelled_from_inside():
                raise
            # Work pending on a closed broker channel was cancelled: this run failed, the
            # job goes on (re-raising here ended the sweeper for good after a failover).
            log.warning("periodic_job_failed", job=name, error="cancelled by a closed channel")
        except Exception as error:
            log.warning("periodic_job_failed", job=name, error=f"{type(error).__name__}: {error}")
        await asyncio.sleep(interval_s)
