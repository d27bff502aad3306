"""`replay-dead-letters`: list the dead-letter queue, or publish its messages back to telemetry."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from common.broker import connect_failover
from common.topology import Names, declare_telemetry
from ingestion_service.settings import IngestionSettings


def describe(message: AbstractIncomingMessage) -> str:
    """One line about a dead-lettered message: size, why and when it died."""
    headers = message.headers or {}
    reason = str(headers.get("x-first-death-reason", "?"))
    deaths = headers.get("x-death") or [{}]
    first = deaths[0] if isinstance(deaths, list) and deaths else {}
    when = str(first.get("time", "?")) if isinstance(first, dict) else "?"
    return f"{len(message.body):>9} bytes  reason={reason}  first-death={when}"


async def replay_dead_letters(settings: IngestionSettings, *, requeue: bool, limit: int) -> int:
    """Print each dead letter; with `requeue`, publish it back (confirmed) and remove it."""
    names = Names(settings.amqp_prefix)
    connection = await connect_failover(settings.amqp_url, timeout_s=10)
    count = 0
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare_telemetry(channel, names)
        dlq = await channel.get_queue(names.dead_letter_queue)
        telemetry = await channel.get_exchange(names.telemetry)
        while limit == 0 or count < limit:
            message = await dlq.get(no_ack=False, fail=False, timeout=10)
            if message is None:
                break
            count += 1
            print(f"{count:>6}  {describe(message)}")
            if requeue:
                await telemetry.publish(
                    aio_pika.Message(
                        message.body,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        content_type=message.content_type,
                    ),
                    routing_key=message.routing_key or "replay",
                )
                await message.ack()
        # without --requeue, closing the channel returns every message to the queue unchanged
    verb = "re-queued" if requeue else "listed (left in place)"
    print(f"{count} dead-lettered message(s) {verb} from {names.dead_letter_queue}")
    return count
