"""Prometheus metrics of the gateway (module-level: one registry per process)."""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "gateway_requests_total", "Telemetry requests by kind and HTTP status", ["kind", "status"]
)
READINGS = Counter("gateway_readings_accepted_total", "Readings answered 202, by kind", ["kind"])
PUBLISH_SECONDS = Histogram(
    "gateway_publish_seconds",
    "Time from queuing a request to the broker's confirm",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PENDING = Gauge("gateway_pending_readings", "Readings waiting for a broker confirm", ["kind"])
