"""The gateway's wiring: settings, broker, publishing lanes and routes, built in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aio_pika.abc import AbstractChannel
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api_gateway import metrics
from api_gateway.coalescer import Coalescer
from api_gateway.ingest import Kind, RequestError
from api_gateway.intake import TelemetryIntake
from api_gateway.lane import TelemetryLane
from api_gateway.ratelimit import RateLimiter
from api_gateway.routes import telemetry_router
from api_gateway.settings import GatewaySettings
from common.broker import Broker
from common.docs import install_offline_docs
from common.http import health_router
from common.topology import Names, declare_exchange


def create_app(settings: GatewaySettings) -> FastAPI:
    """Build the gateway application; connections open in its lifespan."""
    names = Names(settings.amqp_prefix)
    broker = Broker(
        settings.amqp_url,
        names,
        declare=_declare_telemetry_exchange,
        publish_timeout_s=settings.publish_timeout_s,
    )

    def lane(kind: Kind) -> Coalescer:
        async def publish(body: bytes) -> None:
            await broker.publish(names.telemetry, kind, body, require_route=True)

        return Coalescer(
            publish=publish,
            max_pending_readings=settings.max_pending_readings,
            max_in_flight=settings.publish_max_in_flight,
        )

    lanes: dict[Kind, Coalescer] = {"megapack": lane("megapack"), "ev": lane("ev")}
    limiter = RateLimiter(
        rate=settings.rate_limit_readings_per_s, burst_s=settings.rate_limit_burst_s
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await broker.start()
        for coalescer in lanes.values():
            coalescer.start()
        yield
        for coalescer in lanes.values():
            await coalescer.close()
        await broker.close()

    async def ready() -> dict[str, bool]:
        for kind, coalescer in lanes.items():
            metrics.PENDING.labels(kind).set(coalescer.pending_readings)
        return {"broker": broker.ready}

    app = FastAPI(
        title="Megapack telemetry gateway",
        version="1.0.0",
        description="Authenticates and validates Megapack and EV telemetry and publishes it.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_offline_docs(app)
    app.include_router(health_router(ready))
    intake = TelemetryIntake(settings=settings, lanes=lanes, limiter=limiter)
    app.include_router(telemetry_router(intake))
    app.add_exception_handler(RequestError, _request_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    if settings.gateway_fast_path:
        app.add_middleware(TelemetryLane, intake=intake)
    return app


async def _declare_telemetry_exchange(channel: AbstractChannel, names: Names) -> None:
    """Only the exchange it publishes to: declaring the ingest queue needs read on it."""
    await declare_exchange(channel, names.telemetry)


async def _request_error(_: Request, error: RequestError) -> JSONResponse:
    return JSONResponse({"detail": error.detail}, status_code=error.status)


async def _validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": str(error.errors())[:1000]}, status_code=422)
