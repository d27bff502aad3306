"""The monitoring service's wiring: pool, broker, probes, scheduler and routes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import structlog
from aio_pika.abc import AbstractChannel
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import FastAPI
from rich.console import Console

from common.broker import Broker
from common.db import TRANSIENT_DB_ERRORS, create_pool
from common.docs import install_offline_docs
from common.http import health_router, install_error_handlers
from common.topology import Names, declare_alert_notifications, declare_exchange
from monitoring_service.api import monitoring_router
from monitoring_service.console import make_console, render
from monitoring_service.job import Monitor
from monitoring_service.kpi_api import kpi_router
from monitoring_service.notifier import Notifier, WebhookPolicy
from monitoring_service.probes import BrokerQueueProbe, GatewayScraper
from monitoring_service.settings import MonitoringSettings
from monitoring_service.web.routes import install_console

log = structlog.get_logger("monitoring_service")

BROKER_WAIT_S = 3.0
SHUTDOWN_WAIT_S = 10.0


async def declare_monitoring(channel: AbstractChannel, names: Names) -> None:
    """The exchange alert events go to."""
    await declare_exchange(channel, names.alerts)


async def declare_notifying(channel: AbstractChannel, names: Names) -> None:
    """The exchange and, before the first event is published, the notifier's queue."""
    await declare_alert_notifications(channel, names)


def create_app(settings: MonitoringSettings, *, console: Console | None = None) -> FastAPI:
    """Build the monitoring service; connections open in its lifespan."""
    names = Names(settings.amqp_prefix)
    notifying = bool(settings.alert_webhook_urls)
    broker = Broker(
        settings.amqp_url,
        names,
        declare=declare_notifying if notifying else declare_monitoring,
        publish_timeout_s=settings.publish_timeout_s,
    )
    notifier = (
        Notifier(
            amqp_url=settings.amqp_url,
            names=names,
            policy=WebhookPolicy(
                urls=settings.alert_webhook_urls,
                secret=settings.alert_webhook_secret,
                max_age_s=settings.alert_webhook_max_age_s,
            ),
            timeout_s=settings.alert_webhook_timeout_s,
        )
        if notifying
        else None
    )
    out = console or make_console(settings.report_format)

    async def publish(*, routing_key: str, body: bytes, message_id: str) -> None:
        await broker.publish(
            names.alerts,
            routing_key,
            body,
            message_id=message_id,
            content_type="application/json",
            # past its age the notifier would give the event up anyway
            expiration_s=settings.alert_webhook_max_age_s,
        )

    in_flight: set[asyncio.Task[object]] = set()

    async def scheduled(monitor: Monitor) -> None:
        task = asyncio.current_task()
        if task is not None:
            in_flight.add(task)
        try:
            await monitor.run_once()
        except Exception as error:  # the next interval tries again
            log.exception("monitoring_run_failed", error=f"{type(error).__name__}: {error}")
        finally:
            in_flight.discard(task)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # min_size=0: the service starts (not ready) while the database is still down.
        pool = app.state.pool = await create_pool(settings.database_url, min_size=0, max_size=5)
        monitor = app.state.monitor = Monitor(
            pool=pool,
            settings=settings,
            gateway=GatewayScraper(
                urls=settings.gateway_targets, timeout_s=settings.gateway_scrape_timeout_s
            ),
            queues=BrokerQueueProbe(broker=broker),
            publish=publish,
            on_report=lambda report: render(report, console=out),
        )
        await broker.start()
        if notifier is not None:
            await notifier.start()
        with contextlib.suppress(TimeoutError):  # the first report then has the queue figures
            await broker.wait_connected(BROKER_WAIT_S)
        try:
            await monitor.seed()
        except TRANSIENT_DB_ERRORS as error:
            log.warning("seed_failed", error=str(error))
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            scheduled,
            "interval",
            args=[monitor],
            seconds=settings.monitor_interval_s,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(settings.monitor_interval_s)),
            id="monitoring_report",
        )
        scheduler.start()
        log.info("monitoring_service_started", interval_s=settings.monitor_interval_s)
        yield
        scheduler.shutdown(wait=False)
        if getattr(app.state, "live", None) is not None:
            await app.state.live.close()
        if in_flight:  # let a run that started finish its transaction and its report
            await asyncio.wait(in_flight, timeout=SHUTDOWN_WAIT_S)
        if notifier is not None:
            await notifier.close()
        await broker.close()
        await pool.close()

    async def ready() -> dict[str, bool]:
        try:
            async with app.state.pool.acquire(timeout=2) as conn:
                database = bool(await conn.fetchval("SELECT true"))
        except TRANSIENT_DB_ERRORS:
            database = False
        return {"broker": broker.ready, "database": database}

    app = FastAPI(
        title="Megapack monitoring service",
        version="1.0.0",
        description="Fleet reports, stateful alerts, units and their telemetry.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_offline_docs(app)
    app.include_router(health_router(ready))
    app.include_router(monitoring_router(settings))
    app.include_router(kpi_router(settings))
    install_console(app, settings)
    install_error_handlers(app, transient=TRANSIENT_DB_ERRORS)
    return app
