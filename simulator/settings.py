"""Simulator settings: SPEC §3 variables, each also a command-line flag."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from common.readings import timestamp_ms
from common.settings import BaseServiceSettings
from simulator.physics import Physics

RFC3339 = "must be RFC 3339 with an offset (2026-11-30T00:00:00Z)"
REPLAY_MARGIN_MS = 10 * 60_000  # the oldest replayed readings must still be accepted on arrival


class SimulatorSettings(BaseServiceSettings):
    """Fleet size, pace, randomness, where to post telemetry, and the unit agent's identity."""

    megapack_count: int = Field(default=10, ge=0, le=100_000)
    ev_count: int = Field(default=10, ge=0, le=100_000)
    site_count: int = Field(default=2, ge=1, le=1_000)
    fleet_count: int = Field(default=1, ge=1, le=1_000)
    telemetry_interval_s: float = Field(default=1.0, gt=0, le=3_600)
    sim_duration_s: float = Field(default=0.0, ge=0)
    sim_seed: int | None = None
    fault_rate: float = Field(default=0.5, ge=0, le=3_600)
    gateway_url: str = Field(default="http://localhost:8000", pattern=r"^https?://")
    device_api_key: str | None = None
    telemetry_format: str = Field(default="json", pattern=r"^(json|protobuf)$")
    max_batch_readings: int = Field(default=5_000, ge=1)
    buffer_intervals: int = Field(default=30, ge=1)
    stats_interval_s: float = Field(default=5.0, gt=0)
    sim_agent_id: str = Field(default="sim", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    sim_agent: bool = True
    sim_agent_journal: str = ""  # "" = var/agent-<AMQP_PREFIX><SIM_AGENT_ID>.journal
    sim_id_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_.-]{0,24}$")
    sim_faulted_units: Annotated[tuple[str, ...], NoDecode] = ()
    # Time travel (SPEC §14): replay from SIM_START at SIM_SPEED × real time, then real time.
    sim_start: int | None = None  # epoch ms, from RFC 3339 with an offset
    sim_speed: float = Field(default=1.0, ge=1.0, le=1_000_000)
    # Physics (simulator/physics.py): ramp, auxiliaries, regulation noise, per-unit spread.
    sim_ramp_percent_per_s: float = Field(default=10.0, gt=0, le=1_000)
    sim_aux_kw: float = Field(default=3.0, ge=0, le=100)
    sim_noise_percent: float = Field(default=0.1, ge=0, le=2)
    sim_variation: float = Field(default=1.0, ge=0, le=5)

    def physics(self) -> Physics:
        """The fleet's physics settings."""
        return Physics(
            ramp_share_per_s=self.sim_ramp_percent_per_s / 100.0,
            aux_base_kw=self.sim_aux_kw,
            noise_share=self.sim_noise_percent / 100.0,
            spread=self.sim_variation,
        )

    def agent_journal_path(self) -> Path:
        """Where the unit agent keeps its answers across restarts."""
        default = f"var/agent-{self.amqp_prefix}{self.sim_agent_id}.journal"
        return Path(self.sim_agent_journal or default)

    @field_validator("sim_faulted_units", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("sim_start", mode="before")
    @classmethod
    def _start(cls, value: object, info: ValidationInfo) -> object:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or value.strip().lstrip("-").isdigit():
            raise ValueError(RFC3339)
        try:
            start_ms = timestamp_ms(value.strip())
        except ValueError as error:
            raise ValueError(RFC3339 if "epoch" in str(error) else str(error)) from None
        now_ms = time.time_ns() // 1_000_000
        if start_ms > now_ms:
            raise ValueError("is in the future: a replay starts in the past")
        retention_days = info.data.get("retention_days", 30)
        oldest_ms = now_ms - retention_days * 86_400_000 + REPLAY_MARGIN_MS
        if start_ms < oldest_ms:
            raise ValueError(
                f"is older than the gateway's retention window (RETENTION_DAYS={retention_days},"
                " less 10 minutes): the gateway would refuse those readings"
            )
        return start_ms

    @field_validator("sim_speed")
    @classmethod
    def _speed(cls, value: float, info: ValidationInfo) -> float:
        if value != 1.0 and info.data.get("sim_start") is None:
            raise ValueError(
                "needs SIM_START: only a replay of the past runs faster than real time"
            )
        return value

    @field_validator("sim_seed", "device_api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value
