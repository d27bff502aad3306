"""The fast lane: telemetry POSTs answered straight from ASGI, around FastAPI's machinery.

A single-reading request is mostly framework work: routing through the included routers,
the middleware stack, dependency solving, a Request and a Response object. For the two
telemetry endpoints, the highest-rate requests the system takes, this middleware hands the
request to the same `TelemetryIntake` the documented routes use and writes the answer itself.
Everything else (health, metrics, OpenAPI, other methods) goes on to FastAPI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from api_gateway import metrics
from api_gateway.ingest import Kind, RequestError
from api_gateway.intake import Answer, TelemetryIntake

log = structlog.get_logger("api_gateway")
PATHS: dict[str, Kind] = {"/v1/telemetry/megapack": "megapack", "/v1/telemetry/ev": "ev"}
_JSON = (b"content-type", b"application/json")


class TelemetryLane:
    """ASGI middleware answering POST /v1/telemetry/{megapack,ev} with a TelemetryIntake."""

    def __init__(self, app: ASGIApp, *, intake: TelemetryIntake) -> None:
        self.app, self.intake = app, intake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = PATHS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if kind is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(reversed(scope["headers"]))  # a repeated header: the first counts
        api_key = headers.get(b"x-api-key")
        content_type, length = headers.get(b"content-type"), headers.get(b"content-length")
        try:
            answer = await self.intake.handle(
                kind,
                api_key=api_key.decode("latin-1") if api_key is not None else None,
                content_type=content_type.decode("latin-1") if content_type else None,
                content_length=length.decode("latin-1") if length is not None else None,
                chunks=_chunks(receive),
            )
        except Exception:  # a bug must still get an answer, never a dropped connection
            log.exception("telemetry_request_crashed", kind=kind)
            metrics.REQUESTS.labels(kind, "500").inc()
            answer = Answer(500, {"detail": "internal error"})
        await _send(send, answer)


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":  # nothing of a cut-off request is accepted
            raise RequestError(400, "client disconnected before the body was complete")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _send(send: Send, answer: Answer) -> None:
    body = orjson.dumps(answer.body)
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode("latin-1")) for k, v in answer.headers.items()]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
