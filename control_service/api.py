"""Control endpoints: authenticate the operator, parse, call a handler, answer."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse

from common.http import operator_key_dependency, reject_unknown_query
from common.keys import ApiKey
from common.readings import ID_PATTERN
from common.schemas import ErrorBody
from control_service import metrics
from control_service.delivering import CommandPublisher
from control_service.handlers import CommandRequest, Defaults, submit_command
from control_service.rules import Refused
from control_service.schemas import (
    CommandCreate,
    CommandPage,
    CommandPublic,
    Status,
)
from control_service.settings import ControlSettings
from db.commands import CommandRepository

UNIT_ID = ID_PATTERN  # the one id rule (SPEC §4)
IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,200}$"

_TEXT = {
    400: "the body is not parseable JSON",
    401: "no key, or an unknown key",
    403: "a device key: commands need an operator key",
    404: "unknown unit, command or group (or a site / fleet without units)",
    409: "the unit's latest state or kind forbids this command (e.g. set_power on a unit in "
    "FAULT), or the Idempotency-Key was used for a different request",
    422: "bad type, params, ttl_s, not_before, selector or query parameter (names the field)",
    503: "message broker or database unavailable; nothing was created (Retry-After set)",
}


def defaults(settings: ControlSettings) -> Defaults:
    """What the service fills in: the model-wide rated power, the default hold."""
    return Defaults(rated_power_kw=settings.megapack_rated_power_kw, hold_s=settings.command_hold_s)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": _TEXT[status]} for status in statuses}


def store(request: Request) -> CommandRepository:
    store: CommandRepository = request.app.state.store
    return store


Store = Annotated[CommandRepository, Depends(store)]


def commands_router(settings: ControlSettings, publisher: CommandPublisher) -> APIRouter:
    """The command endpoints, bound to their collaborators."""
    router = APIRouter(
        prefix="/v1", tags=["commands"], dependencies=[Depends(reject_unknown_query)]
    )

    operator_key = operator_key_dependency(
        operators=settings.operator_api_keys,
        devices=settings.device_api_keys,
        refused_reason="device keys may not send or read commands; use an operator key",
    )

    Operator = Annotated[ApiKey, Depends(operator_key)]
    UnitId = Annotated[str, Path(pattern=UNIT_ID, description="e.g. MP-0001 or EV-0001")]

    @router.post(
        "/units/{unit_id}/commands",
        status_code=202,
        response_model=CommandPublic,
        responses={
            202: {
                "description": "created: `sent` when delivered to the broker, `scheduled` "
                "when `not_before` is ahead, `failed` when no unit agent's queue takes it"
            },
            **errors(400, 401, 403, 404, 409, 422, 503),
        },
        summary="Send a command to a unit",
    )
    async def post_command(
        unit_id: UnitId,
        body: CommandCreate,
        key: Operator,
        store: Store,
        idempotency_key: Annotated[
            str | None,
            Header(
                pattern=IDEMPOTENCY_KEY,
                description="the same key from the same operator returns the same command; "
                "reused for a different request: 422",
            ),
        ] = None,
    ) -> JSONResponse:
        ttl_s = body.ttl_s or settings.command_default_ttl_s
        try:
            command, created = await submit_command(
                store=store,
                publisher=publisher,
                request=CommandRequest(
                    unit_id=unit_id,
                    type_name=body.type,
                    params=body.params.model_dump(),
                    ttl_s=ttl_s,
                    requested_by=key.name,
                    idempotency_key=idempotency_key,
                    not_before=body.not_before,
                ),
                defaults=defaults(settings),
            )
        except Refused as refused:
            metrics.COMMANDS.labels(body.type, str(refused.status)).inc()
            headers = {"Retry-After": "2"} if refused.status == 503 else None
            raise HTTPException(refused.status, refused.detail, headers=headers) from None
        metrics.COMMANDS.labels(body.type, "202").inc()
        return JSONResponse(
            CommandPublic.of(command).model_dump(mode="json"),
            status_code=202,
            headers={"Idempotent-Replayed": "false" if created else "true"},
        )

    @router.get(
        "/commands/{command_id}",
        response_model=CommandPublic,
        responses=errors(401, 403, 404, 422, 503),
        summary="A command's status and history",
    )
    async def get_command(command_id: uuid.UUID, _: Operator, store: Store) -> CommandPublic:
        command = await store.get_command(command_id)
        if command is None:
            raise HTTPException(404, f"unknown command {command_id}")
        return CommandPublic.of(command)

    @router.get(
        "/units/{unit_id}/commands",
        response_model=CommandPage,
        responses=errors(401, 403, 404, 422, 503),
        summary="A unit's commands, newest first (paged)",
    )
    async def list_commands(
        unit_id: UnitId,
        _: Operator,
        store: Store,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[
            int | None, Query(ge=1, description="`next_cursor` of the previous page")
        ] = None,
        status: Status | None = None,
    ) -> CommandPage:
        if await store.find_unit(unit_id) is None:
            raise HTTPException(404, f"unknown unit {unit_id!r}")
        page = await store.list_unit_commands(unit_id, limit=limit, before=cursor, status=status)
        return CommandPage(
            items=[CommandPublic.of(command) for command in page],
            next_cursor=page[-1].seq if len(page) == limit else None,
        )

    return router
