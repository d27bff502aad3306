"""The scheduled run: one instance at a time evaluates alerts and stores the report."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg
import structlog
from pydantic import ValidationError

from common.broker import BrokerUnavailable
from db import monitoring as report_sql
from db.monitoring_alerts import database_now, try_evaluation_lock
from monitoring_service import metrics
from monitoring_service.alerting import evaluate_alerts
from monitoring_service.figures import GatewaySample, Report
from monitoring_service.kpi_report import today_line
from monitoring_service.outbox import EventPublisher, publish_events
from monitoring_service.probes import GatewayRates, QueueSample, gateway_rates
from monitoring_service.report import compute_report, slot_start
from monitoring_service.rules import RULE_NAMES, Thresholds
from monitoring_service.settings import ReportSettings

log = structlog.get_logger("monitoring_service.job")

# A stored gateway sample older than this many intervals is not used to compute rates.
SAMPLE_MAX_AGE_INTERVALS = 10


class GatewayProbe(Protocol):
    """Scrapes the gateway's request counters (None when unreachable)."""

    async def sample(self) -> GatewaySample | None: ...


class QueueProbe(Protocol):
    """Reads the ingest and dead-letter queue figures."""

    async def sample(self) -> QueueSample: ...


def thresholds_from(settings: ReportSettings) -> Thresholds:
    """The alert thresholds configured in the settings."""
    disabled = set(settings.alert_rules_disabled)
    return Thresholds(
        megapack_temp_high_c=settings.alert_megapack_temp_high_c,
        megapack_temp_critical_c=settings.alert_megapack_temp_critical_c,
        megapack_low_soc_percent=settings.low_soc_percent,
        megapack_critical_soc_percent=settings.alert_megapack_critical_soc_percent,
        stale_after_s=settings.stale_after_s,
        ev_battery_temp_warning_c=settings.alert_ev_battery_temp_warning_c,
        ev_battery_temp_c=settings.alert_ev_battery_temp_c,
        ev_battery_percent=settings.alert_ev_battery_percent,
        ev_critical_battery_percent=settings.ev_critical_battery_percent,
        ev_tire_pressure_psi=settings.alert_ev_tire_pressure_psi,
        enabled=tuple(name for name in RULE_NAMES if name not in disabled),
        tuning=settings.alert_rule_tuning,
    )


def _parse(text: str | None) -> Report | None:
    """A stored report, or None when there is none or it predates the current shape."""
    if text is None:
        return None
    try:
        return Report.model_validate_json(text)
    except ValidationError as error:
        log.warning("stored_report_unreadable", error=str(error)[:200])
        return None


def instance_name() -> str:
    """Which process this is, as recorded with the reports it stores."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Monitor:
    """Runs the report and the alert rules; keeps the latest report in memory."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        settings: ReportSettings,
        gateway: GatewayProbe | None = None,
        queues: QueueProbe | None = None,
        publish: EventPublisher | None = None,
        on_report: Callable[[Report], None] | None = None,
        instance: str | None = None,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._thresholds = thresholds_from(settings)
        self._gateway = gateway
        self._queues = queues
        self._publish = publish
        self._on_report = on_report
        self._instance = instance or instance_name()
        self._previous: GatewaySample | None = None
        self.latest: Report | None = None

    async def seed(self) -> None:
        """Load the latest stored report (and its gateway counters, if recent)."""
        async with self._pool.acquire() as conn:
            text = await report_sql.latest_report(conn)
        self.latest = _parse(text) or self.latest
        if self.latest is None:
            return
        sample = self.latest.ingest.gateway_sample
        max_age = timedelta(seconds=self._settings.monitor_interval_s * SAMPLE_MAX_AGE_INTERVALS)
        if sample is not None and datetime.now(UTC) - sample.scraped_at < max_age:
            self._previous = sample

    async def _probe(self) -> tuple[GatewaySample | None, GatewayRates | None, QueueSample]:
        sample = await self._gateway.sample() if self._gateway else None
        previous = self._previous
        if sample is not None:
            self._previous = sample
        rates = gateway_rates(previous, sample) if previous and sample else None
        queues = await self._queues.sample() if self._queues else QueueSample()
        return sample, rates, queues

    async def compute(self, *, now: datetime | None = None) -> Report:
        """A report without storing it or touching alerts (`report --once`)."""
        sample, rates, queues = await self._probe()
        async with self._pool.acquire() as conn:
            end = now or await database_now(conn)
            return await compute_report(
                conn=conn,
                settings=self._settings,
                end=end,
                rates=rates,
                sample=sample,
                queues=queues,
            )

    async def run_once(self, *, now: datetime | None = None) -> Report | None:
        """Evaluate alerts and store this interval's report; None when another instance did."""
        with metrics.RUN_SECONDS.time():
            report = await self._evaluate_and_store(now=now)
        if report is not None:
            metrics.RUNS.labels("stored").inc()
            if self._on_report is not None:
                self._on_report(report)
        if self.latest is not None:
            metrics.export(self.latest)
        await self.flush_events()  # every instance helps: the outbox is claimed row by row
        return report

    async def _evaluate_and_store(self, *, now: datetime | None) -> Report | None:
        sample, rates, queues = await self._probe()
        async with self._pool.acquire() as conn:
            # Today's KPIs (a day of rows, cached for KPI_REPORT_REFRESH_S) before the lock:
            # the report below reads the cache, and alert changes are not held back meanwhile.
            await today_line(
                conn=conn, settings=self._settings, end=now or await database_now(conn)
            )
        async with self._pool.acquire() as conn, conn.transaction():
            if not await try_evaluation_lock(conn):
                metrics.RUNS.labels("busy").inc()
                log.info("monitoring_run_skipped", reason="another instance is evaluating")
                return None
            end: datetime = now or await database_now(conn)
            slot = slot_start(end, self._settings.monitor_interval_s)
            if await report_sql.report_slot_taken(conn, slot_start=slot):
                metrics.RUNS.labels("slot_taken").inc()
                text = await report_sql.latest_report(conn)
                self.latest = _parse(text) or self.latest
                log.info("monitoring_run_skipped", reason="interval already reported")
                return None
            changes = await evaluate_alerts(conn=conn, thresholds=self._thresholds, now=end)
            report = await compute_report(
                conn=conn,
                settings=self._settings,
                end=end,
                rates=rates,
                sample=sample,
                queues=queues,
            )
            await report_sql.store_report(
                conn,
                slot_start=slot,
                window_start=report.window_start,
                window_end=report.window_end,
                instance=self._instance,
                report_json=report.model_dump_json(),
            )
        metrics.ALERT_CHANGES.labels("raised").inc(len(changes.raised))
        metrics.ALERT_CHANGES.labels("severity_changed").inc(len(changes.changed))
        metrics.ALERT_CHANGES.labels("cleared").inc(len(changes.cleared))
        self.latest = report
        return report

    async def flush_events(self) -> None:
        """Publish the alert events not published yet (a later run retries on failure)."""
        if self._publish is None:
            return
        try:
            published = await publish_events(pool=self._pool, publish=self._publish)
        except BrokerUnavailable as error:
            log.warning("alert_events_not_published", error=str(error))
            return
        metrics.EVENTS_PUBLISHED.inc(published)
