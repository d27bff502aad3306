"""Gateway traffic: scrape every replica's request counters and sum their rates.

Several replicas of the gateway sit behind one name (compose's DNS answers every replica's
address; a load balancer answers one at random). Scraping the name would read one random
replica per run, so each of `GATEWAY_URLS` (or `GATEWAY_URL`) is resolved to all its
addresses, every address is scraped, and the rates are summed over replicas.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import structlog
from prometheus_client.parser import text_string_to_metric_families

from monitoring_service.figures import GatewaySample

log = structlog.get_logger("monitoring_service.gateway_probe")

REQUESTS_SAMPLE = "gateway_requests_total"


@dataclass(frozen=True, slots=True)
class GatewayRates:
    """Traffic between two scrapes, summed over the gateway replicas."""

    requests_per_s: float
    rejections_per_s: float
    rejections: dict[str, int]
    replicas: int = 1


def parse_requests(text: str) -> dict[str, float]:
    """`gateway_requests_total` samples of a Prometheus exposition, as `kind|status` -> total."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == REQUESTS_SAMPLE:
                key = f"{sample.labels.get('kind', '')}|{sample.labels.get('status', '')}"
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def _deltas(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Counter increases; a counter that went down (the replica restarted) counts from 0."""
    return {
        key: value - before.get(key, 0.0) if value >= before.get(key, 0.0) else value
        for key, value in after.items()
    }


def gateway_rates(previous: GatewaySample, current: GatewaySample) -> GatewayRates | None:
    """Rates between two samples, summed over replicas.

    A replica seen for the first time counts from its next scrape (its totals so far are not
    this window's traffic); one that vanished simply stops counting.
    """
    elapsed_s = (current.scraped_at - previous.scraped_at).total_seconds()
    if elapsed_s <= 0:
        return None
    if current.replicas and previous.replicas:
        deltas = [
            _deltas(previous.replicas[name], counters)
            for name, counters in current.replicas.items()
            if name in previous.replicas
        ]
    else:  # a sample stored before replicas were told apart
        deltas = [_deltas(previous.requests, current.requests)]
    total = 0.0
    rejections: dict[str, int] = {}
    for delta in deltas:
        for key, value in delta.items():
            total += value
            status = key.rsplit("|", 1)[-1]
            if not status.startswith("2") and value > 0:
                rejections[status] = rejections.get(status, 0) + round(value)
    return GatewayRates(
        requests_per_s=total / elapsed_s,
        rejections_per_s=sum(rejections.values()) / elapsed_s,
        rejections=dict(sorted(rejections.items())),
        replicas=max(len(current.replicas), 1),
    )


async def _addresses(url: str) -> list[tuple[str, str]]:
    """(replica name, URL of that address) for every address the URL's host resolves to."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme == "https":  # a certificate names the host, not an address: one target
        return [(f"{host}:{port}", url)]
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    found: list[tuple[str, str]] = []
    for info in infos:
        address = str(info[4][0])
        netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        target = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        if all(target != seen for _, seen in found):
            found.append((f"{host}@{netloc}", target))
    return found


class GatewayScraper:
    """Scrapes /metrics of every gateway replica; None when none can be reached."""

    def __init__(self, *, urls: tuple[str, ...], timeout_s: float) -> None:
        self._urls = tuple(url.rstrip("/") + "/metrics" for url in urls)
        self._timeout_s = timeout_s

    async def _scrape(
        self, client: httpx.AsyncClient, name: str, target: str, host: str
    ) -> tuple[str, dict[str, float]] | None:
        try:
            response = await client.get(target, headers={"Host": host})
            response.raise_for_status()
            return name, parse_requests(response.text)
        except httpx.HTTPError as error:
            log.info("gateway_scrape_failed", url=target, error=type(error).__name__)
        except ValueError as error:
            log.warning("gateway_metrics_unparseable", url=target, error=str(error)[:200])
        return None

    async def sample(self) -> GatewaySample | None:
        """One scrape of every replica's request counters."""
        jobs: list[Coroutine[Any, Any, tuple[str, dict[str, float]] | None]] = []
        async with httpx.AsyncClient(timeout=self._timeout_s) as client:
            for url in self._urls:
                try:
                    targets = await asyncio.wait_for(_addresses(url), self._timeout_s)
                except (OSError, TimeoutError) as error:
                    log.info("gateway_resolve_failed", url=url, error=type(error).__name__)
                    continue
                host = urlsplit(url).netloc
                jobs.extend(self._scrape(client, name, target, host) for name, target in targets)
            scraped = [found for found in await asyncio.gather(*jobs) if found is not None]
        if not scraped:
            return None
        replicas = dict(scraped)
        total: dict[str, float] = {}
        for counters in replicas.values():
            for key, value in counters.items():
                total[key] = total.get(key, 0.0) + value
        return GatewaySample(scraped_at=datetime.now(UTC), requests=total, replicas=replicas)
