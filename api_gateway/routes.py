"""Telemetry endpoints: authenticate, read the body within its limit, accept, publish."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api_gateway.ingest import Kind
from api_gateway.intake import TelemetryIntake
from common.http import api_key_header
from common.readings import EvReading, MegapackReading
from common.schemas import ErrorBody

ApiKeyHeader = Annotated[str | None, Depends(api_key_header)]  # documents X-API-Key


class TelemetryAccepted(BaseModel):
    """The answer to an accepted request."""

    accepted: int
    batch_id: str


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
        408: "the body did not arrive within BODY_READ_TIMEOUT_S",
        413: "body or reading count over the limit",
        415: "unsupported Content-Type",
        422: "validation failed: every bad field with its reading index",
        429: "the key's rate limit (Retry-After set)",
        503: "broker unreachable or not confirming (Retry-After set)",
    }.items()
}


def telemetry_router(intake: TelemetryIntake) -> APIRouter:
    """The two telemetry endpoints as documented routes (TelemetryLane usually answers first)."""
    router = APIRouter(prefix="/v1/telemetry", tags=["telemetry"])

    async def handle(kind: Kind, request: Request, presented: str | None) -> JSONResponse:
        answer = await intake.handle(
            kind,
            api_key=presented,
            content_type=request.headers.get("content-type"),
            content_length=request.headers.get("content-length"),
            chunks=request.stream(),
        )
        return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)

    @router.post(
        "/megapack",
        status_code=202,
        response_model=TelemetryAccepted,
        responses=_ERRORS,
        openapi_extra=_request_body(MegapackReading),
        summary="Send Megapack readings (one, or {readings: [...]})",
    )
    async def post_megapack(request: Request, presented: ApiKeyHeader) -> JSONResponse:
        return await handle("megapack", request, presented)

    @router.post(
        "/ev",
        status_code=202,
        response_model=TelemetryAccepted,
        responses=_ERRORS,
        openapi_extra=_request_body(EvReading),
        summary="Send EV readings (one, or {readings: [...]})",
    )
    async def post_ev(request: Request, presented: ApiKeyHeader) -> JSONResponse:
        return await handle("ev", request, presented)

    return router
