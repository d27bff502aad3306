"""Settings read from the environment, validated once at start."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NoReturn, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from common.amqp_urls import split_amqp_urls
from common.keys import ApiKey, parse_api_keys

S = TypeVar("S", bound="BaseServiceSettings")
FILE_SUFFIX = "_FILE"


def env_or_file(variable: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """`VARIABLE` from the environment, else the content of the file `VARIABLE_FILE` names.

    The Docker convention (as the official PostgreSQL image's `POSTGRES_PASSWORD_FILE`): a secret
    travels as a file on a volume, not in the container's environment. A non-empty value in
    the environment wins. Raises SettingsError (naming the variable) if the file is unreadable.
    """
    value = environ.get(variable, "")
    if value:
        return value
    path = environ.get(variable + FILE_SUFFIX, "")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as secret:
            return secret.read().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise SettingsError(f"{variable}{FILE_SUFFIX}: cannot read {path}: {reason}") from None


class FileSecretsSource(PydanticBaseSettingsSource):
    """Each field's `<VARIABLE>_FILE`, used where `<VARIABLE>` itself is unset or empty."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: `__call__` reads every field at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        prefix = (self.config.get("env_prefix") or "").upper()
        found: dict[str, Any] = {}
        for name in self.settings_cls.model_fields:
            variable = prefix + name.upper()
            if os.environ.get(variable):
                continue  # the environment source has it, and wins
            value = env_or_file(variable)
            if value is not None:
                found[name] = value
        return found


def with_password(url: str, password: str) -> str:
    """Each comma-separated URL with `password` added where it names a user but no password."""
    urls = []
    for one in url.split(","):
        parts = urlsplit(one.strip())
        if parts.username and parts.password is None and parts.hostname:
            user, _, host = parts.netloc.rpartition("@")
            parts = parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}")
        urls.append(urlunsplit(parts))
    return ",".join(urls)


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
    # Passwords kept out of the URLs (compose gives them as AMQP_PASSWORD_FILE and
    # DATABASE_PASSWORD_FILE); each goes into its URL(s) where the URL has a user but no password.
    amqp_password: SecretStr | None = Field(default=None, exclude=True, repr=False)
    database_password: SecretStr | None = Field(default=None, exclude=True, repr=False)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, the environment (`<VARIABLE>_FILE` where `<VARIABLE>` is empty), defaults."""
        files = FileSecretsSource(settings_cls)
        return init_settings, files, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _passwords_into_urls(self) -> BaseServiceSettings:
        # frozen: the validator is the one place the URLs are completed
        if self.amqp_password is not None:
            url = with_password(self.amqp_url, self.amqp_password.get_secret_value())
            object.__setattr__(self, "amqp_url", url)
        if self.database_password is not None:
            url = with_password(self.database_url, self.database_password.get_secret_value())
            object.__setattr__(self, "database_url", url)
        return self

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
