"""What the report learns outside the database: gateway counters and queue depths."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime

import aiormq
import httpx
import structlog
from prometheus_client.parser import text_string_to_metric_families

from common.broker import Broker, BrokerUnavailable
from monitoring_service.figures import GatewaySample

log = structlog.get_logger("monitoring_service.probes")

REQUESTS_SAMPLE = "gateway_requests_total"


@dataclass(frozen=True, slots=True)
class QueueSample:
    """Depth and consumers of the ingest queue, and the dead-letter queue's depth."""

    depth: int | None = None
    consumers: int | None = None
    dead_letters: int | None = None


@dataclass(frozen=True, slots=True)
class GatewayRates:
    """Traffic between two scrapes."""

    requests_per_s: float
    rejections_per_s: float
    rejections: dict[str, int]


def parse_requests(text: str) -> dict[str, float]:
    """`gateway_requests_total` samples of a Prometheus exposition, as `kind|status` -> total."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == REQUESTS_SAMPLE:
                key = f"{sample.labels.get('kind', '')}|{sample.labels.get('status', '')}"
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def gateway_rates(previous: GatewaySample, current: GatewaySample) -> GatewayRates | None:
    """Rates between two samples; a counter that went down (gateway restart) counts from 0."""
    elapsed_s = (current.scraped_at - previous.scraped_at).total_seconds()
    if elapsed_s <= 0:
        return None
    total = 0.0
    rejections: dict[str, int] = {}
    for key, value in current.requests.items():
        before = previous.requests.get(key, 0.0)
        delta = value - before if value >= before else value
        total += delta
        status = key.rsplit("|", 1)[-1]
        if not status.startswith("2") and delta > 0:
            rejections[status] = rejections.get(status, 0) + round(delta)
    return GatewayRates(
        requests_per_s=total / elapsed_s,
        rejections_per_s=sum(rejections.values()) / elapsed_s,
        rejections=dict(sorted(rejections.items())),
    )


class GatewayScraper:
    """Scrapes the gateway's /metrics; None when it cannot be reached."""

    def __init__(self, *, url: str, timeout_s: float) -> None:
        self._url = url.rstrip("/") + "/metrics"
        self._timeout_s = timeout_s

    async def sample(self) -> GatewaySample | None:
        """One scrape of the request counters."""
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                response = await client.get(self._url)
                response.raise_for_status()
        except httpx.HTTPError as error:
            log.info("gateway_scrape_failed", url=self._url, error=type(error).__name__)
            return None
        try:
            requests = parse_requests(response.text)
        except ValueError as error:
            log.warning("gateway_metrics_unparseable", error=str(error)[:200])
            return None
        return GatewaySample(scraped_at=datetime.now(UTC), requests=requests)


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
            underlay = await self._broker.channel.get_underlay_channel()
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
