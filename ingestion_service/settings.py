"""Ingestion consumer settings."""

from __future__ import annotations

from pydantic import Field

from common.settings import BaseServiceSettings


class IngestionSettings(BaseServiceSettings):
    """Everything the consumer reads from the environment."""

    ingestion_metrics_port: int = Field(default=9100, ge=0, le=65535)  # 0: no metrics server
    ingest_batch_readings: int = Field(default=10_000, ge=1, le=1_000_000)
    ingest_batch_wait_ms: int = Field(default=20, ge=0, le=10_000)
    ingest_prefetch: int = Field(default=100, ge=1, le=65_535)
