"""Prometheus metrics of the monitoring service, including the fleet figures of the report."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from monitoring_service.figures import Report

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
READINGS_PER_S = Gauge("fleet_readings_per_second", "Readings stored per second", ["kind"])
LAG_MS = Gauge("fleet_ingest_lag_ms", "Gateway receipt to database commit", ["quantile"])
QUEUE_DEPTH = Gauge("fleet_ingest_queue_depth", "Messages waiting in the ingest queue")
QUEUE_CONSUMERS = Gauge("fleet_ingest_queue_consumers", "Consumers of the ingest queue")
DEAD_LETTERS = Gauge("fleet_dead_letters", "Messages in the dead-letter queue")
SOC_PERCENT = Gauge("fleet_soc_percent", "Megapack state of charge", ["stat"])
UNITS_LOW_SOC = Gauge("fleet_units_low_soc", "Megapacks under the low-SOC threshold")
SITE_ENERGY_MWH = Gauge("fleet_site_energy_stored_mwh", "Energy stored per site", ["site_id"])
SITE_POWER_MW = Gauge("fleet_site_power_mw", "Power per site (direction)", ["site_id", "flow"])
UNITS_IN_FAULT = Gauge("fleet_units_in_fault", "Megapacks in FAULT")
NEW_FAULTS = Gauge("fleet_new_faults", "Units entering FAULT in the last window")
OPEN_ALERTS = Gauge("fleet_open_alerts", "Alerts not cleared", ["severity"])
UNITS = Gauge("fleet_units", "Known units by status", ["status"])
EVS = Gauge("fleet_evs", "Vehicles by status", ["status"])
REPORT_TIME = Gauge("monitoring_last_report_timestamp_seconds", "End of the latest report window")

_NAN = float("nan")


def export(report: Report) -> None:
    """Set every fleet gauge from a report (unknown figures become NaN)."""
    ingest, soc = report.ingest, report.soc
    READINGS_PER_S.labels("megapack").set(ingest.megapack_readings_per_s)
    READINGS_PER_S.labels("ev").set(ingest.ev_readings_per_s)
    LAG_MS.labels("0.5").set(_NAN if ingest.lag_p50_ms is None else ingest.lag_p50_ms)
    LAG_MS.labels("0.95").set(_NAN if ingest.lag_p95_ms is None else ingest.lag_p95_ms)
    QUEUE_DEPTH.set(_NAN if ingest.queue_depth is None else ingest.queue_depth)
    QUEUE_CONSUMERS.set(_NAN if ingest.queue_consumers is None else ingest.queue_consumers)
    DEAD_LETTERS.set(_NAN if ingest.dead_letters is None else ingest.dead_letters)
    for stat, value in (
        ("mean", soc.mean_percent),
        ("min", soc.min_percent),
        ("max", soc.max_percent),
    ):
        SOC_PERCENT.labels(stat).set(_NAN if value is None else value)
    UNITS_LOW_SOC.set(soc.units_low)
    for site in soc.sites:
        SITE_ENERGY_MWH.labels(site.site_id).set(site.energy_stored_mwh)
        SITE_POWER_MW.labels(site.site_id, "net").set(site.net_power_mw)
        SITE_POWER_MW.labels(site.site_id, "charging").set(site.charging_mw)
        SITE_POWER_MW.labels(site.site_id, "discharging").set(site.discharging_mw)
    UNITS_IN_FAULT.set(report.faults.units_in_fault)
    NEW_FAULTS.set(report.faults.new_faults)
    for severity, count in report.faults.open_alerts.items():
        OPEN_ALERTS.labels(severity).set(count)
    for status in ("total", "reporting", "stale"):
        UNITS.labels(status).set(getattr(report.units, status))
    for status in ("total", "driving", "charging", "low_battery", "critical_battery"):
        EVS.labels(status).set(getattr(report.evs, status))
    REPORT_TIME.set(report.window_end.timestamp())
