"""Monitoring service settings: schedule, thresholds of the report and of the alert rules."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from common.settings import BaseServiceSettings, OperatorKeysMixin, RefusedDeviceKeysMixin
from monitoring_service.rules import RULE_NAMES
from monitoring_service.web.settings import ConsoleSettings


class ReportSettings(BaseServiceSettings):
    """What computing a report needs (the `report --once` command reads only these)."""

    monitor_interval_s: float = Field(default=10.0, ge=0.5, le=3600)
    # auto: a coloured panel on a terminal, one JSON line otherwise
    report_format: Literal["auto", "console", "json"] = "auto"
    gateway_url: str = Field(default="http://localhost:8000", pattern=r"^https?://\S+$")
    gateway_scrape_timeout_s: float = Field(default=2.0, gt=0, le=30)
    low_soc_percent: float = Field(default=15.0, ge=0, le=100)
    megapack_capacity_kwh: float = Field(default=3854.0, gt=0, le=100_000)
    ev_low_battery_percent: float = Field(default=20.0, ge=0, le=100)
    ev_critical_battery_percent: float = Field(default=10.0, ge=0, le=100)
    # Alert rules (a rule is disabled by naming it in ALERT_RULES_DISABLED).
    alert_megapack_temp_high_c: float = Field(default=45.0, ge=-50, le=150)
    alert_megapack_temp_critical_c: float = Field(default=55.0, ge=-50, le=150)
    alert_ev_battery_temp_c: float = Field(default=58.0, ge=-50, le=150)
    alert_ev_tire_pressure_psi: float = Field(default=30.5, ge=0, le=200)
    alert_ev_battery_percent: float = Field(default=15.0, ge=0, le=100)
    alert_rules_disabled: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("alert_rules_disabled", mode="before")
    @classmethod
    def _split(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        names = tuple(part.strip() for part in str(value or "").split(",") if part.strip())
        unknown = [name for name in names if name not in RULE_NAMES]
        if unknown:
            raise ValueError(f"unknown rule {unknown[0]!r}; rules: {', '.join(RULE_NAMES)}")
        return names


class MonitoringSettings(
    OperatorKeysMixin, RefusedDeviceKeysMixin, ConsoleSettings, ReportSettings
):
    """Everything the monitoring service reads from the environment."""

    monitoring_port: int = Field(default=8002, ge=1, le=65535)
    publish_timeout_s: float = Field(default=5.0, gt=0, le=60)
