"""What the monitoring routers share: id patterns, page sizes, dependencies, error docs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import asyncpg
from fastapi import Depends, Request

from common.http import operator_key_dependency
from common.keys import ApiKey
from common.readings import ID_PATTERN
from common.schemas import ErrorBody
from monitoring_service.job import Monitor

if TYPE_CHECKING:
    from monitoring_service.settings import MonitoringSettings

UNIT_ID = ID_PATTERN  # the one id rule (SPEC §4)
MAX_PAGE = 500

_TEXT = {
    400: "the body is not parseable JSON",
    401: "no key, or an unknown key",
    403: "a device key: the monitoring API needs an operator key",
    404: "unknown unit, site or alert",
    409: "the alert's state forbids it",
    422: "bad parameter, body, cursor or time range",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI descriptions of error answers."""
    return {status: {"model": ErrorBody, "description": _TEXT[status]} for status in statuses}


def operator_key(settings: MonitoringSettings) -> Callable[..., ApiKey]:
    """The dependency every monitoring endpoint takes: an operator key (a device key: 403)."""
    return operator_key_dependency(
        operators=settings.operator_api_keys,
        devices=settings.device_api_keys,
        refused_reason="device keys may not read monitoring data; use an operator key",
    )


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def _monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    return monitor


Pool = Annotated[asyncpg.Pool, Depends(_pool)]
MonitorDep = Annotated[Monitor, Depends(_monitor)]
