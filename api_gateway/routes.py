"""Telemetry endpoints: authenticate, read the body within its limit, accept, publish."""

import time
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api_gateway import metrics
from api_gateway.coalescer import Coalescer, Overloaded
from api_gateway.ingest import Kind, RequestError, Window, accept
from api_gateway.ratelimit import RateLimiter
from api_gateway.settings import GatewaySettings
from common.broker import BrokerUnavailable
from common.http import api_key_header, authenticate
from common.keys import ApiKey
from common.readings import EvReading, MegapackReading

log = structlog.get_logger("api_gateway")


class TelemetryAccepted(BaseModel):
    """The answer to an accepted request."""

    accepted: int
    batch_id: str


class ErrorBody(BaseModel):
    """Every refusal: `detail` is a message, or for 422 a list of {index, loc, msg, type}."""

    detail: str | list[dict[str, Any]]


def _request_body(model: type[BaseModel]) -> dict[str, Any]:
    one = model.model_json_schema()  # flat: readings have no nested models
    many = {
        "type": "object",
        "properties": {"readings": {"type": "array", "items": one, "minItems": 1}},
        "required": ["readings"],
        "additionalProperties": False,
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"oneOf": [one, many]}},
                "application/x-protobuf": {
                    "schema": {"type": "string", "format": "binary"},
                    "description": "a megapack.v1.TelemetryBatch",
                },
            },
        },
    }


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "body is not parseable JSON or protobuf",
        401: "no key, or an unknown key",
        403: "a scoped key sent a reading outside its site or fleet",
        413: "body or reading count over the limit",
        415: "unsupported Content-Type",
        422: "validation failed: every bad field with its reading index",
        429: "the key's rate limit (Retry-After set)",
        503: "broker unreachable or not confirming (Retry-After set)",
    }.items()
}


def telemetry_router(
    settings: GatewaySettings, lanes: dict[Kind, Coalescer], limiter: RateLimiter
) -> APIRouter:
    """The two telemetry endpoints, bound to their collaborators."""
    router = APIRouter(prefix="/v1/telemetry", tags=["telemetry"])

    async def device_key(  # async: a plain def would cost a thread hand-off per request
        request: Request, presented: Annotated[str | None, Depends(api_key_header)]
    ) -> ApiKey:
        return authenticate(request, presented, keys=settings.device_api_keys)

    in_flight = [0]  # requests inside handle() right now

    async def handle(kind: Kind, request: Request, key: ApiKey) -> JSONResponse:
        if in_flight[0] >= settings.max_requests_in_flight:
            raise _refuse(503, "gateway is overloaded; retry shortly", 1)
        in_flight[0] += 1
        try:
            return await admitted(kind, request, key)
        finally:
            in_flight[0] -= 1

    async def admitted(kind: Kind, request: Request, key: ApiKey) -> JSONResponse:
        body = await read_body(request, settings.max_body_bytes)
        now_us = time.time_ns() // 1000
        window = Window(settings.max_batch_readings, now_us, settings.retention_days)
        accepted = accept(
            kind=kind,
            body=body,
            content_type=request.headers.get("content-type"),
            key=key,
            window=window,
        )
        wait_s = limiter.take(key.name, accepted.readings)
        if wait_s:
            raise _refuse(429, f"rate limit of key {key.name!r} exceeded", wait_s)
        started = time.perf_counter()
        try:
            await lanes[kind].submit(accepted.envelope, accepted.readings)
        except Overloaded:
            raise _refuse(503, "gateway is overloaded; retry shortly", 1) from None
        except BrokerUnavailable as error:
            log.warning("publish_failed", kind=kind, key=key.name, error=str(error))
            raise _refuse(503, "message broker unavailable; nothing was accepted", 2) from None
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
        metrics.READINGS.labels(kind).inc(accepted.readings)
        return JSONResponse(
            {"accepted": accepted.readings, "batch_id": accepted.batch_id}, status_code=202
        )

    @router.post(
        "/megapack",
        status_code=202,
        response_model=TelemetryAccepted,
        responses=_ERRORS,
        openapi_extra=_request_body(MegapackReading),
        summary="Send Megapack readings (one, or {readings: [...]})",
    )
    async def post_megapack(
        request: Request, key: Annotated[ApiKey, Depends(device_key)]
    ) -> JSONResponse:
        return await handle("megapack", request, key)

    @router.post(
        "/ev",
        status_code=202,
        response_model=TelemetryAccepted,
        responses=_ERRORS,
        openapi_extra=_request_body(EvReading),
        summary="Send EV readings (one, or {readings: [...]})",
    )
    async def post_ev(
        request: Request, key: Annotated[ApiKey, Depends(device_key)]
    ) -> JSONResponse:
        return await handle("ev", request, key)

    return router


def _refuse(status: int, detail: str, retry_after_s: float) -> HTTPException:
    return HTTPException(status, detail, headers={"Retry-After": str(int(retry_after_s))})


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)
