"""Simulator settings: SPEC §3 variables, each also a command-line flag."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from common.settings import BaseServiceSettings


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

    @field_validator("sim_seed", "device_api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value
