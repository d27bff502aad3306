"""What the report learns outside the database: queue depths (and the gateway probe's names)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import aiormq
import structlog

from common.broker import Broker, BrokerUnavailable
from monitoring_service.gateway_probe import GatewayRates, GatewayScraper, gateway_rates

log = structlog.get_logger("monitoring_service.probes")

__all__ = ["BrokerQueueProbe", "GatewayRates", "GatewayScraper", "QueueSample", "gateway_rates"]


@dataclass(frozen=True, slots=True)
class QueueSample:
    """Depth and consumers of the ingest queue, and the dead-letter queue's depth."""

    depth: int | None = None
    consumers: int | None = None
    dead_letters: int | None = None


class BrokerQueueProbe:
    """Passive declares of the ingest and dead-letter queues.

    Each declare runs on a short-lived channel of the service's broker connection: a queue
    that does not exist closes that channel, never the one alert events are published on.
    Passive declares need no permission, so the monitoring broker user stays read-nothing.
    """

    def __init__(self, *, broker: Broker, timeout_s: float = 2.0) -> None:
        self._broker = broker
        self._timeout_s = timeout_s

    async def _passive(self, queue: str) -> tuple[int, int] | None:
        try:
            # a robust channel waits for the reconnection: bounded, so that a broker outage
            # never holds up the scheduled run (the alerts are evaluated in it)
            underlay = await asyncio.wait_for(
                self._broker.channel.get_underlay_channel(), self._timeout_s
            )
            channel = await asyncio.wait_for(
                underlay.connection.channel(publisher_confirms=False), self._timeout_s
            )
        except (BrokerUnavailable, TimeoutError, aiormq.exceptions.AMQPError, RuntimeError) as e:
            log.info("queue_probe_failed", queue=queue, error=f"{type(e).__name__}: {e}"[:200])
            return None
        try:
            declared = await asyncio.wait_for(
                channel.queue_declare(queue, passive=True), self._timeout_s
            )
        except (TimeoutError, aiormq.exceptions.AMQPError, ConnectionError) as e:
            log.info("queue_probe_failed", queue=queue, error=f"{type(e).__name__}: {e}"[:200])
            return None
        finally:
            if not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()
        return declared.message_count or 0, declared.consumer_count or 0

    async def sample(self) -> QueueSample:
        """Depths and consumer count; unknown figures are None."""
        names = self._broker.names
        ingest = await self._passive(names.ingest_queue)
        dead = await self._passive(names.dead_letter_queue)
        return QueueSample(
            depth=ingest[0] if ingest else None,
            consumers=ingest[1] if ingest else None,
            dead_letters=dead[0] if dead else None,
        )
