"""HTTP pieces every service shares: health, readiness, metrics, API-key authentication."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, get_args, get_origin

import structlog
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from common.keys import ApiKey, find_key

log = structlog.get_logger("common.http")

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key secret")


def health_router(ready: Callable[[], Awaitable[dict[str, bool]]]) -> APIRouter:
    """`/healthz` (alive), `/readyz` (dependencies reachable), `/metrics` (Prometheus)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Dependencies are reachable",
        responses={503: {"description": "a dependency is unreachable"}},
    )
    async def readyz(response: Response) -> dict[str, object]:
        checks = await ready()
        ok = all(checks.values())
        if not ok:
            response.status_code = 503
            response.headers["Retry-After"] = "1"
        return {"status": "ready" if ok else "unavailable", "checks": checks}

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def authenticate(
    request: Request,
    presented: str | None,
    *,
    keys: tuple[ApiKey, ...],
    refused: tuple[ApiKey, ...] = (),
    refused_reason: str = "this key may not use this endpoint",
) -> ApiKey:
    """The key behind `X-API-Key`: 401 when missing or unknown, 403 when known but refused here."""
    if not presented:
        raise HTTPException(401, "missing X-API-Key header", headers={"WWW-Authenticate": "ApiKey"})
    key = find_key(keys, presented)
    if key is None:
        if find_key(refused, presented) is not None:
            raise HTTPException(403, refused_reason)
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "ApiKey"})
    request.state.key_name = key.name
    return key


def operator_key_dependency(
    *, operators: tuple[ApiKey, ...], devices: tuple[ApiKey, ...], refused_reason: str
) -> Callable[..., ApiKey]:
    """A FastAPI dependency admitting operator keys only (device keys get 403)."""

    def operator_key(
        request: Request, presented: Annotated[str | None, Depends(api_key_header)]
    ) -> ApiKey:
        return authenticate(
            request, presented, keys=operators, refused=devices, refused_reason=refused_reason
        )

    return operator_key


def install_error_handlers(app: FastAPI, *, transient: tuple[type[Exception], ...]) -> None:
    """422 with readable locations for bad input; 503 + Retry-After while the database is away."""

    async def validation_error(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        detail = [{"loc": list(item["loc"]), "msg": item["msg"]} for item in error.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    async def unavailable(_: Request, error: Exception) -> JSONResponse:
        log.warning("database_unavailable", error=f"{type(error).__name__}: {error}")
        return JSONResponse(
            {"detail": "database unavailable; retry shortly"},
            status_code=503,
            headers={"Retry-After": "2"},
        )

    app.add_exception_handler(RequestValidationError, validation_error)
    for error in transient:
        app.add_exception_handler(error, unavailable)


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Run an application with uvicorn the way every service does (graceful on SIGTERM)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter the endpoint does not declare (a typo must not be ignored),
    or a single-valued one given twice (which value was meant?)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = {field.alias for field in route.dependant.query_params}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise HTTPException(422, f"unknown query parameter(s): {', '.join(unknown)[:200]}")
    repeated = sorted(
        field.alias
        for field in route.dependant.query_params
        if len(request.query_params.getlist(field.alias)) > 1
        and not _is_list(field.field_info.annotation)
    )
    if repeated:
        raise HTTPException(422, f"query parameter(s) given more than once: {', '.join(repeated)}")


def _is_list(annotation: object) -> bool:
    return get_origin(annotation) in (list, tuple, set) or any(
        _is_list(argument) for argument in get_args(annotation)
    )
