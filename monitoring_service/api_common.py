"""What the monitoring routers share: id patterns, page sizes, dependencies, error docs."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request

from common.readings import ID_PATTERN
from common.schemas import ErrorBody
from monitoring_service.job import Monitor

UNIT_ID = ID_PATTERN  # the one id rule (SPEC §4)
MAX_PAGE = 500

_TEXT = {
    400: "the body is not parseable JSON",
    401: "no key, or an unknown key",
    403: "a device key: the monitoring API needs an operator key",
    404: "unknown unit or alert",
    409: "the alert's state forbids it",
    422: "bad parameter, body, cursor or time range",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI descriptions of error answers."""
    return {status: {"model": ErrorBody, "description": _TEXT[status]} for status in statuses}


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def _monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    return monitor


Pool = Annotated[asyncpg.Pool, Depends(_pool)]
MonitorDep = Annotated[Monitor, Depends(_monitor)]
