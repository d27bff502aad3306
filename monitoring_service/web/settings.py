"""What the web console reads from the environment (mixed into MonitoringSettings)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class ConsoleSettings(BaseSettings):
    """The console's view of the control service, and its push interval."""

    # Where the browser sends commands; empty: the console's own host, port 8001.
    console_control_url: str = Field(default="", pattern=r"^(https?://[^/\s]+)?$")
    console_push_interval_s: float = Field(default=1.0, ge=0.2, le=10)
