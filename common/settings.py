"""Settings read from the environment, validated once at start."""

from __future__ import annotations

import sys
from typing import Annotated, Literal, NoReturn, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from common.amqp_urls import split_amqp_urls
from common.keys import ApiKey, parse_api_keys

S = TypeVar("S", bound="BaseServiceSettings")


class BaseServiceSettings(BaseSettings):
    """What every service reads: where the broker and the database are, and how to log."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    amqp_url: str = "amqp://guest:guest@localhost:5672/"
    database_url: str = "postgresql://postgres@localhost:5432/megapack"
    amqp_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_.:-]{0,64}$")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] | None = None
    retention_days: int = Field(default=30, ge=1, le=3650)
    stale_after_s: float = Field(default=30.0, gt=0, le=86_400)
    # How long a publisher waits for the broker's confirm before it counts as unconfirmed.
    publish_timeout_s: float = Field(default=5.0, gt=0, le=60)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("amqp_url")
    @classmethod
    def _broker_list(cls, value: str) -> str:
        """One broker, or the nodes of a cluster comma-separated (SPEC §15)."""
        return ",".join(split_amqp_urls(value))


def _keys(value: object) -> tuple[ApiKey, ...]:
    if isinstance(value, tuple):
        return value
    return parse_api_keys(str(value or ""))


class DeviceKeysMixin(BaseSettings):
    """Keys that may post telemetry (`DEVICE_API_KEYS`); at least one is required."""

    device_api_keys: Annotated[tuple[ApiKey, ...], NoDecode]

    @field_validator("device_api_keys", mode="before")
    @classmethod
    def _parse_device_keys(cls, value: object) -> tuple[ApiKey, ...]:
        return _keys(value)


class RefusedDeviceKeysMixin(BaseSettings):
    """Device keys an operator service knows only to answer 403 (not 401) when one calls it."""

    device_api_keys: Annotated[tuple[ApiKey, ...], NoDecode] = ()

    @field_validator("device_api_keys", mode="before")
    @classmethod
    def _parse_refused_device_keys(cls, value: object) -> tuple[ApiKey, ...]:
        return _keys(value) if str(value or "").strip() else ()


class OperatorKeysMixin(BaseSettings):
    """Keys for commands and read APIs (`OPERATOR_API_KEYS`); at least one is required."""

    operator_api_keys: Annotated[tuple[ApiKey, ...], NoDecode]

    @field_validator("operator_api_keys", mode="before")
    @classmethod
    def _parse_operator_keys(cls, value: object) -> tuple[ApiKey, ...]:
        keys = _keys(value)
        if any(key.scope for key in keys):
            raise ValueError("operator keys cannot be scoped")
        return keys


def _fail(service: str, error: ValidationError) -> NoReturn:
    first = error.errors()[0]
    variable = str(first["loc"][0]).upper() if first["loc"] else "settings"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "is required but not set"
    print(f"{service}: invalid configuration: {variable} {message}", file=sys.stderr)
    raise SystemExit(2)


def load_settings(cls: type[S], service: str) -> S:
    """Build settings from the environment; on a bad value exit with one line naming it."""
    try:
        return cls()
    except ValidationError as error:
        _fail(service, error)
    except SettingsError as error:
        print(f"{service}: invalid configuration: {error}", file=sys.stderr)
        raise SystemExit(2) from None
