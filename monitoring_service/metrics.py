"""Prometheus metrics of the monitoring service: operational figures only.

`/metrics` needs no key, so it carries how the pipeline and this service are doing, never the
fleet's business data (SOC, energy, power, faults, positions), and every label takes a value
from a fixed set: no site, unit or fleet id from device input ever becomes a label. The fleet
figures are in `GET /v1/monitoring/summary` and `GET /v1/sites`, behind an operator key.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from monitoring_service.figures import Report
from monitoring_service.rules import SEVERITIES

RUNS = Counter(
    "monitoring_runs_total",
    "Scheduled runs by outcome (stored, slot_taken, busy, failed)",
    ["outcome"],
)
RUN_SECONDS = Histogram(
    "monitoring_run_seconds",
    "Duration of a scheduled run (probes, alert evaluation, report, outbox)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ALERT_CHANGES = Counter("monitoring_alert_changes_total", "Alerts raised and cleared", ["change"])
EVENTS_PUBLISHED = Counter("monitoring_alert_events_published_total", "Alert events confirmed")
WEBHOOK_DELIVERIES = Counter(
    "monitoring_webhook_deliveries_total",
    "Webhook POSTs of alert events by outcome (delivered, failed, gave_up)",
    ["outcome"],
)
READINGS_PER_S = Gauge("fleet_readings_per_second", "Readings stored per second", ["kind"])
LAG_MS = Gauge("fleet_ingest_lag_ms", "Gateway receipt to database commit", ["quantile"])
QUEUE_DEPTH = Gauge("fleet_ingest_queue_depth", "Messages waiting in the ingest queue")
QUEUE_CONSUMERS = Gauge("fleet_ingest_queue_consumers", "Consumers of the ingest queue")
DEAD_LETTERS = Gauge("fleet_dead_letters", "Messages in the dead-letter queue")
OPEN_ALERTS = Gauge("fleet_open_alerts", "Active alerts not shelved", ["severity"])
GATEWAY_REPLICAS = Gauge("monitoring_gateway_replicas", "Gateway replicas scraped and summed")
UNITS = Gauge("fleet_units", "Known units by status", ["status"])
REPORT_TIME = Gauge("monitoring_last_report_timestamp_seconds", "End of the latest report window")

_NAN = float("nan")


def export(report: Report) -> None:
    """Set the operational gauges from a report (unknown figures become NaN)."""
    ingest = report.ingest
    READINGS_PER_S.labels("megapack").set(ingest.megapack_readings_per_s)
    READINGS_PER_S.labels("ev").set(ingest.ev_readings_per_s)
    LAG_MS.labels("0.5").set(_NAN if ingest.lag_p50_ms is None else ingest.lag_p50_ms)
    LAG_MS.labels("0.95").set(_NAN if ingest.lag_p95_ms is None else ingest.lag_p95_ms)
    QUEUE_DEPTH.set(_NAN if ingest.queue_depth is None else ingest.queue_depth)
    QUEUE_CONSUMERS.set(_NAN if ingest.queue_consumers is None else ingest.queue_consumers)
    DEAD_LETTERS.set(_NAN if ingest.dead_letters is None else ingest.dead_letters)
    GATEWAY_REPLICAS.set(_NAN if ingest.gateway_replicas is None else ingest.gateway_replicas)
    for severity in SEVERITIES:
        OPEN_ALERTS.labels(severity).set(report.faults.open_alerts.get(severity, 0))
    for status in ("total", "reporting", "stale"):
        UNITS.labels(status).set(getattr(report.units, status))
    REPORT_TIME.set(report.window_end.timestamp())
