"""Prometheus metrics of the ingestion consumer."""

from prometheus_client import Counter, Histogram

STORED = Counter("ingest_readings_stored_total", "New rows written, by kind", ["kind"])
DUPLICATES = Counter("ingest_readings_duplicate_total", "Redelivered readings already stored")
MESSAGES = Counter("ingest_messages_total", "Broker messages handled, by outcome", ["outcome"])
DB_ERRORS = Counter("ingest_db_errors_total", "Failed store attempts (retried)")
FLUSH_SECONDS = Histogram("ingest_flush_seconds", "Time to store and commit one batch")
LAG_SECONDS = Histogram(
    "ingest_lag_seconds",
    "Gateway receipt to database commit",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
