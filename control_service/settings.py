"""Settings of the control service and of its command-line client."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from common.settings import BaseServiceSettings, OperatorKeysMixin, RefusedDeviceKeysMixin


class ControlSettings(OperatorKeysMixin, RefusedDeviceKeysMixin, BaseServiceSettings):
    """Everything the control service reads from the environment."""

    control_port: int = Field(default=8001, ge=1, le=65535)
    megapack_rated_power_kw: float = Field(default=1927.0, gt=0, le=100_000)
    command_default_ttl_s: int = Field(default=30, ge=1, le=3600)
    # An answer may still be on its way when a command's expiry passes: wait this long for it.
    command_expiry_grace_s: float = Field(default=1.0, ge=0, le=60)
    # An acknowledged command with no completion after this long is marked `failed`.
    command_completion_timeout_s: float = Field(default=300.0, gt=0, le=86_400)
    command_republish_after_s: float = Field(default=2.0, gt=0, le=600)
    command_sweep_interval_s: float = Field(default=0.5, gt=0, le=60)
    ack_prefetch: int = Field(default=50, ge=1, le=10_000)
    # set_power / set_mode without `hold_s`: the unit falls back to STANDBY after this long.
    command_hold_s: int = Field(default=900, ge=0, le=86_400)
    # A set_power / set_mode acknowledged this long ago whose effect telemetry never showed
    # is `failed`.
    effect_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    # How long an answer is retried against a database in trouble before it goes back to the
    # queue (and, after the delivery limit, to the dead-letter queue: never dropped).
    ack_retry_for_s: float = Field(default=30.0, gt=0, le=3600)

    # Origins whose pages may call this API from a browser (the web console, docs/API.md).
    console_origins: Annotated[tuple[str, ...], NoDecode] = (
        "http://localhost:8002",
        "http://127.0.0.1:8002",
    )

    @field_validator("console_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        origins = tuple(part.strip().rstrip("/") for part in str(value).split(",") if part.strip())
        for origin in origins:
            if not re.fullmatch(r"https?://[^/\s*]+", origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
        return origins


class ClientSettings(BaseServiceSettings):
    """What the command-line client reads: where the service is and which key to present."""

    control_url: str = Field(default="http://localhost:8001", pattern=r"^https?://\S+$")
    operator_api_key: str = Field(min_length=1)
    control_timeout_s: float = Field(default=10.0, gt=0, le=300)
