"""Gateway settings."""

from __future__ import annotations

from pydantic import Field

from common.settings import BaseServiceSettings, DeviceKeysMixin


class GatewaySettings(DeviceKeysMixin, BaseServiceSettings):
    """Everything the gateway reads from the environment."""

    gateway_port: int = Field(default=8000, ge=1, le=65535)
    max_batch_readings: int = Field(default=5000, ge=1, le=100_000)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    rate_limit_readings_per_s: float = Field(default=200_000, ge=0)  # per key; 0 = no limit
    rate_limit_burst_s: float = Field(default=2.0, gt=0, le=60)
    max_pending_readings: int = Field(default=200_000, ge=1000)
    publish_max_in_flight: int = Field(default=8, ge=1, le=256)
    # Requests being read, validated or published at once; past it new ones get 503 at once,
    # so a CPU-bound gateway pushes back instead of queueing work (and memory) without end.
    max_requests_in_flight: int = Field(default=256, ge=1, le=100_000)
    # The same bound in body bytes received and not yet answered: big batches queue less work.
    # A body that does not arrive in time is a 408: a stalled upload must not hold a slot.
    body_read_timeout_s: float = Field(default=30.0, gt=0, le=600)
    max_bytes_in_flight: int = Field(default=16 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    # The ASGI fast lane (api_gateway/lane.py) answers telemetry POSTs around FastAPI; off
    # (GATEWAY_FAST_PATH=0), the documented routes answer them: the same answers, more CPU.
    gateway_fast_path: bool = True
