"""Monitoring service settings: schedule, thresholds of the report and of the alert rules."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from common.settings import BaseServiceSettings, OperatorKeysMixin, RefusedDeviceKeysMixin
from monitoring_service.rules import RULE_NAMES, parse_tuning
from monitoring_service.web.settings import ConsoleSettings


class ReportSettings(BaseServiceSettings):
    """What computing a report needs (the `report --once` command reads only these)."""

    monitor_interval_s: float = Field(default=10.0, ge=0.5, le=3600)
    # auto: a coloured panel on a terminal, one JSON line otherwise
    report_format: Literal["auto", "console", "json"] = "auto"
    gateway_url: str = Field(default="http://localhost:8000", pattern=r"^https?://\S+$")
    # Several gateways (or several names): each is resolved to all its addresses and summed.
    gateway_urls: Annotated[tuple[str, ...], NoDecode] = ()
    gateway_scrape_timeout_s: float = Field(default=2.0, gt=0, le=30)
    low_soc_percent: float = Field(default=15.0, ge=0, le=100)
    megapack_capacity_kwh: float = Field(default=3854.0, gt=0, le=100_000)
    telemetry_interval_s: float = Field(default=1.0, gt=0, le=3600)  # KPIs: readings expected
    ev_low_battery_percent: float = Field(default=20.0, ge=0, le=100)
    ev_critical_battery_percent: float = Field(default=10.0, ge=0, le=100)
    # Alert rules (a rule is disabled by naming it in ALERT_RULES_DISABLED).
    alert_megapack_temp_high_c: float = Field(default=45.0, ge=-50, le=150)
    alert_megapack_temp_critical_c: float = Field(default=55.0, ge=-50, le=150)
    alert_megapack_critical_soc_percent: float = Field(default=5.0, ge=0, le=100)
    alert_ev_battery_temp_warning_c: float = Field(default=50.0, ge=-50, le=150)
    alert_ev_battery_temp_c: float = Field(default=58.0, ge=-50, le=150)
    alert_ev_tire_pressure_psi: float = Field(default=30.5, ge=0, le=200)
    alert_ev_battery_percent: float = Field(default=15.0, ge=0, le=100)
    alert_rules_disabled: Annotated[tuple[str, ...], NoDecode] = ()
    # Per-rule delays and deadbands: `megapack_temp.on_delay_s=5,unit_stale.off_delay_s=0`.
    alert_rule_tuning: Annotated[tuple[tuple[str, str, float], ...], NoDecode] = ()

    @field_validator("alert_rule_tuning", mode="before")
    @classmethod
    def _tuning(cls, value: object) -> tuple[tuple[str, str, float], ...]:
        if isinstance(value, tuple):
            return value
        return parse_tuning(str(value or ""))

    @field_validator("gateway_urls", mode="before")
    @classmethod
    def _gateways(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        urls = tuple(part.strip() for part in str(value or "").split(",") if part.strip())
        bad = [url for url in urls if not re.fullmatch(r"https?://[^\s/]+/?", url)]
        if bad:
            raise ValueError(f"not an http(s) base URL: {bad[0][:100]!r}")
        return urls

    @property
    def gateway_targets(self) -> tuple[str, ...]:
        """The gateways to scrape: GATEWAY_URLS, else GATEWAY_URL."""
        return self.gateway_urls or (self.gateway_url,)

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
    # Webhooks: every alert event POSTed, signed, to each URL (none: no notifier runs).
    alert_webhook_urls: Annotated[tuple[str, ...], NoDecode] = ()
    alert_webhook_secret: str = Field(default="", repr=False)
    alert_webhook_max_age_s: float = Field(default=86_400.0, gt=0, le=30 * 86_400)
    alert_webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)

    @field_validator("alert_webhook_urls", mode="before")
    @classmethod
    def _urls(cls, value: object) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        urls = tuple(part.strip() for part in str(value or "").split(",") if part.strip())
        bad = [url for url in urls if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url)]
        if bad:
            raise ValueError(f"not an http(s) URL: {bad[0][:100]!r}")
        return urls

    @model_validator(mode="after")
    def _secret_with_urls(self) -> MonitoringSettings:
        if self.alert_webhook_urls and len(self.alert_webhook_secret) < 16:
            raise ValueError(
                "ALERT_WEBHOOK_SECRET must be set (16+ characters) when ALERT_WEBHOOK_URLS is"
            )
        return self
