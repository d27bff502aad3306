"""The console's routes: its page and files, its configuration, the push channel, EV positions."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from common.http import reject_unknown_query
from common.keys import ApiKey
from db import console as console_sql
from monitoring_service.api_common import errors, operator_key
from monitoring_service.settings import MonitoringSettings
from monitoring_service.web.live import EV_LIMIT, LiveHub, frame, row_fields
from monitoring_service.web.schemas import ConsoleConfig, EvPosition, EvPositions

STATIC = Path(__file__).with_name("static")
WATCH = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(,[A-Za-z0-9][A-Za-z0-9_.-]{0,63}){0,199}$"


def _csp(control_url: str) -> str:
    # The key sits in sessionStorage: no script but the service's own may run on the page.
    control = control_url or "http://*:8001 https://*:8001"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {control}; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    )


def hub_of(request: Request) -> LiveHub:
    """The process's hub, made on first use."""
    hub: LiveHub | None = getattr(request.app.state, "live", None)
    if hub is None:
        settings: MonitoringSettings = request.app.state.console_settings
        hub = request.app.state.live = LiveHub(
            pool=request.app.state.pool,
            monitor=request.app.state.monitor,
            interval_s=settings.console_push_interval_s,
        )
    return hub


def install_console(app: FastAPI, settings: MonitoringSettings) -> None:
    """`/` (the console), `/console/*` (its files), `/v1/console/*` (config, stream, EVs)."""
    app.state.console_settings = settings
    headers = {
        "Content-Security-Policy": _csp(settings.console_control_url),
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=headers)

    app.mount("/console", StaticFiles(directory=STATIC), name="console")
    app.include_router(console_router(settings))


def console_router(settings: MonitoringSettings) -> APIRouter:
    """The console's own API (operator key)."""
    Operator = Annotated[ApiKey, Depends(operator_key(settings))]
    router = APIRouter(
        prefix="/v1/console", tags=["console"], dependencies=[Depends(reject_unknown_query)]
    )

    @router.get("/config", response_model=ConsoleConfig, responses=errors(401, 403, 422))
    async def config(key: Operator) -> ConsoleConfig:
        """What the console needs to know; also how it checks a key at sign-in."""
        return ConsoleConfig(
            operator=key.name,
            control_url=settings.console_control_url or None,
            stale_after_s=settings.stale_after_s,
            monitor_interval_s=settings.monitor_interval_s,
            ev_low_battery_percent=settings.ev_low_battery_percent,
            ev_critical_battery_percent=settings.ev_critical_battery_percent,
        )

    # Not in the OpenAPI document: a stream that never ends is no operation for API clients
    # and fuzzers to call (docs/API.md describes it).
    @router.get("/stream", response_class=StreamingResponse, include_in_schema=False)
    async def stream(
        request: Request,
        _: Operator,
        watch: Annotated[str | None, Query(pattern=WATCH)] = None,
        evs: bool = False,
    ) -> StreamingResponse:
        """Server-sent events: `tick` every push interval, `summary` (a new report), `alerts`
        (something happened to an alert), `units` and `commands` (changes of the watched
        units, at most 200), `evs` (vehicles that moved, with `evs=true`)."""
        hub = hub_of(request)
        subscriber = hub.subscribe(watch=watch.split(",") if watch else (), evs=evs)

        async def events() -> AsyncIterator[bytes]:
            try:
                yield frame("hello", {"consoles": hub.consoles})
                while (chunk := await subscriber.queue.get()) is not None:
                    yield chunk
            finally:
                hub.unsubscribe(subscriber)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/evs", response_model=EvPositions, responses=errors(401, 403, 422))
    async def ev_positions(request: Request, _: Operator) -> EvPositions:
        """Every vehicle with the position of its newest reading."""
        async with request.app.state.pool.acquire() as conn:
            rows = await console_sql.ev_positions(conn, since=None, limit=EV_LIMIT + 1)
        items = [EvPosition(**row_fields(row)) for row in rows]
        return EvPositions(items=items[:EV_LIMIT], truncated=len(items) > EV_LIMIT)

    return router
